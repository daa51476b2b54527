"""U-Net (docs/models.md): the standard encoder–decoder with skips, applied one frame at a time."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import Forecaster


class DoubleConv(nn.Sequential):
    """(3×3 conv → BatchNorm → ReLU) × 2; the convs have no bias (BatchNorm has one)."""

    def __init__(self, cin: int, cout: int):
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class Up(nn.Module):
    """Transposed-conv upsampling ×2, zero padding to the skip's size, concatenation, DoubleConv."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cin // 2, 2, stride=2)
        self.conv = DoubleConv(cin, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        # Odd sizes (e.g. 25 → 12 → 24) lose a row/column on the way down: pad back to the skip.
        dy, dx = skip.shape[-2] - x.shape[-2], skip.shape[-1] - x.shape[-1]
        x = F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([skip, x], dim=1))


class UNetCore(nn.Module):
    """Image-to-image U-Net: (B, cin, H, W) → (B, cout, H, W); channels base·2^k, k = 0…depth."""

    def __init__(self, cin: int = 1, cout: int = 1, base: int = 64, depth: int = 4):
        super().__init__()
        widths = [base * 2**k for k in range(depth + 1)]
        self.inc = DoubleConv(cin, widths[0])
        self.downs = nn.ModuleList(
            nn.Sequential(nn.MaxPool2d(2), DoubleConv(widths[k], widths[k + 1]))
            for k in range(depth)
        )
        self.ups = nn.ModuleList(Up(widths[k + 1], widths[k]) for k in reversed(range(depth)))
        self.out = nn.Conv2d(widths[0], cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        h = skips.pop()
        for up in self.ups:
            h = up(h, skips.pop())
        return self.out(h)


class UNet(Forecaster):
    """U-Net forecaster: step 1 predicts from the last input frame, each later step from the
    previous frame (its own prediction, or the true frame under teacher forcing).

    Paper size (base 64, depth 4: 64-128-256-512-1024): 31,036,481 parameters. The bottleneck is
    ``P / 2^depth`` pixels wide; keep it ≥ 2 so BatchNorm works for batch size 1 (P = 50 → 3).
    """

    #: weights in channels-last order: oneDNN's NHWC convolutions run the demo U-Net's training
    #: step about 1.3x and its inference about 1.45x faster on the CPU than NCHW
    #: (benchmarks/models.py); the same sums, rounded in another order
    channels_last = True

    def __init__(
        self, patch: int = 50, base: int = 64, depth: int = 4, n_in: int = 4, n_out: int = 4
    ):
        super().__init__(patch, n_in, n_out)
        if self.patch >> depth < 2:
            raise ValueError(
                f"UNet: patch {self.patch} is too small for depth {depth} (bottleneck "
                f"{self.patch >> depth} px); use a larger patch or a smaller unet_depth"
            )
        self.net = UNetCore(1, 1, base, depth)
        if self.channels_last:
            # memory_format is a documented keyword of Module.to that its type stubs lack
            self.net.to(memory_format=torch.channels_last)  # pyright: ignore[reportCallIssue]

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, 4, P, P) → (B, 4, P, P); y (B, 4, P, P) for teacher forcing in training mode."""
        teacher = self._check(x, y)
        cur = x[:, -1:]
        preds = []
        for i in range(self.n_out):
            cur_pred = self.net(cur)
            preds.append(cur_pred)
            cur = teacher[:, i : i + 1] if teacher is not None else cur_pred
        return torch.cat(preds, dim=1)
