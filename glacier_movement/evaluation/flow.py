"""The ``flow`` stage: optical flow of a run's full-scene targets and predictions and, on synthetic
data, its endpoint error against the true motion (docs/evaluation.md, 3); and the motion in a
model's forecasts at every test start (``test --flow``). The flow itself and the true motion are
in motion.py.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import settings
from ..catalog import Catalog
from ..io import read_frames, save_npz, write_csv, write_text
from ..motion import (
    FARNEBACK_SETTINGS,
    QUIVER_GRID,
    Truth,
    endpoint_error,
    flow_errors,
    load_truth,
    sequence_flow,
    threshold,
    window_days,
)
from ..plotting import flow_quiver_figure
from ..selection import ModelChoice, select
from ..settings import SettingsError, option
from .inference import N_IN, N_OUT, infer, load_scene, predict_scene


def motion_errors(
    model,
    frames: np.ndarray,
    window_start: np.ndarray,
    clim: np.ndarray,
    starts: np.ndarray,
    truth: Truth,
    patch: int,
    params: dict,
    batch_size: int = 100,
    device=None,
) -> pd.DataFrame:
    """Is there *motion* in a model's forecasts? Endpoint errors at every forecast start.

    For each start s (inputs s … s+3, targets s+4 … s+7) the model predicts the full scene; the
    flow of the sequence [last input, 4 predictions] (re-thresholded at 0.3) is scored against the
    true displacement of those 4 window pairs on the glacier, beside the flow of
    [last input, 4 targets] and zero flow (persistence). ``clim`` (T, H, W) is the climatology
    (for ``+clim`` models). Rows: ``start``, ``source`` (predictions | targets | zero),
    ``epe_px`` (mean over the 4 pairs, px per window), ``true_px`` (mean true displacement).
    """
    rows = []
    for s in np.asarray(starts, dtype=np.int64):
        idx = np.arange(s, s + N_IN + N_OUT)
        pred = predict_scene(model, frames[idx], patch, batch_size, device, climatology=clim[idx])
        last = frames[s + N_IN - 1 : s + N_IN]
        days = window_days(window_start[s + N_IN - 1 : s + N_IN + N_OUT])
        true = truth.displacement(days)
        true_px = float(endpoint_error(np.zeros_like(true), true, truth.mask).mean())
        sources = {
            "predictions": sequence_flow(np.concatenate([last, threshold(pred)]), **params),
            "targets": sequence_flow(frames[s + N_IN - 1 : s + N_IN + N_OUT], **params),
            "zero": np.zeros_like(true),
        }
        for name, flow in sources.items():
            epe = float(endpoint_error(flow, true, truth.mask).mean())
            rows.append({"start": int(s), "source": name, "epe_px": epe, "true_px": true_px})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------- the stage
@dataclass(frozen=True)
class FlowSettings(ModelChoice):
    """Optical flow of targets and predictions; endpoint error against the true motion.

    Farneback optical flow (the original's opticalFlow.py parameters, on frames scaled to 0-255)
    between consecutive frames of the full-scene targets and of the predictions (re-thresholded at
    NDSI 0.3), from `infer`'s saved scene (run first when missing or made by another checkpoint).
    Draws the quiver figure <data-root>/<glacier>/figures/<name>_flow.png. Where
    <glacier>/truth.npz exists (synthetic data) it scores each flow by its endpoint error against
    the true displacement on the glacier, in pixels per window, beside persistence (zero flow):
    <glacier>/results/<name>/flow_epe.csv/.json.
    """

    last: int = option(
        8, metavar="N", help="the scene window starts N frames before the end (default 8)"
    )
    grid: int = option(QUIVER_GRID, help=f"arrow spacing in pixels (default {QUIVER_GRID})")
    farneback: str = option(
        "paper",
        choices=tuple(FARNEBACK_SETTINGS),
        help="Farneback parameters: paper (the original's, default) or tuned (one pyramid level, "
        "chosen on training frames of the motion regime: docs/synthetic.md)",
    )
    pdf: bool = option(False, help="also write a PDF figure")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.grid < 1:
            raise SettingsError("grid", f"must be at least 1 pixel, got {self.grid}")


def run(s: FlowSettings, catalog: Catalog) -> pd.DataFrame | None:
    """The ``flow`` stage: flow fields, the quiver figure and (synthetic data) the endpoint errors
    of one run's full-scene prediction; returns the error table (None for real data)."""
    sel = select(s, catalog, with_model=False)
    out_dir = sel.paths.scene_dir(sel.label)
    scene = load_scene(out_dir)
    if (
        scene is None
        or scene.meta.get("checkpoint") != sel.fingerprint
        or scene.meta.get("last") != s.last
    ):
        scene = infer(sel, s.device, s.batch_size, s.last, s.pdf)
    else:
        print(f"using the saved scene predictions in {out_dir}", file=sys.stderr)
    idx = scene.frame_indices[N_IN:]
    pairs = [f"{a}→{b}" for a, b in zip(idx[:-1], idx[1:], strict=True)]
    days = window_days(scene.window_start[N_IN:])
    predictions = threshold(scene.predictions)
    params = FARNEBACK_SETTINGS[s.farneback]
    flows = {
        "target": sequence_flow(scene.targets, **params),
        "prediction": sequence_flow(predictions, **params),
    }
    backgrounds = {"target": scene.targets[1:], "prediction": predictions[1:]}
    arrays = {"pairs": np.array(pairs), "days": days, **{f"flow_{k}": v for k, v in flows.items()}}

    table = None
    if sel.paths.truth.is_file():
        fr = read_frames(sel.paths.frames)
        truth = load_truth(sel.paths.truth, fr.roi, scene.targets.shape[1:])
        true = truth.displacement(days)
        flows_scored = {
            "targets": flows["target"],
            "predictions": flows["prediction"],
            "persistence": np.zeros_like(true),
        }
        table = flow_errors(flows_scored, truth, days, pairs)
        flows["truth"] = true
        backgrounds["truth"] = scene.targets[1:]
        arrays |= {"flow_truth": true, "glacier_mask": truth.mask}
    save_npz(sel.paths.flow_arrays(sel.label), compress=True, **arrays)
    fig = flow_quiver_figure(
        backgrounds,
        flows,
        sel.paths.flow_figure(sel.label),
        row_titles=[f"frames {p} ({d:.0f} days)" for p, d in zip(pairs, days, strict=True)],
        grid=s.grid,
        title=f"{sel.label} on {sel.glacier.name}: Farneback optical flow",
        pdf=s.pdf,
    )
    settings.write(s, sel.paths.scene_settings_file(sel.label, "flow"), "flow")
    if table is not None:
        write_csv(table, sel.paths.flow_epe(sel.label))
        mean = table[table["pair"] == "mean"].set_index("source")
        summary = {
            "unit": "pixels per window",
            "pairs": pairs,
            "days": days.tolist(),
            "mean_true_displacement_px": float(mean["true_px"].iloc[0]),
            "epe_px": {k: float(v) for k, v in mean["epe_px"].items()},
            "farneback": s.farneback,
            "glacier_pixels": int(truth.mask.sum()),
        }
        write_text(json.dumps(summary, indent=2) + "\n", sel.paths.flow_epe_summary(sel.label))
        print(
            "endpoint error of the flow against the true displacement on the glacier (px per window):"
        )
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        print(f"wrote {sel.paths.flow_epe(sel.label)} and {sel.paths.flow_epe_summary(sel.label)}")
    else:
        print(f"no {sel.paths.truth}: the true motion is unknown (real data), so no endpoint error")
        for k in ("target", "prediction"):
            f = flows[k]
            print(f"mean flow length, {k}: {np.hypot(f[:, 0], f[:, 1]).mean():.3f} px per window")
    print(f"wrote {sel.paths.flow_arrays(sel.label)} and {fig[0]}")
    return table
