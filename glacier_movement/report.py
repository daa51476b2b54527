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

import argparse
import json
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.ndimage import median_filter

from . import config
from . import evaluation as ev
from .errors import GlacierError
from .io import atomic_path
from .presets import get_preset

#: SPEC 1.8: Parvati test set, the original (non-chronological) split.
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
MODEL_NAMES = {
    "salstm": "SA-LSTM (LSTM + self-attention)",
    "lstm": "LSTM encoder–decoder",
    "convlstm": "ConvLSTM",
    "unet": "U-Net",
}
RESULT_COLUMNS = [
    "experiment", "glacier", "model", "split", "MSE", "MAE",
    "MSE_low", "MSE_high", "MAE_low", "MAE_high",
]  # fmt: skip


# ------------------------------------------------------------------------------ scene scores
def generalization_panels(scene: ev.Scene) -> np.ndarray:
    """Predictions as the original's Aletsch figure shows them: thresholded at NDSI 0.3, then a
    3×3 median filter per frame. (4, H, W) → (4, H, W)."""
    from .flow import threshold

    return median_filter(threshold(scene.predictions), size=(1, 3, 3), mode="nearest").astype(
        np.float32
    )


def scene_scores(
    root: Path, glacier: str, labels: list[str]
) -> tuple[pd.DataFrame, list[ev.Scene]]:
    """Scores of each saved full-scene prediction ``labels`` (written by ``infer``) and, once, of
    persistence. All scenes must share the same target frames."""
    paths = config.Paths(root, glacier)
    scenes = []
    for label in labels:
        scene = ev.load_scene(ev.scene_dir(paths, label))
        if scene is None:
            raise GlacierError(
                f"no full-scene prediction {label!r} for {glacier} in {ev.scene_dir(paths, label)}: "
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
        df = ev.scene_scores(s)
        df.loc[df["predictor"] == "model", "predictor"] = label
        rows.append(df if not rows else df[df["predictor"] == label])
    table = pd.concat(rows, ignore_index=True).rename(columns={"predictor": "model"})
    return table, scenes


def run_scene_scores(args: argparse.Namespace) -> int:
    root = config.data_root(args.data_root)
    glacier = config.get_glacier(args.glacier, root).name
    table, scenes = scene_scores(root, glacier, args.scenes)
    paths = config.Paths(root, glacier)
    out = paths.results_dir / f"{args.name}_scene_scores.csv"
    ev.write_csv(table, out)
    from .plotting import scene_panels_figure

    dates = [str(d)[:7] for d in scenes[0].window_start[ev.N_IN :]]
    rows = {"targets": scenes[0].targets}
    rows |= {label: generalization_panels(s) for label, s in zip(args.scenes, scenes, strict=True)}
    fig = scene_panels_figure(
        rows,
        paths.figures_dir / f"{args.name}_generalization.png",
        column_titles=dates,
        title=f"{glacier}: targets and full-scene predictions (thresholded at 0.3, median 3×3)",
    )
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"wrote {out} and {fig[0]}")
    return 0


# ---------------------------------------------------------------------------------- report
def _fmt(v: float, digits: int = 4) -> str:
    return "–" if v is None or not np.isfinite(v) else f"{v:.{digits}f}"


def _ci(row: pd.Series, metric: str) -> str:
    lo, hi = row.get(f"{metric}_low"), row.get(f"{metric}_high")
    if lo is None or pd.isna(lo):
        return "–"
    return f"[{lo:.4f}, {hi:.4f}]"


def test_table(root: Path, glacier: str, runs: list[tuple[str, str, str]]) -> pd.DataFrame:
    """Rows of every run whose ``test`` wrote its files: (model key, trained split, run label)."""
    paths = config.Paths(root, glacier)
    rows = []
    for key, split, label in runs:
        try:
            results, boot = ev.load_results(paths.results_dir, label)
        except (FileNotFoundError, GlacierError):
            continue
        for _, r in results.iterrows():
            row = {
                "model": r["model"],
                "key": key if r["model"] != ev.PERSISTENCE else ev.PERSISTENCE,
                "trained_split": split if r["model"] != ev.PERSISTENCE else "",
                "split": r["split"],
                "n": int(r["n"]),
                **{m: float(r[m]) for m in ("MSE", "MAE", "SSIM", "PSNR")},
            }
            if boot is not None:
                b = boot[(boot["model"] == r["model"]) & (boot["split"] == r["split"])]
                if len(b):
                    for m in ("MSE", "MAE"):
                        row[f"{m}_low"] = float(b[f"{m}_low"].iloc[0])
                        row[f"{m}_high"] = float(b[f"{m}_high"].iloc[0])
            rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    # persistence is the same for every run on the same test set: keep one row per split
    persist = df[df["key"] == ev.PERSISTENCE].drop_duplicates(subset=["split", "n"])
    return pd.concat([df[df["key"] != ev.PERSISTENCE], persist], ignore_index=True)


