#!/usr/bin/env python3
"""Experiment 2 — download the Landsat 8 scenes of the Great Aletsch glacier (2013–2021).

The transfer glacier of the paper: the same search and filters as experiment 1 (Planetary
Computer STAC API, Landsat 8, cloud cover ≤ 20 %, missing fraction < 0.5, 30 m), on Aletsch's bbox
and in its own UTM zone 32N (EPSG:32632; the original used 43N for both glaciers, which distorts
Aletsch). Writes ``<data-root>/aletsch/raw/<year>.npz``; finished years are skipped. Extra
options are passed on (try --help).
"""

import sys
from pathlib import Path

from glacier_movement.cli import script

CONFIG = Path(__file__).with_suffix(".toml")

if __name__ == "__main__":
    sys.exit(script(CONFIG, "acquire", __doc__))
