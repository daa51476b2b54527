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

The folder's other modules are what these stages score and predict with: ``metrics`` (per-pixel
and per-frame scores; clustered, paired and two-way bootstrap intervals, verdicts), ``skill``
(skill against climatology, available skill, share), ``inference`` (batched full-scene prediction,
stitching, scene files) and ``flow`` (the ``flow`` stage: optical flow of forecasts, scored
against the true motion).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .. import advection, config, settings
from ..baselines import (
    BASELINES,
    ORACLE,
    REFERENCES,
    Reference,
    attach_truth,
    forecast,
    glacier_mask,
    glacier_sequences,
)
from ..catalog import Catalog, RunPaths
from ..checkpoints import resolve_device
from ..errors import DataError, GlacierError
from ..io import load_npz, markdown_table, read_frames, save_npz, write_csv, write_text
from ..models import Persistence
from ..models.baselines import persist
from ..motion import FARNEBACK_SETTINGS, Truth, load_truth, window_days
from ..plotting import loss_curves_figure
from ..selection import ModelChoice, Selected, select
from ..sequences import extract_patches, make_loader, split_indices
from ..settings import SettingsError, option
from . import metrics
from .flow import motion_errors
from .inference import N_IN, N_OUT, PERSISTENCE, Scene, infer, scene_scores

#: Split modes of ``sequences.split_indices`` (docs/preprocessing.md).
SPLITS = ("paper", "strict")


class PatchTake:
    """The baselines' ``take`` (:data:`baselines.Take`) over the patches of a batch of sequences:
    frames / climatology at frame indices, and ``crop`` of whole-frame forecasts to the patches."""

    def __init__(self, seq: Any, row: np.ndarray, col: np.ndarray):
        self.seq, self.row, self.col = seq, np.asarray(row), np.asarray(col)

    def __call__(self, stack: str, frame_idx: np.ndarray) -> np.ndarray:
        return self.seq.take(stack, frame_idx, self.row, self.col)

    def crop(self, scenes: np.ndarray, which: np.ndarray) -> np.ndarray:
        """(U, k, H, W) forecasts of U starts, ``which`` (B,) → (B, k, P, P) patches."""
        view = extract_patches(scenes, self.seq.patch, self.seq.stride)  # (U, k, nR, nC, P, P)
        return np.ascontiguousarray(view[which, :, self.row, self.col], dtype=np.float32)


def persistence_forecast(x: np.ndarray, n_out: int = N_OUT) -> np.ndarray:
    """The persistence baseline: the last input frame repeated, (B, T_in, H, W) → (B, n_out, H, W)."""
    return persist(x[:, -1:], n_out)


