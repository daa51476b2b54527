"""Baselines without learned parameters, with the forecasters' interface (README).

The formulas live here once, for numpy arrays and torch tensors alike: :func:`persist` and
:func:`extrapolate` serve the torch forecasters below (the parameter-free rows of
``glacier-movement models`` and the persistence loss of a training summary) and the baselines
of the test tables and full scenes (``glacier_movement.baselines``).
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

from .base import Forecaster

#: numpy arrays or torch tensors: the formulas return what they are given.
Array = TypeVar("Array", np.ndarray, torch.Tensor)


def persist(last: Array, n_out: int) -> Array:
    """Persistence: the last input frame repeated, (B, 1, …) → (B, n_out, …)."""
    if isinstance(last, torch.Tensor):
        return last.expand(-1, n_out, *last.shape[2:]).clone()
    return np.repeat(last, n_out, axis=1)


def extrapolate(last: Array, prev: Array, n_out: int) -> Array:
    """Linear extrapolation: frame t+k = last + k·(last − prev), k = 1 … n_out, clipped to [0, 1]
    (the range of masked NDSI); ``last``, ``prev`` (B, 1, …) → (B, n_out, …)."""
    shape = (1, n_out) + (1,) * (last.ndim - 2)
    if isinstance(last, torch.Tensor):
        k = torch.arange(1, n_out + 1, dtype=last.dtype, device=last.device).view(shape)
    else:
        k = np.arange(1, n_out + 1).astype(np.float32).reshape(shape)
    # numpy and torch both keep the input's type; pyright cannot follow the mixed arithmetic
    return (last + k * (last - prev)).clip(0.0, 1.0)  # pyright: ignore[reportReturnType]


class Persistence(Forecaster):
    """Predicts that nothing changes: every output frame is the last input frame."""

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, 4, P, P) → (B, 4, P, P), ``y`` ignored (extra climatology channels too)."""
        x = x[:, : self.n_in]
        self._check(x, None)
        return persist(x[:, -1:], self.n_out)


class LinearExtrapolation(Forecaster):
    """Continues the last change: frame t+k = x_last + k·(x_last − x_previous), clipped to [0, 1]
    (the range of masked NDSI)."""

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, 4, P, P) → (B, 4, P, P), ``y`` ignored (extra climatology channels too)."""
        x = x[:, : self.n_in]
        self._check(x, None)
        return extrapolate(x[:, -1:], x[:, -2:-1], self.n_out)
