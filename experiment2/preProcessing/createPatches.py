#!/usr/bin/env python3
"""Experiment 2 (Great Aletsch) — the scene preprocessing of the original `createPatches.py`.

As experiment 1, with the Aletsch settings: rows 50:650, cols 100:700 (600×600), only the
hand-picked usable scenes of each year (the lists of the original, for acquired data; synthetic
data, recognised by its `truth.npz`, uses every scene that passes the cloud/nodata filter), and
4-month windows (3 per year → 27 frames for 2013–2021; the last 8 are the full-scene test).
Writes `<data-root>/aletsch/frames.npz`, `alignment.npz` and `figures/frames.{png,gif}`. Extra
options are passed on (try --help), e.g. `--select-scenes all`.
"""

import sys
from pathlib import Path

from glacier_movement.cli import script

CONFIG = Path(__file__).with_suffix(".toml")

if __name__ == "__main__":
    sys.exit(script(CONFIG, "preprocess", __doc__))
