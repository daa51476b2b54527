"""Results of the three experiments, collected from what the stages wrote.

Commands:
- ``scene-scores`` — the original's ``AletschMSE.py`` and ``aletschGeneralizationPlot.py``: MSE/MAE
  (SSIM, PSNR) of several full-scene predictions of one glacier against their targets, beside
  persistence, and the figure targets / predictions (re-thresholded at 0.3, median-filtered 3×3).
- ``report`` — ``<results>/README.md`` (every table with persistence, intervals and split mode, the
  paper's numbers beside ours, figures, settings, stage timings) and ``<results>/results.csv``.

Nothing here trains or predicts: a table row exists only where its stage wrote its file.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.ndimage import median_filter

from . import config, metrics, settings
from . import evaluation as ev
from .baselines import ORACLE, REFERENCES
from .catalog import Catalog
from .errors import GlacierError
from .inference import N_IN, Scene, load_scene, structure_scores
from .inference import scene_scores as scene_forecast_scores
from .io import atomic_path, load_npz, markdown_table, write_csv, write_text
from .models import MODELS as REGISTRY
from .motion import load_flow_errors, threshold
from .plotting import scene_panels_figure, skill_sweep_figure
from .presets import Preset, get_preset
from .settings import glacier_option, option
from .skill import SKILL_COLUMNS, skill_rows
from .study import (
    EXP4_MODELS,
    EXP5_MODELS,
    MODELS,
    MOTION_GLACIER,
    WORLDS,
    Study,
    run_name,
    world_glacier,
)

#: docs/evaluation.md: Parvati test set, the original (non-chronological) split.
PAPER_SCORES = pd.DataFrame(
    [
        ("salstm", "LSTM with self-attention", 0.0467, 0.1356),
        ("lstm", "LSTM encoder–decoder", 0.0543, 0.1385),
        ("convlstm", "ConvLSTM", 0.0550, 0.1498),
        ("unet", "U-Net", 0.0829, 0.1916),
        (
            "salstm-mixed",
            "LSTM with self-attention, mixed Parvati + Aletsch (exp. 3)",
            0.0311,
            0.1147,
        ),
    ],
    columns=["key", "model", "MSE", "MAE"],
)
RESULT_COLUMNS = [
    "experiment", "glacier", "model", "split", "test_set", "targets",
    "MSE", "MAE", "MSE_low", "MSE_high", "MAE_low", "MAE_high", "n_seeds", "MSE_sd",
    *[f"{d}_{b}{s}" for b in ev.REFERENCE_BASELINES for d in ("dMSE", "dMAE") for s in ("", "_low", "_high")],
    *[f"vs_{b}" for b in ev.REFERENCE_BASELINES],
    "n", "n_clusters", "SSIM",
    *SKILL_COLUMNS,
]  # fmt: skip


# ------------------------------------------------------------------------------ scene scores
def generalization_panels(scene: Scene) -> np.ndarray:
    """Predictions as the original's Aletsch figure shows them: thresholded at NDSI 0.3, then a
    3×3 median filter per frame. (4, H, W) → (4, H, W)."""

    return median_filter(threshold(scene.predictions), size=(1, 3, 3), mode="nearest").astype(
        np.float32
    )


def scene_scores(root: Path, glacier: str, labels: list[str]) -> tuple[pd.DataFrame, list[Scene]]:
    """Scores of each saved full-scene prediction ``labels`` (written by ``infer``) and, once, of
    persistence. All scenes must share the same target frames."""
    paths = config.Paths(root, glacier)
    scenes = []
    for label in labels:
        scene = load_scene(paths.scene_dir(label))
        if scene is None:
            raise GlacierError(
                f"no full-scene prediction {label!r} for {glacier} in {paths.scene_dir(label)}: "
                f"run `glacier-movement infer --glacier {glacier} --name {label} --run …` first"
            )
        scenes.append(scene)
    ref = scenes[0].frame_indices
    for label, s in zip(labels, scenes, strict=True):
        if not np.array_equal(s.frame_indices, ref):
            raise GlacierError(
                f"scene {label!r} predicts frames {s.frame_indices.tolist()}, not {ref.tolist()} like "
                f"{labels[0]!r}: run infer with the same --last for all"
            )
    rows = []
    for label, s in zip(labels, scenes, strict=True):
        df = scene_forecast_scores(s)
        df.loc[df["predictor"] == "model", "predictor"] = label
        rows.append(df if not rows else df[df["predictor"] == label])
    table = pd.concat(rows, ignore_index=True).rename(columns={"predictor": "model"})
    return table, scenes


@dataclass(frozen=True)
class SceneScoresSettings:
    """MSE/MAE of full-scene predictions beside persistence, and the generalization figure.

    The original's AletschMSE.py and aletschGeneralizationPlot.py: score several full-scene
    predictions written by `infer` (same target frames) against the targets, beside persistence,
    and draw targets and predictions (thresholded at 0.3, median 3×3). Writes
    <glacier>/results/<name>_scene_scores.csv and <glacier>/figures/<name>_generalization.png.
    """

    glacier: str = glacier_option()
    scenes: tuple[str, ...] = option(metavar="LABEL", help="labels given to `infer --name`")
    name: str = option(help="name of this comparison (file names)")


def run_scene_scores(s: SceneScoresSettings, catalog: Catalog) -> pd.DataFrame:
    """The ``scene-scores`` stage: the table and the generalization figure."""
    glacier = config.get_glacier(s.glacier, catalog.root).name
    table, scenes = scene_scores(catalog.root, glacier, s.scenes)
    paths = catalog.glacier(glacier)
    out = paths.scene_scores(s.name)
    write_csv(table, out)
    dates = [str(d)[:7] for d in scenes[0].window_start[N_IN:]]
    rows = {"targets": scenes[0].targets}
    rows |= {label: generalization_panels(sc) for label, sc in zip(s.scenes, scenes, strict=True)}
    fig = scene_panels_figure(
        rows,
        paths.generalization_figure(s.name),
        column_titles=dates,
        title=f"{glacier}: targets and full-scene predictions (thresholded at 0.3, median 3×3)",
    )
    settings.write(s, paths.results_dir / f"{s.name}_scene-scores.settings.toml", "scene-scores")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"wrote {out} and {fig[0]}")
    return table


# ---------------------------------------------------------------------------------- report
def _fmt(v: float, digits: int = 4) -> str:
    return "–" if v is None or not np.isfinite(v) else f"{v:.{digits}f}"


def _ci(row: pd.Series, metric: str) -> str:
    lo, hi = row.get(f"{metric}_low"), row.get(f"{metric}_high")
    if lo is None or pd.isna(lo):
        return "–"
    return f"[{lo:.4f}, {hi:.4f}]"


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
        sel = allrows[allrows["observed"]] if targets == "observed" else allrows
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


def verdict_sentences(table: pd.DataFrame, models: list[str]) -> list[str]:
    """Plain words that follow from the paired intervals of ``table`` (one targets subset)."""
    out = []
    rows = table.set_index("model")
    n = int(table["n_clusters"].iloc[0]) if len(table) else 0
    for m in models:
        if m not in rows.index:
            continue
        r = rows.loc[m]
        words = []
        for b in ev.REFERENCE_BASELINES:
            v = r.get(f"vs_{b}", "")
            d, lo, hi = r.get(f"dMSE_{b}"), r.get(f"dMSE_{b}_low"), r.get(f"dMSE_{b}_high")
            if v in (metrics.BETTER, metrics.WORSE):
                words.append(f"**{v} than {b}** (MSE {d:+.4f}, 95 % CI [{lo:.4f}, {hi:.4f}])")
            elif v == metrics.NOT_DISTINGUISHABLE:
                words.append(
                    f"**not distinguishable from {b}** (MSE {d:+.4f}, 95 % CI [{lo:.4f}, {hi:.4f}] "
                    "includes 0)"
                )
            else:
                words.append(f"no verdict against {b}: {v}")
        out.append(f"- {m}: " + "; ".join(words) + ".")
    beats = [
        m for m in models if m in rows.index and rows.loc[m].get("vs_climatology") == metrics.BETTER
    ]
    if n >= ev.MIN_VERDICT_CLUSTERS:
        out.append(
            "- **No model beats climatology** on these clusters."
            if not beats
            else f"- Better than climatology: {', '.join(beats)}; every other model is not."
        )
    return out


def lead_table(table: pd.DataFrame) -> str:
    """MSE per lead time (t+1 … t+4) and on / off the glacier, per predictor."""
    leads = sorted(c for c in table.columns if c.startswith("MSE_l") and c[5:].isdigit())
    extra = [c for c in ("MSE_glacier", "MSE_off") if c in table.columns]
    head = [
        "model",
        *[f"MSE t+{c[5:]}" for c in leads],
        *[{"MSE_glacier": "MSE on glacier", "MSE_off": "MSE off glacier"}[c] for c in extra],
    ]
    rows = (
        [str(r["model"]), *[_fmt(r[c]) for c in [*leads, *extra]]]
        for r in table.to_dict(orient="records")
    )
    return markdown_table(head, rows)


def skill_table(table: pd.DataFrame) -> str:
    """Skill against climatology per lead time and on / off the glacier, with the clustered,
    paired 95 % intervals; the oracle's (available) skill and each predictor's share of it
    (docs/evaluation.md). Empty when the table has no skill columns."""
    if "skill_climatology" not in table:
        return ""
    leads = sorted(
        (c for c in table.columns if c.startswith("skill_climatology_l") and c[19:].isdigit()),
        key=lambda c: int(c[19:]),
    )
    parts = [c for c in ("skill_climatology_glacier", "skill_climatology_off") if c in table]
    head = [
        "model",
        "skill",
        *[f"skill t+{c[19:]}" for c in leads],
        *[{"skill_climatology_glacier": "on glacier", "skill_climatology_off": "off glacier"}[c]
          for c in parts],
        "share of available",
        *[{"skill_climatology_glacier": "share on glacier",
           "skill_climatology_off": "share off glacier"}[c] for c in parts],
    ]  # fmt: skip
    records = table.to_dict(orient="records")
    records.sort(key=lambda r: (r["model"] in REFERENCES) + (r["model"] == ORACLE))
    rows = []
    for r in records:
        name = f"{r['model']} (ceiling)" if r["model"] == ORACLE else str(r["model"])
        rows.append(
            [
                name,
                ev.with_ci(r, "skill_climatology"),
                *[ev.with_ci(r, c) for c in leads],
                *[ev.with_ci(r, c) for c in parts],
                ev.with_ci(r, "share_available"),
                *[ev.with_ci(r, c.replace("skill_climatology", "share_available")) for c in parts],
            ]
        )
    return markdown_table(head, rows)


def skill_sentences(table: pd.DataFrame, models: list[str]) -> list[str]:
    """Plain words on the skill against climatology and the share of the available skill that
    follow from the intervals (one targets subset); nothing without skill columns."""
    if "skill_climatology" not in table or table.empty:
        return []
    rows = table.set_index("model")
    out = []
    if ORACLE in rows.index:
        o = rows.loc[ORACLE]
        lo, hi = o.get("skill_climatology_low"), o.get("skill_climatology_high")
        if np.isfinite(lo) and lo > 0:
            what = "there is skill to win over climatology"
        elif np.isfinite(hi) and hi < 0:
            what = "even the oracle is worse than climatology (its approximation falls short)"
        else:
            what = "the oracle is not distinguishable from climatology: little or no skill to win"
        out.append(
            f"- Available skill (oracle, a ceiling, not ranked): {o['skill_climatology']:+.3f} "
            f"[{lo:+.3f}, {hi:+.3f}]: {what}."
        )
    for m in [*models, "advect"]:
        if m not in rows.index:
            continue
        r = rows.loc[m]
        lo, hi = r.get("skill_climatology_low"), r.get("skill_climatology_high")
        if not (np.isfinite(lo) and np.isfinite(hi)):
            continue
        verdict = (
            "skill above climatology" if lo > 0 else "skill below climatology" if hi < 0
            else "skill not distinguishable from 0"
        )  # fmt: skip
        share = ""
        slo, shi = r.get("share_available_low", math.nan), r.get("share_available_high", math.nan)
        if np.isfinite(slo) and np.isfinite(shi):
            taken = (
                "takes a significant share of the available skill" if slo > 0
                else "takes no significant share of the available skill"
            )  # fmt: skip
            share = f"; {taken} ({r['share_available']:.2f} [{slo:.2f}, {shi:.2f}])"
        out.append(
            f"- {m}: {verdict} ({r['skill_climatology']:+.3f} [{lo:+.3f}, {hi:+.3f}]){share}."
        )
    return out


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


def _scene_md(df: pd.DataFrame) -> str:
    """Markdown table of full-scene scores (``scene-scores`` rows): MSE, MAE with their tile
    intervals, SSIM and PSNR per prediction."""
    header = ["prediction", "MSE", "MSE 95 % CI", "MAE", "MAE 95 % CI", "SSIM", "PSNR (dB)"]
    rows = (
        [
            f"{r['model']} (ceiling, not ranked)" if r["model"] == ORACLE else str(r["model"]),
            _fmt(r["MSE"]),
            _ci(r, "MSE"),
            _fmt(r["MAE"]),
            _ci(r, "MAE"),
            _fmt(r["SSIM"], 3),
            _fmt(r["PSNR"], 2),
        ]
        for _, r in df.iterrows()
    )
    return markdown_table(header, rows, "lrlrlrr")


def _flow_md(root: Path, labels: list[str], glacier: str = "parvati") -> tuple[str, list[dict]]:
    """Markdown table of the full-scene flow errors (``flow``) of ``labels`` and their rows;
    ("", []) when none was written."""
    paths = config.Paths(root, glacier)
    header = [
        "model",
        "true displacement (px/window)",
        "EPE of flow from targets",
        "EPE of flow from predictions",
        "EPE of persistence (zero flow)",
    ]
    cells, rows = [], []
    for label in labels:
        try:
            t = load_flow_errors(paths, label)
        except GlacierError:
            continue
        mean = t[t["pair"] == "mean"].set_index("source")
        epe = {s: float(v) for s, v in mean["epe_px"].items()}
        true = float(mean["true_px"].iloc[0])
        errors = [f"{epe.get(s, np.nan):.2f}" for s in ("targets", "predictions", "persistence")]
        cells.append([label, f"{true:.2f}", *errors])
        rows.append({"label": label, "true_px": true, **epe})
    return (markdown_table(header, cells, "lrrrr") if rows else ""), rows


def flow_verdict(rows: list[dict]) -> str:
    """One sentence on what the flow table can tell: is the motion visible in the targets at all?"""
    if not rows:
        return ""
    true, targets = rows[0]["true_px"], rows[0].get("targets", np.nan)
    if not targets < true:
        return (
            f"Flow from the target frames themselves does not beat zero flow (EPE {targets:.2f} "
            f"vs {true:.2f} px): on the near-binary snow/ice masks Farneback follows changes of "
            "the snow extent between windows more than the ice, so these EPEs do not measure "
            "motion skill; read them as a check that predictions do not invent motion."
        )
    return (
        f"Flow from the target frames recovers part of the true motion (EPE {targets:.2f} vs "
        f"{true:.2f} px for zero flow); a model's flow is as good as the targets' when its EPE "
        "is as low."
    )


def _copy_figure(src: Path, results: Path) -> str | None:
    """Copy a figure next to the report (so the Markdown's relative links work); its link."""
    if not src.is_file():
        return None
    dst = results / "figures" / f"{src.parent.parent.name}_{src.name}"
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dst, suffix=".tmp" + dst.suffix) as tmp:
        shutil.copyfile(src, tmp)
    return f"figures/{dst.name}"


