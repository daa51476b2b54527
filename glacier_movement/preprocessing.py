"""Scene preprocessing: missing-pixel filling, ECC alignment, seasonal windows, NDSI frames.

This is the original ``createPatches.py`` / ``monthlyAverageScenesEnCC`` (docs/preprocessing.md), rebuilt:

1. crop the region of interest (ROI) and keep the green and swir16 bands (digital numbers, DN);
2. fill missing pixels with the 5×5 kernel of Vonica, Ancuța & Frîncu (2021), pass after pass
   (:func:`fill_missing`, a normalized convolution instead of a Python loop over pixels);
3. align every scene to the median-filtered temporal mean (:func:`align_scenes`): by default a
   translation by subpixel phase correlation, refined against the mean of the aligned scenes;
   the paper's ECC maximisation is an option; scenes are aligned in parallel threads, with a
   stated policy for scenes where the alignment fails. On synthetic data the residual
   misregistration against the generator's warps is reported (:func:`alignment_error`);
4. average the aligned scenes in fixed windows of ``window_months`` months per year
   (:func:`average_windows`);
5. NDSI = (green − swir16) / (green + swir16) and the snow/ice mask: NDSI where NDSI ≥ 0.3 else 0
   (:func:`ndsi`, :func:`snow_mask`);
6. empty windows are interpolated linearly in time and thresholded again; leading and trailing
   empty windows take the nearest window with data (:func:`interpolate_windows`).

The command ``glacier-movement preprocess --glacier G`` runs it on ``<root>/<G>/raw/<year>.npz``
and writes ``<root>/<G>/frames.npz`` (:class:`glacier_movement.io.Frames`), the alignment record
``<root>/<G>/alignment.npz`` and figures (a grid of all frames, an animated GIF).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from skimage.registration import phase_cross_correlation
from tqdm.auto import tqdm

from . import io, locks, plotting, settings
from .catalog import Catalog
from .config import (
    GREEN,
    NDSI_THRESHOLD,
    SWIR16,
    GlacierConfig,
    Paths,
    check_window_months,
    get_glacier,
    parse_roi,
)  # fmt: skip
from .errors import GlacierError
from .motion import load_truth, motion_share, window_days
from .settings import SettingsError, glacier_option, option

#: One axis of the 5×5 kernel of Vonica et al. (2021); the kernel is its outer product
#: (1 2 3 2 1 / 2 4 6 4 2 / 3 6 9 6 3 / 2 4 6 4 2 / 1 2 3 2 1).
VONICA_1D = np.array([1.0, 2.0, 3.0, 2.0, 1.0])
VONICA_KERNEL = np.outer(VONICA_1D, VONICA_1D)
_VONICA_1D32 = VONICA_1D.astype(np.float32)
_VONICA_32 = VONICA_KERNEL.ravel().astype(np.float32)

#: fill_missing gathers the 25 neighbours of each missing pixel instead of filtering the whole
#: bounding box when 25 · (missing pixels) is below this fraction of the box's area.
_GATHER_FRACTION = 0.5

#: Sequences need 4 input + 4 target frames.
MIN_FRAMES = 8

#: ECC settings of the original: homography, (EPS | COUNT, 10000 iterations, eps 1e-4), Gaussian 1.
ECC_ITERATIONS, ECC_EPS, ECC_GAUSS_FILT_SIZE = 10000, 1e-4, 1
#: ECC runs in blocks of iterations and also stops once a block moves the image corners by less
#: than ECC_STOP_PX pixels, or ECC_PATIENCE blocks in a row did not raise the correlation by eps.
ECC_STOP_PX, ECC_BLOCK, ECC_PATIENCE = 0.05, 25, 3
#: Alignment methods: phase correlation (translation, default) or the paper's ECC.
ALIGN_METHODS = ("phase", "ecc")
#: Phase correlation rounds: the first against the ECC template, each further one against the mean
#: of the scenes aligned by the round before.
PHASE_ROUNDS = 2
#: Phase correlation resolves shifts to 1/PHASE_UPSAMPLE px (upsampled DFT around the peak).
PHASE_UPSAMPLE = 50
PHASE_NORMALIZATION = "phase"
ECC_MOTIONS = {
    "homography": cv2.MOTION_HOMOGRAPHY,
    "affine": cv2.MOTION_AFFINE,
    "euclidean": cv2.MOTION_EUCLIDEAN,
    "translation": cv2.MOTION_TRANSLATION,
}

AVERAGES = ("mean", "running")
NDSI_INPUTS = ("dn", "reflectance")
ECC_POLICIES = ("keep", "drop")
SELECTIONS = ("auto", "config", "all")
ECC_TEMPLATES = ("swir", "zero")
ECC_INPUTS = ("standardized", "dn")

#: Acquisition's filter (docs/data.md), applied again to the scene files (synthetic ones hold all).
MAX_CLOUD, MAX_MISSING = 20.0, 0.5

_MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


# ------------------------------------------------------------------------------ missing pixels
def fill_missing(band: np.ndarray, max_passes: int | None = None) -> np.ndarray:
    """Fill the missing (NaN) pixels of one band with the 5×5 Vonica kernel, pass after pass.

    ``band`` is (H, W), any unit (here DN); NaN marks a missing pixel. In one pass every missing
    pixel that has at least one valid pixel in its 5×5 neighbourhood (inside the image) becomes
    the kernel-weighted mean of those valid pixels, computed from the pixels valid at the START of
    the pass (pixels filled in the same pass do not feed each other). Passes repeat until nothing
    is missing, or ``max_passes`` passes have run (then NaN may remain). One pass is exactly the
    normalized convolution ``conv(value·valid, w) / conv(valid, w)`` at missing pixels where the
    denominator is > 0, in float64. It is evaluated as two separable 5-tap filters over the
    bounding box of what is still missing, or, when few pixels are left (the later passes), as
    a gather of their 25 neighbours and a product with the kernel: the same sums either way.
    Only missing pixels change.

    Returns a new array of the input's float dtype (float64 for integer input).
    Raises ``ValueError`` when the band is not 2-D, holds infinities, or is entirely missing.
    """
    a = np.asarray(band)
    if a.ndim != 2:
        raise ValueError(f"fill_missing expects one 2-D band, got shape {a.shape}")
    out_dtype = a.dtype if np.issubdtype(a.dtype, np.floating) else np.dtype(np.float64)
    missing = np.isnan(a)
    n_missing = int(np.count_nonzero(missing))
    if n_missing == 0:
        return a.astype(out_dtype, copy=True)
    if n_missing == missing.size:
        raise ValueError(
            f"the band ({a.shape[0]}×{a.shape[1]}) is entirely missing: nothing to fill from"
        )
    if int(np.count_nonzero(~np.isfinite(a))) != n_missing:
        raise ValueError("the band holds infinite values; only NaN may mark missing pixels")

    # Zero-padded (2 px, the kernel radius) value·valid and valid images: outside the image
    # counts as missing, and every 5×5 window of an image pixel lies inside the padded arrays.
    h, w = a.shape
    pw = w + 4
    vp = np.zeros((h + 4, pw))
    vp[2:-2, 2:-2] = a
    mp = np.zeros((h + 4, pw), dtype=np.float32)  # 0/1 and sums ≤ 81: exact in float32
    mp[2:-2, 2:-2] = ~missing
    rows, cols = np.divmod(np.flatnonzero(missing), w)
    idx = (rows + 2) * pw + (cols + 2)  # flat indices of missing pixels in the padded arrays
    vp.ravel()[idx] = 0.0
    offsets = (np.arange(-2, 3)[:, None] * pw + np.arange(-2, 3)[None, :]).ravel()
    vflat, mflat = vp.ravel(), mp.ravel()  # views: writes go into vp/mp
    n_left = len(idx)
    is_missing = np.zeros(vflat.size, dtype=bool)  # padded flat; the border is not "missing"
    is_missing[idx] = True
    slot = np.empty(vflat.size, dtype=np.int64)  # scratch for deduplicating the frontier
    cand = idx  # the pixels this pass can fill (all missing ones, or the frontier)
    passes = 0
    r, c = rows + 2, cols + 2  # padded coordinates of the candidates
    while n_left and (max_passes is None or passes < max_passes):
        if passes:
            r, c = np.divmod(cand, pw)
        num, den = _pass_sums(vp, mp, cand, r, c, offsets)
        # den holds exact small integers (sums of integer weights), so "> 0.5" is "> 0".
        ok = den > 0.5
        filled = cand[ok]
        if not len(filled):  # cannot happen while a valid pixel exists; never loop forever
            raise ValueError(f"{n_left} missing pixels have no valid pixel within reach")
        vflat[filled] = num[ok] / den[ok]
        mflat[filled] = 1.0
        is_missing[filled] = False
        n_left -= len(filled)
        passes += 1
        cand = _next_candidates(filled, offsets, is_missing, slot, n_left)
    out = vp[2:-2, 2:-2].astype(out_dtype, copy=True)
    if n_left:
        r, c = np.divmod(np.flatnonzero(is_missing), pw)
        out[r - 2, c - 2] = np.nan
    return out


def _pass_sums(
    vp: np.ndarray,
    mp: np.ndarray,
    cand: np.ndarray,
    r: np.ndarray,
    c: np.ndarray,
    offsets: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """One :func:`fill_missing` pass's kernel sums at the candidate pixels.

    ``vp`` (H+4, W+4) float64 value·valid and ``mp`` (H+4, W+4) float32 valid (0/1) are the
    zero-padded images; ``cand`` (n,) flat indices into them, ``r``/``c`` (n,) the same as padded
    rows and columns; ``offsets`` (25,) the flat offsets of a 5×5 window. Returns (num (n,) float64
    = Σ w·value·valid, den (n,) float32 = Σ w·valid): a gather of the 25 neighbours when few pixels
    are left, else two separable 5-tap filters over their bounding box (the same sums).
    """
    r0, r1, c0, c1 = r.min() - 2, r.max() + 3, c.min() - 2, c.max() + 3
    if len(cand) * 25 < _GATHER_FRACTION * (r1 - r0) * (c1 - c0):
        near = cand[:, None] + offsets  # (n, 25) neighbours
        num = np.take(vp.ravel(), near) @ VONICA_KERNEL.ravel()
        den = np.take(mp.ravel(), near) @ _VONICA_32
        return num, den
    # The box reaches 2 px beyond every candidate, so its own border (zeros) never
    # enters a candidate's sum.
    box = (r - r0) * (c1 - c0) + (c - c0)
    num = cv2.sepFilter2D(
        vp[r0:r1, c0:c1], cv2.CV_64F, VONICA_1D, VONICA_1D, borderType=cv2.BORDER_CONSTANT
    ).ravel()[box]
    den = cv2.sepFilter2D(
        mp[r0:r1, c0:c1],
        cv2.CV_32F,
        _VONICA_1D32,
        _VONICA_1D32,
        borderType=cv2.BORDER_CONSTANT,
    ).ravel()[box]
    return num, den


def _next_candidates(
    filled: np.ndarray,
    offsets: np.ndarray,
    is_missing: np.ndarray,
    slot: np.ndarray,
    n_left: int,
) -> np.ndarray:
    """The padded flat indices (m,) that the next :func:`fill_missing` pass visits.

    A pixel fillable in the next pass has a valid neighbour now but had none at the start of
    this pass: a neighbour ``filled`` (flat indices) in this pass. When that frontier is small
    (nodata wedges: ~150 thin passes), only its missing pixels are visited (each once, at its
    last occurrence in the gathered neighbours); otherwise every pixel still missing (``is_missing``, padded flat
    bool). ``slot`` is int64 scratch of the padded size; ``n_left`` the pixels still missing.
    """
    if 25 * len(filled) < n_left:
        near = (filled[:, None] + offsets).ravel()
        near = near[is_missing[near]]
        # Deduplicate without sorting: the last write of each index wins.
        order = np.arange(len(near))
        slot[near] = order
        return near[slot[near] == order]
    return np.flatnonzero(is_missing)


# ------------------------------------------------------------------------------ ECC alignment
@dataclass
class Alignment:
    """Alignment of N scenes to one template (phase correlation or ECC).

    ``warps`` (N, 3, 3) float64 homographies mapping template pixel coordinates (x, y, 1) to scene
    coordinates (the ECC convention; identity for a failed scene); ``cc`` (N,) the final
    correlation coefficient with the template (NaN where the alignment failed); ``success`` (N,) bool; ``used`` (N,) bool,
    False for scenes dropped by the failure policy; ``template`` (H, W) float32 gray template;
    ``errors`` the OpenCV message per failed scene ("" where it succeeded); ``seconds`` per scene.
    """

    warps: np.ndarray
    cc: np.ndarray
    success: np.ndarray
    used: np.ndarray
    template: np.ndarray
    errors: list[str] = field(default_factory=list)
    seconds: np.ndarray | None = None

    @property
    def n_failed(self) -> int:
        return int((~self.success).sum())


def _bgr(green: np.ndarray, swir: np.ndarray, third: np.ndarray | None = None) -> np.ndarray:
    """The original's 3-channel image (green, swir16, swir16) as float32 (H, W, 3), BGR order."""
    return np.dstack([green, swir, swir if third is None else third]).astype(np.float32, copy=False)


