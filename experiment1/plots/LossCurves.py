#!/usr/bin/env python3
"""Experiment 1 — training curves: train and validation loss per epoch of every trained run.

Reads `<data-root>/models/<run>/epochs.csv` of every run (or of `--runs NAME …`) and draws them in
one figure, `<data-root>/models/loss_curves.png` (solid: training, dashed: validation; log scale).
Extra options are passed on (try --help).
"""

import sys
from pathlib import Path

from glacier_movement.cli import script

CONFIG = Path(__file__).with_suffix(".toml")

if __name__ == "__main__":
    sys.exit(script(CONFIG, "loss-curves", __doc__))