def _figure_md(src: Path, results: Path, caption: str) -> str:
    link = _copy_figure(src, results)
    return f"![{caption}]({link})\n\n*{caption}*\n" if link else ""


def _score_section(table: pd.DataFrame, models: list[str], what: str) -> list[str]:
    md = []
    for targets, words in (
        ("observed", "**Observed targets** (headline: no target window was interpolated)"),
        ("all", "All targets, interpolated target windows included (not observations)"),
    ):
        t = table[table["targets"] == targets] if len(table) else table
        if t.empty:
            continue
        md += [f"{words} — {what}:", "", ev.results_markdown(t), ""]
        if targets == "observed":
            md += [*verdict_sentences(t, models), *skill_sentences(t, models), ""]
    return md


def _training_md(root: Path, runs: dict[str, list[str]]) -> str:
    """Markdown table of the runs' validation losses (``summary.json``): mean ± sd over seeds,
    beside persistence and climatology on the same validation sequences."""
    header = [
        "model",
        "seeds",
        "validation MSE (mean ± sd over seeds)",
        "persistence",
        "climatology",
    ]
    rows = []
    for label, names in runs.items():
        vals, pers, clim = [], math.nan, math.nan
        for name in names:
            d = _read_json(Catalog(root).run_dir(name) / "summary.json")
            if d:
                vals.append(d["val_loss"])
                pers = d.get("persistence_val_loss", math.nan)
                clim = d.get("config", {}).get("climatology_val_loss", math.nan)
        if vals:
            sd = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
            rows.append(
                [label, str(len(vals)), f"{np.mean(vals):.4f} ± {sd:.4f}", _fmt(pers), _fmt(clim)]
            )
    return markdown_table(header, rows, "lrlrr")


