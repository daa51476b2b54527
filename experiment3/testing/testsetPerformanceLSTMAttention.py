#!/usr/bin/env python3
"""Experiment 3 (mixed training) — test-set scores on the Parvati test sequences.

The original `testsetPerformanceLSTMAttention.py`: the mixed SA-LSTM on the last 20 % of the Parvati
sequences, beside persistence: MSE, MAE, SSIM, PSNR and a bootstrap interval. Writes
`<data-root>/parvati/results/salstm-parvati+aletsch-<preset>_results.csv` (and the bootstrap CSV
and a Markdown table). Default preset: demo (the run `make reproduce` trains).
"""

import sys
from pathlib import Path

from glacier_movement.cli import Command, script
from glacier_movement.cli.reproduce import ScriptSettings, experiment_step, stage_experiment3

CONFIG = Path(__file__).with_suffix(".toml")
STEP = Command(
    "testsetPerformanceLSTMAttention", ScriptSettings, experiment_step(stage_experiment3, "test")
)

if __name__ == "__main__":
    sys.exit(script(CONFIG, STEP, __doc__))