# ---------------------------------------------------------------------------------- test scores
def evaluate(
    model: torch.nn.Module,
    dataset: torch.utils.data.Dataset,
    indices: Sequence[int] | np.ndarray,
    batch_size: int = 100,
    device: str | torch.device | None = "cpu",
    progress: bool = True,
    ref: Reference | None = None,
    mask: np.ndarray | None = None,
    baselines: bool = True,
) -> pd.DataFrame:
    """Score ``model`` and the baselines on the sequences ``dataset[indices]``.

    ``dataset[index_array]`` gives a batch ``(x (B, 4, P, P), y (B, 4, P, P))`` float32 (a
    :class:`~glacier_movement.sequences.SequenceDataset` — with the climatology in ``x`` for a
    ``+clim`` model —, or a ``TensorDataset``). The model runs in eval mode under
    ``torch.no_grad()`` in batches of ``batch_size`` (its own predictions are fed back, no teacher
    forcing). With ``ref`` (the glacier's :class:`~glacier_movement.baselines.Reference`; needs a
    ``SequenceDataset`` with its climatology) every baseline of ``baselines.BASELINES`` is scored
    too — and the ``oracle`` when ``ref`` carries a synthetic glacier's truth
    (:func:`baselines.attach_truth`) —, else persistence only. ``mask`` (H, W) bool marks glacier
    pixels.

    Returns one row per sequence and predictor, in index order: ``predictor`` ("model" or the
    baseline's name), ``index`` (dataset index), ``start`` (start frame; -1 for datasets without
    positions), ``observed`` (no target window interpolated), ``MSE``, ``MAE``, ``SSIM``, ``PSNR``
    (see :func:`metrics.sequence_scores`), ``MSE_l1``… / ``MAE_l1``… per lead time, and with a mask
    ``MSE_glacier`` / ``MSE_off``.
    """
    indices = np.asarray(indices, dtype=np.int64)
    if indices.size == 0:
        raise GlacierError("no test sequences to evaluate: the frame file holds too few frames")
    device = resolve_device(device)
    model = model.to(device).eval()
    positions = hasattr(dataset, "position") and hasattr(dataset, "take")
    # duck-typed: a SequenceDataset where ``positions`` holds, else any map-style dataset
    seq: Any = dataset
    if ref is not None and not positions:
        raise GlacierError("baselines need a SequenceDataset with its climatology")
    mask_w: np.ndarray | None = None
    if mask is not None and positions:
        # a numpy mask gives numpy patches
        mask_w = np.asarray(
            extract_patches(mask[None].astype(np.float32), seq.patch, seq.stride)[0]
        )
    refs: tuple[str, ...] = ()
    if baselines:
        refs = (PERSISTENCE,) if ref is None else BASELINES
        refs += (ORACLE,) if ref is not None and ref.velocity is not None else ()
    names = ["model", *refs]
    parts: dict[str, list[dict[str, np.ndarray]]] = {n: [] for n in names}
    meta: dict[str, list[np.ndarray]] = {"start": [], "observed": []}
    # one vectorised gather per batch (SequenceDataset.batch), in index order
    loader = make_loader(seq, indices, batch_size, shuffle=False)  # any map-style dataset
    offset = 0
    with torch.no_grad():
        for x, y in tqdm(loader, desc="test", unit="batch", disable=not progress):
            pred = model(x.to(device)).float().cpu().numpy()
            x, y = x.numpy()[:, :N_IN], y.numpy()
            idx = indices[offset : offset + len(y)]
            offset += len(y)
            preds = {"model": pred}
            if positions:
                s, r, c = seq.position(idx)
                meta["start"].append(s)
                meta["observed"].append(seq.observed_targets(idx))
            else:
                meta["start"].append(np.full(len(y), -1))
                meta["observed"].append(np.ones(len(y), bool))
            if baselines and ref is not None:
                take = PatchTake(seq, r, c)
                preds |= {b: forecast(b, ref, s, take) for b in refs}
            elif baselines:
                preds[PERSISTENCE] = persistence_forecast(x, y.shape[1])
            for name, p in preds.items():
                scores = metrics.sequence_scores(p, y) | metrics.per_lead(p, y)
                if mask_w is not None:
                    scores |= metrics.masked_errors(p, y, mask_w[r, c])
                parts[name].append(scores)
    start, observed = np.concatenate(meta["start"]), np.concatenate(meta["observed"])
    frames = []
    for name, chunks in parts.items():
        cols = {m: np.concatenate([c[m] for c in chunks]) for m in chunks[0]}
        frames.append(
            pd.DataFrame(
                {"predictor": name, "index": indices, "start": start, "observed": observed, **cols}
            )
        )
    return pd.concat(frames, ignore_index=True)


#: Baselines every model is compared with, paired (the ``dMSE_<B>`` columns of the tables).
REFERENCE_BASELINES = (PERSISTENCE, "climatology")
#: A percentile bootstrap over fewer independent clusters cannot estimate the spread: below this
#: the tables give the interval but no verdict (docs/statistics.md).
MIN_VERDICT_CLUSTERS = 10
SCORE_COLUMNS = ("MSE", "MAE", "SSIM", "PSNR")