def _structure_md(root: Path, labels: dict[str, str], glacier: str = "parvati") -> str:
    """Spatial structure of the full-scene forecasts (seed-0 runs) per predictor, lead-averaged and
    per lead for the pattern and anomaly correlations."""
    frames = []
    for label, run in labels.items():
        scene = load_scene(config.Paths(root, glacier).scene_dir(run))
        if scene is None:
            continue
        df = structure_scores(scene)
        df["predictor"] = df["predictor"].replace({"model": label})
        frames.append(df if not frames else df[df["predictor"] == label])
    if not frames:
        return ""
    df = pd.concat(frames, ignore_index=True)
    df = df.sort_values("predictor", key=lambda p: p.isin(REFERENCES), kind="stable")
    header = [
        "forecast",
        "spatial sd (target sd)",
        "pattern corr. t+1 … t+4",
        "anomaly corr. t+1 … t+4",
    ]
    rows = []
    for name, sub in df.groupby("predictor", sort=False):
        sub = sub.sort_values("lead")
        pc = " / ".join(_fmt(v, 2) for v in sub["pattern_corr"])
        ac = " / ".join(_fmt(v, 2) for v in sub["anomaly_corr"])
        sd = f"{sub['spatial_sd'].mean():.3f} ({sub['target_sd'].mean():.3f})"
        rows.append([str(name), sd, pc, ac])
    return markdown_table(header, rows)


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


