"""The report's sections of the paper's experiments (1–3): the score tables read from the
stages' files, the headline, experiment 1, the transfer to Aletsch and mixed training, the
paper's numbers beside ours, figures and settings; and ``results_per_seed.csv``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from .. import config
from .. import evaluation as ev
from ..baselines import REFERENCES
from ..catalog import Catalog
from ..errors import GlacierError
from ..io import markdown_table, write_csv, write_text
from ..models import MODELS as REGISTRY
from ..presets import Preset, get_preset
from ..study import (
    MODELS,
    Study,
    run_name,
)
from .scores import RESULT_COLUMNS, _read_json, _read_optional, pooled_scores, results_rows
from .tables import (
    _figure_md,
    _flow_md,
    _scene_md,
    _score_section,
    _structure_md,
    _training_md,
    flow_verdict,
    lead_table,
    skill_table,
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
    columns=pd.Index(["key", "model", "MSE", "MAE"]),
)


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
    g1 = rs.glacier_name
    runs = {
        m: [run_name(1, m, rs.preset, seed_index=k, glacier=g1) for k in range(rs.n_seeds)]
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
    heldout = [config.heldout_name(g1, k) for k in range(1, rs.n_heldout + 1)]
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
        t1s.loc[~t1s["model"].isin(REFERENCES)] if len(t1s) else t1s,
        "strict",
    )
    if len(th):
        csv_rows += results_rows(1, "heldout", "heldout", th)
    csv_rows += results_rows(
        3, "parvati", "parvati-test", t3.loc[~t3["model"].isin(REFERENCES)] if len(t3) else t3
    )
    for exp, df in ((2, p.s2), (3, p.s3)):
        if df is not None:  # each experiment's own predictions, and the baselines
            own = df["model"].str.startswith(f"exp{exp}-") | df["model"].isin(REFERENCES)
            csv_rows += results_rows(
                exp, "aletsch", "aletsch-scene", df[own].assign(targets="all", n_seeds=1)
            )
    csv_rows += extra_rows  # experiments 4 and 5
    csv_path = write_csv(
        pd.DataFrame(csv_rows, columns=pd.Index(RESULT_COLUMNS)), results / "results.csv", "%.6g"
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
        md += ["Strict split:", "", ev.results_markdown(t1s.loc[t1s["targets"] == "observed"]), ""]
    md += [
        "### Per lead time and on / off the glacier (observed targets)",
        "",
        f"{g1} test:",
        "",
        lead_table(t1.loc[t1["targets"] == "observed"]),
        "",
    ]
    sk = skill_table(t1.loc[t1["targets"] == "observed"])
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
        md += ["Held-out glaciers:", "", lead_table(th.loc[th["targets"] == "observed"]), ""]
        sk = skill_table(th.loc[th["targets"] == "observed"])
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
            (
                [model, f"{mse:.4f}", f"{mae:.4f}"]
                for model, mse, mae in zip(
                    PAPER_SCORES["model"], PAPER_SCORES["MSE"], PAPER_SCORES["MAE"], strict=True
                )
            ),
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
    g1 = rs.glacier_name
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