def score_rows(
    per_sequence: pd.DataFrame,
    n_resamples: int = 1000,
    seed: int = 0,
    versus: Sequence[str] = REFERENCE_BASELINES,
) -> pd.DataFrame:
    """Scores of every predictor with clustered, paired intervals.

    ``per_sequence``: rows of :func:`evaluate` with a ``predictor`` label, a ``key`` that pairs
    the sequences of different predictors (e.g. "parvati|1234"), a ``cluster`` label (forecast
    start × glacier) and a ``seed`` (training seed; baselines have one). Every predictor must
    cover the same keys. One row per predictor: ``n`` sequences, ``n_clusters``, ``n_seeds``, the
    means over seeds and sequences of every score, ``MSE_sd`` (standard deviation of the per-seed
    MSE), ``MSE_low/high``, ``MAE_low/high`` (95 % clustered bootstrap, seeds × clusters), and for
    each baseline B in ``versus``: ``dMSE_B``, ``dMSE_B_low``, ``dMSE_B_high``, ``dMAE_B``… (the
    paired interval of predictor − B) and ``vs_B`` (:func:`metrics.verdict` of the MSE interval).
    """
    keys = np.sort(np.asarray(per_sequence["key"].unique()))
    clusters = per_sequence.drop_duplicates("key").set_index("key").loc[keys, "cluster"].to_numpy()
    enough = metrics.n_clusters(clusters) >= 2 and n_resamples > 0

    def matrix(sub: pd.DataFrame, col: str) -> np.ndarray:
        wide = sub.pivot_table(index="seed", columns="key", values=col, aggfunc="first")
        if wide.shape[1] != len(keys):
            raise GlacierError(
                f"predictor {sub['predictor'].iloc[0]!r} was scored on {wide.shape[1]} of the "
                f"{len(keys)} sequences: score every predictor on the same test set"
            )
        return wide[keys].to_numpy(dtype=np.float64)

    err = {}
    rows = []
    for name, sub in per_sequence.groupby("predictor", sort=False):
        err[name] = {m: matrix(sub, m) for m in ("MSE", "MAE")}
        cols = [c for c in sub.columns if c.startswith(("MSE", "MAE", "SSIM", "PSNR"))]
        seed_means = sub.groupby("seed")["MSE"].mean()
        row = {
            "model": name,
            "n": len(keys),
            "n_clusters": metrics.n_clusters(clusters),
            "n_seeds": int(sub["seed"].nunique()),
            **{c: float(np.nanmean(sub[c].to_numpy(dtype=np.float64))) for c in cols},
            "MSE_sd": float(seed_means.std(ddof=1)) if len(seed_means) > 1 else 0.0,
        }
        for m in ("MSE", "MAE"):
            iv = (
                metrics.cluster_bootstrap(err[name][m], clusters, n_resamples, seed=seed)
                if enough
                else None
            )
            row[f"{m}_low"] = iv.low if iv else math.nan
            row[f"{m}_high"] = iv.high if iv else math.nan
        rows.append(row)
    for row in rows:
        for b in versus:
            if b not in err:
                continue
            for m in ("MSE", "MAE"):
                a, ref = err[row["model"]][m], err[b][m][0]
                if enough:
                    iv = metrics.paired_difference(a, ref, clusters, n_resamples, seed=seed)
                    row |= {
                        f"d{m}_{b}": iv.mean,
                        f"d{m}_{b}_low": iv.low,
                        f"d{m}_{b}_high": iv.high,
                    }
                else:
                    d = float(np.mean(a) - np.mean(ref))
                    row |= {f"d{m}_{b}": d, f"d{m}_{b}_low": math.nan, f"d{m}_{b}_high": math.nan}
            row[f"vs_{b}"] = (
                ""
                if row["model"] == b
                else metrics.verdict(
                    metrics.Interval(row[f"dMSE_{b}"], row[f"dMSE_{b}_low"], row[f"dMSE_{b}_high"])
                )
                if row["n_clusters"] >= MIN_VERDICT_CLUSTERS and enough
                else f"too few clusters ({row['n_clusters']})"
            )
    return pd.DataFrame(rows)


def pooling_labels(per_sequence: pd.DataFrame, label: str, glacier: str, seed: int = 0):
    """The rows of :func:`evaluate` ready for :func:`score_rows`: the model's rows named
    ``label``, a ``key`` that pairs predictors (glacier | sequence index), the ``cluster``
    (glacier | forecast start), the training ``seed`` and the ``glacier``."""
    return per_sequence.assign(
        predictor=per_sequence["predictor"].replace({"model": label}),
        key=glacier + "|" + per_sequence["index"].astype(str),
        cluster=glacier + "|" + per_sequence["start"].astype(str),
        seed=seed,
        glacier=glacier,
    )