def _motion_md(t: pd.DataFrame) -> str:
    """Markdown table of :func:`motion_table`: EPE per forecast with its interval, and the paired
    differences to zero flow and to the targets' flow with their verdicts."""
    header = [
        "forecast",
        "EPE [95 % CI] (px/window)",
        "− zero flow [95 % CI]: verdict",
        "− targets' flow [95 % CI]: verdict",
    ]
    rows = []
    for r in t.to_dict(orient="records"):
        cells = [r["model"], f"{r['EPE']:.3f} {ev.ci_text(r['EPE_low'], r['EPE_high'], 3)}"]
        for b in ("zero", "targets"):
            if pd.isna(r.get(f"d_{b}", np.nan)):
                cells.append("")
            else:
                cells.append(
                    f"{r[f'd_{b}']:+.3f} {ev.ci_text(r[f'd_{b}_low'], r[f'd_{b}_high'], 3)}: **{r[f'vs_{b}']}**"
                )
        rows.append(cells)
    return markdown_table(header, rows)


def _experiment4_md(root: Path, rs: Study) -> tuple[list[str], list[dict]]:
    """Experiment 4's section (the motion benchmark) and its rows of ``results.csv``."""
    glaciers = [
        MOTION_GLACIER,
        *(config.heldout_name(MOTION_GLACIER, k) for k in range(1, rs.heldout + 1)),
    ]
    runs = {
        m: [run_name(4, m, rs.preset, seed_index=k) for k in range(rs.seeds)] for m in EXP4_MODELS
    }
    t4, _ = pooled_scores(root, glaciers, runs, rs.bootstrap)
    pre = get_preset(rs.preset)
    if t4.empty:
        return ["## Experiment 4 — the motion benchmark", "", "Not run yet.", ""], []
    share = []
    for g in glaciers:
        try:
            share.append(
                float(
                    load_npz(config.Paths(root, g).truth, {"motion_share": "motion share"})[
                        "motion_share"
                    ]
                )
            )
        except GlacierError:
            pass
    mt = motion_table(root, glaciers, runs, rs.bootstrap)
    md = [
        "## Experiment 4 — the motion benchmark (beyond the paper)",
        "",
        f"The five models (the paper's four and SimVP; {rs.seeds} seed(s)) trained on a synthetic "
        "Parvati in the **motion regime** — a bare-ice tongue with moving ogives, crevasses and "
        "debris bands below a stable snowline, so that ice motion is the dominant frame-to-frame "
        f"signal — and scored on its test windows and those of {len(glaciers) - 1} held-out "
        "motion-regime glaciers (other seeds), pooled"
        + (
            f". Motion share of the glaciers (1 − MSE of the truly advected previous frame / MSE of the previous frame, on the glacier): {np.mean(share):.2f} on average."
            if share
            else "."
        ),
        "",
        *_score_section(t4, list(EXP4_MODELS), "motion glaciers pooled"),
    ]
    epe = pd.concat(
        [
            ev.advect_velocity_errors(
                config.Paths(root, g), config.get_glacier(g, root), pre.patch, pre.stride
            )
            for g in glaciers
        ],
        ignore_index=True,
    )
    if len(epe):
        md += [
            "`advect`'s tracked velocity against the truth at the test forecast starts (endpoint "
            "error, px per window, mean over starts and glaciers): "
            f"{epe['epe_px_window'].mean():.2f} px/window (no motion: "
            f"{epe['zero_epe_px_window'].mean():.2f}; {len(epe)} starts).",
            "",
        ]
    sk = skill_table(t4[t4["targets"] == "observed"])
    if sk:
        md += [
            "Skill against climatology per lead and on / off the glacier (observed targets), "
            "with clustered paired 95 % intervals; share of the available (oracle) skill:",
            "",
            sk,
            "",
        ]
    if len(mt):
        md += [
            "### Is there motion in the forecasts?",
            "",
            "At every test forecast start, the flow (Farneback, the tuned setting chosen on "
            "training frames: docs/synthetic.md) of [last input, 4 forecast frames] against the "
            "true displacement on the glacier: endpoint error in pixels per window, mean over "
            "the 4 window pairs. Beside it the flow of the true target frames (what the flow "
            "method can recover at best) and zero flow (persistence). Paired over clusters "
            "(forecast start × glacier), as the scores.",
            "",
            _motion_md(mt),
            "",
        ]
    rows = results_rows(4, "parvati-motion+heldout", "motion", t4)
    return md, rows


#: Experiment 5's figure, under the report folder.
EXP5_FIGURE = "figures/experiment5_skill.png"


def world_label(world: str) -> str:
    """A world's words: ``realistic, ρ = 0.9`` or ``motion regime``."""
    regime, rho = WORLDS[world]
    return "motion regime" if regime == "motion" else f"realistic, ρ = {rho:g}"


