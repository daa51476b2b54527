"""Optical flow of glacier snow/ice frames and its endpoint error against known motion (docs/evaluation.md, 3).

Dense Farneback flow (``cv2.calcOpticalFlowFarneback``, the original's parameters) between
consecutive frames (re-thresholded at NDSI 0.3 first, as the original). Frames are scaled from
NDSI 0–1 to 0–255 (uint8) first: on 0–1 floats Farneback returns almost no flow (README) — the
original passed 0–1 images.

On synthetic data the true motion is known (``truth.npz``: velocity in px/day on the raw grid),
so the flow gets a number the paper could not give: the **endpoint error** (EPE), the mean
length of (estimated − true displacement) over the glacier, in pixels per window. Persistence
(no change) has zero flow, so its EPE is the mean true displacement. The motion share says how
much of the frames' change the known motion explains. The ``flow`` stage (evaluation/flow.py) and the
motion scores of ``test`` use this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from . import config
from .errors import DataError, GlacierError
from .io import load_npz

#: Farneback parameters of the original ``opticalFlow.py`` (pyr_scale, levels, winsize,
#: iterations, poly_n, poly_sigma, flags).
FARNEBACK = {
    "pyr_scale": 0.5,
    "levels": 6,
    "winsize": 60,
    "iterations": 10,
    "poly_n": 5,
    "poly_sigma": 1.1,
    "flags": 0,
}
#: A tuned setting for window means of glacier frames (beyond the paper): the original's with one
#: pyramid level instead of 6. Banded ice texture (ogives a year's travel apart) aliases on coarse
#: levels, where the original's flow of the motion-regime frames ends up worse than no flow.
#: Chosen on training frames only: the synthetic Parvati, motion regime, 160×160, seed 0, windows
#: of 2013–2018 (EPE 0.72 px per window against zero flow's 2.24; the original's 5.25); grid and
#: numbers in docs/synthetic.md.
FARNEBACK_TUNED = FARNEBACK | {"levels": 1}
#: The named Farneback settings: ``paper`` (the original) and ``tuned``.
FARNEBACK_SETTINGS = {"paper": FARNEBACK, "tuned": FARNEBACK_TUNED}
#: Predictions are re-thresholded at the NDSI snow/ice threshold before flow (the original).
THRESHOLD = config.NDSI_THRESHOLD
#: Quiver arrows every this many pixels (the original's gridsize).
QUIVER_GRID = 10


def threshold(frames: np.ndarray, value: float = THRESHOLD) -> np.ndarray:
    """Keep values ≥ ``value``, set the rest to 0 (the frames' own masking), any shape."""
    frames = np.asarray(frames, dtype=np.float32)
    return np.where(frames >= value, frames, np.float32(0))


def to_uint8(frame: np.ndarray) -> np.ndarray:
    """NDSI 0–1 → uint8 0–255 (clipped, rounded): the same fixed scale for every frame, so
    brightness changes between frames stay brightness changes."""
    return np.rint(np.clip(np.asarray(frame, dtype=np.float32), 0.0, 1.0) * 255).astype(np.uint8)


def farneback(prev: np.ndarray, nxt: np.ndarray, **params) -> np.ndarray:
    """Dense flow from ``prev`` to ``nxt`` (both (H, W) NDSI 0–1), in pixels.

    Returns float32 (2, H, W): ``[0]`` x (columns, right), ``[1]`` y (rows, down) — the layout of
    ``truth.npz``'s velocity — such that ``prev[r, c] ≈ nxt[r + flow[1], c + flow[0]]``.
    ``params`` override :data:`FARNEBACK`.
    """
    p = FARNEBACK | params
    # OpenCV allocates the output flow when given None; its type stubs do not allow None
    flow = cv2.calcOpticalFlowFarneback(  # pyright: ignore[reportCallIssue]
        to_uint8(prev),
        to_uint8(nxt),
        None,  # pyright: ignore[reportArgumentType]
        p["pyr_scale"],
        p["levels"],
        p["winsize"],
        p["iterations"],
        p["poly_n"],
        p["poly_sigma"],
        p["flags"],
    )
    return np.ascontiguousarray(flow.transpose(2, 0, 1))


def sequence_flow(frames: np.ndarray, **params) -> np.ndarray:
    """Flow between each pair of consecutive frames, (T, H, W) → float32 (T−1, 2, H, W) pixels."""
    frames = np.asarray(frames)
    if frames.ndim != 3 or frames.shape[0] < 2:
        raise GlacierError(f"optical flow needs (T >= 2, H, W) frames, got shape {frames.shape}")
    return np.stack(
        [farneback(a, b, **params) for a, b in zip(frames[:-1], frames[1:], strict=True)]
    )


def endpoint_error(
    flow: np.ndarray, true: np.ndarray, mask: np.ndarray | None = None
) -> np.ndarray:
    """Mean endpoint error ‖flow − true‖ (pixels) over ``mask``.

    ``flow``, ``true``: (..., 2, H, W) displacements in pixels; ``mask``: bool (H, W) (None = all
    pixels). Returns (...) — one number per flow field.
    """
    flow, true = np.asarray(flow, dtype=np.float64), np.asarray(true, dtype=np.float64)
    flow, true = np.broadcast_arrays(flow, true)
    err = np.hypot(flow[..., 0, :, :] - true[..., 0, :, :], flow[..., 1, :, :] - true[..., 1, :, :])
    if mask is None:
        return err.mean(axis=(-2, -1))
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        raise DataError(
            "the glacier mask holds no pixel inside the frames: check truth.npz and the ROI"
        )
    return err[..., mask].mean(axis=-1)


# -------------------------------------------------------------------------------- motion share
def advect(frame: np.ndarray, displacement: np.ndarray) -> np.ndarray:
    """``frame`` (H, W) carried along ``displacement`` (2, H, W) px ([0] x, [1] y): the value at x
    is the frame's at x − d(x) (bilinear; edges replicated). Exact to first order for smooth,
    steady motion of a few pixels, as the glacier's is."""
    h, w = frame.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.asarray(displacement, dtype=np.float32)
    return cv2.remap(
        np.asarray(frame, dtype=np.float32),
        xx - d[0],
        yy - d[1],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


def motion_share_terms(
    prev: np.ndarray, nxt: np.ndarray, displacement: np.ndarray, mask: np.ndarray
) -> tuple[float, float, int]:
    """Sums of squared errors over ``mask`` of persistence (``prev`` for ``nxt``) and of the
    advected previous frame, and the pixel count, for one pair of (H, W) frames; pixels that are
    NaN in either frame are left out. :func:`motion_share` pools them over pairs."""
    moved = advect(np.nan_to_num(prev), displacement)
    ok = np.asarray(mask, dtype=bool) & np.isfinite(prev) & np.isfinite(nxt)
    a, b, m = np.asarray(prev, np.float64)[ok], np.asarray(nxt, np.float64)[ok], moved[ok]
    return float(np.sum((b - a) ** 2)), float(np.sum((b - m) ** 2)), int(ok.sum())


def share_from_terms(sse_persist: float, sse_advected: float) -> float:
    """1 − SSE(advected) / SSE(persistence); NaN when the frames never change."""
    return float(1.0 - sse_advected / sse_persist) if sse_persist > 0 else float("nan")


def motion_share(frames: np.ndarray, displacement: np.ndarray, mask: np.ndarray) -> float:
    """How much of the frame-to-frame change ice motion explains, pooled over consecutive pairs:
    1 − MSE(previous frame advected by the true displacement, frame) / MSE(previous frame, frame)
    over the ``mask`` (glacier) pixels.

    ``frames`` (T, H, W) NDSI; ``displacement`` (T−1, 2, H, W) px (e.g.
    :meth:`Truth.displacement` of :func:`window_days`); ``mask`` bool (H, W). 1 = the change is
    all motion, 0 = motion explains none of it (negative: the advection adds error).
    """
    frames = np.asarray(frames)
    if frames.ndim != 3 or frames.shape[0] < 2:
        raise GlacierError(f"motion share needs (T >= 2, H, W) frames, got shape {frames.shape}")
    disp = np.asarray(displacement)
    if disp.shape != (frames.shape[0] - 1, 2, *frames.shape[1:]):
        raise GlacierError(
            f"displacement {disp.shape} does not fit frames {frames.shape}: need (T-1, 2, H, W)"
        )
    persist = advected = 0.0
    for k in range(frames.shape[0] - 1):
        p, a, _ = motion_share_terms(frames[k], frames[k + 1], disp[k], mask)
        persist, advected = persist + p, advected + a
    return share_from_terms(persist, advected)


@dataclass
class Truth:
    """Known motion on the frames' grid: ``velocity`` float32 (2, H, W) px/day ([0] x, [1] y),
    ``mask`` bool (H, W) glacier ice."""

    velocity: np.ndarray
    mask: np.ndarray

    def displacement(self, days: np.ndarray) -> np.ndarray:
        """True displacement in pixels over windows of ``days`` (K,): (K, 2, H, W)."""
        days = np.asarray(days, dtype=np.float64)
        return (days[:, None, None, None] * self.velocity[None]).astype(np.float32)


def load_truth(path: Path, roi: tuple[int, int, int, int], shape: tuple[int, int]) -> Truth:
    """Read ``truth.npz`` and crop it to the frames: frame pixel (r, c) is raw (r + roi[0], c + roi[2])."""
    f = load_npz(
        path, {"velocity": "true velocity (2, H, W), px/day", "glacier_mask": "ice extent (H, W)"}
    )
    vel, mask = f["velocity"], f["glacier_mask"]
    r0, c0 = roi[0], roi[2]
    h, w = shape
    if vel.ndim != 3 or vel.shape[0] != 2 or mask.shape != vel.shape[1:]:
        raise DataError(
            f"{path}: velocity {vel.shape} / glacier_mask {mask.shape} are not (2, H, W) / (H, W)"
        )
    if r0 + h > vel.shape[1] or c0 + w > vel.shape[2]:
        raise DataError(
            f"{path}: its grid {vel.shape[1:]} does not hold the frames' ROI rows {r0}–{r0 + h}, "
            f"cols {c0}–{c0 + w}: synthesize and preprocess the glacier again"
        )
    return Truth(
        velocity=np.ascontiguousarray(vel[:, r0 : r0 + h, c0 : c0 + w], dtype=np.float32),
        mask=np.ascontiguousarray(mask[r0 : r0 + h, c0 : c0 + w], dtype=bool),
    )


def window_days(window_start: np.ndarray) -> np.ndarray:
    """Days between consecutive window starts, (T,) datetime64 → (T−1,) float."""
    ws = np.asarray(window_start).astype("datetime64[D]")
    return np.diff(ws).astype(np.float64)


def flow_errors(
    flows: dict[str, np.ndarray],
    truth: Truth,
    days: np.ndarray,
    pairs: list[str],
) -> pd.DataFrame:
    """Endpoint error table of several flow estimates against the truth.

    ``flows``: source name → (K, 2, H, W) px; ``days`` (K,) window lengths; ``pairs`` (K,) labels.
    Rows: one per source and pair, then one ``mean`` row per source; columns ``source, pair,
    days, true_px`` (mean true displacement over the mask), ``flow_px`` (mean estimated length)
    and ``epe_px``.
    """
    true = truth.displacement(days)
    zero = np.zeros_like(true)
    true_len = endpoint_error(zero, true, truth.mask)
    rows = []
    for source, flow in flows.items():
        epe = endpoint_error(flow, true, truth.mask)
        length = endpoint_error(flow, zero, truth.mask)
        for k, pair in enumerate(pairs):
            rows.append(
                {
                    "source": source,
                    "pair": pair,
                    "days": days[k],
                    "true_px": true_len[k],
                    "flow_px": length[k],
                    "epe_px": epe[k],
                }
            )
        rows.append(
            {
                "source": source,
                "pair": "mean",
                "days": days.mean(),
                "true_px": true_len.mean(),
                "flow_px": length.mean(),
                "epe_px": epe.mean(),
            }
        )
    return pd.DataFrame(rows)


def load_flow_errors(paths: config.Paths, label: str) -> pd.DataFrame:
    """The endpoint-error table ``flow`` wrote for ``label`` (for reports), columns as
    :func:`flow_errors`; :class:`DataError` when ``flow`` has not run on data with a truth."""
    path = paths.flow_epe(label)
    if not path.is_file():
        raise DataError(
            f"{path} does not exist: run `glacier-movement flow --run {label}` on synthetic data first"
        )
    return pd.read_csv(path)
