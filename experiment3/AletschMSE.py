#!/usr/bin/env python3
"""Experiment 3 (mixed training) — the mixed SA-LSTM on the Aletsch full scenes.

The original `AletschMSE.py` of experiment 3: full-scene predictions of the last 8 Aletsch frames
with the mixed SA-LSTM (`exp3-mixed-<preset>`), scored beside persistence and beside experiment 2's
predictions before and after fine-tuning (run experiment 2 first). Writes
`<data-root>/aletsch/results/exp3-<preset>_scene_scores.csv` and the figure
`<data-root>/aletsch/figures/exp3-<preset>_generalization.png`. Default preset: demo.
"""

import sys

from glacier_movement.reproduce import run_script, select, stage_experiment3

if __name__ == "__main__":
    sys.exit(
        run_script(
            __doc__, select(stage_experiment3, "infer", "scene-scores"), default_preset="demo"
        )
    )