def markdown_scores(df: pd.DataFrame) -> str:
    lines = [
        "| model | trained on split | test split | n | MSE | MSE 95 % CI | MAE | MAE 95 % CI | SSIM | PSNR (dB) |",
        "|---|---|---|---:|---:|---|---:|---|---:|---:|",
    ]
    for _, r in df.iterrows():
        lines.append(
            f"| {r['model']} | {r['trained_split'] or '–'} | {r['split']} | {r['n']:,} | {_fmt(r['MSE'])} | "
            f"{_ci(r, 'MSE')} | {_fmt(r['MAE'])} | {_ci(r, 'MAE')} | {_fmt(r['SSIM'], 3)} | {_fmt(r['PSNR'], 2)} |"
        )
    return "\n".join(lines)


def verdicts(df: pd.DataFrame) -> list[str]:
    """One plain sentence per model: better than persistence or not, by MSE and its interval."""
    out = []
    for _, r in df[df["key"] != ev.PERSISTENCE].iterrows():
        p = df[(df["key"] == ev.PERSISTENCE) & (df["split"] == r["split"])]
        if p.empty:
            continue
        p = p.iloc[0]
        ratio = r["MSE"] / p["MSE"] if p["MSE"] > 0 else np.nan
        separated = "MSE_high" in r and pd.notna(r.get("MSE_high")) and pd.notna(p.get("MSE_low"))
        if ratio < 1 and separated and r["MSE_high"] < p["MSE_low"]:
            verdict = "**better than persistence** (intervals do not overlap)"
        elif ratio < 1:
            verdict = "better than persistence in MSE, but the intervals overlap"
        else:
            verdict = "**not better than persistence**"
        out.append(
            f"- {r['model']} ({r['split']} test split): MSE {r['MSE']:.4f} vs persistence "
            f"{p['MSE']:.4f} ({ratio:.2f}×): {verdict}."
        )
    return out


def results_rows(
    experiment: int, glacier: str, df: pd.DataFrame, split_col: str = "split"
) -> list[dict]:
    rows = []
    for _, r in df.iterrows():
        rows.append(
            {
                "experiment": experiment,
                "glacier": glacier,
                "model": r["model"],
                "split": r[split_col] if split_col in r else "scene",
                "MSE": r["MSE"],
                "MAE": r["MAE"],
                **{k: r.get(k, np.nan) for k in ("MSE_low", "MSE_high", "MAE_low", "MAE_high")},
            }
        )
    return rows


def _scene_md(df: pd.DataFrame) -> str:
    lines = [
        "| prediction | MSE | MSE 95 % CI | MAE | MAE 95 % CI | SSIM | PSNR (dB) |",
        "|---|---:|---|---:|---|---:|---:|",
    ]
    for _, r in df.iterrows():
        lines.append(
            f"| {r['model']} | {_fmt(r['MSE'])} | {_ci(r, 'MSE')} | {_fmt(r['MAE'])} | "
            f"{_ci(r, 'MAE')} | {_fmt(r['SSIM'], 3)} | {_fmt(r['PSNR'], 2)} |"
        )
    return "\n".join(lines)


def _flow_md(root: Path, labels: list[str]) -> tuple[str, list[dict]]:
    from .flow import load_flow_errors

    paths = config.Paths(root, "parvati")
    lines = [
        "| model | true displacement (px/window) | EPE of flow from targets | EPE of flow from predictions | EPE of persistence (zero flow) |",
        "|---|---:|---:|---:|---:|",
    ]
    rows = []
    for label in labels:
        try:
            t = load_flow_errors(paths, label)
        except GlacierError:
            continue
        mean = t[t["pair"] == "mean"].set_index("source")
        epe = {s: float(v) for s, v in mean["epe_px"].items()}
        true = float(mean["true_px"].iloc[0])
        cells = " | ".join(
            f"{epe.get(s, np.nan):.2f}" for s in ("targets", "predictions", "persistence")
        )
        lines.append(f"| {label} | {true:.2f} | {cells} |")
        rows.append({"label": label, "true_px": true, **epe})
    return ("\n".join(lines) if rows else ""), rows


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


