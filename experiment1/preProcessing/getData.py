#!/usr/bin/env python3
"""Experiment 1 (Parvati) — the sequences of the original `getData.py`.

The original cut the preprocessed frames into 50×50 patches with stride 10 and wrote one input and
one target pickle file per sequence (4 + 4 frames; 167,504 sequences, over 13 GB). Here the
sequences are served straight from `frames.npz` at training time; this script describes them
(counts, the `paper` and `strict` splits) in `<data-root>/parvati/sequences.json`, draws example
sequences, and writes the one-file-per-sequence layout (`.npy`) only with `--export-files DIR`.
Extra options are passed on (try --help).
"""

import sys
from pathlib import Path

from glacier_movement.cli import script

CONFIG = Path(__file__).with_suffix(".toml")

if __name__ == "__main__":
    sys.exit(script(CONFIG, "sequences", __doc__))
