"""Glacier configurations, the data root, and the on-disk layout.

Every fact of the original study that is data (bounding boxes, UTM zones, regions of interest,
window lengths, hand-picked Aletsch scenes) lives here, in one place.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from .errors import GlacierError

#: Landsat-8 reflective bands kept by acquisition, in the order of the original (green = 2, swir16 = 5).
BANDS: tuple[str, ...] = ("coastal", "red", "green", "blue", "nir08", "swir16", "swir22")
GREEN, SWIR16 = BANDS.index("green"), BANDS.index("swir16")

#: Collection 2 Level-2 surface reflectance: reflectance = DN * SCALE + OFFSET, DN 0 = nodata.
SCALE, OFFSET = 0.0000275, -0.2

#: Landsat 8 launched 2013-02-11; the archive is still growing.
LANDSAT8_FIRST_YEAR, LANDSAT8_LAST_YEAR = 2013, 2026

#: NDSI at or above this is snow/ice (masks keep the NDSI value there, 0 elsewhere).
NDSI_THRESHOLD = 0.3

DATA_ROOT_ENV = "GLACIER_DATA_ROOT"


@dataclass(frozen=True)
class GlacierConfig:
    """Everything the pipeline needs to know about one glacier.

    ``roi`` is (row0, row1, col0, col1) in pixels of the acquired 30 m grid; preprocessing crops
    it (intersected with the scene, so small synthetic scenes work). ``window_months`` is the
    length of the seasonal averaging window (12 must be divisible by it).
    """

    name: str
    bbox: tuple[float, float, float, float]  # lon/lat: west, south, east, north
    epsg: int
    roi: tuple[int, int, int, int]
    window_months: int
    years: tuple[int, int] = (2013, 2021)
    #: Per year, indices of usable scenes in the real archive's item order (None = all kept scenes).
    scene_selection: dict[int, tuple[int, ...]] | None = None
    #: Frames used to build training sequences (None = all); the rest are the full-scene test.
    train_frames: int | None = None

    @property
    def roi_shape(self) -> tuple[int, int]:
        r0, r1, c0, c1 = self.roi
        return r1 - r0, c1 - c0

    @property
    def frames_per_year(self) -> int:
        return 12 // self.window_months


_ALETSCH_SELECTION = {
    2013: (0, 2, 5, 7, 8),
    2014: (1, 2, 3, 4, 7, 8),
    2015: (1, 2, 3, 4, 5, 8, 10, 12, 14),
    2016: (0, 2, 7, 9, 11, 12),
    2017: (2, 3, 4, 5, 6, 7, 8),
    2018: (2, 5, 10, 11, 12),
    2019: (2, 5, 6, 7, 9, 11),
    2020: (1, 2, 3, 4, 5, 7, 10, 12),
    2021: (1, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15),
}

GLACIERS: dict[str, GlacierConfig] = {
    "parvati": GlacierConfig(
        name="parvati",
        bbox=(77.4879532598204, 31.992646374004327, 77.82063300835557, 32.225292222190056),
        epsg=32643,
        roi=(0, 800, 0, 800),
        window_months=3,
    ),
    "aletsch": GlacierConfig(
        name="aletsch",
        bbox=(7.889556884765626, 46.382464893261165, 8.22257995605469, 46.57160668424229),
        epsg=32632,
        roi=(50, 650, 100, 700),
        window_months=4,
        scene_selection=_ALETSCH_SELECTION,
        train_frames=19,
    ),
}


#: ``<glacier>-heldout-<k>``: a held-out replicate of a shipped glacier's configuration (another
#: synthetic glacier of the same kind, made with another seed; no model trains on it).
HELDOUT = "-heldout-"


def heldout_name(base: str, k: int) -> str:
    """Name of the k-th held-out replicate of ``base`` (``parvati-heldout-1``)."""
    return f"{base}{HELDOUT}{k}"


def get_glacier(name: str) -> GlacierConfig:
    """The configuration of a named glacier (case-insensitive); ``<glacier>-heldout-<k>`` is a
    held-out replicate with the configuration of ``<glacier>``."""
    key = name.lower()
    base, sep, k = key.partition(HELDOUT)
    if sep and k.isdigit() and base in GLACIERS:
        return replace(GLACIERS[base], name=key)
    try:
        return GLACIERS[key]
    except KeyError:
        raise GlacierError(
            f"unknown glacier {name!r}: choose one of {', '.join(sorted(GLACIERS))} "
            f"(or <glacier>{HELDOUT}<k> for a held-out replicate)"
        ) from None


def parse_years(text: str) -> tuple[int, int]:
    """Parse ``2013-2021`` or ``2017`` into an inclusive (first, last) pair within Landsat 8's life."""
    parts = text.split("-")
    try:
        first, last = (int(parts[0]), int(parts[-1])) if len(parts) in (1, 2) else (0, -1)
    except ValueError:
        raise GlacierError(f"bad year range {text!r}: write it as YYYY or YYYY-YYYY") from None
    if len(parts) not in (1, 2) or first > last:
        raise GlacierError(f"bad year range {text!r}: write it as FIRST-LAST with FIRST <= LAST")
    if first < LANDSAT8_FIRST_YEAR or last > LANDSAT8_LAST_YEAR:
        raise GlacierError(
            f"year range {text!r} is outside Landsat 8's life: use years "
            f"{LANDSAT8_FIRST_YEAR}-{LANDSAT8_LAST_YEAR}"
        )
    return first, last


def data_root(path: str | os.PathLike | None = None) -> Path:
    """The data root ("pathOrigin" of the original): argument, else $GLACIER_DATA_ROOT, else ./data."""
    if path is None:
        path = os.environ.get(DATA_ROOT_ENV) or "data"
    return Path(path)


@dataclass(frozen=True)
class Paths:
    """The on-disk layout under the data root, for one glacier."""

    root: Path
    glacier: str

    @property
    def glacier_dir(self) -> Path:
        return self.root / self.glacier

    @property
    def raw_dir(self) -> Path:
        return self.glacier_dir / "raw"

    def raw_year(self, year: int) -> Path:
        return self.raw_dir / f"{year}.npz"

    @property
    def truth(self) -> Path:
        return self.glacier_dir / "truth.npz"

    @property
    def frames(self) -> Path:
        return self.glacier_dir / "frames.npz"

    @property
    def figures_dir(self) -> Path:
        return self.glacier_dir / "figures"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def results_dir(self) -> Path:
        return self.glacier_dir / "results"
