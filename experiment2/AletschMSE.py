#!/usr/bin/env python3
"""Experiment 2 (Great Aletsch) — MSE and MAE of the stitched full-scene predictions.

The original `AletschMSE.py`: scores the predictions of `plots/aletschGeneralizationTest.py`
(before and after fine-tuning) against the 4 target frames, beside the persistence baseline, and
prints the table. Writes `<data-root>/aletsch/results/exp2-<preset>_scene_scores.csv` (and the
generalization figure, see `plots/aletschGeneralizationPlot.py`). Default preset: demo.
"""

import sys
from pathlib import Path

from glacier_movement.cli import Command, script
from glacier_movement.cli.reproduce import ScriptSettings, experiment_step, stage_experiment2

CONFIG = Path(__file__).with_suffix(".toml")
STEP = Command("AletschMSE", ScriptSettings, experiment_step(stage_experiment2, "scene-scores"))

if __name__ == "__main__":
    sys.exit(script(CONFIG, STEP, __doc__))
