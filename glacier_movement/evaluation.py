"""Test-set scores, full-scene predictions and loss curves (docs/evaluation.md).

* **Scores** — per-pixel MSE and MAE (the paper's convention: the mean over every predicted pixel
  of every test sequence), SSIM and PSNR per predicted frame (data range 1.0, NDSI units),
  averaged; each for the model and, always beside it, for the persistence baseline (repeat the
  last input frame) on the same sequences. Per-sequence errors feed a percentile bootstrap
  (``scipy.stats.bootstrap``) of the mean.
* **Full scenes** — :func:`predict_scene` cuts the 4 input frames into non-overlapping P×P
  patches, predicts them in batches and stitches the 4 predicted frames back; ``infer`` saves them
  as ``.npy``, grayscale PNG (PDF) and georeferenced GeoTIFF.
* **Loss curves** — per-epoch train/validation loss of every run under ``<root>/models``.

Commands: ``glacier-movement test``, ``infer`` and ``loss-curves``.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import ndimage, stats
from tqdm.auto import tqdm

from . import config, metrics, settings
from .baselines import (
    BASELINES,
    Reference,
    forecast,
    glacier_mask,
    glacier_sequences,
    scene_take,
)
from .catalog import Catalog
from .checkpoints import resolve_device
from .errors import DataError, GlacierError
from .io import Frames, atomic_path, read_frames, write_serialized
from .selection import ModelChoice, Selected, select
from .sequences import extract_patches, make_loader, split_indices, stitch_patches
from .settings import SettingsError, option

#: Name of the persistence baseline in every table.
PERSISTENCE = "persistence"
#: Split modes of ``sequences.split_indices`` (docs/preprocessing.md).
SPLITS = ("paper", "strict")
#: PSNR of a frame predicted without any error is infinite; it is capped here (MSE floor 1e-10
#: for data range 1) so that means stay finite and the ordering of predictors is kept.
PSNR_MAX_DB = 100.0
#: Frames of one full-scene test window: 4 inputs, then 4 targets.
N_IN = N_OUT = 4

METRICS = ("MSE", "MAE", "SSIM", "PSNR")


# ------------------------------------------------------------------------------------- metrics
def sequence_errors(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-sequence mean squared and mean absolute error.

    ``pred``, ``target``: (B, T, H, W) NDSI. Returns two float64 arrays (B,): the mean over the
    T·H·W pixels of each sequence. All sequences have the same size, so the mean of these is the
    paper's per-pixel MSE/MAE over the whole set.
    """
    pred, target = _pair(pred, target)
    diff = pred.astype(np.float64) - target
    axes = tuple(range(1, diff.ndim))
    return np.mean(diff * diff, axis=axes), np.mean(np.abs(diff), axis=axes)


def mse(pred: np.ndarray, target: np.ndarray) -> float:
    """Per-pixel mean squared error over all pixels (the paper's MSE)."""
    pred, target = _pair(pred, target)
    return float(np.mean(np.square(pred.astype(np.float64) - target)))


def mae(pred: np.ndarray, target: np.ndarray) -> float:
    """Per-pixel mean absolute error over all pixels (the paper's MAE)."""
    pred, target = _pair(pred, target)
    return float(np.mean(np.abs(pred.astype(np.float64) - target)))


def ssim_frames(
    pred: np.ndarray, target: np.ndarray, data_range: float = 1.0, win_size: int = 7
) -> np.ndarray:
    """SSIM of every frame, (..., H, W) → (...).

    The same computation as ``skimage.metrics.structural_similarity(target, pred,
    data_range=data_range)`` per frame (7×7 uniform window, sample covariance, K1 = 0.01,
    K2 = 0.03, mean over the window centres at least 3 px from the border), vectorised over all
    frames at once instead of one call per frame. Frames smaller than 7 px use the largest odd
    window that fits.
    """
    pred, target = _pair(pred, target)
    win_size = min(win_size, *(s if s % 2 else s - 1 for s in pred.shape[-2:]))
    if win_size < 1:
        raise ValueError(f"frames of shape {pred.shape[-2:]} are too small for SSIM")
    x = target.astype(np.float64)
    y = pred.astype(np.float64)
    # one filter call over the five stacked moments (E[x], E[y], E[x²], E[y²], E[xy])
    ux, uy, uxx, uyy, uxy = ndimage.uniform_filter(
        np.stack([x, y, x * x, y * y, x * y]), size=win_size, axes=(-2, -1)
    )
    n = win_size * win_size
    cov_norm = n / (n - 1) if n > 1 else 1.0
    vx, vy, vxy = cov_norm * (uxx - ux * ux), cov_norm * (uyy - uy * uy), cov_norm * (uxy - ux * uy)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    pad = (win_size - 1) // 2
    h, w = s.shape[-2:]
    return s[..., pad : h - pad, pad : w - pad].mean(axis=(-2, -1))