def _experiment5_md(root: Path, results: Path, rs: Study) -> tuple[list[str], list[dict]]:
    """Experiment 5's section (the predictability sweep), its figure and its rows of
    ``results.csv`` (``test_set`` = the world's label, ``glacier`` = its held-out replicates)."""
    md = [
        "## Experiment 5 — the predictability sweep (beyond the paper)",
        "",
        f"In {len(WORLDS)} synthetic worlds of known predictability (docs/evaluation.md), "
        f"{', '.join(EXP5_MODELS)} ({rs.seeds} seed(s) each) trained on the world's Parvati"
        + (f" and {rs.train_glaciers - 1} training replicate(s)" if rs.train_glaciers > 1 else "")
        + f", scored on {rs.heldout} held-out replicate(s) of that world (other seeds; clusters "
        "= forecast start × glacier, seeds resampled too). Skill = 1 − MSE / MSE(climatology); "
        "the available skill is the oracle's (a ceiling, not ranked); the share is skill / "
        "available skill. Observed targets; clustered paired 95 % intervals.",
        "",
    ]
    rows, points, summary, clusters = [], [], {m: [] for m in EXP5_MODELS}, 0
    table = []
    for w in WORLDS:
        g = world_glacier(w)
        glaciers = [config.heldout_name(g, k) for k in range(1, rs.heldout + 1)]
        runs = {
            m: [run_name(5, m, rs.preset, seed_index=k, glacier=g) for k in range(rs.seeds)]
            for m in EXP5_MODELS
        }
        t, _ = pooled_scores(root, glaciers, runs, rs.bootstrap) if glaciers else (None, None)
        if t is None or t.empty:
            md += [f"### {w} ({world_label(w)})", "", "Not run yet.", ""]
            continue
        rows += results_rows(5, f"{g}+heldout", w, t)
        obs = t[t["targets"] == "observed"]
        if obs.empty:
            continue
        clusters += int(obs["n_clusters"].iloc[0])
        r = obs.set_index("model")
        o = r.loc[ORACLE] if ORACLE in r.index else None
        epe = _advect_epe(root, glaciers, get_preset(rs.preset))
        for m in [*EXP5_MODELS, "advect"]:
            if m not in r.index:
                continue
            x = r.loc[m]
            table.append(
                [
                    f"{w} ({world_label(w)})",
                    m,
                    ev.with_ci(x.to_dict(), "available_skill", "+.3f")
                    if o is None
                    else ev.with_ci(o.to_dict(), "skill_climatology", "+.3f"),
                    ev.with_ci(x.to_dict(), "skill_climatology", "+.3f"),
                    ev.with_ci(x.to_dict(), "share_available"),
                    f"{epe[0]:.2f}" if m == "advect" and epe is not None else "",
                ]
            )
            if o is not None and m in EXP5_MODELS:
                points.append(
                    {
                        "model": m,
                        "world": w,
                        "available": float(o["skill_climatology"]),
                        "available_low": float(o["skill_climatology_low"]),
                        "available_high": float(o["skill_climatology_high"]),
                        "skill": float(x["skill_climatology"]),
                        "skill_low": float(x["skill_climatology_low"]),
                        "skill_high": float(x["skill_climatology_high"]),
                    }
                )
                if float(x.get("share_available_low", math.nan)) > 0:
                    summary[m].append(w)
        md += [
            f"### {w} ({world_label(w)})",
            "",
            *_score_section(t, list(EXP5_MODELS), f"{len(glaciers)} held-out replicate(s) pooled"),
        ]
        if epe is not None:
            md += [
                f"`advect`'s tracked velocity against the truth: endpoint error {epe[0]:.2f} "
                f"px/window (no motion: {epe[1]:.2f}; {epe[2]} starts).",
                "",
            ]
    if not rows:
        return [*md[:2], "Not run yet.", ""], []
    head = [
        "world",
        "model",
        "available skill (oracle)",
        "skill",
        "share of available",
        "advect EPE (px/window)",
    ]
    md += ["### The sweep", "", markdown_table(head, table), ""]
    md += [
        f"{clusters} clusters in all (observed targets). Where each model takes a significant "
        "share of the available skill (the share's 95 % interval above 0; an undefined share — "
        "too little available skill — counts as no):",
        "",
        *(
            f"- {m}: " + (", ".join(summary[m]) if summary[m] else "in no world") + "."
            for m in EXP5_MODELS
        ),
        "",
    ]
    if points:
        skill_sweep_figure(points, results / EXP5_FIGURE)
        md += [
            f"![Experiment 5: skill against available skill]({EXP5_FIGURE})",
            "",
            "*Each model's skill against climatology against the available (oracle) skill, one "
            "line per model across the worlds; the dashed diagonal is the oracle; bars are the "
            "clustered 95 % intervals; the skill axis is cut at −1 (the table gives every "
            "value).*",
            "",
        ]
    return md, rows


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


def _settings_for(results: Path, rs: Study) -> tuple[Study | None, Study | None, Study | None]:
    """The settings of the paper's experiments (1–3), of experiment 4 and of experiment 5 to
    report: this call's for the experiments it ran, the stored ones (``<results>/report.json``)
    for the others — a job that runs only experiment 4 (or 5) adds its section beside the earlier
    experiments."""
    stored = _read_json(results / "report.json")
    groups = {}
    for key, exps in (("paper", {1, 2, 3}), ("motion", {4}), ("predictability", {5})):
        if exps & set(rs.experiments):
            groups[key] = settings.plain(rs) | {"experiments": sorted(exps & set(rs.experiments))}
        elif key in stored:
            groups[key] = stored[key]
    with atomic_path(results / "report.json") as tmp:
        tmp.write_text(json.dumps(groups, indent=2) + "\n")
    names = {o.name for o in settings.options(Study)}

    def load(d: dict | None) -> Study | None:
        if d is None:
            return None
        return settings.build(Study, {k: v for k, v in d.items() if k in names})

    return load(groups.get("paper")), load(groups.get("motion")), load(groups.get("predictability"))


def write_report(root: Path, results: Path, rs: Study) -> tuple[Path, Path]:
    """Write ``<results>/README.md``, ``results.csv`` and ``results_per_seed.csv`` from the
    stages' outputs."""
    results.mkdir(parents=True, exist_ok=True)
    paper, motion, sweep = _settings_for(results, rs)
    exp4_md, exp4_rows = _experiment4_md(root, motion) if motion else ([], [])
    exp5_md, exp5_rows = _experiment5_md(root, results, sweep) if sweep else ([], [])
    md, rows = [*exp4_md, *exp5_md], [*exp4_rows, *exp5_rows]
    if paper is None:
        return _write_motion_only(root, results, motion or sweep or rs, md, rows)
    return _write_paper(root, results, paper, md, rows)


