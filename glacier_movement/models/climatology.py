"""``+clim`` variants: any forecaster, given the climatology of its windows, predicts departures.

Beyond the paper (see docs/models.md). A model that sees 4 frames of one year cannot know the
multi-year mean of each pixel in the window it must predict; the climatology baseline does, and
beats the paper's models on seasonal snow. :class:`ClimatologyInput` gives the wrapped model that
knowledge the classic way: it forecasts *anomalies*. Its input carries the climatology
(``SequenceDataset(clim_input=True)``): x (B, 2·n_in + n_out, P, P) = the input frames, the
climatology of the input windows and that of the target windows. The wrapped model sees the input
anomalies (frames − their climatology), predicts the target anomalies (teacher-forced with the
true target anomalies in training), and the climatology of the target windows is added back.
"""

from __future__ import annotations

import torch

from .base import Forecaster


class ClimatologyInput(Forecaster):
    """Wraps ``inner`` (any :class:`Forecaster`): climatology in, departures from it predicted."""

    clim_input = True

    def __init__(self, inner: Forecaster) -> None:
        super().__init__(inner.patch, inner.n_in, inner.n_out)
        self.inner = inner

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, 2·n_in + n_out, P, P), y (B, n_out, P, P) or None → (B, n_out, P, P) NDSI."""
        n_in, n_out, p = self.n_in, self.n_out, self.patch
        if x.ndim != 4 or tuple(x.shape[1:]) != (2 * n_in + n_out, p, p):
            raise ValueError(
                f"{type(self.inner).__name__}+clim expects input (B, {2 * n_in + n_out}, {p}, {p}) "
                f"(frames and climatology), got {tuple(x.shape)}"
            )
        frames, clim_in, clim_out = x[:, :n_in], x[:, n_in : 2 * n_in], x[:, 2 * n_in :]
        departures = None if y is None else y - clim_out
        return self.inner(frames - clim_in, departures) + clim_out
