"""Scene alignment: phase correlation (default) or the paper's ECC against a template of all
scenes, in parallel threads, and its error against the synthetic generator's warps
(docs/preprocessing.md)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import cast

import cv2
import numpy as np
from skimage.registration import phase_cross_correlation
from tqdm.auto import tqdm

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

ECC_POLICIES = ("keep", "drop")
ECC_TEMPLATES = ("swir", "zero")
ECC_INPUTS = ("standardized", "dn")


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
        # OpenCV's stubs want an inputMask array; None (no mask) is what its C++ API takes
        cc, warp = cv2.findTransformECC(  # pyright: ignore[reportCallIssue]
            template,
            image,
            warp,
            mode,
            criteria,
            None,  # pyright: ignore[reportArgumentType]
            int(gauss_filt_size),
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
        # every index is set (aligned or kept) before align_scenes returns it
        self.out: list[np.ndarray] = (
            scenes if (inplace and isinstance(scenes, list)) else cast(list[np.ndarray], [None] * n)
        )
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
        grays = cast(list[np.ndarray], [None] * n)  # all set by gray() before they are read

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
