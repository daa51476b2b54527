#!/usr/bin/env python3
"""Experiment 2 (Great Aletsch) — full-scene predictions before and after fine-tuning.

The original `aletschGeneralizationTest.py`: the last 8 Aletsch frames, the first 4 cut into
patches and predicted in batches, the 4 predicted frames stitched back — once with the Parvati
SA-LSTM as it is (`exp2-before-<preset>`) and once with the fine-tuned one (`exp2-after-<preset>`).
Writes `<data-root>/aletsch/results/<label>/` (`.npy`, PNG, GeoTIFF, `scene.json`) and the scene
figures. Default preset: demo (the runs `make reproduce` trains); `--preset paper` for the paper's.
"""

import sys
from pathlib import Path

from glacier_movement.cli import Command, script
from glacier_movement.cli.reproduce import ScriptSettings, experiment_step, stage_experiment2

CONFIG = Path(__file__).with_suffix(".toml")
STEP = Command(
    "aletschGeneralizationTest", ScriptSettings, experiment_step(stage_experiment2, "infer")
)

if __name__ == "__main__":
    sys.exit(script(CONFIG, STEP, __doc__))
