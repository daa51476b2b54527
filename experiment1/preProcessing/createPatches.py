#!/usr/bin/env python3
"""Experiment 1 (Parvati) — the scene preprocessing of the original `createPatches.py`.

Reads `<data-root>/parvati/raw/<year>.npz`, crops rows 0:800 and cols 0:800 and keeps green and
swir16, fills missing pixels with the 5×5 kernel of Vonica et al. (2021), aligns every scene to
the median-filtered mean (by phase correlation, the package default; `--align ecc` for the
original's ECC homography, see docs/preprocessing.md), averages the aligned scenes in 3-month windows
(4 per year → 36 frames for 2013–2021), computes NDSI = (green − swir16)/(green + swir16) from
digital numbers, keeps it where NDSI ≥ 0.3 (0 elsewhere) and interpolates windows without a
scene. Writes `frames.npz`, `alignment.npz` and `figures/frames.{png,gif}`. The patches of the
original are cut later, lazily, by `getData.py` (`glacier-movement sequences`). Extra options are
passed on (try --help), e.g. `--align ecc`, `--average running` (the original's
pair average) or `--ndsi-input reflectance`.
"""

import sys
from pathlib import Path

from glacier_movement.cli import script

CONFIG = Path(__file__).with_suffix(".toml")

if __name__ == "__main__":
    sys.exit(script(CONFIG, "preprocess", __doc__))
