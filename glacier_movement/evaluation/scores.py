"""Test-set scores: a model and the baselines on test sequences, per sequence (:func:`evaluate`),
and the tables with clustered, paired bootstrap intervals (:func:`score_rows`, :func:`summarize`,
:func:`results_markdown`; docs/evaluation.md, docs/statistics.md)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..baselines import (
    BASELINES,
    ORACLE,
    Reference,
    forecast,
    table_rank,
)
from ..checkpoints import resolve_device
from ..errors import GlacierError
from ..io import markdown_table
from ..models.baselines import persist
from ..sequences import extract_patches, make_loader
from . import metrics
from .inference import N_IN, N_OUT, PERSISTENCE


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
    records.sort(key=lambda r: table_rank(r["model"]))
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
