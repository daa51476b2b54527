#!/usr/bin/env python3
"""Experiment 1 — download the Landsat 8 scenes of the Parvati glacier (2013–2021).

Searches the Microsoft Planetary Computer's STAC API once per year over Parvati's bbox, keeps
Landsat 8 scenes with at most 20 % cloud cover and less than half of the pixels missing, stacks
the bands coastal, red, green, blue, nir08, swir16, swir22 at 30 m in UTM 43N (EPSG:32643) and
writes ``<data-root>/parvati/raw/<year>.npz``. Needs internet; finished years are skipped, so a
broken download is resumed by running it again. Extra options are passed on (try --help), e.g.
``--scheduler tcp://host:8786`` to download on a dask cluster or ``--data-root DIR``.
"""

import sys
from pathlib import Path

from glacier_movement.cli import script

CONFIG = Path(__file__).with_suffix(".toml")

if __name__ == "__main__":
    sys.exit(script(CONFIG, "acquire", __doc__))
