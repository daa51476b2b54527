#!/usr/bin/env python3
"""Experiment 2 (Great Aletsch) — the 3×4 generalization figure.

The original `aletschGeneralizationPlot.py`: rows targets, predictions before fine-tuning and after
fine-tuning; columns the 4 predicted windows; predictions thresholded at NDSI 0.3 and
median-filtered 3×3. Writes `<data-root>/aletsch/figures/exp2-<preset>_generalization.png` (and the
scores CSV of `AletschMSE.py`, computed by the same command). Default preset: demo.
"""

import sys
from pathlib import Path

from glacier_movement.cli import Command, script
from glacier_movement.cli.reproduce import ScriptSettings, experiment_step, stage_experiment2

CONFIG = Path(__file__).with_suffix(".toml")
STEP = Command(
    "aletschGeneralizationPlot", ScriptSettings, experiment_step(stage_experiment2, "scene-scores")
)

if __name__ == "__main__":
    sys.exit(script(CONFIG, STEP, __doc__))
