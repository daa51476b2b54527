"""The two LSTM forecasters of the paper (docs/models.md): encoder–decoder and self-attention (SA-LSTM).

Both work on frames flattened to vectors of P² values (2,500 for 50×50 patches); the LSTM hidden
size equals P², so an LSTM output *is* a frame (no read-out layer), as in the original.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from .base import Forecaster


def _lstm(size: int, layers: int, dropout: float) -> nn.LSTM:
    # nn.LSTM applies dropout between layers only; with one layer it would warn and do nothing.
    return nn.LSTM(
        size, size, num_layers=layers, dropout=dropout if layers > 1 else 0.0, batch_first=True
    )


def _run_lstm(
    lstm: nn.LSTM, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """``lstm(x, state)`` in float32, also under autocast (``--amp``).

    x (B, T, P²) → output (B, T, P²) float32 and (h, c), each (layers, B, P²) float32.

    Why not autocast: on CUDA, PyTorch's cuDNN RNN autocast wrapper runs ``nn.LSTM`` in float16
    whatever dtype autocast asks for (bf16 included), and at paper size nearly all LSTM gradients
    are below float16's smallest subnormal (2⁻²⁴) — they would become 0 and the LSTMs would stop
    learning. A GradScaler could rescue float16, but it adds a second precision regime, skipped
    steps and scaler state to checkpoint; float32 LSTMs keep ``--amp`` a plain bf16 switch for
    every other layer (attention, linear, convolutions), which needs no loss scaling.
    """
    dev = x.device.type
    off = (
        torch.autocast(dev, enabled=False)
        if torch.amp.is_autocast_available(dev)
        else contextlib.nullcontext()  # e.g. the meta device (shapes and memory estimates)
    )
    with off:
        if state is not None:
            state = (state[0].float(), state[1].float())
        return lstm(x.float(), state)


class LSTMEncDec(Forecaster):
    """LSTM encoder–decoder ("LSTMEncDec" of the paper).

    Encoder ``LSTM(P², P², layers)`` over the 4 flattened input frames; the decoder, an LSTM of the
    same shape, starts from the encoder's final (h, c) — h as h and c as c (the original passed h
    for both) — with the encoder's last output as its first input. Each decoder output is the next
    frame; it is the next input (or the true frame under teacher forcing).

    Paper size (P = 50, 3 layers): 2 × 150,060,000 = 300,120,000 parameters.
    """

    #: under teacher forcing every decoder input is known, so the decoder runs over all steps in
    #: one call: the same recurrence as step by step (False), a 1.4x faster demo training step
    #: (benchmarks/models.py); dropout between layers draws its masks in another order
    one_pass_teacher = True

    def __init__(
        self, patch: int = 50, layers: int = 3, dropout: float = 0.1, n_in: int = 4, n_out: int = 4
    ):
        super().__init__(patch, n_in, n_out)
        d = self.patch * self.patch
        self.encoder = _lstm(d, layers, dropout)
        self.decoder = _lstm(d, layers, dropout)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, 4, P, P) → (B, 4, P, P); y (B, 4, P, P) for teacher forcing in training mode."""
        teacher = self._check(x, y)
        b, p = x.shape[0], self.patch
        enc_out, state = _run_lstm(self.encoder, x.reshape(b, self.n_in, p * p))
        inp = enc_out[:, -1:]  # (B, 1, P²)
        if teacher is not None and self.one_pass_teacher:
            seq = torch.cat([inp, teacher[:, :-1].reshape(b, self.n_out - 1, p * p)], dim=1)
            out, _ = _run_lstm(self.decoder, seq, state)  # (B, n_out, P²)
            return out.reshape(b, self.n_out, p, p)
        preds = []
        for i in range(self.n_out):
            out, state = _run_lstm(self.decoder, inp, state)  # (B, 1, P²)
            preds.append(out)
            inp = teacher[:, i : i + 1].reshape(b, 1, p * p) if teacher is not None else out
        return torch.cat(preds, dim=1).reshape(b, self.n_out, p, p)


class SALSTM(Forecaster):
    """LSTM with multi-head self-attention ("LSTMAttentionSmall", the paper's best model).

    Encoder ``LSTM(P², P², layers)`` over the 4 flattened frames gives 4 vectors of P². Each decoder
    step: multi-head self-attention over the current 4 vectors, flatten (4·P²), ``Linear(4·P², P²)``
    → the predicted frame. As in the original, the frame (prediction, or the true frame under
    teacher forcing) is appended to the 4 *vectors*, the last 4 are kept and the encoder LSTM is run
    again over them to give the next step's 4 vectors.

    Paper size (P = 50, 3 layers, 5 heads): LSTM 150,060,000 + attention 25,010,000 + linear
    25,002,500 = 200,072,500 parameters.
    """

    def __init__(
        self,
        patch: int = 50,
        layers: int = 3,
        heads: int = 5,
        dropout: float = 0.1,
        n_in: int = 4,
        n_out: int = 4,
    ):
        super().__init__(patch, n_in, n_out)
        d = self.patch * self.patch
        if d % heads:
            raise ValueError(f"SALSTM: patch² = {d} is not divisible by {heads} attention heads")
        self.encoder = _lstm(d, layers, dropout)
        self.attention = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.head = nn.Linear(self.n_in * d, d)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, 4, P, P) → (B, 4, P, P); y (B, 4, P, P) for teacher forcing in training mode."""
        teacher = self._check(x, y)
        b, p = x.shape[0], self.patch
        window, _ = _run_lstm(self.encoder, x.reshape(b, self.n_in, p * p))  # (B, 4, P²)
        preds = []
        for i in range(self.n_out):
            att, _ = self.attention(window, window, window, need_weights=False)
            frame = self.head(att.reshape(b, -1))  # (B, P²)
            preds.append(frame)
            if i == self.n_out - 1:
                break  # the last frame is not fed back: skip the encoder pass it would need
            nxt = teacher[:, i].reshape(b, p * p) if teacher is not None else frame
            window, _ = _run_lstm(self.encoder, torch.cat([window[:, 1:], nxt[:, None]], dim=1))
        return torch.stack(preds, dim=1).reshape(b, self.n_out, p, p)