def psnr_frames(
    pred: np.ndarray, target: np.ndarray, data_range: float = 1.0, max_db: float = PSNR_MAX_DB
) -> np.ndarray:
    """PSNR in dB of every frame, (..., H, W) → (...): 10·log10(range² / MSE), capped at ``max_db``.

    Equals ``skimage.metrics.peak_signal_noise_ratio(target, pred, data_range=data_range)``
    wherever that is finite; an exact prediction (e.g. an empty patch predicted empty) gets
    ``max_db`` instead of infinity.
    """
    pred, target = _pair(pred, target)
    err = np.mean(np.square(pred.astype(np.float64) - target), axis=(-2, -1))
    floor = data_range**2 * 10 ** (-max_db / 10)
    return 10 * np.log10(data_range**2 / np.maximum(err, floor))


def sequence_scores(pred: np.ndarray, target: np.ndarray) -> dict[str, np.ndarray]:
    """MSE, MAE, SSIM and PSNR of each sequence, (B, T, H, W) → {metric: (B,)}.

    SSIM and PSNR are per frame, then averaged over the sequence's T frames.
    """
    m2, m1 = sequence_errors(pred, target)
    return {
        "MSE": m2,
        "MAE": m1,
        "SSIM": ssim_frames(pred, target).mean(axis=-1),
        "PSNR": psnr_frames(pred, target).mean(axis=-1),
    }


def persistence_forecast(x: np.ndarray, n_out: int = N_OUT) -> np.ndarray:
    """The persistence baseline: the last input frame repeated, (B, T_in, H, W) → (B, n_out, H, W)."""
    return np.repeat(x[:, -1:], n_out, axis=1)


@dataclass(frozen=True)
class Interval:
    """Bootstrap estimate of a mean: the bootstrap mean and the percentile interval."""

    mean: float
    low: float
    high: float