def write_report(
    root: Path, results: Path, preset: str, source: str, n_bootstrap: int
) -> tuple[Path, Path]:
    """Write ``<results>/README.md`` and ``<results>/results.csv`` from the stages' outputs."""
    from .reproduce import MODELS, run_name

    results.mkdir(parents=True, exist_ok=True)
    pre = get_preset(preset)
    exp1 = [(m, s, run_name(1, m, preset, s)) for m in MODELS for s in ("paper", "strict")]
    t1 = test_table(root, "parvati", exp1)
    if t1.empty:
        raise GlacierError(
            f"no test results under {root}/parvati/results: run `glacier-movement reproduce` "
            "(or train and test the models) first"
        )
    t3 = test_table(root, "parvati", [("salstm", "paper", run_name(3, "salstm", preset))])
    s2 = _read_optional(root / "aletsch" / "results" / f"exp2-{preset}_scene_scores.csv")
    s3 = _read_optional(root / "aletsch" / "results" / f"exp3-{preset}_scene_scores.csv")
    flow_md, flow_rows = _flow_md(root, [run_name(1, m, preset) for m in MODELS])

    csv_rows = results_rows(1, "parvati", t1) + results_rows(3, "parvati", t3)
    for exp, df in ((2, s2), (3, s3)):
        if df is not None:  # each experiment's own predictions, and persistence
            own = df["model"].str.startswith(f"exp{exp}-") | (df["model"] == ev.PERSISTENCE)
            csv_rows += results_rows(exp, "aletsch", df[own].assign(split="full-scene"))
    table = pd.DataFrame(csv_rows, columns=RESULT_COLUMNS)
    csv_path = results / "results.csv"
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")

    state = _read_json(results / "reproduce.json")
    md = [
        "# Results: glacier movement prediction (three experiments)",
        "",
        f"Preset **{preset}**, data source **{source}**, bootstrap {n_bootstrap} resamples "
        "(95 % percentile intervals of the per-sequence mean). Per-pixel MSE and MAE on masked NDSI "
        "frames (0, or NDSI in [0.3, 1]), as in the paper.",
        "",
    ]
    if source == "synthetic":
        md += [
            "> **These are scores on the built-in synthetic glaciers, not on Landsat-8 data.** "
            "The paper's numbers (last table) were measured on real Parvati scenes with a "
            "non-chronological split; the data, sizes and splits differ, so compare the models "
            "with each other and with persistence, not with the paper's absolute values.",
            "",
        ]
    md += [
        "## Experiment 1 — Parvati: four models and persistence",
        "",
        "Split `paper`: the first 80 % of sequences in time order for training + validation, the "
        "last 20 % for testing. Split `strict`: the same test set, and every training sequence "
        "that contains a test target frame dropped (no leakage). A model trained on one split is "
        "scored on that split's test set.",
        "",
        markdown_scores(t1),
        "",
        *verdicts(t1),
        "",
    ]
    if flow_md:
        md += [
            "### Optical flow against the true motion",
            "",
            "Farneback flow between consecutive full-scene frames (original parameters, images "
            "scaled to 0–255), scored by the endpoint error (EPE, pixels per window) on the "
            "glacier against the synthetic ground-truth displacement. The paper had no number "
            "for this. Persistence predicts no change (zero flow).",
            "",
            flow_md,
            "",
            flow_verdict(flow_rows),
            "",
        ]
    md += ["## Experiment 2 — transfer to Aletsch", ""]
    if s2 is not None:
        md += [
            "The experiment-1 SA-LSTM on the last 8 Aletsch frames (full scenes stitched from "
            "patches), before and after fine-tuning on the Aletsch training sequences (first 19 "
            "frames), beside persistence. (The paper published no Aletsch score.) Intervals: 95 % "
            "bootstrap over the scene's patch-size tiles.",
            "",
            _scene_md(s2),
            "",
        ]
    else:
        md += ["Not run yet.", ""]
    md += ["## Experiment 3 — mixed Parvati + Aletsch training", ""]
    if not t3.empty or s3 is not None:
        md += [
            "SA-LSTM trained from scratch on the Parvati and Aletsch training sequences together; "
            "both test sets are excluded from training (the original may have leaked Parvati test "
            "sequences into it, which makes its 0.0311 optimistic).",
            "",
        ]
        if not t3.empty:
            md += ["Parvati test sequences:", "", markdown_scores(t3), "", *verdicts(t3), ""]
        if s3 is not None:
            md += ["Aletsch full scenes (beside experiment 2's models):", "", _scene_md(s3), ""]
    else:
        md += ["Not run yet.", ""]
    md += [
        "## The paper's published numbers (Parvati, original split)",
        "",
        "| model | MSE | MAE |",
        "|---|---:|---:|",
        *[f"| {r.model} | {r.MSE:.4f} | {r.MAE:.4f} |" for r in PAPER_SCORES.itertuples()],
        "",
        "What differs: the paper used real Landsat-8 scenes of Parvati (800×800 px, 36 frames), "
        "50×50 patches with stride 10, an 80/20 split in directory-listing (not time) order with "
        "overlapping patches, the last checkpoint, and no persistence baseline. "
        + (
            f"Here: synthetic glaciers at the `{preset}` preset ({pre.patch}×{pre.patch} patches, "
            f"stride {pre.stride}), chronological splits, and persistence beside every model."
            if source == "synthetic"
            else f"Here: the same source of scenes at the `{preset}` preset, chronological splits."
        ),
        "",
        "## Figures",
        "",
    ]
    figs = [
        (root / "parvati" / "figures" / "frames.png", "Parvati: preprocessed NDSI frames"),
        (root / "models" / "loss_curves.png", "Loss curves per epoch (train and validation)"),
        *[
            (root / "parvati" / "figures" / f"{run_name(1, m, preset)}_scene.png", f"{MODEL_NAMES[m]}: full-scene prediction")
            for m in MODELS
        ],
        *[
            (root / "parvati" / "figures" / f"{run_name(1, m, preset)}_flow.png", f"{MODEL_NAMES[m]}: optical flow")
            for m in MODELS
        ],
        (root / "aletsch" / "figures" / "frames.png", "Aletsch: preprocessed NDSI frames"),
        (root / "aletsch" / "figures" / f"exp2-{preset}_generalization.png", "Experiment 2: Aletsch targets, before and after fine-tuning"),
        (root / "aletsch" / "figures" / f"exp3-{preset}_generalization.png", "Experiment 3: Aletsch with the mixed-data model"),
    ]  # fmt: skip
    for src, caption in figs:
        md.append(_figure_md(src, results, caption))
    md += ["## Settings", "", "```", json.dumps(asdict(pre), indent=1, default=str), "```", ""]
    if state:
        md += ["## Time per stage", "", "| stage | seconds |", "|---|---:|"]
        stages = state.get("stages", {})
        md += [
            f"| {k} | {v.get('seconds', float('nan')):.0f} |"
            for k, v in stages.items()
            if "seconds" in v
        ]
        total = sum(v.get("seconds", 0) for v in stages.values())
        md += [f"| **total** | **{total:.0f}** |", ""]
        md += ["Commands run, in order:", "", "```"]
        md += [c for v in stages.values() for c in v.get("commands", [])]
        md += ["```", ""]
    readme = results / "README.md"
    with atomic_path(readme) as tmp:
        tmp.write_text("\n".join(md), encoding="utf-8")
    return readme, csv_path


