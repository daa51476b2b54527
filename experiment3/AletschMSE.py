#!/usr/bin/env python3
"""Experiment 3 (mixed training) — the mixed SA-LSTM on the Aletsch full scenes.

The original `AletschMSE.py` of experiment 3: full-scene predictions of the last 8 Aletsch frames
with the mixed SA-LSTM (`exp3-mixed-<preset>`), scored beside persistence and beside experiment 2's
predictions before and after fine-tuning (run experiment 2 first). Writes
`<data-root>/aletsch/results/exp3-<preset>_scene_scores.csv` and the figure
`<data-root>/aletsch/figures/exp3-<preset>_generalization.png`. Default preset: demo.
"""

import sys
from pathlib import Path

from glacier_movement.cli import Command, script
from glacier_movement.cli.reproduce import ScriptSettings, experiment_step, stage_experiment3

CONFIG = Path(__file__).with_suffix(".toml")
STEP = Command(
    "AletschMSE", ScriptSettings, experiment_step(stage_experiment3, "infer", "scene-scores")
)

if __name__ == "__main__":
    sys.exit(script(CONFIG, STEP, __doc__))