def bootstrap_interval(
    values: np.ndarray, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> Interval:
    """Percentile bootstrap of the mean of ``values`` (N,), resampled with replacement.

    Returns the mean of the bootstrap distribution and its (1−c)/2 and (1+c)/2 percentiles
    (2.5 / 97.5 % for c = 0.95), as the paper's bootstrap option did (docs/preprocessing.md).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size < 2:
        raise GlacierError(f"a bootstrap needs at least 2 test sequences, got {values.size}")
    if n_resamples < 1:
        raise GlacierError(f"--bootstrap must be a positive number of resamples, got {n_resamples}")
    res = stats.bootstrap(
        (values,),
        np.mean,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        # bound the resampled matrix (batch × N float64) to ~160 MB on large test sets
        batch=max(1, 20_000_000 // values.size),
        rng=np.random.default_rng(seed),
    )
    ci = res.confidence_interval
    return Interval(float(res.bootstrap_distribution.mean()), float(ci.low), float(ci.high))


def _pair(pred, target) -> tuple[np.ndarray, np.ndarray]:
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from target shape {target.shape}")
    return pred, target


# ---------------------------------------------------------------------------------- test scores
def _per_lead(pred: np.ndarray, target: np.ndarray) -> dict[str, np.ndarray]:
    d = pred.astype(np.float64) - target
    out = {}
    for k in range(d.shape[1]):
        out[f"MSE_l{k + 1}"] = np.mean(d[:, k] ** 2, axis=(-2, -1))
        out[f"MAE_l{k + 1}"] = np.mean(np.abs(d[:, k]), axis=(-2, -1))
    return out


def _masked(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    """MSE over the glacier pixels (``mask`` (B, P, P)) and off them, per sequence; NaN where a
    sequence has none."""
    sq = (pred.astype(np.float64) - target) ** 2
    m = mask[:, None].astype(np.float64)
    n_on = m.sum(axis=(1, 2, 3)) * sq.shape[1]
    n_off = (1 - m).sum(axis=(1, 2, 3)) * sq.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "MSE_glacier": np.where(n_on > 0, (sq * m).sum(axis=(1, 2, 3)) / n_on, np.nan),
            "MSE_off": np.where(n_off > 0, (sq * (1 - m)).sum(axis=(1, 2, 3)) / n_off, np.nan),
        }


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
    too, else persistence only. ``mask`` (H, W) bool marks glacier pixels.

    Returns one row per sequence and predictor, in index order: ``predictor`` ("model" or the
    baseline's name), ``index`` (dataset index), ``start`` (start frame; -1 for datasets without
    positions), ``observed`` (no target window interpolated), ``MSE``, ``MAE``, ``SSIM``, ``PSNR``
    (see :func:`sequence_scores`), ``MSE_l1``… / ``MAE_l1``… per lead time, and with a mask
    ``MSE_glacier`` / ``MSE_off``.
    """
    indices = np.asarray(indices, dtype=np.int64)
    if indices.size == 0:
        raise GlacierError("no test sequences to evaluate: the frame file holds too few frames")
    device = resolve_device(device)
    model = model.to(device).eval()
    positions = hasattr(dataset, "position") and hasattr(dataset, "take")
    if ref is not None and not positions:
        raise GlacierError("baselines need a SequenceDataset with its climatology")
    mask_w = None
    if mask is not None and positions:
        mask_w = extract_patches(mask[None].astype(np.float32), dataset.patch, dataset.stride)[0]
    names = ["model", *(() if not baselines else BASELINES if ref is not None else (PERSISTENCE,))]
    parts: dict[str, list[dict[str, np.ndarray]]] = {n: [] for n in names}
    meta: dict[str, list[np.ndarray]] = {"start": [], "observed": []}
    # one vectorised gather per batch (SequenceDataset.batch), in index order
    loader = make_loader(dataset, indices, batch_size, shuffle=False)
    offset = 0
    with torch.no_grad():
        for x, y in tqdm(loader, desc="test", unit="batch", disable=not progress):
            pred = model(x.to(device)).float().cpu().numpy()
            x, y = x.numpy()[:, :N_IN], y.numpy()
            idx = indices[offset : offset + len(y)]
            offset += len(y)
            preds = {"model": pred}
            if positions:
                s, r, c = dataset.position(idx)
                meta["start"].append(s)
                meta["observed"].append(dataset.observed_targets(idx))
            else:
                meta["start"].append(np.full(len(y), -1))
                meta["observed"].append(np.ones(len(y), bool))
            if baselines and ref is not None:
                take = lambda stack, fi, r=r, c=c: dataset.take(stack, fi, r, c)  # noqa: E731
                preds |= {b: forecast(b, ref, s, take) for b in BASELINES}
            elif baselines:
                preds[PERSISTENCE] = persistence_forecast(x, y.shape[1])
            for name, p in preds.items():
                scores = sequence_scores(p, y) | _per_lead(p, y)
                if mask_w is not None:
                    scores |= _masked(p, y, mask_w[r, c])
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
    keys = np.sort(per_sequence["key"].unique())
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
    for targets, sel in (("observed", df[df["observed"]]), ("all", df)):
        if len(sel):
            out.append(score_rows(sel, n_bootstrap, seed).assign(targets=targets))
    return pd.concat(out, ignore_index=True)


def _ci(low: float, high: float, digits: int = 4) -> str:
    return (
        "–"
        if not (np.isfinite(low) and np.isfinite(high))
        else f"[{low:.{digits}f}, {high:.{digits}f}]"
    )


def results_markdown(results: pd.DataFrame, versus: Sequence[str] = REFERENCE_BASELINES) -> str:
    """A Markdown table of :func:`score_rows` output: per predictor MSE and MAE with their
    clustered 95 % intervals, SSIM, and the paired MSE difference to each baseline in ``versus``
    with its interval and verdict; the cluster count below it."""
    header = ["model", "MSE [95 % CI]", "MAE [95 % CI]", "SSIM"]
    header += [f"MSE − {b} [95 % CI]: verdict" for b in versus if f"dMSE_{b}" in results]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    records = results.to_dict(orient="records")
    records.sort(key=lambda r: r["model"] in BASELINES)  # the models first, then the baselines
    for r in records:
        cells = [
            str(r["model"]),
            f"{r['MSE']:.4f} {_ci(r['MSE_low'], r['MSE_high'])}",
            f"{r['MAE']:.4f} {_ci(r['MAE_low'], r['MAE_high'])}",
            f"{r['SSIM']:.3f}",
        ]
        for b in versus:
            if f"dMSE_{b}" not in r:
                continue
            if r["model"] == b:
                cells.append("(itself)")
            else:
                cells.append(
                    f"{r[f'dMSE_{b}']:+.4f} {_ci(r[f'dMSE_{b}_low'], r[f'dMSE_{b}_high'])}: "
                    f"**{r[f'vs_{b}']}**"
                )
        lines.append("| " + " | ".join(cells) + " |")
    first = results.iloc[0]
    seeds = int(results["n_seeds"].max())
    lines.append(
        f"\n{int(first['n']):,} sequences in {int(first['n_clusters'])} independent clusters "
        f"(forecast start × glacier){f'; {seeds} training seeds' if seeds > 1 else ''}."
    )
    return "\n".join(lines) + "\n"


def result_paths(results_dir: Path, label: str) -> dict[str, Path]:
    """Where ``test`` writes the scores of ``label`` (``<root>/<glacier>/results/``)."""
    return {
        "results": results_dir / f"{label}_results.csv",
        "per_sequence": results_dir / f"{label}_per_sequence.csv.gz",
        "motion": results_dir / f"{label}_motion_epe.csv",
        "markdown": results_dir / f"{label}_results.md",
    }


def load_per_sequence(results_dir: Path, label: str) -> pd.DataFrame:
    """The per-sequence errors ``test`` wrote for ``label`` (model and baselines)."""
    path = result_paths(Path(results_dir), label)["per_sequence"]
    if not path.is_file():
        raise DataError(f"{path} does not exist: run `glacier-movement test` for {label} first")
    return pd.read_csv(path)


def write_csv(df: pd.DataFrame, path: Path) -> Path:
    """Write a DataFrame as CSV atomically (no index column; gzip for a ``.gz`` name)."""
    with atomic_path(path, suffix=".tmp" + "".join(path.suffixes)) as tmp:
        gz = path.suffix == ".gz"
        df.to_csv(
            tmp, index=False, compression={"method": "gzip", "compresslevel": 1} if gz else None
        )
    return path


def write_text(text: str, path: Path) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------ full-scene prediction
def predict_scene(
    model: torch.nn.Module,
    frames: np.ndarray,
    patch: int,
    batch_size: int = 100,
    device: str | torch.device | None = "cpu",
    progress: bool = False,
    climatology: np.ndarray | None = None,
) -> np.ndarray:
    """Predict the 4 frames after ``frames[:4]`` over the whole scene.

    ``frames``: (T ≥ 4, H, W) NDSI (the full-scene window; only the first 4 frames are read).
    The 4 input frames are zero-padded at the bottom and right to multiples of ``patch`` (0 is
    "no snow/ice", the frames' own background), cut into non-overlapping ``patch``×``patch``
    patches (stride = patch, as the original), predicted in batches of ``batch_size`` under
    ``torch.no_grad()`` in eval mode, stitched back and cropped to (H, W).

    A ``+clim`` model also gets ``climatology`` (8, H, W): that of the 4 input and 4 target
    windows. Returns float32 (4, H, W).
    """
    frames = np.asarray(frames, dtype=np.float32)
    n_ch = N_IN
    if getattr(model, "clim_input", False):
        if climatology is None or np.shape(climatology)[0] != N_IN + N_OUT:
            raise GlacierError("a +clim model needs the climatology of the 8 windows of the scene")
        frames = np.concatenate([frames[:N_IN], np.asarray(climatology, np.float32)])
        n_ch = 2 * N_IN + N_OUT
    if frames.ndim != 3 or frames.shape[0] < N_IN:
        raise GlacierError(
            f"a full-scene prediction needs (>= {N_IN}, H, W) frames, got {frames.shape}"
        )
    _, h, w = frames.shape
    ph, pw = -(-h // patch) * patch, -(-w // patch) * patch
    inputs = np.zeros((n_ch, ph, pw), dtype=np.float32)
    inputs[:, :h, :w] = frames[:n_ch]
    grid = extract_patches(inputs, patch, patch)  # (C, nR, nC, P, P)
    n_r, n_c = grid.shape[1:3]
    # (nR·nC, C, P, P): one sample per patch position, in row-major order
    batch = np.ascontiguousarray(grid.transpose(1, 2, 0, 3, 4)).reshape(
        n_r * n_c, n_ch, patch, patch
    )
    device = resolve_device(device)
    model = model.to(device).eval()
    out = np.empty((n_r * n_c, N_OUT, patch, patch), dtype=np.float32)
    with torch.no_grad():
        for start in tqdm(
            range(0, len(batch), batch_size), desc="scene", unit="batch", disable=not progress
        ):
            chunk = torch.from_numpy(batch[start : start + batch_size]).to(device)
            pred = model(chunk)
            if pred.shape != (len(chunk), N_OUT, patch, patch):
                raise ValueError(
                    f"the model returned {tuple(pred.shape)} for input {tuple(chunk.shape)}"
                )
            out[start : start + len(chunk)] = pred.float().cpu().numpy()
    grid_out = out.reshape(n_r, n_c, N_OUT, patch, patch).transpose(2, 0, 1, 3, 4)
    scene = stitch_patches(grid_out, shape=(ph, pw), stride=patch)
    return np.ascontiguousarray(scene[:, :h, :w], dtype=np.float32)


def persistence_scene(frames: np.ndarray) -> np.ndarray:
    """The persistence baseline over the whole scene: frame 3 repeated, (T ≥ 4, H, W) → (4, H, W)."""
    frames = np.asarray(frames, dtype=np.float32)
    return np.repeat(frames[N_IN - 1 : N_IN], N_OUT, axis=0)


def save_array(arr: np.ndarray, path: Path) -> Path:
    """``np.save`` atomically."""
    return write_serialized(path, lambda f: np.save(f, arr), suffix=".tmp.npy")


def save_grayscale(img: np.ndarray, path: Path) -> Path:
    """Write a 2-D image as 8-bit grayscale PNG or PDF (by suffix), min–max scaled as the original.

    (x − min) / (max − min) · 255.999, floored (the original's ``minmaxConvertToRGB``); a
    constant image is written black.
    """
    from PIL import Image

    img = np.asarray(img, dtype=np.float64)
    lo, hi = float(img.min()), float(img.max())
    scaled = (img - lo) / (hi - lo) * 255.999 if hi > lo else np.zeros_like(img)
    fmt = {".png": "PNG", ".pdf": "PDF"}[path.suffix.lower()]
    with atomic_path(path, suffix=".tmp" + path.suffix) as tmp:
        Image.fromarray(scaled.astype(np.uint8)).save(tmp, format=fmt)  # 2-D uint8: mode "L"
    return path


def write_geotiff(
    path: Path,
    bands: np.ndarray,
    epsg: int,
    transform: Sequence[float],
    descriptions: Sequence[str] = (),
) -> Path:
    """Write (K, H, W) as a K-band float32 GeoTIFF in EPSG:``epsg`` on the affine ``transform``.

    ``transform`` is the 6 numbers (a, b, c, d, e, f) of the frames' grid (``io.Frames``); no
    nodata value (0 is a real value: no snow/ice). Opens in QGIS/GDAL as is.
    """
    import rasterio
    from affine import Affine

    bands = np.asarray(bands, dtype=np.float32)
    if bands.ndim == 2:
        bands = bands[None]
    profile = {
        "driver": "GTiff",
        "width": bands.shape[2],
        "height": bands.shape[1],
        "count": bands.shape[0],
        "dtype": "float32",
        "crs": rasterio.crs.CRS.from_epsg(int(epsg)),
        "transform": Affine(*[float(v) for v in transform[:6]]),
        "nodata": None,
        "compress": "deflate",
    }
    with atomic_path(path, suffix=".tmp.tif") as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(bands)
            for i, text in enumerate(descriptions, start=1):
                dst.set_band_description(i, text)
    return path


@dataclass
class Scene:
    """A full-scene test window and its predictions (what ``infer`` writes).

    ``inputs``, ``targets``, ``predictions``, ``persistence``: float32 (4, H, W) NDSI;
    ``baselines``: every baseline's forecast of the targets (name → (4, H, W));
    ``frame_indices``: the 8 frame indices (4 inputs then 4 targets) in ``frames.npz``;
    ``window_start``: their window start days (datetime64[D], (8,)).
    """

    inputs: np.ndarray
    targets: np.ndarray
    predictions: np.ndarray
    persistence: np.ndarray
    frame_indices: np.ndarray
    window_start: np.ndarray
    meta: dict = field(default_factory=dict)
    baselines: dict[str, np.ndarray] = field(default_factory=dict)

    def forecasts(self) -> dict[str, np.ndarray]:
        """The model's and every baseline's forecast (persistence alone for older scenes)."""
        return {"model": self.predictions, **(self.baselines or {PERSISTENCE: self.persistence})}


def scene_window(n_frames: int, last: int = 8) -> np.ndarray:
    """Indices of the 8-frame window starting ``last`` frames before the end (default: the last 8).

    Parvati (36 frames) → 28…35, Aletsch (27 frames) → 19…26, as the original.
    """
    n = N_IN + N_OUT
    if last < n or last > n_frames:
        raise GlacierError(
            f"--last {last} does not fit: the frame file holds {n_frames} frames and a scene test "
            f"needs {n} (use {n} <= --last <= {n_frames}, or preprocess more years)"
        )
    first = n_frames - last
    return np.arange(first, first + n)


def tile_errors(pred: np.ndarray, target: np.ndarray, tile: int) -> dict[str, np.ndarray]:
    """Per-pixel MSE and MAE of each ``tile``×``tile`` tile of a scene, over its 4 frames.

    ``pred``, ``target`` (T, H, W); the scene is cropped to whole tiles. Returns (n_tiles,) arrays.
    """
    t, h, w = target.shape
    ny, nx = h // tile, w // tile
    if ny * nx == 0:
        raise GlacierError(f"a {h}×{w} scene holds no {tile}×{tile} tile to resample")
    d = (pred - target)[:, : ny * tile, : nx * tile].astype(np.float64)
    d = d.reshape(t, ny, tile, nx, tile)
    return {
        "MSE": (d**2).mean(axis=(0, 2, 4)).ravel(),
        "MAE": np.abs(d).mean(axis=(0, 2, 4)).ravel(),
    }


def scene_scores(scene: Scene, n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """MSE, MAE, SSIM and PSNR of the stitched predictions and of persistence against the targets
    (the original's ``AletschMSE.py``): rows ``model``/``persistence``. ``MSE_low`` … ``MAE_high``:
    the 95 % percentile bootstrap interval over the scene's patch-size tiles (the same tiles
    for every predictor), so full-scene scores carry an uncertainty like the test-set scores."""
    tile = int(scene.meta.get("patch") or 10)
    rows = []
    for name, pred in scene.forecasts().items():
        s = sequence_scores(pred[None], scene.targets[None])
        row = {"predictor": name, **{m: float(v[0]) for m, v in s.items()}}
        for metric, values in tile_errors(pred, scene.targets, tile).items():
            if values.size >= 2 and n_resamples > 0:
                ci = bootstrap_interval(values, n_resamples, seed=seed)
                row |= {f"{metric}_low": ci.low, f"{metric}_high": ci.high}
        rows.append(row)
    return pd.DataFrame(rows)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    den = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum()) / den if den > 0 else math.nan


def structure_scores(scene: Scene) -> pd.DataFrame:
    """Does a forecast carry the scene's structure, or is it a gray field near the mean?

    Per predictor and lead time: ``spatial_sd`` (standard deviation over the scene's pixels)
    beside the target's (``target_sd``), ``pattern_corr`` (Pearson correlation with the target
    over the pixels) and ``anomaly_corr`` (the same of the departures from the climatology — the
    anomaly correlation coefficient of forecast verification; needs the climatology baseline).
    """
    clim = scene.baselines.get("climatology")
    rows = []
    for name, pred in scene.forecasts().items():
        for k in range(scene.targets.shape[0]):
            p, t = pred[k].astype(np.float64), scene.targets[k].astype(np.float64)
            rows.append(
                {
                    "predictor": name,
                    "lead": k + 1,
                    "spatial_sd": float(p.std()),
                    "target_sd": float(t.std()),
                    "pattern_corr": _corr(p, t),
                    "anomaly_corr": math.nan if clim is None else _corr(p - clim[k], t - clim[k]),
                }
            )
    return pd.DataFrame(rows)


def scene_dir(paths: config.Paths, label: str) -> Path:
    """Where ``infer`` writes the scene of ``label``: ``<root>/<glacier>/results/<label>/``."""
    return paths.results_dir / label


def scene_figure_path(paths: config.Paths, label: str) -> Path:
    return paths.figures_dir / f"{label}_scene.png"


def save_scene(scene: Scene, out_dir: Path, frames: Frames, pdf: bool = False) -> list[Path]:
    """Write a scene: arrays (.npy), grayscale images, GeoTIFFs; ``scene.json`` last.

    ``scene.json`` is written after everything else, so its presence marks a complete set.
    """
    (out_dir / "scene.json").unlink(missing_ok=True)  # an interrupted rewrite is not complete
    written = []
    for name in ("inputs", "targets", "predictions", "persistence"):
        written.append(save_array(getattr(scene, name), out_dir / f"{name}.npy"))
    for name, arr in scene.baselines.items():
        written.append(save_array(arr, out_dir / f"baseline_{name}.npy"))
    for name in ("targets", "predictions"):
        arr = getattr(scene, name)
        for k in range(arr.shape[0]):
            for ext in (".png", ".pdf") if pdf else (".png",):
                written.append(save_grayscale(arr[k], out_dir / "images" / f"{name}_{k}{ext}"))
        dates = [str(d) for d in scene.window_start[N_IN:]]
        written.append(
            write_geotiff(
                out_dir / f"{name}.tif",
                arr,
                frames.epsg,
                frames.transform,
                [f"{name} {d}" for d in dates],
            )
        )
    meta = dict(scene.meta)
    meta |= {
        "frame_indices": [int(i) for i in scene.frame_indices],
        "window_start": [str(d) for d in scene.window_start],
        "shape": list(scene.targets.shape),
        "epsg": frames.epsg,
        "scores": scene_scores(scene).to_dict(orient="records"),
        "structure": structure_scores(scene).to_dict(orient="records"),
    }
    written.append(write_text(json.dumps(meta, indent=2) + "\n", out_dir / "scene.json"))
    return written


def load_scene(out_dir: Path) -> Scene | None:
    """Read a scene written by :func:`save_scene`, or None when it is absent or incomplete."""
    meta_path = out_dir / "scene.json"
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        arrays = {
            n: np.load(out_dir / f"{n}.npy", allow_pickle=False)
            for n in ("inputs", "targets", "predictions", "persistence")
        }
        baselines = {
            p.stem.removeprefix("baseline_"): np.load(p, allow_pickle=False)
            for p in sorted(out_dir.glob("baseline_*.npy"))
        }
    except (OSError, ValueError):
        return None
    return Scene(
        **arrays,
        baselines=baselines,
        frame_indices=np.asarray(meta["frame_indices"]),
        window_start=np.asarray(meta["window_start"], dtype="datetime64[D]"),
        meta=meta,
    )


# --------------------------------------------------------------------------------- loss curves
def load_epoch_losses(models_dir: Path, runs: Sequence[str] | None = None) -> pd.DataFrame:
    """Per-epoch losses of every run (or of ``runs``) under ``models_dir``.

    Reads ``<models_dir>/<run>/epochs.csv`` (epoch, train_loss, val_loss). Returns columns
    ``run, epoch, train_loss, val_loss``, runs in name order.
    """
    models_dir = Path(models_dir)
    files = (
        [models_dir / r / "epochs.csv" for r in runs]
        if runs
        else sorted(models_dir.glob("*/epochs.csv"))
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
    return pd.concat(parts, ignore_index=True)[["run", "epoch", "train_loss", "val_loss"]]


def loss_curves(
    root: Path, runs: Sequence[str] | None = None, output: Path | None = None, pdf: bool = False
) -> Path:
    """Draw the per-epoch train and validation loss of every run in one figure.

    Default output ``<root>/models/loss_curves.png`` (beside the runs). Returns the PNG path.
    """
    from .plotting import loss_curves_figure

    models_dir = config.Paths(Path(root), "").models_dir
    df = load_epoch_losses(models_dir, runs)
    output = Path(output) if output else models_dir / "loss_curves.png"
    return loss_curves_figure(df, output, pdf=pdf)[0]


# ------------------------------------------------------------------------------------------ CLI
def _frames(sel: Selected) -> Frames:
    if not sel.paths.frames.is_file():
        raise DataError(
            f"{sel.paths.frames} does not exist: run `glacier-movement preprocess --glacier {sel.glacier.name}` first"
        )
    return read_frames(sel.paths.frames)


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
    if progress:
        print(
            f"testing {sel.label} on {glacier.name}: {len(test):,} test sequences of "
            f"{ds.patch}×{ds.patch} px from {len(np.unique(ds.position(test)[0]))} forecast starts",
            file=sys.stderr,
        )
    per = evaluate(model, ds, test, batch_size, device, progress, ref, mask, baselines=False)
    key = (str(paths.frames.resolve()), paths.frames.stat().st_mtime_ns, sel.patch, sel.stride)
    per = pd.concat([per, _baseline_rows(key, ds, ref, test, mask)], ignore_index=True)
    return per, summarize(per, sel.label, glacier.name, n_bootstrap, seed)


_BASELINE_CACHE: dict[tuple, pd.DataFrame] = {}


def _baseline_rows(key: tuple, ds, ref: Reference, test: np.ndarray, mask) -> pd.DataFrame:
    """The baselines' rows of :func:`evaluate` on a glacier's test sequences. They are the same
    for every model tested on the same frames, patch and stride, so a job that tests many runs
    (``reproduce``) computes them once per glacier (``key``: frames file, its mtime, patch,
    stride)."""
    if key not in _BASELINE_CACHE:
        from .models import Persistence

        rows = evaluate(Persistence(ds.patch), ds, test, 500, "cpu", False, ref, mask)
        while len(_BASELINE_CACHE) >= 8:  # a few glaciers' worth, oldest out
            del _BASELINE_CACHE[next(iter(_BASELINE_CACHE))]
        _BASELINE_CACHE[key] = rows[rows["predictor"] != "model"].reset_index(drop=True)
    return _BASELINE_CACHE[key]


def test_motion(
    sel: Selected,
    glacier: config.GlacierConfig,
    setting: str = "tuned",
    device: str | torch.device | None = "auto",
    batch_size: int = 100,
) -> pd.DataFrame:
    """Endpoint errors of the motion in the model's full-scene forecasts at every test forecast
    start of a synthetic ``glacier`` (``flow.motion_errors``; Farneback ``setting``)."""
    from .flow import FARNEBACK_SETTINGS, load_truth, motion_errors

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
    results.insert(1, "trained_split", [sel.train_split] * len(results))
    out = {
        k: sel.paths.result_file(sel.label, k)
        for k in ("results", "per_sequence", "motion", "markdown")
    }
    write_csv(per, out["per_sequence"])
    write_csv(results, out["results"])
    md = "".join(
        f"## targets: {t}\n\n{results_markdown(results[results['targets'] == t])}\n"
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


def infer(
    sel: Selected,
    device: str | torch.device | None,
    batch_size: int,
    last: int = 8,
    pdf: bool = False,
) -> Scene:
    """Predict, save and draw the full-scene window of a selected checkpoint (``infer``)."""
    fr = _frames(sel)
    idx = scene_window(fr.frames.shape[0], last)
    window = fr.frames[idx]
    model = sel.load_model(device)
    h, w = window.shape[1:]
    print(
        f"predicting {sel.label} on {sel.glacier.name} frames {idx[0]}–{idx[-1]} ({h}×{w} px)",
        file=sys.stderr,
    )
    _, ref = glacier_sequences(fr, sel.glacier.train_frames, sel.patch, sel.stride)
    pred = predict_scene(
        model, window, sel.patch, batch_size, device, progress=True, climatology=ref.clim[idx]
    )
    take = scene_take(ref)
    scene = Scene(
        baselines={b: forecast(b, ref, idx[:1], take)[0] for b in BASELINES},
        inputs=window[:N_IN],
        targets=window[N_IN:],
        predictions=pred,
        persistence=persistence_scene(window),
        frame_indices=idx,
        window_start=fr.window_start[idx].astype("datetime64[D]"),
        meta={
            "label": sel.label,
            "glacier": sel.glacier.name,
            "model": sel.checkpoint.get("model_name"),
            "patch": sel.patch,
            "last": last,
            "checkpoint": sel.fingerprint,
        },
    )
    out_dir = scene_dir(sel.paths, sel.label)
    save_scene(scene, out_dir, fr, pdf=pdf)
    from .plotting import scene_panels_figure

    dates = [str(d)[:7] for d in scene.window_start]
    fig = scene_panels_figure(
        {"inputs": scene.inputs, "targets": scene.targets, "predictions": scene.predictions},
        scene_figure_path(sel.paths, sel.label),
        column_titles=[f"{a} → {b}" for a, b in zip(dates[:N_IN], dates[N_IN:], strict=True)],
        title=f"{sel.label} on {sel.glacier.name}: inputs (frames {idx[0]}–{idx[3]}), targets and predictions (frames {idx[4]}–{idx[7]})",
        pdf=pdf,
    )
    print(f"wrote {out_dir}/ (npy, images, GeoTIFF, scene.json) and {fig[0]}")
    return scene


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
