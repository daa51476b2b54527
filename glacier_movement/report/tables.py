"""The report's markdown: score and skill tables, verdict sentences, the scene, flow, training,
structure and motion tables, and figures copied beside the report."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from .. import config
from .. import evaluation as ev
from ..baselines import ORACLE, table_rank
from ..catalog import Catalog
from ..errors import GlacierError
from ..evaluation import metrics
from ..evaluation.inference import load_scene, structure_scores
from ..io import atomic_path, markdown_table
from ..motion import load_flow_errors
from .scores import _read_json


def _fmt(v: float | None, digits: int = 4) -> str:
    return "–" if v is None or not np.isfinite(v) else f"{v:.{digits}f}"


def _ci(row: pd.Series, metric: str) -> str:
    lo, hi = row.get(f"{metric}_low"), row.get(f"{metric}_high")
    if lo is None or pd.isna(lo):
        return "–"
    return f"[{lo:.4f}, {hi:.4f}]"


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
    records.sort(key=lambda r: table_rank(r["model"]))
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


def _scene_md(df: pd.DataFrame) -> str:
    """Markdown table of full-scene scores (``scene-scores`` rows): MSE, MAE with their tile
    intervals, SSIM and PSNR per prediction, in table order (``baselines.table_rank``): the
    models, the baselines, the oracle (a ceiling, not ranked) last."""
    header = ["prediction", "MSE", "MSE 95 % CI", "MAE", "MAE 95 % CI", "SSIM", "PSNR (dB)"]
    df = df.sort_values("model", key=lambda m: m.astype(str).map(table_rank), kind="stable")
    rows = (
        [
            f"{r['model']} (ceiling, not ranked)" if r["model"] == ORACLE else str(r["model"]),
            _fmt(r.get("MSE")),
            _ci(r, "MSE"),
            _fmt(r.get("MAE")),
            _ci(r, "MAE"),
            _fmt(r.get("SSIM"), 3),
            _fmt(r.get("PSNR"), 2),
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
        t = table.loc[table["targets"] == targets] if len(table) else table
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
            d = _read_json(Catalog(root).run(name).summary)
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
    df = df.sort_values("predictor", key=lambda p: p.astype(str).map(table_rank), kind="stable")
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
