"""``advect``: the glaciologist's free forecast — feature-tracked ice velocity, carried forward
(docs/evaluation.md).

A forecaster who knows only the frames up to the last input can still know how the ice moves:
velocity products (ITS_LIVE, GoLIVE) track surface features between images of the **same season**
one or more years apart, so that seasonal snow, which comes and goes with the year, does not pass
for motion. This module does the same on the project's frames and turns the velocity into a
forecast:

1. **Pairs.** Every pair (t − K·m, t) of frames known at forecast time (observed windows, t ≤ the
   last input), K = windows per year, m = 1 … ``max_years``.
2. **Tracking.** Each pair is cut into overlapping ``tile``×``tile`` tiles on the glacier (a tile
   is used when ≥ ``min_cover`` of it is glacier); the displacement of each tile is the peak of
   its phase correlation (normalised cross-power spectrum, Hann window, sub-pixel parabolic
   peak), all tiles of a pair in one batched FFT. ``iterations`` > 1 warps the later frame back
   by the field found so far and measures what remains (window deformation, as in PIV), which
   removes the bias of sheared tiles.
3. **Outliers.** A tile is dropped when its correlation peak is weaker than ``min_response``
   (featureless snow, clouds) or its shift reaches the tile's tracking range; the pairs' velocities
   (displacement / days between the windows' starts) are combined by their median per tile, and a
   tile that fails the normalised median test against its 3×3 neighbours (Westerweel & Scarano
   2005; threshold ``outlier``) is dropped.
4. **Dense field.** The tile velocities are spread to pixels by normalised Gaussian convolution on
   the tile grid and bilinear interpolation; glacier pixels far from any valid tile get the median
   velocity of the valid tiles.
5. **Forecast.** The last input frame, carried by velocity × days from its window's start to each
   target window's start (:func:`motion.advect`), on the glacier; the climatology the caller
   passes (the climatology baseline's) everywhere else.

Fallbacks (documented in :attr:`Advection.fallback`): no glacier pixel, no same-season pair known
at forecast time, or no tile that passes the filters → the climatology everywhere.

The glacier: the ``mask`` the caller passes (synthetic data: the true ice extent), else the pixels
that are snow/ice (NDSI ≥ 0.3, i.e. > 0 in the frames) in every known frame up to the last input
(as :func:`baselines.glacier_mask` on real data). Without a mask each pair is tracked on the pixels
that are snow/ice in both of its frames.

Shapes and units: frames (T, H, W) masked NDSI (0 below the snow/ice threshold); velocity
(2, H, W) px/day, ``[0]`` x (columns, right), ``[1]`` y (rows, down) — ``truth.npz``'s layout;
forecasts (n_out, H, W) NDSI.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import cv2
import numpy as np
from tqdm.auto import tqdm

from .errors import GlacierError
from .motion import FARNEBACK_TUNED, Truth, advect, endpoint_error, farneback
from .sequences import extract_patches

#: Tracking methods of :class:`Tracking`.
METHODS = ("phase", "farneback")


@dataclass(frozen=True)
class Tracking:
    """Settings of the feature tracking (named, validated sets: :data:`TRACKING`).

    ``method``: ``phase`` (phase correlation on tiles) or ``farneback`` (dense Farneback flow
    with the project's tuned parameters, :data:`motion.FARNEBACK_TUNED`, per-pixel median over
    the pairs, then a 5×5 median filter); ``max_years`` the largest m of the same-season pairs
    (t − K·m, t); ``separations`` other pair separations in windows instead (e.g. (1, 2):
    adjacent windows and two apart; not the same season, so seasonal change enters the
    tracking); ``tile`` side of the correlation tiles (px; a shift must stay below
    ``tile``/2 − 1); ``step`` tile spacing (px); ``min_cover`` the glacier fraction a tile
    needs; ``min_response`` the weakest phase-correlation peak kept (1 = a perfect shift; two
    unrelated smooth textures peak at 0.12 (median) and 0.16 (99th percentile) on 32 px tiles,
    0.14 and 0.22 on 24 px tiles); ``outlier`` the normalised-median-test threshold;
    ``iterations`` tracking passes per pair (window deformation); ``smooth`` the Gaussian σ
    (tiles) that spreads tile velocities to pixels.
    """

    method: str = "phase"
    max_years: int = 1
    separations: tuple[int, ...] = ()
    tile: int = 32
    step: int = 8
    min_cover: float = 0.5
    min_response: float = 0.2
    outlier: float = 2.0
    iterations: int = 2
    smooth: float = 1.0

    def __post_init__(self) -> None:
        if self.tile < 8 or self.tile % 2:
            raise GlacierError(
                f"tracking tile must be an even number of pixels ≥ 8, got {self.tile}"
            )
        if not 1 <= self.step <= self.tile:
            raise GlacierError(f"tracking step must lie in 1 … tile ({self.tile}), got {self.step}")
        if self.method not in METHODS:
            raise GlacierError(
                f"unknown tracking method {self.method!r}: choose one of {', '.join(METHODS)}"
            )
        if any(k < 1 for k in self.separations):
            raise GlacierError(f"pair separations must be ≥ 1 window, got {self.separations}")
        if self.max_years < 1:
            raise GlacierError(f"max_years must be at least 1, got {self.max_years}")
        if not 0 < self.min_cover <= 1:
            raise GlacierError(f"min_cover must lie in (0, 1], got {self.min_cover}")
        if self.iterations < 1:
            raise GlacierError(f"tracking iterations must be at least 1, got {self.iterations}")


#: Named tracking settings. ``same-season``: the pairs velocity products use (t − K, t), phase
#: correlation on 32 px tiles. ``adjacent``: pairs one and two windows apart on 24 px tiles every
#: 4 px (glacier cover ≥ 0.3, correlation peak ≥ 0.3) — chosen on the validation starts of the
#: demo-size synthetic Parvati, motion regime, where the ice texture (ogives) repeats after one
#: year's travel and blinds same-season pairs (docs/evaluation.md).
TRACKING: dict[str, Tracking] = {
    "same-season": Tracking(),
    "adjacent": Tracking(separations=(1, 2), tile=24, step=4, min_cover=0.3, min_response=0.3),
}
#: The setting the ``advect`` baseline uses: the one chosen on validation (above).
DEFAULT_TRACKING = "adjacent"


@dataclass
class Velocity:
    """A tracked velocity field: ``velocity`` float32 (2, H, W) px/day ([0] x, [1] y; 0 off the
    glacier), ``mask`` bool (H, W) the glacier it covers, ``pairs`` the (earlier, later) frame
    indices tracked, ``tiles`` the number of tiles (Farneback: pixels) that passed the filters
    (0 = no estimate)."""

    velocity: np.ndarray
    mask: np.ndarray
    pairs: list[tuple[int, int]] = field(default_factory=list)
    tiles: int = 0


@dataclass
class Advection:
    """The ``advect`` forecast of one start: ``forecast`` float32 (n_out, H, W) NDSI, the
    ``velocity`` it used, ``days`` (n_out,) from the last input's window start to each target's,
    and ``fallback``: "" when advected, else why it is the climatology everywhere."""

    forecast: np.ndarray
    velocity: Velocity
    days: np.ndarray
    fallback: str = ""


# ---------------------------------------------------------------------------------- tracking
def pair_separations(s: Tracking, per_year: int) -> tuple[int, ...]:
    """Separations (windows) of the tracked pairs: ``s.separations``, else the same season
    K·m for m = 1 … ``s.max_years`` (K = ``per_year``)."""
    return s.separations or tuple(per_year * m for m in range(1, s.max_years + 1))


def tracking_pairs(
    known: np.ndarray, last: int, separations: tuple[int, ...]
) -> list[tuple[int, int]]:
    """Frame pairs (t − k, t) for every k in ``separations`` (windows) with both frames
    ``known`` ((T,) bool) and t ≤ ``last``. In time order of t, then k."""
    known = np.asarray(known, dtype=bool)
    t = np.arange(min(int(last), known.size - 1) + 1)
    pairs = []
    for later in t[known[t]]:
        for k in separations:
            earlier = later - k
            if earlier >= 0 and known[earlier]:
                pairs.append((int(earlier), int(later)))
    return pairs


def tile_origins(shape: tuple[int, int], tile: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-left rows (ny,) and columns (nx,) of the ``tile``×``tile`` tiles every ``step`` px that
    fit in ``shape`` (H, W)."""
    h, w = shape
    if h < tile or w < tile:
        raise GlacierError(f"frames of {h}×{w} px are smaller than one {tile}×{tile} tracking tile")
    return np.arange(0, h - tile + 1, step), np.arange(0, w - tile + 1, step)


