#!/usr/bin/env python3
"""Experiment 1 (Parvati) — optical flow of targets and predictions, the original `opticalFlow.py`.

Farneback flow (pyr_scale 0.5, levels 6, winsize 60, iterations 10, poly_n 5, poly_sigma 1.1) between
consecutive full-scene target frames and between the predictions re-thresholded at NDSI 0.3, on
frames scaled to 0–255 (the original's 0–1 floats give almost no flow). Uses the predictions that
`inferencePlot.py` saved (or makes them). Draws the quiver figure (arrows on a 10-px grid, target
and prediction side by side, colour bar of displacement) to `<data-root>/parvati/figures/
<run>_flow.png`; on synthetic data it also prints and saves the endpoint error against the true
motion (pixels per window), beside persistence. Pass `--run NAME` or `--checkpoint PATH` for
another model. Extra options are passed on (try --help).
"""

import sys
from pathlib import Path

from glacier_movement.cli import script

CONFIG = Path(__file__).with_suffix(".toml")

if __name__ == "__main__":
    sys.exit(script(CONFIG, "flow", __doc__))
