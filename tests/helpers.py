"""Small builders shared by the tests."""

from __future__ import annotations

import numpy as np

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
