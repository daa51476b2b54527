#!/usr/bin/env python3
"""Experiment 1 — train the U-Net on the Parvati sequences (the original `unet/train.py`).

Standard U-Net (64-128-256-512-1024 channels, 31,036,481 parameters) applied frame by frame:
the last input frame predicts the first target, each prediction the next. MSE loss, AdamW
lr 1e-3, weight decay 1e-2, batch 100, 20 epochs, gradient clipping by value 3. Writes
`<data-root>/models/unet-parvati-paper/` and an offline Weights & Biases run under
`<data-root>/wandb/`. The paper size needs a GPU: add `--preset demo` for a CPU run of minutes.
Extra options are passed on (try --help), e.g. `--resume`, `--amp`, or start it under
`torchrun --nproc_per_node=N`.
"""

import sys
from pathlib import Path

from glacier_movement.cli import script

CONFIG = Path(__file__).with_suffix(".toml")

if __name__ == "__main__":
    sys.exit(script(CONFIG, "train", __doc__))