def summarize(
    per_sequence: pd.DataFrame,
    label: str,
    glacier: str,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Test scores of one run from the rows of :func:`evaluate`: for ``targets`` = "observed"
    (sequences whose target windows were all observed: the headline) and "all", one row per
    predictor (the model's named ``label``) from :func:`score_rows`; clusters are the forecast
    start times of ``glacier``."""
    df = pooling_labels(per_sequence, label, glacier)
    out = []
    for targets, sel in (("observed", df.loc[df["observed"]]), ("all", df)):
        if len(sel):
            out.append(score_rows(sel, n_bootstrap, seed).assign(targets=targets))
    return pd.concat(out, ignore_index=True)


def ci_text(low: float, high: float, digits: int = 4) -> str:
    """An interval as table text, ``[low, high]`` with ``digits`` decimals; "–" when an end is NaN."""
    return (
        "–"
        if not (np.isfinite(low) and np.isfinite(high))
        else f"[{low:.{digits}f}, {high:.{digits}f}]"
    )


def with_ci(r: dict, col: str, fmt: str = "+.2f") -> str:
    """``r[col]`` and its interval ``col_low``, ``col_high`` as table text ("–" when NaN)."""
    v = r.get(col, math.nan)
    if v is None or not np.isfinite(v):
        return "–"
    lo, hi = r.get(f"{col}_low", math.nan), r.get(f"{col}_high", math.nan)
    ci = f" [{lo:{fmt}}, {hi:{fmt}}]" if np.isfinite(lo) and np.isfinite(hi) else ""
    return f"{v:{fmt}}{ci}"


def results_markdown(results: pd.DataFrame, versus: Sequence[str] = REFERENCE_BASELINES) -> str:
    """A Markdown table of :func:`score_rows` output: per predictor MSE and MAE with their
    clustered 95 % intervals, SSIM, and the paired MSE difference to each baseline in ``versus``
    with its interval and verdict; the cluster count below it."""
    header = ["model", "MSE [95 % CI]", "MAE [95 % CI]", "SSIM"]
    header += [f"MSE − {b} [95 % CI]: verdict" for b in versus if f"dMSE_{b}" in results]
    skill = "skill_climatology" in results
    if skill:
        header += ["skill vs climatology [95 % CI]", "share of available skill [95 % CI]"]
    records = results.to_dict(orient="records")
    # the models first, then the baselines, the oracle (a ceiling, not ranked) last
    records.sort(key=lambda r: (r["model"] in REFERENCES) + (r["model"] == ORACLE))
    rows = []
    for r in records:
        cells = [
            f"{r['model']} (ceiling, not ranked)" if r["model"] == ORACLE else str(r["model"]),
            f"{r['MSE']:.4f} {ci_text(r['MSE_low'], r['MSE_high'])}",
            f"{r['MAE']:.4f} {ci_text(r['MAE_low'], r['MAE_high'])}",
            f"{r['SSIM']:.3f}",
        ]
        for b in versus:
            if f"dMSE_{b}" not in r:
                continue
            if r["model"] == b:
                cells.append("(itself)")
            else:
                cells.append(
                    f"{r[f'dMSE_{b}']:+.4f} {ci_text(r[f'dMSE_{b}_low'], r[f'dMSE_{b}_high'])}: "
                    f"**{r[f'vs_{b}']}**"
                )
        if skill:
            cells += [
                with_ci(r, "skill_climatology", "+.3f"),
                with_ci(r, "share_available", ".2f"),
            ]
        rows.append(cells)
    first = results.iloc[0]
    seeds = int(results["n_seeds"].max())
    return (
        markdown_table(header, rows)
        + f"\n\n{int(first['n']):,} sequences in {int(first['n_clusters'])} independent clusters "
        f"(forecast start × glacier){f'; {seeds} training seeds' if seeds > 1 else ''}.\n"
    )


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

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.bootstrap < 0:
            raise SettingsError(
                "bootstrap", f"must be 0 (none) or a number of resamples, got {self.bootstrap}"
            )


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
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score a selected checkpoint and every baseline on ``glacier``'s test sequences.

    The sequences are those a run on that glacier trains on (Aletsch: its first 19 frames), with
    the test part of the chronological split (the same for the paper and strict splits). Returns
    (per-sequence rows of :func:`evaluate`, :func:`summarize` table).
    """
    paths = config.Paths(sel.paths.root, glacier.name)
    if not paths.frames.is_file():
        raise DataError(
            f"{paths.frames} does not exist: run `glacier-movement preprocess --glacier {glacier.name}` first"
        )
    fr = read_frames(paths.frames)
    model = sel.load_model(device)
    ds, ref = glacier_sequences(
        fr, glacier.train_frames, sel.patch, sel.stride, getattr(model, "clim_input", False)
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
    per, results = test_scores(sel, sel.glacier, s.device, s.batch_size, s.bootstrap, s.seed)
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
