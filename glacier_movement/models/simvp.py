"""SimVP (Gao, Tan, Wu & Li, "SimVP: Simpler yet Better Video Prediction", CVPR 2022).

A purely convolutional forecaster and the modern reference model beside the paper's four. It
predicts all output frames in one pass, from three parts:

* **spatial encoder** — ``n_s`` Conv → GroupNorm → LeakyReLU blocks applied to every input frame
  on its own (shared weights); strides alternate 1, 2, 1, 2, … so the first block keeps the full
  resolution (its output is the decoder's skip) and the latent frame is ``P / 2^(n_s // 2)``
  pixels wide (rounded up: 50 → 25 → 13);
* **temporal translator** — the latent frames stacked along channels (``T · hid_s`` channels) go
  through ``n_t`` Inception blocks down and ``n_t`` up, UNet-style (each up block also sees the
  output of its mirror down block). An Inception block is a 1×1 bottleneck followed by parallel
  grouped convolutions with kernels 3, 5, 7 and 11 (each → GroupNorm → LeakyReLU) whose outputs
  are summed: large kernels give the wide spatial context motion needs at little cost;
* **decoder** — the mirror of the encoder with transposed convolutions for the stride-2 blocks,
  each sized back exactly to its encoder level (13 → 25 → 50, so any patch size works without
  padding or cropping); the last block also sees the encoder's first-block features (the skip),
  and a 1×1 convolution reads out one frame per time step.

The output is linear (no clamp or sigmoid), like the other trained models.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .base import Forecaster

#: Kernel sizes of the parallel branches of an Inception block (the SimVP paper's).
INCEPTION_KERNELS: tuple[int, ...] = (3, 5, 7, 11)


def _groups(requested: int, *channels: int) -> int:
    """The largest group count ≤ ``requested`` that divides every channel count (≥ 1)."""
    return math.gcd(requested, *channels)


class ConvBlock(nn.Module):
    """Conv 3×3 (stride 1 or 2) → GroupNorm → LeakyReLU(0.2); ``transpose`` upsamples ×2.

    A transposed block takes the wanted output size in ``forward`` so that an odd encoder size
    (25 → 13) is restored exactly (13 → 25), not to 26.
    """

    def __init__(self, cin: int, cout: int, stride: int = 1, transpose: bool = False):
        super().__init__()
        self.transpose = transpose and stride > 1
        if self.transpose:
            self.conv = nn.ConvTranspose2d(cin, cout, 3, stride=stride, padding=1)
        else:
            self.conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1)
        self.norm = nn.GroupNorm(_groups(2, cout), cout)
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """x (N, cin, h, w) → (N, cout, h', w'); ``size`` (h', w') for a transposed block."""
        h = self.conv(x, output_size=size) if self.transpose else self.conv(x)
        return self.act(self.norm(h))


class Inception(nn.Module):
    """1×1 bottleneck ``cin → mid``, then grouped k×k convs ``mid → cout`` for every kernel k
    (each → GroupNorm → LeakyReLU), summed: (N, cin, h, w) → (N, cout, h, w)."""

    def __init__(self, cin: int, mid: int, cout: int, groups: int = 8):
        super().__init__()
        self.bottleneck = nn.Conv2d(cin, mid, 1)
        g = _groups(groups, mid, cout)
        self.branches = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(mid, cout, k, padding=k // 2, groups=g),
                nn.GroupNorm(g, cout),
                nn.LeakyReLU(0.2, inplace=True),
            )
            for k in INCEPTION_KERNELS
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.bottleneck(x)
        out = self.branches[0](z)
        for branch in self.branches[1:]:
            out = out + branch(z)
        return out


class Translator(nn.Module):
    """UNet-like stack of Inception blocks over the stacked latent frames:
    (B, channels, h, w) → (B, channels, h, w), ``hidden`` channels inside, ``depth`` blocks down
    and ``depth`` up (the up blocks after the first see their mirror's output concatenated)."""

    def __init__(self, channels: int, hidden: int, depth: int, groups: int = 8):
        super().__init__()
        mid = max(hidden // 2, 1)
        self.down = nn.ModuleList(
            Inception(channels if i == 0 else hidden, mid, hidden, groups) for i in range(depth)
        )
        self.up = nn.ModuleList(
            Inception(hidden if i == 0 else 2 * hidden, mid, channels if i == depth - 1 else hidden, groups)
            for i in range(depth)
        )  # fmt: skip

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        skips = []
        for block in self.down:
            z = block(z)
            skips.append(z)
        skips.pop()  # the deepest output is the up path's input, not a skip
        z = self.up[0](z)
        for block in self.up[1:]:
            z = block(torch.cat([z, skips.pop()], dim=1))
        return z


class SimVP(Forecaster):
    """SimVP forecaster: x (B, 4, P, P) → (B, 4, P, P), all frames at once.

    Not autoregressive, so teacher forcing does not apply: ``y`` is accepted (and its shape
    checked in training mode) but never used. Sizes: ``hid_s`` channels of the spatial
    encoder/decoder with ``n_s`` blocks each, ``hid_t`` channels in the translator with ``n_t``
    Inception blocks down and ``n_t`` up. The SimVP paper's Moving-MNIST size (64, 256, 4, 8) is
    the paper preset. Requires as many output frames as input frames (the translator maps each
    input frame's latent channels to one output frame).
    """

    autoregressive = False  # predictions never see earlier predictions or targets

    def __init__(
        self,
        patch: int = 50,
        hid_s: int = 64,
        hid_t: int = 256,
        n_s: int = 4,
        n_t: int = 8,
        n_in: int = 4,
        n_out: int = 4,
    ):
        super().__init__(patch, n_in, n_out)
        if min(hid_s, hid_t, n_s, n_t) < 1:
            raise ValueError(
                f"SimVP sizes hid_s={hid_s}, hid_t={hid_t}, n_s={n_s}, n_t={n_t} must all be ≥ 1"
            )
        if self.n_in != self.n_out:
            raise ValueError(f"SimVP maps T frames to T frames, got {n_in} in and {n_out} out")
        strides = [2 if i % 2 else 1 for i in range(n_s)]
        self.encoder = nn.ModuleList(
            ConvBlock(1 if i == 0 else hid_s, hid_s, s) for i, s in enumerate(strides)
        )
        self.translator = Translator(self.n_in * hid_s, hid_t, n_t)
        # decoder block j mirrors encoder block n_s-1-j; the last one also gets the skip
        self.decoder = nn.ModuleList(
            ConvBlock(2 * hid_s if j == n_s - 1 else hid_s, hid_s, s, transpose=True)
            for j, s in enumerate(reversed(strides))
        )
        self.readout = nn.Conv2d(hid_s, 1, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, 4, P, P) NDSI → (B, 4, P, P); ``y`` is ignored (see the class docstring)."""
        self._check(x, y)
        b, t, p, _ = x.shape
        # every frame through the same encoder; sizes[i] = the input size of encoder block i
        skip = h = self.encoder[0](x.reshape(b * t, 1, p, p))  # (B·T, hid_s, P, P)
        sizes = [(p, p)]
        for block in self.encoder[1:]:
            sizes.append(tuple(h.shape[-2:]))
            h = block(h)
        c, hh, ww = h.shape[1:]
        h = self.translator(h.reshape(b, t * c, hh, ww)).reshape(b * t, c, hh, ww)
        last = len(self.decoder) - 1
        for j, block in enumerate(self.decoder):
            if j == last:
                h = torch.cat([h, skip], dim=1)
            h = block(h, sizes[last - j])
        return self.readout(h).reshape(b, t, p, p)
