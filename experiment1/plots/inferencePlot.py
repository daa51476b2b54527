#!/usr/bin/env python3
"""Experiment 1 (Parvati) — full-scene predictions, the original `inferencePlot.py`.

Takes the last 8 frames (Parvati frames 28–35), cuts the first 4 into non-overlapping patches,
predicts them in batches and stitches the 4 predicted frames back. Writes, under
`<data-root>/parvati/results/<run>/`, the predictions, targets, inputs and the persistence
baseline as `.npy`, grayscale PNG and PDF images (min–max scaled, as the original), georeferenced
GeoTIFFs (`predictions.tif`, `targets.tif`: open them in QGIS) and `scene.json` (frames, dates,
scene MSE/MAE), and the figure `<data-root>/parvati/figures/<run>_scene.png`. The default run is
the demo-preset SA-LSTM; pass `--run NAME` or `--checkpoint PATH` for another.
Extra options are passed on (try --help).
"""

import sys
from pathlib import Path

from glacier_movement.cli import script

CONFIG = Path(__file__).with_suffix(".toml")

if __name__ == "__main__":
    sys.exit(script(CONFIG, "infer", __doc__))
