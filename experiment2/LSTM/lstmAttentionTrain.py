#!/usr/bin/env python3
"""Experiment 2 (Great Aletsch) — fine-tune the experiment-1 SA-LSTM on Aletsch.

The original `lstmAttentionTrain.py` of experiment 2: the SA-LSTM trained on Parvati
(`<data-root>/models/salstm-parvati-<preset>/last.pt`) is trained further on the Aletsch training
sequences (the first 19 of the 27 four-month frames; the last 8 are the full-scene test) with the
the paper's hyperparameters (AdamW lr 1e-4, weight decay 1e-3, batch 100, clipping 3.0). Writes
`<data-root>/models/salstm-aletsch-<preset>-finetuned/`. The paper preset needs a GPU; pass
`--preset demo` for a CPU run of minutes. A killed run continues where it stopped when started again.
"""

import sys
from pathlib import Path

from glacier_movement.cli import Command, script
from glacier_movement.cli.reproduce import ScriptSettings, experiment_step, stage_experiment2

CONFIG = Path(__file__).with_suffix(".toml")
STEP = Command("lstmAttentionTrain", ScriptSettings, experiment_step(stage_experiment2, "train"))

if __name__ == "__main__":
    sys.exit(script(CONFIG, STEP, __doc__))