def _write_motion_only(
    root: Path, results: Path, rs: Study, md: list[str], rows: list[dict]
) -> tuple[Path, Path]:
    csv_path = write_csv(
        pd.DataFrame(rows, columns=RESULT_COLUMNS), results / "results.csv", "%.6g"
    )
    head = [
        "# Results: glacier movement prediction",
        "",
        f"Preset **{rs.preset}**, synthetic data, {rs.seeds} seed(s), {rs.bootstrap} bootstrap "
        "resamples. How to read the intervals and verdicts: docs/evaluation.md.",
        "",
    ]
    readme = write_text("\n".join([*head, *md]), results / "README.md")
    return readme, csv_path


@dataclass
class _PaperTables:
    """The score tables of experiments 1–3 that the report shows (read from the stages' files).

    ``t1``/``t1s``/``th``/``t3``: :func:`pooled_scores` tables of experiment 1 (paper split,
    strict split, held-out glaciers) and 3; ``seeds1``/``seedsh`` the per-seed tables;
    ``s2``/``s3`` the Aletsch scene scores of experiments 2/3 (None when not written).
    """

    g1: str
    labels: list[str]
    runs: dict[str, list[str]]
    heldout: list[str]
    t1: pd.DataFrame
    seeds1: pd.DataFrame
    t1s: pd.DataFrame
    th: pd.DataFrame
    seedsh: pd.DataFrame
    t3: pd.DataFrame
    s2: pd.DataFrame | None
    s3: pd.DataFrame | None


def _paper_tables(root: Path, rs: Study) -> _PaperTables:
    """Pool the test scores of experiments 1–3 (GlacierError when experiment 1 has none)."""
    labels = [*MODELS, *([f"{m}+clim" for m in MODELS] if rs.clim_variants else [])]
    g1 = rs.glacier
    runs = {
        m: [run_name(1, m, rs.preset, seed_index=k, glacier=g1) for k in range(rs.seeds)]
        for m in labels
    }
    boot = rs.bootstrap
    t1, seeds1 = pooled_scores(root, [g1], runs, boot)
    if t1.empty:
        raise GlacierError(
            f"no test results under {root}/parvati/results: run `glacier-movement reproduce` "
            "(or train and test the models) first"
        )
    strict = {
        f"{m} (strict)": [run_name(1, m, rs.preset, "strict", glacier=g1)] for m in rs.strict_models
    }
    t1s, _ = pooled_scores(root, [g1], strict, boot)
    heldout = [config.heldout_name(g1, k) for k in range(1, rs.heldout + 1)]
    th, seedsh = (
        pooled_scores(root, heldout, runs, boot) if heldout else (pd.DataFrame(), pd.DataFrame())
    )
    t3, _ = pooled_scores(
        root, ["parvati"], {"salstm mixed (exp. 3)": [run_name(3, "salstm", rs.preset)]}, boot
    )
    s2 = _read_optional(config.Paths(root, "aletsch").scene_scores(f"exp2-{rs.preset}"))
    s3 = _read_optional(config.Paths(root, "aletsch").scene_scores(f"exp3-{rs.preset}"))
    return _PaperTables(g1, labels, runs, heldout, t1, seeds1, t1s, th, seedsh, t3, s2, s3)


def _write_paper_csv(results: Path, p: _PaperTables, extra_rows: list[dict]) -> Path:
    """Write ``results.csv`` (experiments 1–3) and ``results_per_seed.csv``; the former's path."""
    g1, t1, t1s, th, t3 = p.g1, p.t1, p.t1s, p.th, p.t3
    csv_rows = results_rows(1, g1, f"{g1}-test", t1)
    csv_rows += results_rows(
        1,
        g1,
        f"{g1}-test",
        t1s[~t1s["model"].isin(REFERENCES)] if len(t1s) else t1s,
        "strict",
    )
    if len(th):
        csv_rows += results_rows(1, "heldout", "heldout", th)
    csv_rows += results_rows(
        3, "parvati", "parvati-test", t3[~t3["model"].isin(REFERENCES)] if len(t3) else t3
    )
    for exp, df in ((2, p.s2), (3, p.s3)):
        if df is not None:  # each experiment's own predictions, and the baselines
            own = df["model"].str.startswith(f"exp{exp}-") | df["model"].isin(REFERENCES)
            csv_rows += results_rows(
                exp, "aletsch", "aletsch-scene", df[own].assign(targets="all", n_seeds=1)
            )
    csv_rows += extra_rows  # experiments 4 and 5
    csv_path = write_csv(
        pd.DataFrame(csv_rows, columns=RESULT_COLUMNS), results / "results.csv", "%.6g"
    )
    per_seed = pd.concat(
        [
            d.assign(test_set=name)
            for name, d in (("parvati-test", p.seeds1), ("heldout", p.seedsh))
            if len(d)
        ],
        ignore_index=True,
    )
    write_csv(per_seed, results / "results_per_seed.csv", "%.6g")
    return csv_path


def _intro_md(rs: Study) -> list[str]:
    """The report's title and how to read it (and the synthetic-data warning)."""
    md = [
        "# Results: glacier movement prediction",
        "",
        f"Preset **{rs.preset}**, data source **{rs.source}**, {rs.seeds} training seed(s) per "
        f"experiment-1 model, {rs.bootstrap} bootstrap resamples. Per-pixel MSE and MAE on masked NDSI "
        "frames (0, or NDSI in [0.3, 1]), as in the paper. Every table shows the baselines a "
        "forecaster gets for free: persistence (last input frame), climatology (mean of the same "
        "window of the year over the observed frames before the test period), seasonal-naive (the "
        "same window a year earlier), damped persistence (climatology + a fitted share of the last "
        "frame's departure from it) and linear extrapolation.",
        "",
        "**How to read the intervals.** Sequences that share a forecast start time (and glacier) "
        "overlap and are not independent: intervals come from a bootstrap that resamples whole "
        "clusters (forecast start × glacier), and training seeds too (docs/statistics.md). "
        "`MSE − B` is the *paired* difference to baseline B on the same clusters; a model is "
        f"**better** than B only when that 95 % interval lies below 0, **worse** when above, else "
        f"**not distinguishable**; with fewer than {ev.MIN_VERDICT_CLUSTERS} clusters no verdict is "
        "given. Model rows are the mean over seeds.",
        "",
    ]
    if rs.source == "synthetic":
        md += [
            "> **These are scores on the built-in synthetic glaciers, not on Landsat-8 data.** "
            "Compare the models with each other and with the baselines, not with the paper's "
            "absolute values (last section).",
            "",
        ]
    return md


