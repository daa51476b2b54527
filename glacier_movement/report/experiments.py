"""The report's sections of the experiments beyond the paper: 4 (the motion benchmark) and 5
(the predictability sweep)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .. import config
from .. import evaluation as ev
from ..baselines import ORACLE
from ..errors import GlacierError
from ..io import load_npz, markdown_table
from ..plotting import skill_sweep_figure
from ..presets import get_preset
from ..study import (
    EXP4_MODELS,
    EXP5_MODELS,
    MOTION_GLACIER,
    WORLDS,
    Study,
    run_name,
    world_glacier,
)
from .scores import _advect_epe, motion_table, pooled_scores, results_rows
from .tables import _motion_md, _score_section, skill_table


def _experiment4_md(root: Path, rs: Study) -> tuple[list[str], list[dict]]:
    """Experiment 4's section (the motion benchmark) and its rows of ``results.csv``."""
    glaciers = [
        MOTION_GLACIER,
        *(config.heldout_name(MOTION_GLACIER, k) for k in range(1, rs.n_heldout + 1)),
    ]
    runs = {
        m: [run_name(4, m, rs.preset, seed_index=k) for k in range(rs.n_seeds)] for m in EXP4_MODELS
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
    sk = skill_table(t4.loc[t4["targets"] == "observed"])
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
        glaciers = [config.heldout_name(g, k) for k in range(1, rs.n_heldout + 1)]
        runs = {
            m: [run_name(5, m, rs.preset, seed_index=k, glacier=g) for k in range(rs.n_seeds)]
            for m in EXP5_MODELS
        }
        t, _ = pooled_scores(root, glaciers, runs, rs.bootstrap) if glaciers else (None, None)
        if t is None or t.empty:
            md += [f"### {w} ({world_label(w)})", "", "Not run yet.", ""]
            continue
        rows += results_rows(5, f"{g}+heldout", w, t)
        obs = t.loc[t["targets"] == "observed"]
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
