#!/usr/bin/env python3
"""Experiment 1 (Parvati) — test-set scores of a trained model, the original `testsetPerformance.py`.

Scores the model on the test sequences (the last 20 % in time order) beside the persistence
baseline: per-pixel MSE and MAE (the paper's convention), SSIM and PSNR, and a 1,000-resample
percentile bootstrap of MSE and MAE (95 % interval). Writes `<data-root>/parvati/results/
<run>_results.csv`, `<run>_per_sequence.csv.gz` and `<run>_results.md`, and prints the table.
The default run is the demo-preset SA-LSTM (`make reproduce`); pass `--run NAME` (e.g.
`salstm-parvati-paper`, `unet-parvati-demo-strict`) or `--checkpoint PATH` for another.
Extra options are passed on (try --help).
"""

import sys
from pathlib import Path

from glacier_movement.cli import script

CONFIG = Path(__file__).with_suffix(".toml")

if __name__ == "__main__":
    sys.exit(script(CONFIG, "test", __doc__))