def _heldout_md(p: _PaperTables, rs: Study) -> list[str]:
    """The held-out glaciers' section (the headline on synthetic data)."""
    g1 = p.g1
    if len(p.th):
        return [
            f"## Headline — held-out glaciers ({len(p.heldout)} synthetic glaciers never trained on)",
            "",
            f"The experiment-1 models (trained on {g1}) on the test windows of other synthetic "
            f"glaciers of {g1}'s configuration, made with other seeds (other terrain, weather, "
            "snow years); each glacier's climatology comes from its own frames before its test "
            "period. Nothing was trained, tuned or stopped on them.",
            "",
            *_score_section(p.th, p.labels, "held-out glaciers pooled"),
        ]
    if rs.source != "synthetic":
        return [
            "## Held-out glaciers",
            "",
            "Not available for real data (`--source planetary-computer`): held-out replicates are "
            f"synthetic glaciers. The {g1} table below rests on few forecast starts.",
            "",
        ]
    return []


def _experiment1_md(root: Path, p: _PaperTables, rs: Study) -> list[str]:
    """Experiment 1: scores, strict split, per lead, forecast structure and training."""
    g1, t1, t1s, th = p.g1, p.t1, p.t1s, p.th
    md = [
        f"## Experiment 1 — {g1} test sequences",
        "",
        "Split `paper`: the first 80 % of sequences in time order for training + validation, the "
        "last 20 % for testing (its test targets overlap late training sequences). The strict-"
        "split rows retrain without any sequence that touches a test target frame or a window "
        "interpolated from one (one seed).",
        "",
        *_score_section(t1, p.labels, g1),
    ]
    if len(t1s):
        md += ["Strict split:", "", ev.results_markdown(t1s[t1s["targets"] == "observed"]), ""]
    md += [
        "### Per lead time and on / off the glacier (observed targets)",
        "",
        f"{g1} test:",
        "",
        lead_table(t1[t1["targets"] == "observed"]),
        "",
    ]
    sk = skill_table(t1[t1["targets"] == "observed"])
    if sk:
        md += [
            f"Skill against climatology (1 − MSE / MSE of climatology), {g1} test, with clustered "
            "paired 95 % intervals; the share of the available skill is skill / the oracle's "
            "skill (synthetic data only; docs/evaluation.md):",
            "",
            sk,
            "",
        ]
    if len(th):
        md += ["Held-out glaciers:", "", lead_table(th[th["targets"] == "observed"]), ""]
        sk = skill_table(th[th["targets"] == "observed"])
        md += ["Skill, held-out glaciers:", "", sk, ""] if sk else []
    structure = _structure_md(
        root, {m: run_name(1, m, rs.preset, glacier=g1) for m in p.labels}, g1
    )
    if structure:
        md += [
            "### Do the forecasts carry structure?",
            "",
            f"Full-scene forecasts of the last {g1} window (first seed): the spatial standard "
            "deviation of a forecast beside the target's (a gray field near the mean has a small "
            "one), the pattern correlation with the target, and the anomaly correlation against "
            "climatology (correlation of the departures from climatology: above 0 means the "
            "forecast knows something climatology does not).",
            "",
            structure,
            "",
        ]
    md += [
        "### Training (validation sequences; chosen on these, never on test scores)",
        "",
        _training_md(root, p.runs),
        "",
    ]
    return md


def _flow_section(flow_md: str, flow_rows: list[dict]) -> list[str]:
    """Experiment 1's optical-flow section (empty without flow results)."""
    if not flow_md:
        return []
    return [
        "### Optical flow against the true motion",
        "",
        "Farneback flow between consecutive full-scene frames (original parameters, images "
        "scaled to 0–255), scored by the endpoint error (EPE, pixels per window) on the "
        "glacier against the synthetic ground-truth displacement. Persistence predicts no "
        "change (zero flow).",
        "",
        flow_md,
        "",
        flow_verdict(flow_rows),
        "",
    ]


def _aletsch_md(p: _PaperTables, rs: Study) -> list[str]:
    """Experiments 2 (transfer to Aletsch) and 3 (mixed training), those that the job ran."""
    s2, s3, t3 = p.s2, p.s3, p.t3
    md: list[str] = []
    scene_note = (
        "Full scenes of the last 8 Aletsch frames (one forecast start): the intervals resample the "
        "scene's patch-size tiles, which are not independent either — with a single forecast "
        "start no verdict can be given."
    )
    if 2 in rs.experiments:
        md += ["## Experiment 2 — transfer to Aletsch", ""]
        if s2 is not None:
            md += [
                "The experiment-1 SA-LSTM (first seed) before and after fine-tuning on the Aletsch "
                "training sequences (first 19 frames), beside the baselines. " + scene_note,
                "",
                _scene_md(s2),
                "",
            ]
        else:
            md += ["Not run yet.", ""]
    if 3 in rs.experiments:
        md += ["## Experiment 3 — mixed Parvati + Aletsch training", ""]
        if len(t3) or s3 is not None:
            md += [
                "SA-LSTM (one seed) trained from scratch on the Parvati and Aletsch training sequences "
                "together; both test sets are excluded from training.",
                "",
            ]
            if len(t3):
                md += _score_section(t3, ["salstm mixed (exp. 3)"], "Parvati test, mixed model")
            if s3 is not None:
                md += [
                    "Aletsch full scenes (beside experiment 2's models). " + scene_note,
                    "",
                    _scene_md(s3),
                    "",
                ]
        else:
            md += ["Not run yet.", ""]
    return md


