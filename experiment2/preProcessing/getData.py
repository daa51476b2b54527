#!/usr/bin/env python3
"""Experiment 2 (Great Aletsch) — the sequences of the original `getData.py`.

As experiment 1, with the Aletsch settings: 50×50 patches with stride 10 over the 600×600 frames,
4 input + 4 target frames, built only from the first 19 of the 27 frames (37,632 sequences); the
last 8 frames are held out for the full-scene generalisation test. Writes
`<data-root>/aletsch/sequences.json` and a figure; `--export-files DIR` also writes one `.npy` file
per input and target. Extra options are passed on (try --help).
"""

import sys
from pathlib import Path

from glacier_movement.cli import script

CONFIG = Path(__file__).with_suffix(".toml")

if __name__ == "__main__":
    sys.exit(script(CONFIG, "sequences", __doc__))
