"""Small builders shared by the tests."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from glacier_movement import io


def frames_record(frames: np.ndarray, glacier: str) -> io.Frames:
    """``frames`` (T, H, W) masked NDSI as a frames.npz record: 3-month windows from 2013-01."""
    t, h, w = frames.shape
    return io.Frames(
        frames=frames,
        window_start=(np.datetime64("2013-01", "M") + 3 * np.arange(t)).astype("datetime64[D]"),
        window_months=3,
        n_scenes=np.ones(t, np.int64),
        interpolated=np.zeros(t, bool),
        glacier=glacier,
        epsg=32643,
        transform=(30.0, 0.0, 0.0, 0.0, -30.0, 0.0),
        roi=(0, h, 0, w),
    )


def frames(t: int = 12, h: int = 30, w: int = 40, seed: int = 0) -> np.ndarray:
    """Random masked NDSI frames (T, H, W) float32: values below 0.3 set to 0."""
    rng = np.random.default_rng(seed)
    f = rng.random((t, h, w), dtype=np.float32)
    return np.where(f >= 0.3, f, 0).astype(np.float32)


class LastFrame(nn.Module):
    """Persistence written independently of the package: repeat the last input frame."""

    def forward(self, x, y=None):
        return x[:, -1:].repeat(1, 4, 1, 1)


class Echo(nn.Module):
    """Returns its input frames as the prediction (an 'identity' forecaster); records calls."""

    def __init__(self):
        super().__init__()
        self.batch_sizes = []
        self.grad_enabled = []

    def forward(self, x, y=None):
        self.batch_sizes.append(x.shape[0])
        self.grad_enabled.append(torch.is_grad_enabled())
        return x.clone()
