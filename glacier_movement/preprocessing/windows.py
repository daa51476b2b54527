"""Seasonal windows and NDSI: window starts and labels, averaging, NDSI and the snow/ice mask,
interpolation of empty windows, the region of interest."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..config import (
    NDSI_THRESHOLD,
)  # fmt: skip
from ..errors import GlacierError

AVERAGES = ("mean", "running")
NDSI_INPUTS = ("dn", "reflectance")

_MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


# ------------------------------------------------------------------------------ windows, NDSI
def window_starts(first_year: int, last_year: int, window_months: int) -> np.ndarray:
    """First days (datetime64[D]) of the windows of ``window_months`` months, Jan first, per year."""
    _check_window_months(window_months)
    return np.array(
        [
            np.datetime64(f"{y:04d}-{m:02d}-01")
            for y in range(first_year, last_year + 1)
            for m in range(1, 13, window_months)
        ],
        dtype="datetime64[D]",
    )


def window_index(times: np.ndarray, first_year: int, window_months: int) -> np.ndarray:
    """Window of each acquisition time (int64 (N,)): (year − first_year)·(12 / window_months) + k."""
    _check_window_months(window_months)
    t = np.asarray(times).astype("datetime64[M]").astype(np.int64)  # months since 1970-01
    year, month0 = t // 12 + 1970, t % 12
    return (year - first_year) * (12 // window_months) + month0 // window_months


def window_label(start: np.datetime64, window_months: int) -> str:
    """'Jan–Mar 2013' for a 3-month window starting 2013-01-01 (one month: 'Jan 2013')."""
    # numpy's hints miss datetime64(datetime64, unit)
    m = int(np.datetime64(start, "M").astype(np.int64) % 12)  # pyright: ignore[reportCallIssue, reportArgumentType]
    y = int(np.datetime64(start, "Y").astype(np.int64) + 1970)  # pyright: ignore[reportCallIssue, reportArgumentType]
    last = _MONTHS[min(m + window_months - 1, 11)]
    return f"{_MONTHS[m]} {y}" if window_months == 1 else f"{_MONTHS[m]}–{last} {y}"


def average_windows(
    scenes: Sequence[np.ndarray] | np.ndarray,
    index: np.ndarray,
    n_windows: int,
    average: str = "mean",
    use: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Average the scenes (each (C, H, W)) that fall into each window.

    ``index`` (N,) is each scene's window (:func:`window_index`), scenes in time order; ``use`` (N,)
    bool excludes scenes. ``average="mean"`` is the arithmetic mean; ``"running"`` the original's
    fold ``acc = (acc + img) / 2`` in time order (weights late scenes more). Returns
    (windows (n_windows, C, H, W) float32, NaN where a window has no scene; counts (n_windows,)).
    """
    if average not in AVERAGES:
        raise ValueError(f"average must be one of {AVERAGES}, got {average!r}")
    index = np.asarray(index)
    use = np.ones(len(index), dtype=bool) if use is None else np.asarray(use, dtype=bool)
    shape = np.shape(scenes[0]) if len(scenes) else (2, 0, 0)
    out = np.full((n_windows, *shape), np.nan, dtype=np.float32)
    counts = np.zeros(n_windows, dtype=np.int64)
    for w in range(n_windows):
        members = np.flatnonzero((index == w) & use)
        counts[w] = len(members)
        if not len(members):
            continue
        acc = np.asarray(scenes[members[0]], dtype=np.float64).copy()
        for i in members[1:]:
            if average == "mean":
                acc += scenes[i]
            else:
                acc = (acc + scenes[i]) / 2.0
        out[w] = acc / len(members) if average == "mean" else acc
    return out, counts