def ecc_template(scenes: Sequence[np.ndarray] | np.ndarray, third: str = "swir") -> np.ndarray:
    """The ECC template: gray image of the median-filtered temporal mean of all scenes.

    ``scenes`` is (N, 2, H, W) (green, swir16), any linear unit (DN). The mean of the 3-channel
    images (green, swir16, swir16) is taken and its first two channels are median-filtered (3×3,
    ``cv2.medianBlur``); ``cv2.COLOR_BGR2GRAY`` then gives the template, (H, W) float32.
    ``third="swir"`` (default, as docs/preprocessing.md describes it) keeps the mean swir16 as the third
    channel, so the template mixes the bands like every scene's gray image
    (0.114·green + 0.886·swir16). ``third="zero"`` reproduces the original code, which filtered
    into a zeroed array and never wrote the third channel: its template is
    0.114·green + 0.587·swir16, a different band mix whose snow/rock contrast can have the opposite
    sign of the scenes' (then ECC diverges; see README).
    """
    if third not in ECC_TEMPLATES:
        raise ValueError(f"third must be one of {ECC_TEMPLATES}, got {third!r}")
    n = len(scenes)
    if n == 0:
        raise ValueError("no scenes to build an ECC template from")
    acc = np.zeros(np.shape(scenes[0]), dtype=np.float64)
    for s in scenes:
        acc += s
    mean = (acc / n).astype(np.float32)
    green = cv2.medianBlur(mean[0], 3)
    swir = cv2.medianBlur(mean[1], 3)
    return cv2.cvtColor(
        _bgr(green, swir, mean[1] if third == "swir" else np.zeros_like(green)), cv2.COLOR_BGR2GRAY
    )


def scene_gray(scene: np.ndarray) -> np.ndarray:
    """The gray ECC input of one scene (2, H, W): ``COLOR_BGR2GRAY`` of (green, swir16, swir16)."""
    return cv2.cvtColor(_bgr(scene[0], scene[1]), cv2.COLOR_BGR2GRAY)


def find_warp(
    template: np.ndarray,
    image: np.ndarray,
    init: np.ndarray | None = None,
    iterations: int = ECC_ITERATIONS,
    eps: float = ECC_EPS,
    gauss_filt_size: int = ECC_GAUSS_FILT_SIZE,
    standardize: bool = True,
    motion: str = "homography",
    stop_px: float | None = ECC_STOP_PX,
    block: int = ECC_BLOCK,
    patience: int = ECC_PATIENCE,
) -> tuple[np.ndarray, float]:
    """ECC warp from ``template`` to ``image`` (both (H, W)): (warp (3, 3) float64, cc).

    ``image(warp · (x, y, 1)) ≈ template(x, y)`` up to gain and offset; ``motion`` is the model
    (homography as the original; affine, euclidean, translation). OpenCV stops when the
    correlation changes by less than ``eps`` between iterations, or after ``iterations``.

    Two additions, both measured on the synthetic glaciers (docs/preprocessing.md):

    * ``standardize`` (default): both images are shifted and scaled to zero mean and unit standard
      deviation first. The ECC criterion is invariant to that, but OpenCV computes it in float32,
      and on DN-scale images (≈ 10⁴ ± 10³) the cancellation makes it stop early or diverge
      ("NaN encountered"). ``False`` passes the images as given (the original passed DN).
    * ``stop_px``: on real-looking scenes the correlation rarely settles within ``eps``: the
      warp jitters by a few hundredths of a pixel, or jumps between two states (a 2-cycle of the
      Gauss–Newton steps, 2 px apart), so the original criterion runs all 10,000 iterations
      (≈ 20 s per 400×400 scene) and returns whichever state the count ends on. The iterations
      are therefore run in blocks of ``block`` (the same iterations: ECC keeps no state besides
      the warp); ECC stops once a block moves the image corners by less than ``stop_px`` pixels
      or ``patience`` blocks in a row did not raise the correlation by ``eps``, and returns the
      warp with the highest correlation seen at the ends of blocks. ``None`` runs the original
      criterion alone, in one call.

    Raises ``cv2.error`` when ECC does not converge (e.g. uncorrelated images).
    """
    if motion not in ECC_MOTIONS:
        raise ValueError(f"motion must be one of {tuple(ECC_MOTIONS)}, got {motion!r}")
    if standardize:
        template, image = _standardize(template), _standardize(image)
    else:
        template, image = (np.asarray(a, dtype=np.float32) for a in (template, image))
    mode = ECC_MOTIONS[motion]
    full = np.eye(3) if init is None else np.asarray(init, dtype=np.float64)
    warp = (full if mode == cv2.MOTION_HOMOGRAPHY else full[:2]).astype(np.float32)
    h, w = template.shape
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]], float).T
    remaining = int(iterations)
    step = remaining if stop_px is None else max(1, int(block))
    best_cc, best_warp, stall = -np.inf, _as3x3(warp), 0
    while remaining > 0:
        n = min(step, remaining)
        criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, n, float(eps))
        before = _as3x3(warp)
        cc, warp = cv2.findTransformECC(
            template, image, warp, mode, criteria, None, int(gauss_filt_size)
        )
        remaining -= n
        if not np.isfinite(warp).all() or not np.isfinite(cc):
            raise cv2.error("ECC returned a non-finite warp")
        stall = 0 if cc >= best_cc + eps else stall + 1
        if cc > best_cc:
            best_cc, best_warp = float(cc), _as3x3(warp)
        if stop_px is not None and (
            _corner_shift(before, _as3x3(warp), corners) < stop_px or stall >= patience
        ):
            break
    return best_warp, best_cc


