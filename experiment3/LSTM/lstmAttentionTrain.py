#!/usr/bin/env python3
"""Experiment 3 (mixed training) — SA-LSTM from scratch on Parvati + Aletsch.

The original `lstmAttentionTrain.py` of experiment 3, on the training sequences of both glaciers
together: Parvati's first 80 % in time (train + validation) and Aletsch's first 19 frames. Unlike
the original, which may have drawn Parvati test sequences into training, both test sets stay out
(tested in `tests/test_reproduce.py`). Writes `<data-root>/models/salstm-parvati+aletsch-<preset>/`.
The paper preset needs a GPU; pass `--preset demo` for a CPU run of minutes.
"""

import sys
from pathlib import Path

from glacier_movement.cli import Command, script
from glacier_movement.cli.reproduce import ScriptSettings, exp3_training, experiment_step

CONFIG = Path(__file__).with_suffix(".toml")
STEP = Command("lstmAttentionTrain", ScriptSettings, experiment_step(exp3_training, "train"))

if __name__ == "__main__":
    sys.exit(script(CONFIG, STEP, __doc__))
