"""The synthetic world's constants: grid, speeds, regimes, acquisition filter and calendar,
the materials' spectra, the glaciers' climates, and the smooth-noise fields everything is drawn
from (:mod:`glacier_movement.synthetic`)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import cv2
import numpy as np

from ..config import BANDS, GlacierConfig

#: Pixel size of the Landsat grid, metres.
PIXEL_M = 30.0
#: Smallest ROI side (px) the generator accepts; the largest keeps one year's array in memory sane.
MIN_SIZE, MAX_SIZE = 32, 4096
#: Centreline speed of the upper glacier, px/day (0.9 m/day, ≈ 2.7 px per 3 months).
MAX_SPEED = 0.03
#: The regimes of ``synthesize --regime``: ``realistic`` (seasonal snow over the whole valley, the
#: speed above at every size) and ``motion`` (a benchmark where ice motion dominates the change
#: between frames: a stable snow line on the glacier, a high-contrast advected texture, speeds
#: scaled with the ROI size). See docs/synthetic.md.
REGIMES = ("realistic", "motion")
#: Centreline speed of the upper glacier in the motion regime at the configured ROI size, px/day;
#: a smaller ``--size`` scales it down with the landscape (160×160 Parvati: 0.032 px/day, ≈ 2.9 px
#: per 3-month window on the centreline, 1–3 px over most of the glacier).
MOTION_SPEED = 0.16
#: Motion regime: the glacier's snow line is fixed at the ice surface this far (fraction of the
#: ROI height) down the glacier; the tongue below stays bare ice all year.
STABLE_SNOWLINE_FRAC = 0.22
#: Acquisition's filter (docs/data.md): what a real download would keep.
MAX_CLOUD, MAX_MISSING = 20.0, 0.5
#: Time origin of the scene time t (days) that drives the terminus retreat and the texture.
EPOCH = np.datetime64("2013-01-01T00:00:00", "ns")
#: First Landsat-8 scenes in the archive.
FIRST_ACQUISITION = np.datetime64("2013-03-18", "D")
REVISIT_DAYS = 16
#: The ice texture is advected from this date (mid-way through Landsat 8's archive).
TEXTURE_EPOCH = np.datetime64("2019-07-01T00:00:00", "ns")
#: The texture image covers the ice's travel from the epoch over this many days either way.
TEXTURE_REACH_DAYS = 8 * 365.25
#: Rendering margin (px) around the scene grid, larger than any misregistration.
PAD = 8
_NDSI_SOFT = 110.0  # m: width of the snow line's transition
_FIRN_BAND = 250.0  # m: the firn zone above the snow line on the glacier (aged snow only)

_DAY = np.timedelta64(1, "D")


# ------------------------------------------------------------------------------------- spectra
def _spectrum(coastal, blue, green, red, nir08, swir16, swir22) -> np.ndarray:
    """A surface-reflectance spectrum given in wavelength order, returned in :data:`BANDS` order."""
    by_name = dict(
        coastal=coastal, blue=blue, green=green, red=red, nir08=nir08, swir16=swir16, swir22=swir22
    )
    return np.array([by_name[b] for b in BANDS], dtype=np.float32)


#: Surface reflectance of the materials (7 bands). Snow and ice absorb in the SWIR (high NDSI);
#: rock, debris and dry vegetation reflect more in SWIR than in green (negative NDSI); the river is
#: shallow, silty water over gravel in 30 m mixed pixels (NDSI ≈ 0.25 from reflectance).
#:
#: Snow, firn and ice are calibrated to a real Landsat-8 OLI glacier scene (Athabasca Glacier,
#: 2020-08-16, HLS L30 surface reflectance; see docs/synthetic.md): its snow/ice pixels
#: (NDSI ≥ 0.3) have swir16 median 0.008 (95th percentile 0.019) and green median 0.94 (5th
#: percentile 0.31); their NDSI from Collection-2 DN spans 0.41–0.72, snow at ≈ 0.69, ice at
#: 0.40–0.60. From DN, NDSI = (g − s) / (g + s + 0.4) in reflectance (the −0.2 offset), so
#: the DN-NDSI of a surface depends on its brightness, not only on its green/swir16 ratio:
#:   summer (old, coarse-grained, wet) snow: green 0.93, swir16 0.008 → DN-NDSI 0.69 (the mode).
#:     Ice absorbs strongly at 1.6 µm, and the more so the larger the grains: coarse old snow
#:     falls to ~0.01 there while fine-grained fresh snow keeps 0.1–0.2 (Wiscombe & Warren 1980;
#:     Dozier 1989), so ``snow_fresh`` keeps 0.12 (DN-NDSI 0.56, winter scenes);
#:   firn (last years' snow, denser, dustier): green 0.73, swir16 0.015 → DN-NDSI 0.62;
#:   clean glacier ice (bubbly, few scattering surfaces): green 0.52, swir16 0.012 → 0.55;
#:     the rendered ice mixes in 0–45 % debris dust (8 % on average: ogive bands, mottling),
#:     which spreads it over ≈ 0.39–0.55 like the real ice; crevasse shadows lower it further;
#:   supraglacial debris: a rock mixture, brighter in the SWIR than in green (NDSI −0.28 from
#:     reflectance, −0.14 from DN).
#: The snow–ice DN-NDSI contrast is thus ≈ 0.15–0.2 (it was ≈ 0.05 before this calibration,
#: with old snow swir16 0.08 and ice 0.04).
SPECTRA: dict[str, np.ndarray] = {
    "snow_fresh": _spectrum(0.92, 0.93, 0.92, 0.90, 0.80, 0.12, 0.07),
    "snow_old": _spectrum(0.92, 0.93, 0.93, 0.91, 0.72, 0.008, 0.004),
    "firn": _spectrum(0.74, 0.75, 0.73, 0.69, 0.52, 0.015, 0.008),
    "ice": _spectrum(0.55, 0.56, 0.52, 0.45, 0.28, 0.012, 0.008),
    "debris": _spectrum(0.09, 0.11, 0.14, 0.17, 0.21, 0.25, 0.21),
    "rock_light": _spectrum(0.10, 0.12, 0.16, 0.20, 0.26, 0.32, 0.27),
    "rock_dark": _spectrum(0.06, 0.07, 0.09, 0.11, 0.15, 0.19, 0.16),
    "veg_green": _spectrum(0.03, 0.04, 0.08, 0.05, 0.38, 0.20, 0.10),
    "veg_dry": _spectrum(0.05, 0.07, 0.10, 0.14, 0.24, 0.30, 0.22),
    "water": _spectrum(0.08, 0.085, 0.09, 0.07, 0.07, 0.055, 0.04),
    "cloud_water": _spectrum(0.86, 0.86, 0.85, 0.85, 0.83, 0.48, 0.32),
    "cloud_ice": _spectrum(0.76, 0.76, 0.75, 0.75, 0.73, 0.24, 0.13),
    "haze": _spectrum(0.03, 0.02, 0.012, 0.008, 0.004, 0.0, 0.0),
}


# ------------------------------------------------------------------------------------- climate
@dataclass(frozen=True)
class Climate:
    """Landscape and weather of one synthetic glacier (elevations in m, fractions of the ROI)."""

    z_low: float  # valley floor at the ROI's lower edge
    z_head: float  # valley floor (glacier surface) at the ROI's upper edge
    relief: float  # ridges above the valley floor
    snow_winter: float  # snow line in winter (below the whole ROI)
    snow_summer: float  # highest snow line, early September (≈ equilibrium-line altitude)
    treeline: float  # vegetation below this
    x_frac: float  # centreline column of the upper glacier, fraction of the ROI width
    bend: float  # lateral shift of the tongue through the bend, fraction of the ROI width
    half_width: float  # half-width of the upper glacier, fraction of min(H, W)
    moraines: tuple[float, ...]  # medial moraines at these η
    cloudy: tuple[float, ...]  # per month: odds of a scene above 20 % cloud
    max_speed: float = MAX_SPEED


CLIMATES: dict[str, Climate] = {
    # Parvati (Himachal Pradesh): high, monsoon-cloudy July–August.
    "parvati": Climate(
        z_low=3400,
        z_head=5300,
        relief=650,
        snow_winter=2800,
        snow_summer=4950,
        treeline=3950,
        x_frac=0.40,
        bend=0.10,
        half_width=0.09,
        moraines=(0.55,),
        cloudy=(0.35, 0.4, 0.4, 0.3, 0.2, 0.3, 0.7, 0.7, 0.35, 0.12, 0.15, 0.3),
    ),
    # Great Aletsch (Valais): lower, wider, two medial moraines, bends the other way.
    "aletsch": Climate(
        z_low=1900,
        z_head=3300,
        relief=550,
        snow_winter=900,
        snow_summer=3050,
        treeline=2250,
        x_frac=0.58,
        bend=-0.11,
        half_width=0.10,
        moraines=(-0.35, 0.3),
        cloudy=(0.45, 0.4, 0.4, 0.4, 0.45, 0.4, 0.35, 0.35, 0.3, 0.35, 0.45, 0.5),
    ),
}


def climate(cfg: GlacierConfig) -> Climate:
    """The climate of a configured glacier (a Parvati-like default for other names)."""
    return CLIMATES.get(cfg.name, CLIMATES["parvati"])


# -------------------------------------------------------------------------------------- noise
def _noise(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Smooth Gaussian noise, float32, zero mean and unit std, features about ``scale`` px."""
    h, w = shape
    if scale <= 2.0:
        a = cv2.GaussianBlur(rng.standard_normal((h, w), dtype=np.float32), (0, 0), max(scale, 0.5))
    else:
        # white noise on a grid 4 times finer than `scale`, blurred there (σ = 2 cells), then
        # upsampled: smooth, isotropic, and cheap for large scales
        f = scale / 4.0
        lh, lw = int(np.ceil(h / f)) + 8, int(np.ceil(w / f)) + 8
        low = cv2.GaussianBlur(rng.standard_normal((lh, lw), dtype=np.float32), (0, 0), 2.0)
        big = cv2.resize(
            low, (int(np.ceil(lw * f)), int(np.ceil(lh * f))), interpolation=cv2.INTER_CUBIC
        )
        a = big[:h, :w]
    sub = a[::4, ::4]  # statistics from a subsample: the field is smooth
    a = a - np.float32(sub.mean())
    return (a / np.float32(max(float(sub.std()), 1e-6))).astype(np.float32, copy=False)


def _aniso(
    rng: np.random.Generator, shape: tuple[int, int], s_row: float, s_col: float
) -> np.ndarray:
    """Anisotropic smooth noise (blur σ ``s_row`` down rows, ``s_col`` across columns), unit std."""
    a = cv2.GaussianBlur(
        rng.standard_normal(shape, dtype=np.float32), (0, 0), sigmaX=s_col, sigmaY=s_row
    )
    a -= a.mean()
    return a / max(float(a.std()), 1e-6)


def _glacier_id(name: str) -> int:
    return zlib.crc32(name.encode())