def _read_optional(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path) if path.is_file() else None


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def run_report(args: argparse.Namespace) -> int:
    root = config.data_root(args.data_root)
    readme, csv = write_report(root, Path(args.results), args.preset, args.source, args.bootstrap)
    print(f"wrote {readme} and {csv}")
    return 0


# --------------------------------------------------------------------------------------- CLI
def register(sub, common) -> None:
    p = sub.add_parser(
        "scene-scores",
        parents=[common],
        help="MSE/MAE of full-scene predictions beside persistence, and the generalization figure",
        description=(
            "The original's AletschMSE.py and aletschGeneralizationPlot.py: score several "
            "full-scene predictions written by `infer` (same target frames) against the targets, "
            "beside persistence, and draw targets and predictions (thresholded at 0.3, median "
            "3×3). Writes <glacier>/results/<name>_scene_scores.csv and "
            "<glacier>/figures/<name>_generalization.png."
        ),
    )
    p.add_argument(
        "--glacier",
        required=True,
        help="glacier: parvati, aletsch, one added with `glacier add`, or a path to its .toml",
    )
    p.add_argument(
        "--scenes", nargs="+", required=True, metavar="LABEL", help="labels given to `infer --name`"
    )
    p.add_argument("--name", required=True, help="name of this comparison (file names)")
    p.set_defaults(func=run_scene_scores)

    p = sub.add_parser(
        "report",
        parents=[common],
        help="collect every result into <results>/README.md and results.csv",
        description=(
            "Write <results>/README.md (score tables with persistence, bootstrap intervals and "
            "split modes, the paper's numbers beside ours, figures, settings, stage times) and "
            "<results>/results.csv (experiment, glacier, model, split, MSE, MAE, MSE_low, "
            "MSE_high, MAE_low, MAE_high) from what the stages wrote."
        ),
    )
    p.add_argument(
        "--results", default="results", metavar="DIR", help="report folder (default ./results)"
    )
    p.add_argument(
        "--preset", default="demo", help="preset the results were made with (for the settings)"
    )
    p.add_argument("--source", default="synthetic", help="synthetic or planetary-computer")
    p.add_argument("--bootstrap", type=int, default=1000, help="resamples used (for the text)")
    p.set_defaults(func=run_report)
