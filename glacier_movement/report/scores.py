"""The report's numbers: the per-sequence scores the stages wrote, pooled over seeds and
glaciers with clustered paired intervals, the rows of ``results.csv``, and the motion errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .. import config
from .. import evaluation as ev
from ..baselines import REFERENCES
from ..errors import GlacierError
from ..evaluation import metrics
from ..evaluation.skill import SKILL_COLUMNS, skill_rows
from ..presets import Preset

RESULT_COLUMNS = [
    "experiment", "glacier", "model", "split", "test_set", "targets",
    "MSE", "MAE", "MSE_low", "MSE_high", "MAE_low", "MAE_high", "n_seeds", "MSE_sd",
    *[f"{d}_{b}{s}" for b in ev.REFERENCE_BASELINES for d in ("dMSE", "dMAE") for s in ("", "_low", "_high")],
    *[f"vs_{b}" for b in ev.REFERENCE_BASELINES],
    "n", "n_clusters", "SSIM",
    *SKILL_COLUMNS,
]  # fmt: skip


def _per_sequence(root: Path, glacier: str, label: str, predictor: str, seed: int):
    """One run's per-sequence rows on one glacier, labelled for pooling (None when not tested)."""
    try:
        df = ev.load_per_sequence(config.Paths(root, glacier), label)
    except GlacierError:
        return None
    return ev.pooling_labels(df, predictor, glacier, seed)


def pooled_scores(
    root: Path,
    glaciers: list[str],
    runs: dict[str, list[str]],
    n_bootstrap: int,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scores of the models ``runs`` (label → run names, one per seed) and of every baseline on
    the test sequences of ``glaciers``, pooled: clusters are forecast start × glacier, seeds are
    resampled too. Returns (table of :func:`evaluation.score_rows` per ``targets`` — "observed"
    and "all" —, per-seed table). Models with a missing test file on any glacier are left out."""
    parts, per_seed = [], []
    baselines_done: set[str] = set()
    for label, names in runs.items():
        frames = []
        for k, name in enumerate(names):
            got = [_per_sequence(root, g, name, label, k) for g in glaciers]
            if any(d is None for d in got):
                frames = []
                break
            frames += got
        if not frames:
            continue
        df = pd.concat(frames, ignore_index=True)
        for g in glaciers:
            if g in baselines_done:
                continue
            base = df[(df["glacier"] == g) & (df["seed"] == 0) & (df["predictor"] != label)]
            parts.append(base)
            baselines_done.add(g)
        parts.append(df[df["predictor"] == label])
        per_seed.append((label, df[df["predictor"] == label]))
    if not parts:
        return pd.DataFrame(), pd.DataFrame()
    allrows = pd.concat(parts, ignore_index=True)
    tables, seeds = [], []
    for targets in ("observed", "all"):
        sel = allrows.loc[allrows["observed"]] if targets == "observed" else allrows
        if sel.empty:
            continue
        scores = ev.score_rows(sel, n_bootstrap, seed)
        scores = scores.merge(skill_rows(sel, n_bootstrap, seed), on="model", how="left")
        tables.append(scores.assign(targets=targets))
        for label, df in per_seed:
            df = df[df["observed"]] if targets == "observed" else df
            for k, sub in df.groupby("seed"):
                seeds.append(
                    {
                        "model": label,
                        "seed": int(k),
                        "targets": targets,
                        "n": len(sub),
                        "MSE": float(sub["MSE"].mean()),
                        "MAE": float(sub["MAE"].mean()),
                        "SSIM": float(sub["SSIM"].mean()),
                    }
                )
    return pd.concat(tables, ignore_index=True), pd.DataFrame(seeds)


def results_rows(
    experiment: int, glacier: str, test_set: str, table: pd.DataFrame, split: str = "paper"
) -> list[dict]:
    """Rows of results.csv from a :func:`evaluation.score_rows` table (with ``targets``)."""
    rows = []
    for r in table.to_dict(orient="records"):
        baseline = r["model"] in REFERENCES
        rows.append(
            {
                "experiment": experiment,
                "glacier": glacier,
                "model": r["model"],
                "split": "" if baseline else split,
                "test_set": test_set,
                "targets": r.get("targets", "all"),
                **{k: r.get(k, np.nan) for k in RESULT_COLUMNS[6:]},
            }
        )
    return rows


def motion_table(root: Path, glaciers: list[str], runs: dict[str, list[str]], n_bootstrap: int):
    """Endpoint errors of the motion in each model's forecasts (``test --flow``), pooled over
    ``glaciers`` × test starts, paired against zero flow and against the targets' own flow.
    Returns (table, number of clusters); an empty table when no run wrote its file."""
    rows, zero_targets = [], None
    for label, names in runs.items():
        parts = []
        for k, name in enumerate(names):
            for g in glaciers:
                path = config.Paths(root, g).results_dir / f"{name}_motion_epe.csv"
                if not path.is_file():
                    break
                parts.append(pd.read_csv(path).assign(glacier=g, seed=k))
        if len(parts) != len(names) * len(glaciers):
            continue
        df = pd.concat(parts, ignore_index=True)
        df["cluster"] = df["glacier"] + "|" + df["start"].astype(str)
        wide = df.pivot_table(index=["seed", "cluster"], columns="source", values="epe_px")
        clusters = wide.xs(0, level="seed").index.to_numpy()
        pred = np.stack(
            [wide.xs(k, level="seed").loc[clusters, "predictions"] for k in range(len(names))]
        )
        if zero_targets is None:
            zero_targets = (clusters, wide.xs(0, level="seed").loc[clusters])
        row = {"model": label, "EPE": float(pred.mean()), "n_clusters": len(clusters)}
        iv = metrics.cluster_bootstrap(pred, clusters, n_bootstrap)
        row |= {"EPE_low": iv.low, "EPE_high": iv.high}
        for b in ("zero", "targets"):
            d = metrics.paired_difference(
                pred, wide.xs(0, level="seed").loc[clusters, b].to_numpy(), clusters, n_bootstrap
            )
            row |= {
                f"d_{b}": d.mean,
                f"d_{b}_low": d.low,
                f"d_{b}_high": d.high,
                f"vs_{b}": metrics.verdict(d)
                if len(clusters) >= ev.MIN_VERDICT_CLUSTERS
                else f"too few clusters ({len(clusters)})",
            }
        rows.append(row)
    if zero_targets is not None:
        clusters, w = zero_targets
        for b in ("targets", "zero"):
            iv = metrics.cluster_bootstrap(w[b].to_numpy(), clusters, n_bootstrap)
            rows.append(
                {
                    "model": f"({b} flow)" if b == "targets" else "(zero flow = persistence)",
                    "EPE": iv.mean,
                    "EPE_low": iv.low,
                    "EPE_high": iv.high,
                    "n_clusters": len(clusters),
                }
            )
    return pd.DataFrame(rows)


def _advect_epe(root: Path, glaciers: list[str], pre: Preset) -> tuple[float, float, int] | None:
    """``advect``'s velocity endpoint error against the truth at the test forecast starts of
    ``glaciers`` (mean px/window, the same for zero motion, number of starts); None when none."""
    epe = pd.concat(
        [
            ev.advect_velocity_errors(
                config.Paths(root, g), config.get_glacier(g, root), pre.patch, pre.stride
            )
            for g in glaciers
        ],
        ignore_index=True,
    )
    if not len(epe):
        return None
    return float(epe["epe_px_window"].mean()), float(epe["zero_epe_px_window"].mean()), len(epe)


def _read_optional(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path) if path.is_file() else None


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
