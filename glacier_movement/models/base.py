"""The interface every forecaster shares: 4 input frames in, 4 predicted frames out."""

from __future__ import annotations

import torch
from torch import nn


class Forecaster(nn.Module):
    """Base class: ``forward(x (B, n_in, P, P), y=None) -> (B, n_out, P, P)``.

    Frames are masked NDSI (0 or 0.3…1). Predictions are made one frame at a time
    (autoregressively); with ``y`` (B, n_out, P, P) given *and* the module in training mode, each
    next step is fed the ground-truth frame instead of the model's own prediction (teacher
    forcing). In evaluation mode ``y`` is ignored, so a validation loss is an honest forecast.
    """

    #: whether ``x`` must carry the climatology (the ``+clim`` variants, models/climatology.py)
    clim_input = False

    def __init__(self, patch: int, n_in: int = 4, n_out: int = 4) -> None:
        super().__init__()
        self.patch = int(patch)
        self.n_in = int(n_in)
        self.n_out = int(n_out)

    def _check(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor | None:
        """Validate shapes; return the teacher-forcing targets to use (or None)."""
        p = self.patch
        if x.ndim != 4 or tuple(x.shape[1:]) != (self.n_in, p, p):
            raise ValueError(
                f"{type(self).__name__} expects input (B, {self.n_in}, {p}, {p}), got {tuple(x.shape)}"
            )
        if y is None or not self.training:
            return None
        if y.ndim != 4 or tuple(y.shape[1:]) != (self.n_out, p, p) or y.shape[0] != x.shape[0]:
            raise ValueError(
                f"{type(self).__name__} expects targets (B, {self.n_out}, {p}, {p}), got {tuple(y.shape)}"
            )
        return y
