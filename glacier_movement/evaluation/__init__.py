"""Test-set scores, the ``infer`` stage and loss curves (docs/evaluation.md).

* **Scores** — :func:`evaluate` runs a model on test sequences and scores it, beside the
  baselines, per sequence with :mod:`metrics` (per-pixel MSE and MAE, SSIM and PSNR per frame,
  per lead time, on / off the glacier); :func:`score_rows` and :func:`summarize` turn those rows
  into tables with clustered, paired bootstrap intervals; :func:`results_markdown` writes them.
* **Full scenes** — :func:`infer` predicts a selected checkpoint's full-scene window with
  :func:`inference.predict_scene`, saves it (:func:`inference.save_scene`) and draws it.
* **Loss curves** — per-epoch train/validation loss of every run under ``<root>/models``.
* **Checkpoint selection** — :func:`select` resolves ``--run``/``--checkpoint``.

Commands: ``glacier-movement test``, ``infer`` and ``loss-curves``.

The folder's other modules are what these stages score and predict with: ``scores`` (the
rows and tables above), ``metrics`` (per-pixel
and per-frame scores; clustered, paired and two-way bootstrap intervals, verdicts), ``skill``
(skill against climatology, available skill, share), ``inference`` (batched full-scene prediction,
stitching, scene files) and ``flow`` (the ``flow`` stage: optical flow of forecasts, scored
against the true motion).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import advection, config, settings
from ..baselines import (
    Reference,
    attach_truth,
    glacier_mask,
    glacier_sequences,
)
from ..catalog import Catalog, RunPaths
from ..errors import DataError, GlacierError
from ..io import load_npz, read_frames, save_npz, write_csv, write_text
from ..models import Persistence
from ..motion import FARNEBACK_SETTINGS, Truth, load_truth, window_days
from ..plotting import loss_curves_figure
from ..selection import ModelChoice, Selected, select
from ..sequences import split_indices
from ..settings import SettingsError, option
from . import metrics as metrics
from .flow import motion_errors
from .inference import PERSISTENCE as PERSISTENCE
from .inference import Scene, infer, scene_scores
from .scores import (
    MIN_VERDICT_CLUSTERS as MIN_VERDICT_CLUSTERS,
)
from .scores import (
    REFERENCE_BASELINES as REFERENCE_BASELINES,
)
from .scores import (
    SCORE_COLUMNS as SCORE_COLUMNS,
)
from .scores import (
    PatchTake as PatchTake,
)

# the scores live in .scores; the stages and the report use them as evaluation.<name>
from .scores import (
    ci_text as ci_text,
)
from .scores import (
    evaluate as evaluate,
)
from .scores import (
    persistence_forecast as persistence_forecast,
)
from .scores import (
    pooling_labels as pooling_labels,
)
from .scores import (
    results_markdown as results_markdown,
)
from .scores import (
    score_rows as score_rows,
)
from .scores import (
    summarize as summarize,
)
from .scores import (
    with_ci as with_ci,
)

#: Split modes of ``sequences.split_indices`` (docs/preprocessing.md).
SPLITS = ("paper", "strict")


def load_per_sequence(paths: config.Paths, label: str) -> pd.DataFrame:
    """The per-sequence errors ``test`` wrote for ``label`` (model and baselines)."""
    path = paths.result_file(label, "per_sequence")
    if not path.is_file():
        raise DataError(f"{path} does not exist: run `glacier-movement test` for {label} first")
    return pd.read_csv(path)


# --------------------------------------------------------------------------------- loss curves
def load_epoch_losses(models_dir: Path, runs: Sequence[str] | None = None) -> pd.DataFrame:
    """Per-epoch losses of every run (or of ``runs``) under ``models_dir``.

    Reads ``<models_dir>/<run>/epochs.csv`` (epoch, train_loss, val_loss). Returns columns
    ``run, epoch, train_loss, val_loss``, runs in name order.
    """
    models_dir = Path(models_dir)
    files = (
        [RunPaths(models_dir / r).epochs for r in runs]
        if runs
        else sorted(models_dir.glob(f"*/{RunPaths(Path()).epochs}"))
    )
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise DataError(
            f"{missing[0]} does not exist: train that run first (`glacier-movement train`)"
        )
    if not files:
        raise DataError(
            f"no trained runs under {models_dir} (no */epochs.csv): train a model first"
        )
    parts = []
    for f in files:
        df = pd.read_csv(f)
        if not {"epoch", "train_loss", "val_loss"} <= set(df.columns):
            raise DataError(
                f"{f} has columns {list(df.columns)}, expected epoch, train_loss, val_loss"
            )
        parts.append(df[["epoch", "train_loss", "val_loss"]].assign(run=f.parent.name))
    return pd.concat(parts, ignore_index=True).loc[:, ["run", "epoch", "train_loss", "val_loss"]]


def loss_curves(
    root: Path, runs: Sequence[str] | None = None, output: Path | None = None, pdf: bool = False
) -> Path:
    """Draw the per-epoch train and validation loss of every run in one figure.

    Default output ``<root>/models/loss_curves.png`` (beside the runs). Returns the PNG path.
    """
    catalog = Catalog(Path(root))
    df = load_epoch_losses(catalog.models_dir, runs)
    output = Path(output) if output else catalog.loss_curves
    return loss_curves_figure(df, output, pdf=pdf)[0]


# ------------------------------------------------------------------------------------------ CLI
# --------------------------------------------------------------------------------- the stages
@dataclass(frozen=True)
class TestSettings(ModelChoice):
    """Test-set scores of a trained model beside the baselines (MSE, MAE, SSIM, PSNR, intervals).

    Score a trained model on the test sequences of a glacier (the original's
    testsetPerformance.py): per-pixel MSE and MAE (the paper's convention), SSIM and PSNR per
    frame, for the model and for every baseline (persistence, climatology, seasonal-naive, …) on
    the same sequences. Writes <data-root>/<glacier>/results/<name>_results.csv (scores of the
    model and every baseline with clustered, paired intervals), <name>_per_sequence.csv.gz and
    <name>_results.md.
    """

    split: str = option(
        "auto",
        choices=("auto", *SPLITS, "both"),
        help="whose test sequences to score: auto = the split the run was trained with "
        "(default); a run trained on the paper split has seen frames of the test targets, so "
        "its strict row is not leak-free",
    )
    bootstrap: int = option(1000, metavar="N", help="bootstrap resamples (default 1000; 0 = none)")
    seed: int = option(0, help="bootstrap random seed (default 0)")
    flow: str = option(
        "none",
        choices=("none", "paper", "tuned"),
        help="also score the motion in full-scene forecasts at every test start against the true "
        "displacement (synthetic data): Farneback with the paper's or the tuned parameters; "
        "writes <name>_motion_epe.csv (default none)",
    )

    stride: int | None = option(
        None,
        metavar="PX",
        help="patch stride of the test sequences (default: the run's, its training stride); the "
        "patch size gives non-overlapping patches that score every pixel once, as reproduce does "
        "on held-out glaciers",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.bootstrap < 0:
            raise SettingsError(
                "bootstrap", f"must be 0 (none) or a number of resamples, got {self.bootstrap}"
            )
        if self.stride is not None and self.stride < 1:
            raise SettingsError("stride", f"must be ≥ 1 px, got {self.stride}")


@dataclass(frozen=True)
class InferSettings(ModelChoice):
    """Full-scene predictions: arrays, grayscale images, GeoTIFFs and a figure.

    Predict whole scenes (the original's inferencePlot.py): of the 8-frame window that starts
    --last frames before the end (default: the last 8 frames; Parvati 28-35, Aletsch 19-26), the
    first 4 are cut into non-overlapping patches, predicted in batches and stitched back. Writes
    <data-root>/<glacier>/results/<name>/ {inputs, targets, predictions, persistence}.npy,
    images/*.png, targets.tif and predictions.tif (georeferenced, float32, one band per frame)
    and scene.json, and the figure <data-root>/<glacier>/figures/<name>_scene.png.
    """

    last: int = option(8, metavar="N", help="the window starts N frames before the end (default 8)")
    pdf: bool = option(False, help="also write PDF images and figure")


@dataclass(frozen=True)
class LossCurvesSettings:
    """Per-epoch train and validation loss of every trained run in one figure.

    Draw <data-root>/models/*/epochs.csv in one figure (default
    <data-root>/models/loss_curves.png).
    """

    runs: tuple[str, ...] | None = option(
        None, metavar="NAME", help="only these runs (default: every run)"
    )
    output: Path | None = option(None, metavar="PNG", help="where to write the figure")
    pdf: bool = option(False, help="also write a PDF")


def test_scores(
    sel: Selected,
    glacier: config.GlacierConfig,
    device: str | torch.device | None = "auto",
    batch_size: int = 100,
    n_bootstrap: int = 1000,
    seed: int = 0,
    progress: bool = True,
    stride: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score a selected checkpoint and every baseline on ``glacier``'s test sequences.

    The sequences are those a run on that glacier trains on (Aletsch: its first 19 frames), with
    the test part of the chronological split (the same for the paper and strict splits), cut at
    ``stride`` px (default: the run's training stride). Returns (per-sequence rows of
    :func:`evaluate`, :func:`summarize` table).
    """
    paths = config.Paths(sel.paths.root, glacier.name)
    if not paths.frames.is_file():
        raise DataError(
            f"{paths.frames} does not exist: run `glacier-movement preprocess --glacier {glacier.name}` first"
        )
    fr = read_frames(paths.frames)
    model = sel.load_model(device)
    ds, ref = glacier_sequences(
        fr,
        glacier.train_frames,
        sel.patch,
        stride or sel.stride,
        getattr(model, "clim_input", False),
    )
    test = split_indices(ds, "paper").test
    mask, _ = glacier_mask(fr, ref, paths.truth)
    attach_truth(ref, fr, paths.truth)  # synthetic data: the oracle and advect's glacier
    if progress:
        print(
            f"testing {sel.label} on {glacier.name}: {len(test):,} test sequences of "
            f"{ds.patch}×{ds.patch} px from {len(np.unique(ds.position(test)[0]))} forecast starts",
            file=sys.stderr,
        )
    per = evaluate(model, ds, test, batch_size, device, progress, ref, mask, baselines=False)
    per = pd.concat([per, baseline_rows(paths, glacier, ds, ref, test, mask)], ignore_index=True)
    return per, summarize(per, sel.label, glacier.name, n_bootstrap, seed)


#: Baseline rows already read or computed in this process (a job's worker tests many runs),
#: by fingerprint: a few glaciers' worth, oldest out.
_BASELINE_CACHE: dict[str, pd.DataFrame] = {}


@functools.cache
def _code_digest() -> str:
    """A digest of the package's source: a cached baseline computed by other code is stale."""
    h = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for f in sorted(package.rglob("*.py")):
        h.update(f.relative_to(package).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def baseline_fingerprint(
    paths: config.Paths, glacier: config.GlacierConfig, patch: int, stride: int
) -> str:
    """What the baselines' rows on a glacier's test sequences depend on: the frames and truth
    files' bytes, the glacier's config (its training frames), patch, stride and the package's
    code."""
    h = hashlib.sha256(f"{glacier!r}|{patch}|{stride}|{_code_digest()}".encode())
    for f in (paths.frames, paths.truth):
        h.update(f.read_bytes() if f.is_file() else b"absent")
    return h.hexdigest()


def baseline_rows(
    paths: config.Paths, glacier: config.GlacierConfig, ds, ref: Reference, test: np.ndarray, mask
) -> pd.DataFrame:
    """The baselines' rows of :func:`evaluate` on a glacier's test sequences. They are the same
    for every model tested on the same data, patch and stride, so they are computed once and kept
    in ``paths.baseline_cache`` (npz, written atomically, no pickle) under their
    :func:`baseline_fingerprint`: the demo job's 169 tests on 7 glaciers compute them about 7
    times, not once per worker and glacier (twice only where two workers start on a glacier at
    the same moment); a changed frame, truth, config or code file computes them again."""
    fingerprint = baseline_fingerprint(paths, glacier, ds.patch, ds.stride)
    if fingerprint in _BASELINE_CACHE:
        return _BASELINE_CACHE[fingerprint]
    cache = paths.baseline_cache(ds.patch, ds.stride)
    rows = _read_baseline_cache(cache, fingerprint)
    if rows is None:
        rows = evaluate(Persistence(ds.patch), ds, test, 500, "cpu", False, ref, mask)
        rows = rows.loc[rows["predictor"] != "model"].reset_index(drop=True)
        arrays = {f"c{k}": _npz_column(rows[c]) for k, c in enumerate(rows.columns)}
        arrays |= {"fingerprint": np.array(fingerprint), "names": np.array(rows.columns, dtype=str)}
        with contextlib.suppress(GlacierError, OSError):  # a full disk: no cache, same rows
            save_npz(cache, False, **arrays)
    while len(_BASELINE_CACHE) >= 8:
        del _BASELINE_CACHE[next(iter(_BASELINE_CACHE))]
    _BASELINE_CACHE[fingerprint] = rows
    return rows


def _npz_column(col: pd.Series) -> np.ndarray:
    """A column as an array npz keeps without pickle (text as fixed-width unicode)."""
    return col.to_numpy().astype(str) if col.dtype == object else col.to_numpy()


def _read_baseline_cache(path: Path, fingerprint: str) -> pd.DataFrame | None:
    """The cached rows at ``path`` when they were written under ``fingerprint``, else None (no
    file, another fingerprint, or an unreadable file: computed again and overwritten)."""
    if not path.is_file():
        return None
    try:
        data = load_npz(path, {"fingerprint": "the rows' fingerprint", "names": "column names"})
    except DataError:
        return None
    if str(data["fingerprint"]) != fingerprint:
        return None
    names = [str(n) for n in data["names"]]
    columns = {
        n: data[f"c{k}"].astype(object) if data[f"c{k}"].dtype.kind == "U" else data[f"c{k}"]
        for k, n in enumerate(names)
    }
    return pd.DataFrame(columns)


def test_motion(
    sel: Selected,
    glacier: config.GlacierConfig,
    setting: str = "tuned",
    device: str | torch.device | None = "auto",
    batch_size: int = 100,
) -> pd.DataFrame:
    """Endpoint errors of the motion in the model's full-scene forecasts at every test forecast
    start of a synthetic ``glacier`` (``flow.motion_errors``; Farneback ``setting``)."""
    paths = config.Paths(sel.paths.root, glacier.name)
    if not paths.truth.is_file():
        raise DataError(
            f"{paths.truth} does not exist: motion can be scored on synthetic glaciers only "
            "(drop --flow for real data)"
        )
    fr = read_frames(paths.frames)
    model = sel.load_model(device)
    ds, ref = glacier_sequences(fr, glacier.train_frames, sel.patch, sel.stride)
    starts = np.unique(ds.position(split_indices(ds, "paper").test)[0])
    truth = load_truth(paths.truth, fr.roi, fr.frames.shape[1:])
    return motion_errors(
        model, fr.frames, fr.window_start, ref.clim, starts, truth, sel.patch,
        FARNEBACK_SETTINGS[setting], batch_size, device,
    )  # fmt: skip


def advect_velocity_errors(
    paths: config.Paths, glacier: config.GlacierConfig, patch: int, stride: int
) -> pd.DataFrame:
    """Endpoint error of ``advect``'s tracked velocity against ``truth.npz`` at every test
    forecast start of a synthetic glacier (:func:`advection.velocity_error`, px per window of the
    mean window length); empty without a truth file. Columns: ``glacier``, ``start``,
    ``epe_px_window``, ``zero_epe_px_window`` (no motion), ``tiles``."""
    if not paths.truth.is_file() or not paths.frames.is_file():
        return pd.DataFrame()
    fr = read_frames(paths.frames)
    ds, ref = glacier_sequences(fr, glacier.train_frames, patch, stride)
    attach_truth(ref, fr, paths.truth)
    assert ref.velocity is not None and ref.mask is not None and ref.window_start is not None
    truth = Truth(ref.velocity, ref.mask)
    days = float(np.mean(window_days(fr.window_start)))
    rows = []
    for start in np.unique(ds.position(split_indices(ds, "paper").test)[0]):
        last = int(start) + ref.n_in - 1
        v = advection.estimate_velocity(
            ref.frames, ref.window_start, ref.fit, last, ref.per_year, ref.mask, None, ref.tracks
        )
        err = advection.velocity_error(v.velocity, truth, days)
        rows.append(
            {
                "glacier": glacier.name,
                "start": int(start),
                "epe_px_window": err["epe_px_window"],
                "zero_epe_px_window": err["zero_epe_px_window"],
                "tiles": v.tiles,
            }
        )
    return pd.DataFrame(rows)


def run_test(s: TestSettings, catalog: Catalog) -> pd.DataFrame:
    """The ``test`` stage: scores, per-sequence rows and the markdown table of one run on one
    glacier (and, with ``flow``, the motion scores); returns the results table."""
    sel = select(s, catalog)
    if s.split not in ("auto", sel.train_split):
        print(
            f"note: {sel.label} was trained with the {sel.train_split} split; the test sequences are "
            "the same for both splits",
            file=sys.stderr,
        )
    per, results = test_scores(
        sel, sel.glacier, s.device, s.batch_size, s.bootstrap, s.seed, stride=s.stride
    )
    results.insert(1, "trained_split", sel.train_split)
    out = {
        k: sel.paths.result_file(sel.label, k)
        for k in ("results", "per_sequence", "motion", "markdown")
    }
    write_csv(per, out["per_sequence"])
    write_csv(results, out["results"])
    md = "".join(
        f"## targets: {t}\n\n{results_markdown(results.loc[results['targets'] == t])}\n"
        for t in results["targets"].unique()
    )
    write_text(f"# {sel.label} on {sel.glacier.name}: test scores\n\n{md}", out["markdown"])
    print(md, end="")
    written = [out["per_sequence"], out["results"], out["markdown"]]
    if s.flow != "none":
        motion = test_motion(sel, sel.glacier, s.flow, s.device, s.batch_size)
        write_csv(motion, out["motion"])
        written.append(out["motion"])
        print(
            "endpoint error of the forecasts' motion (px per window, mean over test starts): "
            + ", ".join(
                f"{k} {v:.3f}" for k, v in motion.groupby("source")["epe_px"].mean().items()
            )
        )
    else:
        out["motion"].unlink(missing_ok=True)  # no stale motion scores beside new ones
    settings.write(s, sel.paths.results_dir / f"{sel.label}_test.settings.toml", "test")
    for path in written:
        print(f"wrote {path}")
    return results


def run_infer(s: InferSettings, catalog: Catalog) -> Scene:
    """The ``infer`` stage: the full-scene prediction of one run, saved and drawn."""
    sel = select(s, catalog)
    scene = infer(sel, s.device, s.batch_size, s.last, s.pdf)
    settings.write(s, sel.paths.scene_dir(sel.label) / "infer.settings.toml", "infer")
    print(scene_scores(scene).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return scene


def run_loss_curves(s: LossCurvesSettings, catalog: Catalog) -> Path:
    """The ``loss-curves`` stage: one figure of every run's per-epoch losses."""
    path = loss_curves(catalog.root, s.runs, s.output, s.pdf)
    print(f"wrote {path}")
    return path