def ndsi(
    green: np.ndarray,
    swir: np.ndarray,
    source: str = "dn",
    scale: float = 0.0000275,
    offset: float = -0.2,
) -> np.ndarray:
    """Normalized difference snow index (green − swir16) / (green + swir16), float32, in [−1, 1].

    ``green``/``swir`` are digital numbers. ``source="dn"`` computes it from DN as the original
    did; ``"reflectance"`` converts first (DN·scale + offset), which shifts the meaning of the 0.3
    threshold (docs/data.md). Where green + swir16 ≤ 0 (only possible for reflectance: dark pixels have
    negative reflectance) NDSI is undefined and set to 0; values are clipped to [−1, 1].
    """
    if source not in NDSI_INPUTS:
        raise ValueError(f"NDSI input must be one of {NDSI_INPUTS}, got {source!r}")
    g = np.asarray(green, dtype=np.float64)
    s = np.asarray(swir, dtype=np.float64)
    if source == "reflectance":
        g, s = g * scale + offset, s * scale + offset
    den = g + s
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den > 0, (g - s) / den, 0.0)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def snow_mask(index: np.ndarray, threshold: float = NDSI_THRESHOLD) -> np.ndarray:
    """The masked NDSI frame: the value where ``index ≥ threshold``, 0 elsewhere (NaN stays NaN)."""
    index = np.asarray(index)
    return np.where(index >= threshold, index, np.where(np.isnan(index), np.nan, 0)).astype(
        index.dtype if np.issubdtype(index.dtype, np.floating) else np.float32
    )


def interpolate_windows(
    frames: np.ndarray, have: np.ndarray, threshold: float = NDSI_THRESHOLD
) -> tuple[np.ndarray, np.ndarray]:
    """Fill the windows without data (``have`` False) of masked NDSI frames (T, H, W).

    Between two windows a < t < b with data: ``f_a + (t − a)/(b − a) · (f_b − f_a)``, thresholded
    again (values below ``threshold`` → 0); this is what the original intended (its loop mixed in
    the last window's NDSI). Leading/trailing empty windows copy the nearest window with data.
    Returns (new frames float32, interpolated flags (T,) bool). ``ValueError`` if no window has data.
    """
    have = np.asarray(have, dtype=bool)
    idx = np.flatnonzero(have)
    if not len(idx):
        raise ValueError("no window has data: nothing to interpolate from")
    out = np.array(frames, dtype=np.float32, copy=True)
    for t in np.flatnonzero(~have):
        after = idx[idx > t]
        before = idx[idx < t]
        if len(before) and len(after):
            a, b = before[-1], after[0]
            lam = (t - a) / (b - a)
            f = (1.0 - lam) * out[a].astype(np.float64) + lam * out[b].astype(np.float64)
            out[t] = np.where(f >= threshold, f, 0.0)
        else:
            out[t] = out[before[-1] if len(before) else after[0]]
    return out, ~have


def roi_window(roi: tuple[int, int, int, int], shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """The ROI (row0, row1, col0, col1) intersected with a scene grid of ``shape`` (H, W)."""
    r0, r1, c0, c1 = roi
    h, w = shape
    out = (max(r0, 0), min(r1, h), max(c0, 0), min(c1, w))
    if out[1] - out[0] < 1 or out[3] - out[2] < 1:
        raise GlacierError(
            f"the region of interest rows {r0}:{r1}, cols {c0}:{c1} lies outside the {h}×{w} scenes; "
            "give --roi inside the scene grid"
        )
    return out


def roi_transform(transform: Sequence[float], roi: tuple[int, int, int, int]) -> tuple[float, ...]:
    """Affine (a, b, c, d, e, f) of the ROI grid: origin moved to pixel (row0, col0) of ``transform``."""
    a, b, c, d, e, f = (float(v) for v in transform)
    r0, c0 = roi[0], roi[2]
    return (a, b, c + a * c0 + b * r0, d, e, f + d * c0 + e * r0)


def _check_window_months(window_months: int) -> None:
    if window_months < 1 or 12 % window_months:
        raise GlacierError(
            f"window length {window_months} months does not divide the year: use 1, 2, 3, 4, 6 or 12"
        )