#: The original's published full-scene predictions of real Parvati frames 31-34, measured from its
#: stored prediction files (commit 38f792c; docs/evaluation.md, "The original's published
#: predictions, measured").
ORIGINAL_PREDICTIONS_MD = """\
Measured from the original repository's stored full-scene predictions (commit 38f792c,
`experiment1/results/*/modelPredictions/parvati/1`): the targets are real Parvati frames 31-34,
whole 800×800 scene. MSE: SA-LSTM 0.0068 (per lead 0.0066 0.0059 0.0068 0.0081), LSTM 0.0055,
ConvLSTM 0.0192, U-Net 0.0679 (per lead 0.0038 0.049 0.100 0.119); the same windows two years
earlier score 0.063 as a forecast. The LSTMs reproduce the targets' change between leads (mean
absolute change 0.185 0.190 0.315 against the targets' 0.185 0.182 0.314), including the large
change into the fourth window, which no forecast from the four input frames can know. These
figures are consistent with that scene's sequences having been in the training set (the
original's split follows directory-listing order, not time); this project's splits are
chronological, so its scores are not comparable with them (docs/evaluation.md)."""


def _paper_numbers_md(rs: Study, pre: Preset) -> list[str]:
    """The paper's published scores and what differs here."""
    return [
        "## The paper's published numbers (Parvati, original split)",
        "",
        markdown_table(
            ["model", "MSE", "MAE"],
            ([r.model, f"{r.MSE:.4f}", f"{r.MAE:.4f}"] for r in PAPER_SCORES.itertuples()),
            "lrr",
        ),
        "",
        "What differs: the paper used real Landsat-8 scenes of Parvati (800×800 px, 36 frames), "
        "50×50 patches with stride 10, an 80/20 split in directory-listing (not time) order with "
        "overlapping patches, the last checkpoint, one seed and no baseline. "
        + (
            f"Here: synthetic glaciers at the `{rs.preset}` preset ({pre.patch}×{pre.patch} "
            f"patches, stride {pre.stride}), chronological splits, baselines beside every model."
            if rs.source == "synthetic"
            else f"Here: the same source of scenes at the `{rs.preset}` preset, chronological splits."
        ),
        "",
        ORIGINAL_PREDICTIONS_MD,
        "",
    ]


def _figures_md(root: Path, results: Path, rs: Study, labels: list[str]) -> list[str]:
    """The figures section: copies every figure that exists next to the report and links it."""
    g1 = rs.glacier
    g, al = config.Paths(root, g1), config.Paths(root, "aletsch")
    figs = [
        (g.frames_figure, f"{g1}: preprocessed NDSI frames"),
        (Catalog(root).loss_curves, "Loss curves per epoch (train and validation)"),
        *[
            (g.scene_figure(run_name(1, m, rs.preset, glacier=g1)), f"{m}: full-scene prediction")
            for m in labels
        ],
        *[
            (g.flow_figure(run_name(1, m, rs.preset, glacier=g1)), f"{REGISTRY[m].caption}: optical flow")
            for m in MODELS
        ],
        (al.frames_figure, "Aletsch: preprocessed NDSI frames"),
        (al.generalization_figure(f"exp2-{rs.preset}"), "Experiment 2: Aletsch targets, before and after fine-tuning"),
        (al.generalization_figure(f"exp3-{rs.preset}"), "Experiment 3: Aletsch with the mixed-data model"),
    ]  # fmt: skip
    return ["## Figures", "", *(_figure_md(src, results, caption) for src, caption in figs)]


def _settings_md(pre: Preset, state: dict) -> list[str]:
    """The preset's settings, and the time and commands of every stage (``reproduce.json``)."""
    md = ["## Settings", "", "```", json.dumps(asdict(pre), indent=1, default=str), "```", ""]
    if state:
        stages = state.get("stages", {})
        total = sum(v.get("seconds", 0) for v in stages.values())
        times = [
            [k, f"{v.get('seconds', float('nan')):.0f}"]
            for k, v in stages.items()
            if "seconds" in v
        ]
        md += [
            "## Time per stage",
            "",
            markdown_table(["stage", "seconds"], [*times, ["**total**", f"**{total:.0f}**"]], "lr"),
            "",
        ]
        md += ["Commands run, in order:", "", "```"]
        md += [c for v in stages.values() for c in v.get("commands", [])]
        md += ["```", ""]
    return md


def _write_paper(
    root: Path, results: Path, rs: Study, extra_md: list[str], extra_rows: list[dict]
) -> tuple[Path, Path]:
    """Write the report of experiments 1–3 (and ``extra_md``/``extra_rows``, the sections and
    rows of experiments 4 and 5, when run): ``results.csv``, ``results_per_seed.csv`` and
    ``README.md``; returns (README, results.csv)."""
    pre = get_preset(rs.preset)
    p = _paper_tables(root, rs)
    g1 = p.g1
    flow_md, flow_rows = _flow_md(root, [run_name(1, m, rs.preset, glacier=g1) for m in MODELS], g1)
    csv_path = _write_paper_csv(results, p, extra_rows)
    state = _read_json(results / "reproduce.json")
    md = [*_intro_md(rs), *_heldout_md(p, rs), *_experiment1_md(root, p, rs)]
    md += _flow_section(flow_md, flow_rows)
    md += _aletsch_md(p, rs)
    md += extra_md
    md += _paper_numbers_md(rs, pre)
    md += _figures_md(root, results, rs, p.labels)
    md += _settings_md(pre, state)
    readme = write_text("\n".join(md), results / "README.md")
    return readme, csv_path


def _read_optional(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path) if path.is_file() else None


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


@dataclass(frozen=True)
class ReportSettings(Study):
    """Collect every result into <results>/README.md and results.csv.

    Write <results>/README.md (held-out glaciers headline, experiment tables with every baseline,
    clustered paired intervals and verdicts, per-lead and on/off-glacier scores, forecast
    structure, training, flow, the paper's numbers, figures, settings, stage times),
    <results>/results.csv and <results>/results_per_seed.csv (columns: docs/evaluation.md) from
    what the stages wrote. The options name the study whose runs it reads (`reproduce` passes its
    own).
    """


def run_report(study: Study, catalog: Catalog) -> tuple[Path, Path]:
    """The ``report`` stage: ``<results>/README.md`` and ``results.csv`` from what the stages of
    ``study`` wrote."""
    rs = study.resolved(catalog.root)
    readme, csv = write_report(catalog.root, Path(rs.results), rs)
    settings.write(study, Path(rs.results) / "report.settings.toml", "report")
    print(f"wrote {readme} and {csv}")
    return readme, csv
