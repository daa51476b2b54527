"""The ``scene-scores`` command: the original's ``AletschMSE.py`` and
``aletschGeneralizationPlot.py`` — MSE/MAE (SSIM, PSNR) of several full-scene predictions of one
glacier against their targets, beside persistence, and the figure targets / predictions
(re-thresholded at 0.3, median-filtered 3×3)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.ndimage import median_filter

from .. import config, settings
from ..catalog import Catalog
from ..errors import GlacierError
from ..evaluation.inference import N_IN, Scene, load_scene
from ..evaluation.inference import scene_scores as scene_forecast_scores
from ..io import write_csv
from ..motion import threshold
from ..plotting import scene_panels_figure
from ..settings import glacier_option, option


# ------------------------------------------------------------------------------ scene scores
def generalization_panels(scene: Scene) -> np.ndarray:
    """Predictions as the original's Aletsch figure shows them: thresholded at NDSI 0.3, then a
    3×3 median filter per frame. (4, H, W) → (4, H, W)."""

    return median_filter(threshold(scene.predictions), size=(1, 3, 3), mode="nearest").astype(
        np.float32
    )


def scene_scores(
    root: Path, glacier: str, labels: Sequence[str]
) -> tuple[pd.DataFrame, list[Scene]]:
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
