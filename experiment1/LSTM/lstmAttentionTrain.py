#!/usr/bin/env python3
"""Experiment 1 — train the LSTM with self-attention (SA-LSTM, the paper's best model) on Parvati.

The original `lstmAttentionTrain.py` ("LSTMAttentionSmall"): encoder `LSTM(2500, 2500, 3 layers)`,
5-head self-attention and `Linear(10000, 2500)` per predicted frame (200,072,500 parameters);
MSE loss, AdamW lr 1e-4, weight decay 1e-3, batch 100, 50 epochs, gradient clipping by value 3.
Writes `<data-root>/models/salstm-parvati-paper/` (last.pt, best.pt, losses.csv, epochs.csv) and
an offline Weights & Biases run under `<data-root>/wandb/`. The paper size needs a GPU: add
`--preset demo` for a CPU run of minutes. Extra options are passed on (try --help), e.g.
`--resume`, `--wandb online`, `--amp`, or start it under `torchrun --nproc_per_node=N`.
"""

import sys
from pathlib import Path

from glacier_movement.cli import script

CONFIG = Path(__file__).with_suffix(".toml")

if __name__ == "__main__":
    sys.exit(script(CONFIG, "train", __doc__))
