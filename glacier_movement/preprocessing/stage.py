"""The ``preprocess`` stage: the options (:class:`PreprocessSettings`), the run over one
glacier's scene files (:func:`run_preprocessing`), its summary and outputs."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np

from .. import io, locks, plotting, settings
from ..catalog import Catalog
from ..config import (
    GlacierConfig,
    Paths,
    check_window_months,
    get_glacier,
    parse_roi,
)  # fmt: skip
from ..errors import GlacierError
from ..motion import load_truth, motion_share, window_days
from ..settings import SettingsError, glacier_option, option
from .align import (
    ALIGN_METHODS,
    ECC_BLOCK,
    ECC_EPS,
    ECC_INPUTS,
    ECC_ITERATIONS,
    ECC_MOTIONS,
    ECC_POLICIES,
    ECC_STOP_PX,
    ECC_TEMPLATES,
    PHASE_ROUNDS,
    Alignment,
    AlignmentError,
    AlignOptions,
    align_scenes,
    alignment_error,
    default_workers,
)  # fmt: skip
from .scenes import (
    MAX_CLOUD,
    MAX_MISSING,
    MIN_FRAMES,
    SELECTIONS,
    SceneRecord,
    is_synthetic,
    load_scenes,
    raw_files,
)  # fmt: skip
from .windows import (
    AVERAGES,
    NDSI_INPUTS,
    average_windows,
    interpolate_windows,
    ndsi,
    snow_mask,
    window_index,
    window_label,
    window_starts,
)  # fmt: skip


# ------------------------------------------------------------------------------ the stage
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
        roi=cast("tuple[int, int, int, int] | None", opts.roi),  # parse_roi gives four
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
        roi=cast("tuple[int, int, int, int]", tuple(int(v) for v in info["roi"])),
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
    assert alignment.seconds is not None  # align_scenes times every scene
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
            **_error_arrays(error),  # pyright: ignore[reportArgumentType] - arrays, not allow_pickle
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
