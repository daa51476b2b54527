"""Convolutional LSTM forecaster (docs/models.md), with the named channel configurations of the original."""

from __future__ import annotations

import torch
from torch import nn

from .base import Forecaster

#: Hidden channels: encoder 3 layers + decoder 3 layers. ``big`` trained in the original's
#: convLSTMTrain.py (1,554,593 parameters); ``small`` is what its test scripts loaded.
CONVLSTM_CONFIGS: dict[str, tuple[int, ...]] = {
    "big": (128, 64, 32, 32, 64, 32),
    "small": (64, 64, 24, 24, 64, 24),
}


def resolve_channels(spec: str | tuple[int, ...] | list[int]) -> tuple[int, ...]:
    """A named configuration (``big``/``small``) or six channel counts → six ints."""
    if isinstance(spec, str):
        if spec in CONVLSTM_CONFIGS:
            return CONVLSTM_CONFIGS[spec]
        try:
            spec = tuple(int(v) for v in spec.split(","))
        except ValueError:
            raise ValueError(
                f"ConvLSTM channels {spec!r}: use {' or '.join(CONVLSTM_CONFIGS)} or six numbers a,b,c,d,e,f"
            ) from None
    spec = tuple(int(v) for v in spec)
    if len(spec) != 6 or min(spec) < 1:
        raise ValueError(
            f"ConvLSTM channels {spec}: need six positive numbers (3 encoder + 3 decoder layers)"
        )
    return spec


class ConvLSTMCell(nn.Module):
    """One ConvLSTM cell: ``Conv2d(in + hidden, 4·hidden, k, padding k//2)`` gives the i, f, o, g gates."""

    def __init__(self, in_channels: int, hidden: int, kernel: int = 3):
        super().__init__()
        self.hidden = hidden
        self.conv = nn.Conv2d(
            in_channels + hidden, 4 * hidden, kernel, padding=kernel // 2, bias=True
        )

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, H, W), state (h, c) each (B, hidden, H, W) or None (zeros) → new (h, c)."""
        if state is None:
            z = x.new_zeros(x.shape[0], self.hidden, *x.shape[2:])
            state = (z, z)
        h, c = state
        i, f, o, g = torch.split(self.conv(torch.cat([x, h], dim=1)), self.hidden, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class ConvLSTMStack(nn.Module):
    """Stacked ConvLSTM cells run over a sequence (B, T, C, H, W)."""

    def __init__(self, in_channels: int, hidden: tuple[int, ...], kernel: int = 3):
        super().__init__()
        chans = (in_channels, *hidden)
        self.cells = nn.ModuleList(
            ConvLSTMCell(chans[i], chans[i + 1], kernel) for i in range(len(hidden))
        )

    def forward(self, seq: torch.Tensor, states: list | None = None) -> tuple[torch.Tensor, list]:
        """seq (B, T, C, H, W) → (last layer's h for every step (B, T, hidden[-1], H, W), states)."""
        states = list(states) if states is not None else [None] * len(self.cells)
        outs = []
        for t in range(seq.shape[1]):
            inp = seq[:, t]
            for k, cell in enumerate(self.cells):
                states[k] = cell(inp, states[k])
                inp = states[k][0]
            outs.append(inp)
        return torch.stack(outs, dim=1), states


class ConvLSTM(Forecaster):
    """ConvLSTM encoder–decoder ("ConvLSTMPredictor" of the original).

    The encoder (3 layers, ``channels[:3]``) runs over the 4 one-channel frames and gives 4 feature
    maps. Each decoder step runs the decoder ConvLSTM (3 layers, ``channels[3:]``, fresh state) over
    the current 4 feature maps; a 3×3 conv turns its last hidden state into the predicted frame.
    The next step's sequence is the last 3 maps plus the encoder's features of the next frame — the
    prediction, or the true frame under teacher forcing — computed by continuing the encoder's
    recurrent state. (The original appended the decoder's raw hidden state and so could not use
    teacher forcing although its training loop asked for it; routing every frame through the
    encoder makes teacher forcing and free-running prediction feed the same kind of input. The
    parameters are exactly the original's: ``big`` has 1,554,593.)
    """

    #: under teacher forcing every window is known, so the decoder runs over all of them in one
    #: batch (:meth:`_teacher_forced`): the same sums as step by step (False), fewer and larger
    #: convolutions (benchmarks/models.py)
    one_pass_teacher = True

    def __init__(
        self,
        patch: int = 50,
        channels: str | tuple[int, ...] = "big",
        n_in: int = 4,
        n_out: int = 4,
    ):
        super().__init__(patch, n_in, n_out)
        ch = resolve_channels(channels)
        self.channels = ch
        self.encoder = ConvLSTMStack(1, ch[:3])
        self.decoder = ConvLSTMStack(ch[2], ch[3:])
        self.head = nn.Conv2d(ch[5], 1, 3, padding=1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, 4, P, P) → (B, 4, P, P); y (B, 4, P, P) for teacher forcing in training mode."""
        teacher = self._check(x, y)
        if teacher is not None and self.one_pass_teacher:
            return self._teacher_forced(x, teacher)
        window, enc_state = self.encoder(x[:, :, None])  # (B, 4, C, P, P)
        preds = []
        for i in range(self.n_out):
            dec, _ = self.decoder(window)
            frame = self.head(dec[:, -1])  # (B, 1, P, P)
            preds.append(frame)
            if i == self.n_out - 1:
                break
            nxt = teacher[:, i : i + 1] if teacher is not None else frame
            feat, enc_state = self.encoder(nxt[:, None], enc_state)  # (B, 1, C, P, P)
            window = torch.cat([window[:, 1:], feat], dim=1)
        return torch.cat(preds, dim=1)

    def _teacher_forced(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The teacher-forced forward in two passes: the encoder over the 4 inputs and the first
        n_out − 1 targets, then the decoder over all n_out windows at once, stacked on the batch
        axis (B·n_out, 4, C, P, P). The same sums as step by step."""
        b, n = x.shape[0], self.n_in
        feats, _ = self.encoder(torch.cat([x, y[:, :-1]], dim=1)[:, :, None])  # (B, 4+3, C, P, P)
        windows = torch.stack(
            [feats[:, i : i + n] for i in range(self.n_out)]
        )  # (4, B, 4, C, P, P)
        dec, _ = self.decoder(windows.flatten(0, 1))
        frames = self.head(dec[:, -1])  # (n_out·B, 1, P, P)
        return frames.reshape(self.n_out, b, *frames.shape[-2:]).transpose(0, 1)