def _tiles(img: np.ndarray, rows: np.ndarray, cols: np.ndarray, tile: int) -> np.ndarray:
    """(H, W) → (ny, nx, tile, tile) view of the tiles at ``rows`` × ``cols``."""
    view = np.lib.stride_tricks.sliding_window_view(img, (tile, tile))
    return view[rows[:, None], cols[None, :]]


def phase_correlate(
    a: np.ndarray, b: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Shift of ``b`` against ``a`` in each tile by phase correlation, batched.

    ``a``, ``b``, ``weight`` (..., P, P); ``weight`` ≥ 0 (glacier mask × window) tapers each tile
    after its weighted mean is removed. Returns ``shift`` (..., 2) px ([0] x, [1] y) such that
    b(x) ≈ a(x − shift), sub-pixel by a parabola through the peak and its neighbours, within
    (−P/2, P/2); and ``response`` (...) the peak height of the inverse normalised cross-power
    spectrum (1 for an exact circular shift).
    """
    p = a.shape[-1]
    wsum = np.maximum(weight.sum(axis=(-2, -1), keepdims=True), 1e-12)

    def prep(x: np.ndarray) -> np.ndarray:
        mean = (x * weight).sum(axis=(-2, -1), keepdims=True) / wsum
        return (x - mean) * weight

    fa, fb = np.fft.fft2(prep(a)), np.fft.fft2(prep(b))
    cross = np.conj(fa) * fb
    r = np.fft.ifft2(cross / np.maximum(np.abs(cross), 1e-12)).real  # (..., P, P)
    flat = r.reshape(*r.shape[:-2], p * p)
    peak = flat.argmax(axis=-1)
    iy, ix = np.divmod(peak, p)
    response = np.take_along_axis(flat, peak[..., None], axis=-1)[..., 0]

    def sub(i_prev, i_next, along: str) -> np.ndarray:
        """Parabolic sub-pixel offset of the peak along one axis (neighbours wrap around)."""
        if along == "y":
            lo = np.take_along_axis(flat, (i_prev * p + ix)[..., None], axis=-1)[..., 0]
            hi = np.take_along_axis(flat, (i_next * p + ix)[..., None], axis=-1)[..., 0]
        else:
            lo = np.take_along_axis(flat, (iy * p + i_prev)[..., None], axis=-1)[..., 0]
            hi = np.take_along_axis(flat, (iy * p + i_next)[..., None], axis=-1)[..., 0]
        den = lo - 2 * response + hi
        with np.errstate(divide="ignore", invalid="ignore"):
            off = np.where(den < 0, 0.5 * (lo - hi) / den, 0.0)
        return np.clip(off, -0.5, 0.5)

    dy = iy + sub((iy - 1) % p, (iy + 1) % p, "y")
    dx = ix + sub((ix - 1) % p, (ix + 1) % p, "x")
    dx = np.where(dx >= p / 2, dx - p, dx)
    dy = np.where(dy >= p / 2, dy - p, dy)
    return np.stack([dx, dy], axis=-1), response


def _hann(p: int) -> np.ndarray:
    w = np.hanning(p + 2)[1:-1]
    return np.outer(w, w)


def _densify(
    grid: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    tile: int,
    shape: tuple[int, int],
    sigma: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Tile-centre values (ny, nx, C) with NaN gaps → pixel field (C, H, W) and support (H, W).

    NaN tiles are filled by normalised Gaussian convolution (σ in tiles) over the valid ones; the
    tile grid is then interpolated bilinearly to every pixel (tile centres at origin + tile/2,
    edges replicated). ``support`` is the interpolated weight of valid tiles (0 = none near).
    """
    valid = np.isfinite(grid[..., 0]).astype(np.float32)
    vals = np.nan_to_num(grid).astype(np.float32)
    if sigma > 0:
        k = int(np.ceil(3 * sigma)) * 2 + 1

        def blur(x: np.ndarray) -> np.ndarray:
            return cv2.GaussianBlur(x, (k, k), sigma, borderType=cv2.BORDER_CONSTANT)

        wsum = blur(valid)
        num = np.stack([blur(vals[..., c] * valid) for c in range(vals.shape[-1])], axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            filled = np.where(wsum[..., None] > 1e-3, num / wsum[..., None], 0.0)
        filled = np.where(valid[..., None] > 0, vals, filled).astype(np.float32)
        support = np.maximum(valid, np.minimum(wsum / max(wsum.max(), 1e-12), 1.0)).astype(
            np.float32
        )
        support = np.where(wsum > 1e-3, support, 0).astype(np.float32)
    else:
        filled, support = vals, valid
    h, w = shape
    step_r = rows[1] - rows[0] if rows.size > 1 else 1
    step_c = cols[1] - cols[0] if cols.size > 1 else 1
    yy = (np.arange(h, dtype=np.float32) - rows[0] - tile / 2 + 0.5) / step_r
    xx = (np.arange(w, dtype=np.float32) - cols[0] - tile / 2 + 0.5) / step_c
    mx, my = (np.ascontiguousarray(g, dtype=np.float32) for g in np.meshgrid(xx, yy))
    out = np.stack(
        [
            cv2.remap(
                np.ascontiguousarray(filled[..., c]),
                mx,
                my,
                cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REPLICATE,
            )
            for c in range(filled.shape[-1])
        ]
    )
    sup = cv2.remap(support, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out, sup


def track_pair(
    a: np.ndarray, b: np.ndarray, mask: np.ndarray, s: Tracking = Tracking()
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Displacement of every tile from frame ``a`` to frame ``b`` (both (H, W) NDSI).

    ``mask`` (H, W) bool: the pixels tracked. Returns the tile origins ``rows`` (ny,), ``cols``
    (nx,) and ``shift`` (ny, nx, 2) px ([0] x, [1] y; b(x) ≈ a(x − shift)), NaN where a tile has
    too little glacier, too weak a correlation peak, or a shift at the edge of its range.
    """
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    rows, cols = tile_origins(a.shape, s.tile, s.step)
    m = np.asarray(mask, dtype=np.float32)
    cover = _tiles(m, rows, cols, s.tile).mean(axis=(-2, -1))
    use = cover >= s.min_cover
    shift = np.full((rows.size, cols.size, 2), np.nan)
    if not use.any():
        return rows, cols, shift
    weight = _tiles(m, rows, cols, s.tile)[use] * _hann(s.tile)
    ta = _tiles(a, rows, cols, s.tile)[use].astype(np.float64)
    total = np.zeros((int(use.sum()), 2))
    h, w = a.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    warped = b
    for it in range(s.iterations):
        tb = _tiles(warped, rows, cols, s.tile)[use].astype(np.float64)
        d, response = phase_correlate(ta, tb, weight)
        total = total + d
        if it == s.iterations - 1:
            break
        grid = np.full((rows.size, cols.size, 2), np.nan)
        grid[use] = total
        dense, _ = _densify(grid, rows, cols, s.tile, a.shape, s.smooth)
        # b warped back by the field so far: what remains is the residual shift
        warped = cv2.remap(
            b, xx + dense[0], yy + dense[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
    edge = s.tile / 2 - 1
    ok = np.asarray((response >= s.min_response) & (np.abs(total) < edge).all(axis=-1))
    shift[use] = np.where(ok[:, None], total, np.nan)
    return rows, cols, shift


def median_test(grid: np.ndarray, threshold: float, eps: float = 0.1) -> np.ndarray:
    """Normalised median test (Westerweel & Scarano 2005) of a vector field on the tile grid.

    ``grid`` (ny, nx, 2) with NaN gaps; a tile is kept when, for both components,
    |v − median of its valid 3×3 neighbours| / (median of their |v_i − median| + ``eps``) ≤
    ``threshold``. ``eps`` is in the field's units. Tiles without valid neighbours are kept.
    Returns bool (ny, nx).
    """
    padded = np.pad(grid, ((1, 1), (1, 1), (0, 0)), constant_values=np.nan)
    nb = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(0, 1))  # (ny, nx, 2, 3, 3)
    nb = nb.reshape(*nb.shape[:3], 9)
    nb = np.delete(nb, 4, axis=-1)  # the centre itself is not its own neighbour
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN neighbourhoods
        med = np.nanmedian(nb, axis=-1)
        spread = np.nanmedian(np.abs(nb - med[..., None]), axis=-1)
    resid = np.abs(grid - med) / (spread + eps)
    keep = ~(resid > threshold).any(axis=-1)  # NaN comparisons are False: no neighbours → keep
    return np.asarray(keep & np.isfinite(grid).all(axis=-1), dtype=bool)


def estimate_velocity(
    frames: np.ndarray,
    window_start: np.ndarray,
    known: np.ndarray,
    last: int,
    per_year: int,
    mask: np.ndarray | None = None,
    s: Tracking | None = None,
    cache: dict | None = None,
) -> Velocity:
    """Ice velocity (px/day) tracked between pairs of frames known at forecast time.

    ``frames`` (T, H, W) NDSI; ``window_start`` (T,) datetime64; ``known`` (T,) bool: frames the
    forecaster may use (observed windows); only frames ≤ ``last`` are used; ``per_year`` windows
    per year; ``mask`` (H, W) bool glacier pixels or None (see the module's docstring). A velocity
    of zero tiles (``tiles == 0``) means no estimate. ``s`` defaults to
    ``TRACKING[DEFAULT_TRACKING]``. ``cache``: a dict that keeps each pair's
    tracking for later calls on the same frames, mask and settings (forecasts of successive
    starts share most pairs).
    """
    s = TRACKING[DEFAULT_TRACKING] if s is None else s
    frames = np.asarray(frames, dtype=np.float32)
    t, h, w = frames.shape
    known = np.asarray(known, dtype=bool) & (np.arange(t) <= last)
    glacier = default_mask(frames, known) if mask is None else np.asarray(mask, dtype=bool)
    pairs = tracking_pairs(known, last, pair_separations(s, per_year))
    zero = Velocity(np.zeros((2, h, w), np.float32), glacier, pairs, 0)
    if not pairs or not glacier.any():
        return zero
    days_all = np.asarray(window_start).astype("datetime64[D]").astype(np.int64)
    if s.method == "farneback":
        return _farneback_velocity(frames, days_all, pairs, glacier, mask is None, cache)
    cache = {} if cache is None else cache
    rows, cols = tile_origins((h, w), s.tile, s.step)
    for i, j in pairs:
        if (i, j) not in cache:
            track = glacier if mask is not None else (frames[i] > 0) & (frames[j] > 0)
            shift = track_pair(frames[i], frames[j], track, s)[2]
            cache[i, j] = shift / float(days_all[j] - days_all[i])
    stack = np.stack([cache[p] for p in pairs])  # (pairs, ny, nx, 2) px/day
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # tiles no pair could track
        grid = np.nanmedian(stack, axis=0)
    # the median test's eps: 0.1 px over the pairs' typical separation, in px/day
    sep = float(np.median([days_all[j] - days_all[i] for i, j in pairs]))
    keep = median_test(grid, s.outlier, eps=0.1 / sep)
    grid = np.where(keep[..., None], grid, np.nan)
    n_tiles = int(keep.sum())
    if n_tiles == 0:
        return zero
    dense, support = _densify(grid, rows, cols, s.tile, (h, w), s.smooth)
    fill = np.nanmedian(grid.reshape(-1, 2), axis=0)
    dense = np.where(support[None] > 1e-3, dense, fill[:, None, None])
    vel = np.where(glacier[None], dense, 0).astype(np.float32)
    return Velocity(vel, glacier, pairs, n_tiles)


def _farneback_velocity(
    frames: np.ndarray,
    days: np.ndarray,
    pairs: list[tuple[int, int]],
    glacier: np.ndarray,
    snow_only: bool,
    cache: dict | None = None,
) -> Velocity:
    """Velocity of :func:`estimate_velocity` by tuned Farneback: each pair's flow / days, NaN off
    the tracked pixels (``glacier``; with ``snow_only`` the pixels snow/ice in both frames), the
    per-pixel median over the pairs, a 5×5 median filter against outliers, 0 off the glacier."""
    h, w = glacier.shape
    cache = {} if cache is None else cache
    for i, j in pairs:
        if (i, j) not in cache:
            flow = farneback(frames[i], frames[j], **FARNEBACK_TUNED) / float(days[j] - days[i])
            track = (frames[i] > 0) & (frames[j] > 0) if snow_only else glacier
            cache[i, j] = np.where(track[None], flow, np.nan).astype(np.float32)
    stack = np.stack([cache[p] for p in pairs])  # (pairs, 2, H, W) px/day
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # pixels no pair tracked
        med = np.nanmedian(stack, axis=0)
    tracked = np.isfinite(med[0]) & glacier
    if not tracked.any():
        return Velocity(np.zeros((2, h, w), np.float32), glacier, pairs, 0)
    fill = np.median(med[:, tracked], axis=1)
    med = np.where(tracked[None], med, fill[:, None, None]).astype(np.float32)
    med = np.stack([cv2.medianBlur(np.ascontiguousarray(c), 5) for c in med])
    vel = np.where(glacier[None], med, 0).astype(np.float32)
    return Velocity(vel, glacier, pairs, int(tracked.sum()))


def default_mask(frames: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Glacier pixels when none are given: snow/ice (> 0) in every ``known`` frame, (H, W) bool;
    all False when no frame is known."""
    known = np.asarray(known, dtype=bool)
    if not known.any():
        return np.zeros(frames.shape[1:], dtype=bool)
    return np.asarray((np.asarray(frames)[known] > 0).all(axis=0), dtype=bool)


# ---------------------------------------------------------------------------------- forecast
def target_days(window_start: np.ndarray, last: int, window_months: int, n_out: int) -> np.ndarray:
    """Days from the last input's window start to each of the ``n_out`` next windows' starts
    (calendar months: window k starts k·``window_months`` months later), (n_out,) float."""
    first = np.asarray(window_start).astype("datetime64[D]")[last]
    month = first.astype("datetime64[M]")
    offset = first - month.astype("datetime64[D]")  # day within the month (0 for window starts)
    steps = np.arange(1, n_out + 1) * int(window_months)
    starts = (month + steps).astype("datetime64[D]") + offset
    return (starts - first).astype(np.float64)


def advect_forecast(
    frames: np.ndarray,
    window_start: np.ndarray,
    window_months: int,
    known: np.ndarray,
    last: int,
    climatology: np.ndarray,
    mask: np.ndarray | None = None,
    s: Tracking | None = None,
    cache: dict | None = None,
) -> Advection:
    """The ``advect`` forecast of the windows after frame ``last`` (the last input).

    ``frames`` (T, H, W) NDSI, ``window_start`` (T,), ``window_months`` the window length;
    ``known`` (T,) bool the frames the forecaster may use (e.g. observed and before the first
    test target; frames after ``last`` are never used); ``climatology`` (n_out, H, W) the
    climatology baseline's forecast of the target windows (``baselines.Reference.clim[last+1 :
    last+1+n_out]``); ``mask`` (H, W) glacier pixels or None. Returns the forecast
    (n_out, H, W): the last input advected by velocity × days on the glacier, the climatology
    elsewhere — or the climatology everywhere with the reason in ``fallback``. ``cache``: see
    :func:`estimate_velocity`.
    """
    frames = np.asarray(frames, dtype=np.float32)
    clim = np.asarray(climatology, dtype=np.float32)
    n_out = clim.shape[0]
    if clim.ndim != 3 or clim.shape[1:] != frames.shape[1:]:
        raise GlacierError(
            f"climatology {clim.shape} does not fit frames {frames.shape}: need (n_out, H, W)"
        )
    if not 0 <= last < frames.shape[0]:
        raise GlacierError(f"last input frame {last} is outside 0…{frames.shape[0] - 1}")
    per_year = 12 // int(window_months)
    vel = estimate_velocity(frames, window_start, known, last, per_year, mask, s, cache)
    days = target_days(window_start, last, window_months, n_out)
    if not vel.mask.any():
        return Advection(clim.copy(), vel, days, "no glacier pixel")
    if not vel.pairs:
        return Advection(
            clim.copy(), vel, days, "no pair of frames to track known at forecast time"
        )
    if vel.tiles == 0:
        return Advection(clim.copy(), vel, days, "no tile passed the tracking filters")
    base = frames[last]
    out = np.empty_like(clim)
    for k in range(n_out):
        moved = advect(base, vel.velocity * np.float32(days[k]))
        out[k] = np.where(vel.mask, moved, clim[k])
    return Advection(out, vel, days)


def scene_forecasts(
    frames: np.ndarray,
    window_start: np.ndarray,
    window_months: int,
    known: np.ndarray,
    clim: np.ndarray,
    starts: np.ndarray,
    mask: np.ndarray | None = None,
    n_in: int = 4,
    n_out: int = 4,
    s: Tracking | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, list[Advection]]:
    """``advect`` forecasts of whole frames for sequences starting at ``starts`` (B,).

    ``clim`` (T, H, W) the climatology of every frame's window (``baselines.Reference.clim``);
    ``known`` (T,) the frames usable at all (e.g. ``Reference.fit``: observed, before the first
    test target, the frames the climatology baseline is fitted on); each start also uses only
    frames up to its last input. Pairs shared by several starts are tracked once. Returns
    (B, n_out, H, W) NDSI and the per-start :class:`Advection` (velocity, fallback).
    """
    out, runs = [], []
    cache: dict = {}
    for start in tqdm(
        np.asarray(starts, dtype=np.int64), desc="advect", unit="start", disable=not progress
    ):
        last = int(start) + n_in - 1
        a = advect_forecast(
            frames, window_start, window_months, known, last, clim[last + 1 : last + 1 + n_out],
            mask, s, cache,
        )  # fmt: skip
        out.append(a.forecast)
        runs.append(a)
    return np.stack(out), runs


def sequence_forecasts(
    dataset,
    ref,
    window_start: np.ndarray,
    window_months: int,
    indices: np.ndarray,
    mask: np.ndarray | None = None,
    s: Tracking | None = None,
) -> np.ndarray:
    """``advect`` forecasts of patch sequences, (B,) indices → (B, n_out, P, P) NDSI.

    ``dataset``: a :class:`~glacier_movement.sequences.SequenceDataset` (``position``, ``patch``,
    ``stride``); ``ref``: the glacier's :class:`~glacier_movement.baselines.Reference` (its
    ``frames``, ``fit`` — the frames the forecaster may track —, ``clim``, ``n_in``, ``n_out``);
    ``window_start``, ``window_months`` the frames' windows. The whole frame is forecast once per
    distinct start (:func:`scene_forecasts`) and each sequence takes its patch of it, so a patch
    is advected with the motion of its surroundings. ``s`` defaults to
    ``TRACKING[DEFAULT_TRACKING]``.
    """
    s = TRACKING[DEFAULT_TRACKING] if s is None else s
    start, row, col = dataset.position(np.asarray(indices, dtype=np.int64))
    unique, which = np.unique(start, return_inverse=True)
    scenes, _ = scene_forecasts(
        ref.frames, window_start, window_months, ref.fit, ref.clim, unique, mask, ref.n_in,
        ref.n_out, s,
    )  # fmt: skip
    view = extract_patches(scenes, dataset.patch, dataset.stride)  # (U, n_out, nR, nC, P, P)
    # advanced indices around a slice: the sequence axis comes first, (B, n_out, P, P)
    return np.ascontiguousarray(view[which.reshape(-1), :, row, col], dtype=np.float32)


# ---------------------------------------------------------------------------- against the truth
def velocity_error(velocity: np.ndarray, truth: Truth, window_days: float) -> dict[str, float]:
    """Endpoint error of a velocity field (2, H, W) px/day against the truth on its glacier pixels.

    Returns ``epe_px_day`` (mean ‖v − v_true‖, px/day), ``epe_px_window`` (the same × the mean
    window length ``window_days``: px per window), ``true_px_day`` (mean true speed) and
    ``zero_epe_px_window`` (the error of no motion, px per window).
    """
    v = np.asarray(velocity, dtype=np.float64)
    epe = float(endpoint_error(v, truth.velocity, truth.mask))
    speed = float(endpoint_error(np.zeros_like(v), truth.velocity, truth.mask))
    return {
        "epe_px_day": epe,
        "epe_px_window": epe * window_days,
        "true_px_day": speed,
        "zero_epe_px_window": speed * window_days,
    }
