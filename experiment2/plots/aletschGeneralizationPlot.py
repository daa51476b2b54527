#!/usr/bin/env python3
"""Experiment 2 (Great Aletsch) — the 3×4 generalization figure.

The original `aletschGeneralizationPlot.py`: rows targets, predictions before fine-tuning and after
fine-tuning; columns the 4 predicted windows; predictions thresholded at NDSI 0.3 and
median-filtered 3×3. Writes `<data-root>/aletsch/figures/exp2-<preset>_generalization.png` (and the
scores CSV of `AletschMSE.py`, computed by the same command). Default preset: demo.
"""

import sys

from glacier_movement.reproduce import run_script, select, stage_experiment2

if __name__ == "__main__":
    sys.exit(run_script(__doc__, select(stage_experiment2, "scene-scores"), default_preset="demo"))
