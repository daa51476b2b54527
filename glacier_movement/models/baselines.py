"""Baselines without learned parameters, with the forecasters' interface (README)."""

from __future__ import annotations

import torch

from .base import Forecaster


class Persistence(Forecaster):
    """Predicts that nothing changes: every output frame is the last input frame."""

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, 4, P, P) → (B, 4, P, P), ``y`` ignored (extra climatology channels too)."""
        x = x[:, : self.n_in]
        self._check(x, None)
        return x[:, -1:].expand(-1, self.n_out, -1, -1).clone()


class LinearExtrapolation(Forecaster):
    """Continues the last change: frame t+k = x_last + k·(x_last − x_previous), clipped to [0, 1]
    (the range of masked NDSI)."""

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, 4, P, P) → (B, 4, P, P), ``y`` ignored (extra climatology channels too)."""
        x = x[:, : self.n_in]
        self._check(x, None)
        last, prev = x[:, -1:], x[:, -2:-1]
        k = torch.arange(1, self.n_out + 1, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return (last + k * (last - prev)).clamp(0.0, 1.0)