def _as3x3(warp: np.ndarray) -> np.ndarray:
    warp = np.asarray(warp, dtype=np.float64)
    return warp if warp.shape == (3, 3) else np.vstack([warp, [0.0, 0.0, 1.0]])


def _corner_shift(a: np.ndarray, b: np.ndarray, corners: np.ndarray) -> float:
    """Largest distance (px) between where two warps send the image corners (3, 4)."""
    pa, pb = a @ corners, b @ corners
    return float(np.abs(pa[:2] / pa[2] - pb[:2] / pb[2]).max())


def _standardize(a: np.ndarray) -> np.ndarray:
    """(a − mean) / std as float32 (computed in float64); a constant image stays constant (0)."""
    a = np.asarray(a, dtype=np.float64)
    sd = a.std()
    return ((a - a.mean()) / (sd if sd > 0 else 1.0)).astype(np.float32)


def warp_scene(scene: np.ndarray, warp: np.ndarray) -> np.ndarray:
    """Resample one scene (C, H, W) onto the template grid: ``out(x) = scene(warp · x)``.

    ``cv2.warpPerspective(..., INTER_LINEAR + WARP_INVERSE_MAP)`` as the original. Pixels that map
    outside the scene take the nearest edge pixel (``BORDER_REPLICATE``); the original's zero
    border made NDSI 0/0 there. Returns float32 (C, H, W).
    """
    c, h, w = scene.shape
    img = np.ascontiguousarray(np.moveaxis(scene, 0, -1), dtype=np.float32)
    out = cv2.warpPerspective(
        img,
        np.asarray(warp, dtype=np.float64),
        (w, h),
        flags=cv2.INTER_LINEAR + cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return np.moveaxis(out.reshape(h, w, c), -1, 0)


def _cv_message(e: Exception) -> str:
    """'Iterations do not converge: NaN encountered.' from an OpenCV error's long text."""
    text = " ".join(str(e).split())
    m = re.search(r"error: \(-?\d+:([^)]*)\)\s*(.*?)\s*(in function .*)?$", text)
    return f"{m.group(1)}: {m.group(2)}".rstrip(": ") if m else text or type(e).__name__


def phase_shift(
    template: np.ndarray, image: np.ndarray, upsample: int = PHASE_UPSAMPLE
) -> np.ndarray:
    """Translation from ``template`` to ``image`` (both standardized (H, W) float32) by phase
    correlation: warp (3, 3) float64 with ``image(x + d) ≈ template(x)``.

    Both images are multiplied by a Hann window (no wrap-around edges), then
    ``skimage.registration.phase_cross_correlation`` (normalization "phase", the whitened
    cross-power spectrum, refined by an upsampled DFT to 1/``upsample`` px; Guizar-Sicairos et
    al. 2008). Whitening weighs all frequencies alike, so the broad seasonal changes of
    brightness (snow cover) that mislead ECC weigh little beside the terrain's edges; the
    upsampled peak avoids the bias of ``cv2.phaseCorrelate``'s centroid towards whole pixels
    (measured: 0.05 px common offset instead of 0.17 px). Raises ``cv2.error`` (as ECC does) for
    a uniform image or a non-finite shift.
    """
    if not (np.ptp(template) > 0 and np.ptp(image) > 0):
        raise cv2.error("phase correlation found no peak: the image is uniform")
    h, w = template.shape
    win = cv2.createHanningWindow((w, h), cv2.CV_32F)
    shift, _, _ = phase_cross_correlation(
        template * win,
        image * win,
        upsample_factor=int(upsample),
        normalization=PHASE_NORMALIZATION,
    )
    dy, dx = -float(shift[0]), -float(shift[1])  # skimage: the shift that registers image
    if not (np.isfinite(dx) and np.isfinite(dy)):
        raise cv2.error("phase correlation returned a non-finite shift")
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two images (the criterion ECC maximises), float64."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    a, b = a - a.mean(), b - b.mean()
    den = np.sqrt((a @ a) * (b @ b))
    return float(a @ b / den) if den > 0 else float("nan")


def default_workers() -> int:
    """All cores (``os.cpu_count()``), at least 1."""
    return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class AlignOptions:
    """How :func:`align_scenes` aligns: the typed alignment part of :class:`PreprocessSettings`
    (:meth:`PreprocessSettings.alignment` makes it), which checks its choices and bounds here.

    ``method="phase"`` (default): a translation per scene by phase correlation
    (:func:`phase_shift`, to 1/``upsample`` px) of its standardized gray image (:func:`scene_gray`)
    against the template, first :func:`ecc_template`, then, for each further of ``rounds`` rounds,
    the mean of the scenes' gray images aligned by the previous round (sharper, so the next
    estimate is better). Measured on the synthetic glaciers' true warps, this is the most accurate
    setting and never diverges (docs/preprocessing.md).

    ``method="ecc"``: the paper's ECC, :func:`find_warp` against :func:`ecc_template` (a homography
    by default, ``motion``; identity initial guess, ``chain_init`` reuses the previous successful
    warp as the original did; ``iterations``, ``eps``, ``gauss_filt_size``, ``standardize``,
    ``stop_px`` as there); ``template`` picks the template's third channel.

    ``on_failure``: where the estimate raises ``cv2.error``, ``"keep"`` leaves the scene unaligned
    (identity warp, ``used`` True), ``"drop"`` marks it unused. ``workers`` threads (default: all
    cores) align the scenes; the result does not depend on their number.
    """

    method: str = "phase"
    rounds: int = PHASE_ROUNDS
    upsample: int = PHASE_UPSAMPLE
    chain_init: bool = False
    iterations: int = ECC_ITERATIONS
    eps: float = ECC_EPS
    gauss_filt_size: int = ECC_GAUSS_FILT_SIZE
    on_failure: str = "keep"
    template: str = "swir"
    standardize: bool = True
    motion: str = "homography"
    stop_px: float | None = ECC_STOP_PX
    workers: int | None = None

    def __post_init__(self) -> None:
        if self.on_failure not in ECC_POLICIES:
            raise ValueError(f"on_failure must be one of {ECC_POLICIES}, got {self.on_failure!r}")
        if self.method not in ALIGN_METHODS:
            raise ValueError(f"method must be one of {ALIGN_METHODS}, got {self.method!r}")
        if self.motion not in ECC_MOTIONS:
            raise ValueError(f"motion must be one of {tuple(ECC_MOTIONS)}, got {self.motion!r}")
        if self.rounds < 1:
            raise ValueError(f"rounds must be at least 1, got {self.rounds}")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")


def align_scenes(
    scenes: list[np.ndarray] | np.ndarray,
    options: AlignOptions = AlignOptions(),  # noqa: B008 - frozen, so one shared default is safe
    *,
    inplace: bool = False,
    progress: bool = False,
    labels: Sequence[str] | None = None,
) -> tuple[list[np.ndarray], Alignment]:
    """Align every scene (green, swir16; (2, H, W), DN) to a template made from all of them, as
    ``options`` (:class:`AlignOptions`) say; ``cc`` is the correlation of the aligned gray image
    with the last template.

    Each scene's result depends only on its own image and the template, so any number of workers
    gives the same output, in order. ``chain_init`` makes each scene depend on the previous one:
    it runs serially. Each scene is resampled with :func:`warp_scene`.

    Returns (aligned scenes, :class:`Alignment`): a list of float32 (2, H, W); with ``inplace`` the
    input list's arrays are replaced (saves memory for long stacks).
    """
    o = options
    workers = default_workers() if o.workers is None else int(o.workers)
    template_img = ecc_template(scenes, o.template)
    state = _SceneAligner(scenes, workers, progress, labels, inplace)
    if o.method == "phase":
        template_img = state.phase(template_img, o.rounds, o.upsample)
    else:
        ecc_options = (o.iterations, o.eps, o.gauss_filt_size, o.standardize, o.motion, o.stop_px)
        state.ecc(template_img, ecc_options, o.chain_init)
    used = state.success | (o.on_failure == "keep")
    return state.out, Alignment(
        state.warps, state.cc, state.success, used, template_img, state.errors, state.seconds
    )


class _SceneAligner:
    """The per-scene results of :func:`align_scenes` while they are computed, and its two methods.

    Holds the input ``scenes`` (N × (2, H, W) DN) and, filled by index, ``out`` (aligned float32
    (2, H, W) scenes), ``warps`` (N, 3, 3) float64, ``cc`` (N,), ``success`` (N,) bool,
    ``seconds`` (N,) and ``errors`` (N messages). With ``inplace`` (and a list input) ``out`` is
    the input list itself.
    """

    def __init__(
        self,
        scenes: list[np.ndarray] | np.ndarray,
        workers: int,
        progress: bool,
        labels: Sequence[str] | None,
        inplace: bool,
    ) -> None:
        n = self.n = len(scenes)
        self.scenes, self.workers, self.progress, self.labels = scenes, workers, progress, labels
        self.out = scenes if (inplace and isinstance(scenes, list)) else [None] * n
        self.warps = np.repeat(np.eye(3)[None], n, axis=0)
        self.cc = np.full(n, np.nan)
        self.success = np.zeros(n, dtype=bool)
        self.seconds = np.zeros(n)
        self.errors = [""] * n

    def run_all(self, fn: Callable[[int], object], desc: str) -> None:
        """fn(i) for every scene, by ``workers`` threads; results land by index (order kept)."""
        n, workers = self.n, self.workers
        bar = tqdm(total=n, desc=desc, unit="scene", disable=not self.progress, leave=False)
        with bar:
            if workers == 1 or n < 2:
                for i in range(n):
                    fn(i)
                    bar.update()
            else:
                with ThreadPoolExecutor(max_workers=min(workers, n)) as pool:
                    for _ in pool.map(fn, range(n)):
                        bar.update()

    def fail(self, i: int, e: Exception) -> None:
        """Record scene ``i``'s failure: its message (with its label), identity warp, NaN cc."""
        self.errors[i] = _cv_message(e)
        if self.labels is not None:
            self.errors[i] = f"{self.labels[i]}: {self.errors[i]}"
        self.warps[i], self.cc[i], self.success[i] = np.eye(3), np.nan, False

    def phase(self, template_img: np.ndarray, rounds: int, upsample: int) -> np.ndarray:
        """Phase-correlation alignment (``rounds`` rounds, 1/``upsample`` px) against
        ``template_img`` (H, W) float32, then each further round against the mean of the
        previous round's aligned gray images. Returns the last template (H, W) float32,
        standardized."""
        n, scenes, warps, success, seconds = (
            self.n,
            self.scenes,
            self.warps,
            self.success,
            self.seconds,
        )
        grays: list[np.ndarray | None] = [None] * n

        def gray(i: int) -> None:
            t0 = time.perf_counter()
            grays[i] = _standardize(scene_gray(np.asarray(scenes[i], dtype=np.float32)))
            seconds[i] += time.perf_counter() - t0

        self.run_all(gray, "gray images")
        ref = _standardize(template_img)
        for r in range(rounds):
            if r:  # the mean of the previous round's aligned gray images
                acc = np.zeros(ref.shape, dtype=np.float64)
                for i in range(n):
                    acc += warp_scene(grays[i][None], warps[i])[0] if success[i] else grays[i]
                ref = _standardize(acc / n)

            def estimate(i: int, ref: np.ndarray = ref) -> None:
                t0 = time.perf_counter()
                try:
                    warps[i] = phase_shift(ref, grays[i], upsample)
                    success[i], self.errors[i] = True, ""
                except cv2.error as e:
                    self.fail(i, e)
                seconds[i] += time.perf_counter() - t0

            self.run_all(estimate, f"phase correlation, round {r + 1} of {rounds}")

        def finish(i: int) -> None:
            t0 = time.perf_counter()
            scene = np.asarray(scenes[i], dtype=np.float32)
            if success[i]:
                self.cc[i] = _correlation(ref, warp_scene(grays[i][None], warps[i])[0])
                self.out[i] = warp_scene(scene, warps[i])
            else:
                self.out[i] = scene
            seconds[i] += time.perf_counter() - t0

        self.run_all(finish, "resampling")
        return ref

    def ecc(self, template_img: np.ndarray, options: tuple, chain_init: bool) -> None:
        """ECC alignment of every scene against ``template_img`` (H, W) float32; ``options`` are
        :func:`find_warp`'s (iterations, eps, gauss_filt_size, standardize, motion, stop_px).
        ``chain_init`` starts each scene from the previous success, serially."""
        warps, success = self.warps, self.success

        def ecc(i: int, guess: np.ndarray | None = None) -> np.ndarray | None:
            t0 = time.perf_counter()
            scene = np.asarray(self.scenes[i], dtype=np.float32)
            try:
                warps[i], self.cc[i] = find_warp(template_img, scene_gray(scene), guess, *options)
                success[i] = True
                self.out[i] = warp_scene(scene, warps[i])
            except cv2.error as e:
                self.fail(i, e)
                self.out[i] = scene
            self.seconds[i] = time.perf_counter() - t0
            return warps[i] if success[i] else guess

        if chain_init:  # each scene starts from the previous success: serial by nature
            guess = None
            for i in tqdm(
                range(self.n), desc="ECC alignment", unit="scene", disable=not self.progress
            ):
                guess = ecc(i, guess)
        else:
            self.run_all(ecc, "ECC alignment")


# ------------------------------------------------------------------------------ alignment error
@dataclass
class AlignmentError:
    """Residual misregistration of aligned scenes against known true warps (synthetic data), px.

    ``after`` (N,): per scene, the mean distance over the evaluated pixels between where the
    applied warp and where the true warp take each pixel (:func:`alignment_error`); ``before``
    (N,): the same for the identity (the scene left unaligned). ``after_relative`` /
    ``before_relative``: the same with each stack's common offset removed (the mean residual
    vector over the used scenes: a shift shared by all frames, which an alignment to a template
    made from the scenes cannot know); ``offset`` (2,) (x, y) px: that common offset after
    alignment. ``used`` (N,) bool: the scenes that enter the frames (the statistics are over
    these); ``n_pixels``: pixels evaluated per scene; ``on``: "glacier" or "all" pixels.
    """

    after: np.ndarray
    before: np.ndarray
    used: np.ndarray
    n_pixels: int
    on: str
    after_relative: np.ndarray
    before_relative: np.ndarray
    offset: np.ndarray

    def stats(self, relative: bool = False) -> dict[str, float]:
        """median, p90, max (px) over the used scenes and n_worse (scenes whose residual after
        alignment exceeds the unaligned one), absolute or with the common offsets removed."""
        a, b = (
            (self.after_relative, self.before_relative) if relative else (self.after, self.before)
        )
        a, b = a[self.used], b[self.used]
        if not len(a):
            return dict(median=np.nan, p90=np.nan, max=np.nan, n_worse=0)
        return dict(
            median=float(np.median(a)),
            p90=float(np.percentile(a, 90)),
            max=float(a.max()),
            n_worse=int((a > b).sum()),
        )

    @property
    def median(self) -> float:
        return self.stats()["median"]

    @property
    def p90(self) -> float:
        return self.stats()["p90"]

    @property
    def max(self) -> float:
        return self.stats()["max"]

    @property
    def worse(self) -> np.ndarray:
        """(N,) bool: used scenes whose residual after alignment exceeds the unaligned one."""
        return self.used & (self.after > self.before)

    @property
    def n_worse(self) -> int:
        return int(self.worse.sum())

    def lines(self) -> list[str]:
        """Summary lines: median / p90 / max px and the scenes made worse than unaligned."""
        n = int(self.used.sum())
        b = self.before[self.used]
        st, rel = self.stats(), self.stats(relative=True)
        dx, dy = self.offset
        return [
            f"alignment error against the true warps ({self.on} pixels, mean px per scene, "
            f"{n} scenes): median {st['median']:.2f}, 90th percentile {st['p90']:.2f}, max "
            f"{st['max']:.2f}; {st['n_worse']} scenes worse than unaligned (unaligned: median "
            f"{np.median(b):.2f}, 90th percentile {np.percentile(b, 90):.2f}, max {b.max():.2f})",
            f"  without the offset common to all frames ({dx:+.2f}, {dy:+.2f}) px: median "
            f"{rel['median']:.2f}, 90th percentile {rel['p90']:.2f}, max {rel['max']:.2f}; "
            f"{rel['n_worse']} scenes worse than unaligned",
        ]


def alignment_error(
    warps: np.ndarray,
    true_warps: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    shape: tuple[int, int] | None = None,
    offset: tuple[int, int] = (0, 0),
    used: np.ndarray | None = None,
) -> AlignmentError:
    """Residual misregistration of N aligned scenes against their true warps, px.

    ``warps`` (N, 3, 3) are the applied warps on the ROI grid (template (x, y, 1) → scene pixel,
    :class:`Alignment`); ``true_warps`` (N, 3, 3) the generator's warps on the scene grid (TRUE
    (x, y, 1) → OBSERVED pixel, ``truth.npz`` key ``warps``); ``offset`` = (row0, col0) of the ROI
    in the scene grid. A template pixel x ends up showing the true ground at
    ``H⁻¹(W(x))`` (H the true warp moved onto the ROI grid); its residual is
    ``‖H⁻¹(W(x)) − x‖``. The per-scene error is the mean residual over the pixels of ``mask``
    ((H, W) bool on the ROI grid, e.g. the glacier; ``None`` or empty: every pixel of ``shape``);
    ``before`` is the same with W = identity. The template is the mean of the scenes, so a
    common offset (the mean of the true misregistrations) stays in every residual.

    Raises ``ValueError`` for mismatched shapes or a singular true warp.
    """
    warps = np.asarray(warps, dtype=np.float64)
    true_warps = np.asarray(true_warps, dtype=np.float64)
    if warps.shape != true_warps.shape or warps.shape[1:] != (3, 3):
        raise ValueError(
            f"warps {warps.shape} and true warps {true_warps.shape} must both be (N, 3, 3)"
        )
    if mask is not None and mask.any():
        ys, xs = np.nonzero(mask)
        on = "glacier"
    else:
        if shape is None:
            if mask is None:
                raise ValueError("give a pixel mask or the ROI shape")
            shape = mask.shape
        ys, xs = np.indices(shape).reshape(2, -1)
        on = "all"
    pts = np.stack([xs, ys, np.ones_like(xs)]).astype(np.float64)  # (3, P) ROI pixels
    # Move the true warps onto the ROI grid: x_grid = x_roi + (col0, row0).
    r0, c0 = offset
    shift = np.array([[1.0, 0.0, c0], [0.0, 1.0, r0], [0.0, 0.0, 1.0]])
    unshift = np.array([[1.0, 0.0, -c0], [0.0, 1.0, -r0], [0.0, 0.0, 1.0]])
    try:
        inv_true = np.linalg.inv(unshift @ true_warps @ shift)  # (N, 3, 3) observed → true
    except np.linalg.LinAlgError:
        raise ValueError("a true warp is singular") from None

    used = np.ones(len(warps), bool) if used is None else np.asarray(used, dtype=bool)
    if len(used) != len(warps):
        raise ValueError(f"used has {len(used)} entries for {len(warps)} warps")

    def residuals(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean residual length (N,) and, with the used scenes' mean residual vector removed, (N,)."""
        fields = []
        for m in maps:  # one (3, P) product per scene keeps memory at O(P)
            q = m @ pts
            fields.append(np.stack([q[0] / q[2] - pts[0], q[1] / q[2] - pts[1]]).astype(np.float32))
        common = (
            np.mean(
                [f.mean(axis=1, dtype=np.float64) for f, u in zip(fields, used, strict=True) if u],
                axis=0,
            )
            if used.any()
            else np.zeros(2)
        )
        absolute = np.array([np.hypot(f[0], f[1]).mean(dtype=np.float64) for f in fields])
        c = common.astype(np.float32)[:, None]
        relative = np.array([np.hypot(*(f - c)).mean(dtype=np.float64) for f in fields])
        return absolute, relative, common

    after, after_rel, offset_after = residuals(inv_true @ warps)
    before, before_rel, _ = residuals(inv_true)
    return AlignmentError(
        after=after,
        before=before,
        used=used,
        n_pixels=pts.shape[1],
        on=on,
        after_relative=after_rel,
        before_relative=before_rel,
        offset=offset_after,
    )


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
    m = int(np.datetime64(start, "M").astype(np.int64) % 12)
    y = int(np.datetime64(start, "Y").astype(np.int64) + 1970)
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


# ------------------------------------------------------------------------------ the stage
@dataclass
class SceneRecord:
    """Where a preprocessed scene came from: year file, index within it, time, cloud cover (%)."""

    path: Path
    index: int
    time: np.datetime64
    cloud_cover: float

    @property
    def label(self) -> str:
        return f"{self.path.name} scene {self.index} ({np.datetime_as_string(self.time, unit='D')})"


@dataclass
class Preprocessed:
    """What :func:`run_preprocessing` produced: the frames, the alignment, a summary."""

    frames: io.Frames
    alignment: Alignment
    scenes: list[SceneRecord]
    window: np.ndarray  # (N,) window of each scene
    summary: list[str]
    written: list[Path] = field(default_factory=list)
    #: the alignment error against truth.npz's warps (synthetic data), else None
    error: AlignmentError | None = None


def raw_files(paths: Paths) -> list[tuple[int, Path]]:
    """The yearly scene files ``raw/<year>.npz`` present, as (year, path) sorted by year."""
    out = []
    if paths.raw_dir.is_dir():
        for p in paths.raw_dir.glob("*.npz"):
            if re.fullmatch(r"\d{4}", p.stem):
                out.append((int(p.stem), p))
    return sorted(out)


def is_synthetic(paths: Paths) -> bool:
    """Synthetic data are recognised by their ground truth file ``<glacier>/truth.npz``."""
    return paths.truth.is_file()


def _select(cfg: GlacierConfig, year: int, n: int, mode: str, path: Path) -> tuple[np.ndarray, str]:
    """Indices of the scenes of one year's file to use, and a note for the summary."""
    if mode == "all" or cfg.scene_selection is None:
        return np.arange(n), ""
    chosen = cfg.scene_selection.get(year)
    if chosen is None:
        return np.arange(n), f"{year}: no scene selection configured, all {n} scenes used"
    bad = [i for i in chosen if not 0 <= i < n]
    if bad:
        raise GlacierError(
            f"the {cfg.name} scene selection for {year} lists scene {bad[0]} but {path} holds {n} "
            "scenes: the selection indexes the real archive's items; use --select-scenes all for "
            "other data"
        )
    return np.asarray(chosen, dtype=np.int64), ""


def load_scenes(
    cfg: GlacierConfig,
    paths: Paths,
    *,
    select_scenes: str = "auto",
    roi: tuple[int, int, int, int] | None = None,
    max_cloud: float = MAX_CLOUD,
    max_missing: float = MAX_MISSING,
    progress: bool = False,
) -> tuple[list[np.ndarray], list[SceneRecord], dict]:
    """Read every ``raw/<year>.npz``, select scenes, filter, crop the ROI, fill missing pixels.

    Scene selection (``select_scenes``; "auto" = the configured lists for acquired data, all
    scenes for synthetic data, see :func:`is_synthetic`) indexes each year file's scene list. Then
    acquisition's filter is applied again: a scene is kept if its cloud cover is ≤ ``max_cloud``
    percent and its fraction of nodata pixels (green band, whole scene) is < ``max_missing``.
    Acquired files hold only such scenes (a no-op there); synthetic files hold every generated
    scene, also the cloudy and gappy ones.

    Returns (scenes: list of float32 (2, H, W) green/swir16 DN without missing pixels, in time
    order; their records; grid info: epsg, transform, roi used, scale, offset, selection mode,
    notes, fill statistics). Raises :class:`GlacierError` for no files, mismatched grids or an
    entirely missing scene (naming file, index and date).
    """
    files = raw_files(paths)
    if not files:
        raise GlacierError(
            f"no scene files {paths.raw_dir}/<year>.npz: run `glacier-movement acquire --glacier "
            f"{paths.glacier}` or `glacier-movement synthesize --glacier {paths.glacier}` first"
        )
    if select_scenes not in SELECTIONS:
        raise GlacierError(f"--select-scenes must be one of {', '.join(SELECTIONS)}")
    mode = select_scenes
    if mode == "auto":
        mode = "all" if is_synthetic(paths) else "config"

    crops: list[np.ndarray] = []  # uint16 (2, h, w) ROI crops, filled below
    records: list[SceneRecord] = []
    notes: list[str] = []
    grid = None
    n_read = n_cloudy = n_gappy = 0
    for year, path in tqdm(
        files, desc="reading scenes", unit="file", disable=not progress, leave=False
    ):
        s = io.read_scenes(path)
        shape = s.data.shape[2:]
        this = (shape, s.epsg, tuple(np.round(s.transform, 6)), s.scale, s.offset)
        if grid is None:
            grid = this
            first_path = path
            roi_used = roi_window(roi or cfg.roi, shape)
        else:
            _check_same_grid(grid, this, first_path, path)
        chosen, note = _select(cfg, year, len(s.times), mode, path)
        if note:
            notes.append(note)
        missing = (s.data[chosen, GREEN] == 0).mean(axis=(1, 2)) if len(chosen) else np.zeros(0)
        keep = (s.cloud_cover[chosen] <= max_cloud) & (missing < max_missing)
        n_cloudy += int((s.cloud_cover[chosen] > max_cloud).sum())
        n_gappy += int(((s.cloud_cover[chosen] <= max_cloud) & (missing >= max_missing)).sum())
        n_read += len(s.times)
        chosen = chosen[keep]
        r0, r1, c0, c1 = roi_used
        for i in chosen:
            crops.append(s.data[i, [GREEN, SWIR16], r0:r1, c0:c1].copy())
            records.append(SceneRecord(path, int(i), s.times[i], float(s.cloud_cover[i])))
        del s
    if not records:
        raise GlacierError(
            f"no usable scene in {paths.raw_dir}: {n_read} read, {n_cloudy} over {max_cloud:g} % "
            f"cloud, {n_gappy} with ≥ {max_missing:g} missing; acquire more scenes or relax "
            "--max-cloud / --max-missing"
        )

    order = np.argsort(np.array([r.time for r in records], dtype="datetime64[ns]"), kind="stable")
    records = [records[i] for i in order]
    crops = [crops[i] for i in order]
    filled_fraction = fill_scenes(crops, records, roi_used, progress)
    info = {
        "epsg": grid[1],
        "transform": roi_transform(grid[2], roi_used),
        "roi": roi_used,
        "scale": grid[3],
        "offset": grid[4],
        "selection": mode,
        "notes": notes,
        "n_read": n_read,
        "n_cloudy": n_cloudy,
        "n_gappy": n_gappy,
        "missing_fraction": filled_fraction,
        "shape": grid[0],
    }
    return crops, records, info


def _check_same_grid(grid: tuple, this: tuple, first_path: Path, path: Path) -> None:
    """Raise :class:`GlacierError` when a year file's grid differs from the first file's.

    ``grid`` and ``this`` are (shape (H, W), epsg, rounded transform, scale, offset) of the first
    file (``first_path``) and of ``path``: the shapes and the georeference must match.
    """
    if this[0] != grid[0]:
        shape = this[0]
        raise GlacierError(
            f"scenes of different shapes: {first_path} has {grid[0][0]}×{grid[0][1]} pixels, "
            f"{path} has {shape[0]}×{shape[1]}; acquire or synthesize all years with the same size"
        )
    if this[1:3] != grid[1:3]:
        raise GlacierError(
            f"scenes on different grids: {first_path} is EPSG:{grid[1]} {grid[2]}, {path} is "
            f"EPSG:{this[1]} {this[2]}; acquire all years with the same --epsg and bounds"
        )


def fill_scenes(
    crops: list[np.ndarray],
    records: Sequence[SceneRecord],
    roi: tuple[int, int, int, int],
    progress: bool = False,
) -> np.ndarray:
    """Fill the missing pixels (DN 0) of ROI crops band by band with :func:`fill_missing`.

    ``crops`` is a list of uint16 (2, h, w) green/swir16 DN crops; each is replaced, in place in
    the list, by its float32 (2, h, w) filled version. ``records`` (one per crop) and ``roi``
    (row0, row1, col0, col1) only name a scene in the error. Returns the fraction of pixels
    filled per scene, (N,) float64. Raises :class:`GlacierError` when a band is entirely missing.
    """
    band_names = ("green", "swir16")
    filled_fraction = np.zeros(len(crops))
    for k in tqdm(
        range(len(crops)),
        desc="filling missing pixels",
        unit="scene",
        disable=not progress,
        leave=False,
    ):
        dn = crops[k]
        nodata = dn == 0
        filled_fraction[k] = nodata.mean()
        out = np.empty(dn.shape, dtype=np.float32)
        for b in range(2):
            band = dn[b].astype(np.float64)
            band[nodata[b]] = np.nan
            try:
                out[b] = fill_missing(band)
            except ValueError as e:
                r0, r1, c0, c1 = roi
                raise GlacierError(
                    f"{records[k].label}: band {band_names[b]} cannot be filled in the region of "
                    f"interest rows {r0}:{r1}, cols {c0}:{c1} ({e}); remove the scene from the "
                    "file (acquire again) or choose another --roi"
                ) from None
        crops[k] = out
    return filled_fraction


def run_preprocessing(
    cfg: GlacierConfig,
    root: str | Path,
    s: PreprocessSettings | None = None,
    *,
    write: bool = True,
    **options,
) -> Preprocessed:
    """The whole stage for one glacier; see the module docstring. Writes nothing on error.

    ``s`` (or, without it, ``options``: :class:`PreprocessSettings` fields such as
    ``align="ecc"``, ``workers=1``) chooses the methods; ``write=False`` only computes.

    Steps: check the options, load and fill the scenes (:func:`load_scenes`), place them in
    windows, align them (:func:`align_scenes`), average, NDSI and mask the windows
    (:func:`window_frames`), summarise, write. Outputs (when ``write``):
    ``<root>/<glacier>/frames.npz`` (:class:`io.Frames`), the alignment record ``alignment.npz``
    (per scene: time, source file and index, cloud cover, warp, cc, success, used, window; the
    template) and, with ``figures``, ``figures/frames.png`` and ``figures/frames.gif``.
    """
    t_start = time.perf_counter()
    opts = s if s is not None else PreprocessSettings(glacier=cfg.name, **options)
    workers = default_workers() if opts.workers is None else opts.workers
    wm = int(opts.window_months or cfg.window_months)  # both checked: settings, glacier config
    paths = Paths(Path(root), cfg.name)
    files = raw_files(paths)
    _check_year_span(paths, files, wm)  # cheap: the number of windows is known from the names
    scenes, records, info = load_scenes(
        cfg,
        paths,
        select_scenes=opts.select_scenes,
        roi=opts.roi,
        max_cloud=opts.max_cloud,
        max_missing=opts.max_missing,
        progress=opts.progress,
    )
    times, starts, windex = _scene_windows(records, files, wm)
    labels = [r.label for r in records]
    aligned, alignment = align_scenes(
        scenes, opts.alignment(workers), inplace=True, progress=opts.progress, labels=labels
    )
    fr = window_frames(cfg.name, aligned, alignment, windex, starts, wm, info, opts)
    del aligned

    selected = info["selection"] == "config" and cfg.scene_selection is not None
    summary = _scenes_summary(cfg.name, records, info, len(files), fr.roi, selected, opts)
    summary += _alignment_summary(alignment, opts, workers)
    error = truth_alignment_error(paths, times, alignment, info["roi"], fr.frames.shape[1:])
    if error is not None:
        summary += error.lines()
    summary.append(_windows_summary(fr))

    result = Preprocessed(fr, alignment, records, windex, summary, error=error)
    if write:
        record = opts.record(wm, info["selection"])
        result.written += write_outputs(paths, result, times, record, opts.figures)
    result.summary.append(f"done in {time.perf_counter() - t_start:.1f} s")
    return result


def _check_year_span(paths: Paths, files: list[tuple[int, Path]], wm: int) -> None:
    """Raise :class:`GlacierError` when the year files (:func:`raw_files`) span fewer than
    :data:`MIN_FRAMES` windows of ``wm`` months (nothing to check without files)."""
    if not files:
        return
    n_years = files[-1][0] - files[0][0] + 1
    if n_years * (12 // wm) < MIN_FRAMES:
        raise GlacierError(
            f"{paths.raw_dir} covers {n_years} year(s) = {n_years * (12 // wm)} windows of {wm} "
            f"months, but sequences need at least {MIN_FRAMES} frames: add years or use a "
            "shorter --window-months"
        )


def _scene_windows(
    records: Sequence[SceneRecord], files: list[tuple[int, Path]], wm: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The scenes' times and windows.

    The windows of ``wm`` months cover every year from the first to the last of the scenes and
    the year files. Returns (times (N,) datetime64[ns], window starts (T,) datetime64[D], window
    of each scene (N,) int64). Raises :class:`GlacierError` for fewer than :data:`MIN_FRAMES`
    windows.
    """
    times = np.array([r.time for r in records], dtype="datetime64[ns]")
    years = times.astype("datetime64[Y]").astype(np.int64) + 1970
    first, last = int(min(years.min(), files[0][0])), int(max(years.max(), files[-1][0]))
    starts = window_starts(first, last, wm)
    if len(starts) < MIN_FRAMES:
        raise GlacierError(
            f"the scenes span {first}-{last} = {len(starts)} windows of {wm} months, but sequences "
            f"need at least {MIN_FRAMES} frames: add years or use a shorter --window-months"
        )
    return times, starts, window_index(times, first, wm)


def window_frames(
    glacier: str,
    aligned: list[np.ndarray],
    alignment: Alignment,
    windex: np.ndarray,
    starts: np.ndarray,
    wm: int,
    info: dict,
    opts: PreprocessSettings,
) -> io.Frames:
    """Average the aligned scenes per window, compute the masked NDSI, interpolate empty windows.

    ``aligned`` is N × float32 (2, H, W) green/swir16 DN, ``alignment.used`` (N,) bool the scenes
    kept by the alignment, ``windex`` (N,) their windows, ``starts`` (T,) the window starts of
    ``wm`` months; ``info`` is :func:`load_scenes`'s grid info (scale/offset for reflectance,
    epsg, transform, roi); ``opts`` gives the average and the NDSI input. Returns the
    :class:`io.Frames` (frames (T, H, W) float32 masked NDSI). Raises :class:`GlacierError` when
    no window has a scene.
    """
    means, counts = average_windows(aligned, windex, len(starts), opts.average, alignment.used)
    have = counts > 0
    if not have.any():
        raise GlacierError(
            f"{opts.method_name} failed on every scene of {glacier} and --on-ecc-failure drop removed "
            "them all; "
            "use --on-ecc-failure keep or check the scenes"
        )
    masked = np.zeros((len(starts), *means.shape[2:]), dtype=np.float32)
    for w in np.flatnonzero(have):
        masked[w] = snow_mask(
            ndsi(means[w, 0], means[w, 1], opts.ndsi_input, info["scale"], info["offset"])
        )
    frames, interpolated = interpolate_windows(masked, have)
    return io.Frames(
        frames=frames,
        window_start=starts,
        window_months=wm,
        n_scenes=counts,
        interpolated=interpolated,
        glacier=glacier,
        epsg=int(info["epsg"]),
        transform=tuple(info["transform"]),
        roi=tuple(int(v) for v in info["roi"]),
    )


def _scenes_summary(
    glacier: str,
    records: Sequence[SceneRecord],
    info: dict,
    n_files: int,
    roi: tuple[int, int, int, int],
    selected: bool,
    opts: PreprocessSettings,
) -> list[str]:
    """Summary lines of the scenes read: used/read, dropped by the filter (``opts.max_cloud`` %,
    ``opts.max_missing`` fraction), ROI, filled pixels, selection notes. ``info`` is
    :func:`load_scenes`'s grid info; ``selected``: a configured scene selection was applied."""
    r0, r1, c0, c1 = roi
    dropped = info["n_cloudy"] + info["n_gappy"]
    return [
        f"{glacier}: {len(records)} scenes used of {info['n_read']} in {n_files} year file(s) "
        f"({'configured scene selection' if selected else 'all scenes'}"
        + (
            f"; dropped {info['n_cloudy']} over {opts.max_cloud:g} % cloud, {info['n_gappy']} "
            f"with ≥ {opts.max_missing:g} missing"
            if dropped
            else ""
        )
        + "), "
        f"ROI rows {r0}:{r1}, cols {c0}:{c1} ({r1 - r0}×{c1 - c0} px); "
        f"{info['missing_fraction'].mean():.1%} of pixels filled on average",
        *[f"note: {n}" for n in info["notes"]],
    ]


def _alignment_summary(alignment: Alignment, opts: PreprocessSettings, workers: int) -> list[str]:
    """Summary lines of the alignment: the failures and the policy applied to them, or the
    method, the range of correlations and the time taken (by ``workers`` threads)."""
    method_name, on_failure, align_rounds = opts.method_name, opts.on_ecc_failure, opts.align_rounds
    if alignment.n_failed:
        policy = "kept unaligned" if on_failure == "keep" else "dropped"
        return [
            f"{method_name} failed on {alignment.n_failed} scene(s), {policy} "
            f"(--on-ecc-failure {on_failure}):",
            *[f"  {e}" for e in alignment.errors if e],
        ]
    ok = alignment.cc[alignment.success]
    how = (
        f"phase correlation ({align_rounds} round{'s' if align_rounds > 1 else ''})"
        if opts.align == "phase"
        else f"ECC {opts.ecc_motion}"
    )
    return [
        f"{how} aligned all {len(alignment.success)} scenes (correlation {ok.min():.3f}–{ok.max():.3f}, "
        f"{alignment.seconds.sum():.1f} s in {workers} worker{'s' if workers > 1 else ''})"
    ]


def _windows_summary(fr: io.Frames) -> str:
    """Summary line of the frames: their windows, how many came from scenes, which were
    interpolated between windows and which copied at the ends."""
    wm, starts, interpolated = fr.window_months, fr.window_start, fr.interpolated
    have = fr.n_scenes > 0
    win_labels = [window_label(s, wm) for s in starts]
    empty = np.flatnonzero(interpolated)
    inner = [t for t in empty if have[:t].any() and have[t:].any()]
    edge = [t for t in empty if t not in inner]
    return (
        f"{len(starts)} frames of {wm} months ({win_labels[0]} … {win_labels[-1]}), "
        f"{int(have.sum())} from scenes, {len(inner)} interpolated"
        + (f" ({', '.join(win_labels[t] for t in inner)})" if inner else "")
        + (
            f", {len(edge)} at the ends copied from the nearest window ({', '.join(win_labels[t] for t in edge)})"
            if edge
            else ""
        )
    )


def write_outputs(
    paths: Paths, result: Preprocessed, times: np.ndarray, settings: str, figures: bool = True
) -> list[Path]:
    """Write ``alignment.npz`` and ``frames.npz`` (and, with ``figures``, the frame figures).

    ``result`` holds the frames, alignment, scene records, scene windows and error; ``times``
    (N,) datetime64[ns] the scenes' times; ``settings`` the one-line settings record. The new
    alignment.npz replaces the old one only once frames.npz is written, so a failed write (disk
    full) leaves the matching old pair, or neither file. Returns the paths written.
    """
    fr, alignment, records, error = result.frames, result.alignment, result.scenes, result.error
    written = []
    with io.atomic_path(paths.alignment, suffix=".tmp.npz") as tmp:
        np.savez(
            tmp,
            times=times,
            source_year=np.array([int(r.path.stem) for r in records], dtype=np.int64),
            source_index=np.array([r.index for r in records], dtype=np.int64),
            cloud_cover=np.array([r.cloud_cover for r in records]),
            window=result.window.astype(np.int64),
            warps=alignment.warps,
            cc=alignment.cc,
            success=alignment.success,
            used=alignment.used,
            template=alignment.template,
            roi=np.asarray(fr.roi, dtype=np.int64),
            **_error_arrays(error),
            settings=np.array(settings),
        )
        written.append(io.write_frames(paths.frames, fr))
    written.insert(0, paths.alignment)
    if figures:
        written += write_figures(fr, paths.frames_figure)
    return written


def truth_alignment_error(
    paths: Paths,
    times: np.ndarray,
    alignment: Alignment,
    roi: tuple[int, int, int, int],
    shape: tuple[int, int],
) -> AlignmentError | None:
    """The alignment error against ``truth.npz``'s warps, when the data are synthetic.

    Scenes are matched to the truth by acquisition time; the error is evaluated on the glacier
    pixels of the ROI (``glacier_mask``), or on all pixels where the truth has no mask or the ROI
    holds no glacier. None when there is no truth file, it has no ``warps`` (older or hand-made
    truth files), or a scene's time is not in it.
    """
    if not is_synthetic(paths):
        return None
    truth = io.load_npz(paths.truth)
    if "warps" not in truth or "scene_times" not in truth:
        return None
    t_times = np.asarray(truth["scene_times"], dtype="datetime64[ns]")
    idx = np.searchsorted(t_times, times)
    if (idx >= len(t_times)).any() or (t_times[np.minimum(idx, len(t_times) - 1)] != times).any():
        return None
    r0, r1, c0, c1 = roi
    mask = None
    if "glacier_mask" in truth:
        mask = np.asarray(truth["glacier_mask"], dtype=bool)[r0:r1, c0:c1]
        if mask.shape != tuple(shape):
            mask = None
    return alignment_error(
        alignment.warps,
        truth["warps"][idx],
        mask,
        shape=shape,
        offset=(r0, c0),
        used=alignment.used,
    )


def _error_arrays(error: AlignmentError | None) -> dict[str, np.ndarray]:
    """alignment.npz keys of the error against the truth (none without truth warps)."""
    if error is None:
        return {}
    st, rel = error.stats(), error.stats(relative=True)
    return dict(
        error_px=error.after,
        error_unaligned_px=error.before,
        error_relative_px=error.after_relative,
        error_relative_unaligned_px=error.before_relative,
        error_common_offset_px=np.asarray(error.offset, dtype=np.float64),
        error_on=np.array(error.on),
        error_stats=np.array([st["median"], st["p90"], st["max"], st["n_worse"]], dtype=np.float64),
        error_relative_stats=np.array(
            [rel["median"], rel["p90"], rel["max"], rel["n_worse"]], dtype=np.float64
        ),
    )


def preprocess(cfg: GlacierConfig, root: str | Path, **options) -> io.Frames:
    """Preprocess one glacier's scene files into frames (and write them); see :func:`run_preprocessing`."""
    return run_preprocessing(cfg, root, **options).frames


def write_figures(fr: io.Frames, png: Path) -> list[Path]:
    """The frame grid ``png`` and the animation of a frame set beside it (``.gif``)."""

    labels = [window_label(s, fr.window_months) for s in fr.window_start]
    ncols = 12 // fr.window_months if 12 // fr.window_months <= 6 else 6
    written = plotting.plot_frame_grid(
        fr.frames,
        png,
        titles=labels,
        marked=fr.interpolated,
        ncols=ncols,
        suptitle=f"{fr.glacier}: masked NDSI frames (NDSI ≥ 0.3), interpolated windows marked *",
    )
    written.append(plotting.save_frames_gif(fr.frames, png.with_suffix(".gif"), labels=labels))
    return written


# ---------------------------------------------------------------------------------- the stage
@dataclass(frozen=True)
class PreprocessSettings:
    """Fill, align and average scenes into masked NDSI frames.

    Read <data-root>/<glacier>/raw/<year>.npz, crop the region of interest, fill missing pixels
    (5×5 Vonica kernel), align all scenes (phase correlation, or the paper's ECC) to their
    median-filtered mean, average them in windows of N months, compute NDSI and the snow/ice mask
    (NDSI ≥ 0.3), interpolate empty windows; write frames.npz, alignment.npz and
    figures/frames.{png,gif}.
    """

    glacier: str = glacier_option()
    window_months: int | None = option(
        None,
        metavar="N",
        help="window length in months (default: the glacier's, Parvati 3, Aletsch 4)",
    )
    ndsi_input: str = option(
        "dn",
        choices=NDSI_INPUTS,
        help="compute NDSI from digital numbers (the original, default) or reflectance",
    )
    average: str = option(
        "mean",
        choices=AVERAGES,
        help="arithmetic mean of a window's scenes (default) or the original's running pair average",
    )
    on_ecc_failure: str = option(
        "keep",
        choices=ECC_POLICIES,
        help="scenes where the alignment fails (ECC does not converge, phase correlation finds no "
        "peak): keep them unaligned (default) or drop them",
    )
    align: str = option(
        "phase",
        choices=ALIGN_METHODS,
        help="alignment: phase = a translation per scene by phase correlation against the mean "
        "of the scenes, refined over --align-rounds (default; the most accurate on the synthetic "
        "glaciers' true warps, docs/preprocessing.md); ecc = the paper's ECC (--ecc-* options; "
        "the paper's setting is --align ecc, homography from the identity or --chain-init)",
    )
    align_rounds: int = option(
        PHASE_ROUNDS,
        metavar="N",
        help=f"phase correlation rounds (default {PHASE_ROUNDS}): the first against the "
        "median-filtered mean of the scenes, each further one against the mean of the scenes "
        "aligned by the round before",
    )
    workers: int | None = option(
        None,
        metavar="N",
        help="threads that align scenes in parallel (default: all cores); the result does not "
        "depend on N (--chain-init runs serially)",
    )
    chain_init: bool = option(
        False,
        help="with --align ecc: start ECC from the previous scene's warp (the original) instead "
        "of the identity",
    )
    ecc_template: str = option(
        "swir",
        choices=ECC_TEMPLATES,
        help="third channel of the ECC template: the mean swir16 (default, same band mix as the "
        "scenes) or zero (the original code)",
    )
    ecc_input: str = option(
        "standardized",
        choices=ECC_INPUTS,
        help="images given to ECC: zero-mean unit-variance (default, converges reliably) or raw "
        "DN (the original)",
    )
    ecc_motion: str = option(
        "homography",
        choices=tuple(ECC_MOTIONS),
        help="with --align ecc: the ECC motion model (default homography, the original; "
        "translation is the most robust where seasons change the scenes a lot)",
    )
    ecc_stop_px: float = option(
        ECC_STOP_PX,
        metavar="PX",
        help=f"also stop ECC once {ECC_BLOCK} iterations move the corners less than PX pixels or "
        f"the correlation stops rising (default {ECC_STOP_PX:g}; 0 = only the original "
        "criterion, up to --ecc-iterations)",
    )
    ecc_iterations: int = option(
        ECC_ITERATIONS, metavar="N", help=f"ECC iteration limit (default {ECC_ITERATIONS})"
    )
    select_scenes: str = option(
        "auto",
        choices=SELECTIONS,
        help="auto: the configured selection (Aletsch) for acquired data, all scenes for "
        "synthetic data (truth.npz present)",
    )
    max_cloud: float = option(
        MAX_CLOUD,
        metavar="PCT",
        help=f"drop scenes over this cloud cover, percent (default {MAX_CLOUD:g}, acquisition's "
        "filter)",
    )
    max_missing: float = option(
        MAX_MISSING,
        metavar="FRAC",
        help=f"drop scenes with at least this nodata fraction (default {MAX_MISSING:g})",
    )
    roi: tuple[int, ...] | None = option(
        None,
        parse=parse_roi,
        metavar="R0,R1,C0,C1",
        help="region of interest in scene pixels (default: the glacier's)",
    )
    figures: bool = option(True, flag="--no-figures", help="do not write the frame grid and GIF")
    progress: bool = option(True, cli=False, help="progress bars")

    ecc_eps: float = option(ECC_EPS, cli=False, help="ECC convergence epsilon (the original's)")

    def __post_init__(self) -> None:
        settings.check_choices(self)
        if not 0 <= self.max_cloud <= 100:
            raise SettingsError("max_cloud", f"{self.max_cloud:g} is not a percentage: use 0–100")
        if not 0 < self.max_missing <= 1:
            raise SettingsError(
                "max_missing", f"{self.max_missing:g} is not a fraction: use (0, 1]"
            )
        for name in ("ecc_iterations", "align_rounds", "workers"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise SettingsError(name, f"must be at least 1, got {value}")
        if self.chain_init and self.align != "ecc":
            raise SettingsError("chain_init", "starts ECC from the previous warp: add --align ecc")
        if self.window_months is not None:
            check_window_months(self.window_months)

    @property
    def method_name(self) -> str:
        """The alignment method in words: 'ECC' or 'phase correlation'."""
        return "ECC" if self.align == "ecc" else "phase correlation"

    def alignment(self, workers: int) -> AlignOptions:
        """The :class:`AlignOptions` of these choices with ``workers`` threads."""
        return AlignOptions(
            method=self.align,
            rounds=self.align_rounds,
            workers=workers,
            chain_init=self.chain_init,
            iterations=self.ecc_iterations,
            eps=self.ecc_eps,
            on_failure=self.on_ecc_failure,
            template=self.ecc_template,
            standardize=self.ecc_input == "standardized",
            motion=self.ecc_motion,
            stop_px=self.ecc_stop_px or None,
        )

    def record(self, wm: int, selection: str) -> str:
        """The one-line settings record of ``alignment.npz`` (``wm``-month windows, the scene
        selection mode applied)."""
        return (
            f"window_months={wm} ndsi_input={self.ndsi_input} average={self.average} "
            f"align={self.align} align_rounds={self.align_rounds} "
            f"on_failure={self.on_ecc_failure} chain_init={self.chain_init} "
            f"ecc_template={self.ecc_template} "
            f"ecc_input={self.ecc_input} ecc_motion={self.ecc_motion} "
            f"ecc_stop_px={self.ecc_stop_px} ecc_iterations={self.ecc_iterations} "
            f"ecc_eps={self.ecc_eps} select_scenes={selection} max_cloud={self.max_cloud} "
            f"max_missing={self.max_missing}"
        )


def run(s: PreprocessSettings, catalog: Catalog) -> Preprocessed:
    """The ``preprocess`` stage for one glacier (holding its data lock); prints the summary."""
    cfg = get_glacier(s.glacier, catalog.root)
    paths = catalog.glacier(cfg.name)
    with locks.hold(paths.glacier_dir, f"the data of glacier {cfg.name!r}"):
        result = run_preprocessing(cfg, catalog.root, s)
        settings.write(s, paths.settings_file("preprocess"), "preprocess")
    for line in result.summary:
        print(line)
    if paths.truth.is_file():
        print(_motion_share_line(paths.truth, result.frames))
    for path in result.written:
        print(f"wrote {path}")
    return result


def _motion_share_line(truth_path: Path, fr: io.Frames) -> str:
    """How much of the frames' change the known ice motion explains (synthetic data), beside the
    generator's estimate on its clean surface (truth.npz ``motion_share``)."""
    truth = load_truth(truth_path, fr.roi, fr.frames.shape[1:])
    share = motion_share(fr.frames, truth.displacement(window_days(fr.window_start)), truth.mask)
    with np.load(truth_path) as f:
        clean = float(f["motion_share"]) if "motion_share" in f.files else float("nan")
    return (
        f"motion share on the glacier (1 − MSE of the truly advected previous frame / MSE of the "
        f"previous frame): {share:.3f} in these frames; {clean:.3f} on the clean surface"
    )


__all__ = [
    "AlignOptions",
    "Alignment",
    "AlignmentError",
    "Preprocessed",
    "SceneRecord",
    "VONICA_KERNEL",
    "align_scenes",
    "alignment_error",
    "average_windows",
    "ecc_template",
    "fill_missing",
    "find_warp",
    "interpolate_windows",
    "is_synthetic",
    "ndsi",
    "phase_shift",
    "preprocess",
    "raw_files",
    "PreprocessSettings",
    "roi_transform",
    "roi_window",
    "run",
    "run_preprocessing",
    "scene_gray",
    "snow_mask",
    "warp_scene",
    "window_index",
    "window_label",
    "window_starts",
]
