#!/usr/bin/env python3
"""Experiment 1 — train the ConvLSTM on the Parvati sequences (the original `convLSTMTrain.py`).

Encoder ConvLSTM [128, 64, 32] and decoder [32, 64, 32] with 3×3 kernels and a 3×3 output conv
(the `big` configuration, 1,554,593 parameters; `--convlstm small` is the [64,64,24,24,64,24] one
the original test scripts loaded); MSE loss, AdamW lr 1e-4, weight decay 1e-3, batch 100,
40 epochs, gradient clipping by value 3. Writes `<data-root>/models/convlstm-parvati-paper/` and
an offline Weights & Biases run under `<data-root>/wandb/`. The paper size needs a GPU (≈ 52 s per
step on 2 CPU cores): add `--preset demo` for a CPU run of minutes. Extra options are passed on
(try --help), e.g. `--resume`, `--amp`, or start it under `torchrun --nproc_per_node=N`.
"""

import sys
from pathlib import Path

from glacier_movement.cli import script

CONFIG = Path(__file__).with_suffix(".toml")

if __name__ == "__main__":
    sys.exit(script(CONFIG, "train", __doc__))
