"""The synthetic Landsat-8 glacier: scene files in the acquisition format, with known motion.

The real archive (Planetary Computer) is out of reach of CI and of many users, so
``glacier-movement synthesize`` writes, for a named glacier configuration, the same yearly scene
files that ``acquire`` writes (``<root>/<glacier>/raw/<year>.npz``, :func:`io.write_scenes`:
uint16 DN (N, 7, H, W), 0 = nodata, reflectance = DN · 0.0000275 − 0.2) plus the ground truth
``<root>/<glacier>/truth.npz``. Everything is vectorised numpy/OpenCV; a Parvati-size year
(≈ 23 scenes of 800 × 800 × 7) takes a few seconds.

What is in a scene (all in surface reflectance before the DN conversion)
-------------------------------------------------------------------------
* **Terrain**: a valley between ridged mountain slopes (elevation in metres: valley floor falling
  down the image, U-shaped cross profile, ridged fractal peaks), lit by the season's sun
  (hillshade with skylight, so no pixel is darker than 45 % of flat ground).
* **Materials** with plausible 7-band spectra (coastal, red, green, blue, nir08, swir16, swir22):
  two rock lithologies, moraine/outwash debris, alpine vegetation (green in summer, dry in spring
  and autumn), a braided glacial river (shallow water over gravel), fresh and old snow, firn, clean
  glacier ice. NDSI = (green − swir16) / (green + swir16) is ≥ 0.3 on snow and ice and < 0.3 on
  everything else, computed from reflectance and from DN (which differ through the −0.2 offset).
* **A valley glacier** whose tongue runs down the image from above the region of interest (ROI),
  straight in its upper part, then bending, tapering and decelerating towards a rounded terminus
  that retreats at a constant rate. Flow coordinates: ``s`` = row − roi_row0 (along flow),
  ``η`` = (column − x_c(s)) / w(s) (across flow, ±1 at the margins), ``σ(s) = ∫ ds / g(s)``
  (``g`` ≤ 1 is the deceleration towards the terminus). The ice speed is
  ``u(η) · g(s)`` with ``u(η) = max_speed · (1 − η⁴)`` (Glen's law profile: largest on the
  centreline, zero at the margins). A material point keeps η and moves by ``dσ/dt = u(η)``, so a
  surface texture ``T(σ(s) − u(η)·t, η)`` is advected *exactly* and the velocity is known in closed
  form: ``v = u(η) g(s) · (x_c'(s) + η w'(s), 1)`` px/day (x = column, y = row).
* **Surface texture** of the ice, all advected: ogive arcs and brightness variations, chevron
  crevasses, debris patches and medial moraines (dark, low NDSI: the snow/ice mask is textured).
  The texture is one pattern advected from a reference date (2019-07-01); the plug-like centre
  keeps its pattern over the years while the ice near the margins shears into streaks, as
  marginal shear zones do. (Cross-fading renewed patterns was tried: it decorrelates scenes a year
  apart enough to spoil motion estimates.)
* **The realistic regime's range and weather** (landscape.py, docs/synthetic.md "Calibrated to
  real frames"): ridged peaks and rough rock around the valley, skylight and cast shadows, snow
  that steep slopes shed and crests lose to the wind, an AR(1) snow-line anomaly persisting from
  window to window (``persistence``), storms in every season, snow age; the motion regime keeps
  the smooth valley and the seasons below.
* **Seasons**: a snow line (elevation, m) that is a smooth function of the day of year — snow over
  the whole valley in winter, rising from March to its highest (≈ the equilibrium line) in early
  September, falling in October–November — plus a yearly anomaly and occasional fresh snowfalls in
  spring and autumn; patchy at the line, held longer on north-facing slopes, shed by cliffs.
* **Acquisitions**: the main WRS path every 16 days (a few missed) plus occasional scenes of the
  neighbouring path 7 days later; 10:12 local solar time; about 20–25 per year (fewer in 2013,
  when Landsat 8 began on 2013-03-18), 8–20 of them passing acquisition's filter (cloud ≤ 20 %,
  missing < 0.5). Cloud cover 0–100 % (monsoon/winter-dependent odds), rendered as bright cloud
  blobs of water or ice cloud (NDSI-ambiguous) with thin edges and their shadows; a haze term.
* **Nodata** (DN 0 in all bands, in the sensor frame): diagonal wedges at the path/row edges
  (tilted 12°; large ones on the neighbouring path, so a few scenes have missing ≥ 0.5),
  detector stripes and line drop-outs, holes.
* **Misregistration**: each scene is warped with ``cv2.warpPerspective`` by a homography that
  maps TRUE pixel coordinates (x, y, 1) to OBSERVED ones: a translation of up to ±3.5 px (some
  sub-pixel) plus independent corner jitter (σ 0.25 px: slight perspective). Then sensor noise
  (independent per scene, σ 0.002 reflectance) and the DN conversion.

The scene files hold every generated scene (also the cloudy and gappy ones acquisition would drop)
unless ``only_kept=True`` (``--only-kept``), which writes exactly what acquisition would keep.

truth.npz (grid = the raw scene grid (Hg, Wg) = (roi_row0 + H, roi_col0 + W); N = every generated
scene of the run, in time order, i.e. the year files' scenes in year order when all are written)
-----------------------------------------------------------------------------------------------
``velocity``           float32 (2, Hg, Wg)  ice velocity, px/day; [0] x (column, right), [1] y (row,
                                            down); 0 outside ``glacier_mask``. Steady in time.
``glacier_mask``       bool (Hg, Wg)        ice extent at the first generated scene (the largest).
``along_flow``         float32 (Hg, Wg)     terminus coordinate (px): the ice extent of scene i is
                                            ``glacier_mask & (along_flow <= terminus_position[i])``;
                                            NaN outside the glacier's band (|η| ≥ 1).
``terminus_position``  float64 (N,)         that coordinate's value at each scene (decreasing).
``scene_times``        datetime64[ns] (N,)  acquisition time (UTC) of every generated scene.
``warps``              float64 (N, 3, 3)    homography TRUE (x, y, 1) → OBSERVED pixel coordinates;
                                            undo it with ``cv2.warpPerspective(observed, warps[i],
                                            (Wg, Hg), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)``.
``cloud_cover``        float64 (N,)         percent of the scene under cloud (as in the scene files).
``missing_fraction``   float64 (N,)         fraction of nodata pixels of the scene.
``kept``               bool (N,)            acquisition's filter: cloud ≤ 20 % and missing < 0.5.
``written``            bool (N,)            the scene is in its year file (all, or ``kept`` with
                                            ``only_kept``); the year files hold the written rows in order.
``snowline``           float64 (N,)         snow-line elevation of each scene, m.
``elevation``          float32 (Hg, Wg)     terrain and ice-surface elevation, m.
``roi``                int64 (4,)           (row0, row1, col0, col1) of the ROI in the scene grid.
``max_speed``          float64 ()           centreline speed of the upper glacier, px/day.
``glacier``, ``seed``  str, int64           what generated it.
``persistence``        float64 ()           realistic regime: correlation of the snow-line anomaly
                                            between windows 3 months apart (landscape.py); NaN in
                                            the motion regime. Set by ``synthesize --persistence``.
``snowline_anomaly``   float64 (N,)         realistic regime: the persistent AR(1) part of each
                                            scene's snow-line departure, m (storms excluded); NaN
                                            in the motion regime.
``anomaly_std_m``      float64 ()           its standard deviation, m (NaN in the motion regime).
``summer_ndsi_percentiles`` float64 (5,)    the 5/25/50/75/95th percentiles of the DN-NDSI of the
                                            snow/ice pixels (NDSI ≥ 0.3) of the ROI in the Jul–Sep
                                            scenes, clear (no cloud or cloud shadow) and valid,
                                            pooled: compare with a real scene (docs/synthetic.md).
``summer_ndsi_pixels`` int64 ()             how many pixels those percentiles pool.
``motion_share``       float64 ()           1 − MSE(previous window advected by the true motion,
                                            window) / MSE(previous window, window) on the ROI's
                                            glacier pixels, pooled over consecutive windows of the
                                            clean surface's means (:class:`WindowMotionShare`).
``regime``             str                  ``realistic`` or ``motion`` (:data:`REGIMES`).
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from . import config, io, landscape, locks, motion, preprocessing, settings
from .catalog import Catalog
from .config import BANDS, OFFSET, SCALE, GlacierConfig, Paths
from .errors import GlacierError
from .plotting import scene_quicklook
from .settings import SettingsError, glacier_option, option

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


# ------------------------------------------------------------------------ summer NDSI statistics
#: Months whose scenes the summer DN-NDSI statistics pool (Jul–Sep: the glacier's ice shows).
SUMMER_MONTHS = (7, 8, 9)
#: Percentiles of the summer DN-NDSI of snow/ice pixels that ``synthesize`` reports.
NDSI_PERCENTILES = (5, 25, 50, 75, 95)
#: The same statistics of a real Landsat-8 OLI glacier scene, for comparison (Athabasca Glacier,
#: 2020-08-16, HLS L30; NDSI ≥ 0.3 computed from Collection-2 DN): the range they span.
REAL_SUMMER_NDSI = (0.41, 0.72)
_NDSI_EDGES = np.linspace(0.3, 1.0, 701)  # 0.001-wide bins over the snow/ice range


class SnowNdsiHistogram:
    """Pooled histogram of the DN-NDSI of snow/ice pixels (NDSI ≥ 0.3) of clear, valid ROI
    pixels, scene by scene (bins 0.001 wide: the percentiles are exact to 0.001)."""

    def __init__(self) -> None:
        self.counts = np.zeros(len(_NDSI_EDGES) - 1, dtype=np.int64)

    def add(self, dn: np.ndarray, roi: tuple[int, int, int, int], cloudy: np.ndarray) -> None:
        """Add one scene: ``dn`` uint16 (7, Hg, Wg), ``cloudy`` bool (Hg, Wg) is left out."""
        r0, r1, c0, c1 = roi
        g = dn[BANDS.index("green"), r0:r1, c0:c1].astype(np.float32)
        s = dn[BANDS.index("swir16"), r0:r1, c0:c1].astype(np.float32)
        ok = (g > 0) & (s > 0) & ~cloudy[r0:r1, c0:c1]
        nd = (g[ok] - s[ok]) / (g[ok] + s[ok])  # DN-NDSI, as preprocessing computes it by default
        self.counts += np.histogram(nd[nd >= 0.3], bins=_NDSI_EDGES)[0]

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    def percentiles(self, q: tuple[float, ...] = NDSI_PERCENTILES) -> np.ndarray:
        """The pooled percentiles ``q`` (float64, bin centres); NaN when no pixel was added."""
        if self.n == 0:
            return np.full(len(q), np.nan)
        cum = np.cumsum(self.counts) / self.n
        k = np.searchsorted(cum, np.asarray(q, dtype=np.float64) / 100.0)
        centres = 0.5 * (_NDSI_EDGES[1:] + _NDSI_EDGES[:-1])
        return centres[np.minimum(k, len(centres) - 1)]


def _month(time: np.datetime64) -> int:
    return int(np.datetime64(time, "M").astype(int) % 12) + 1


class WindowMotionShare:
    """The motion share (:func:`motion.motion_share`) of window means of the clean surface,
    streamed scene by scene in time order.

    Each window of ``window_months`` months (as preprocessing cuts them) averages the green and
    swir16 DN of its scenes' clean surface (:meth:`Generator.render_full`), then takes the DN-NDSI
    masked at 0.3, as preprocessing does; consecutive windows with scenes are compared over the
    ROI's glacier pixels (the ice extent of the later window), the earlier advected by the true
    velocity × the days between the windows' mean scene times.
    """

    def __init__(self, gen: Generator, window_months: int, keep_frames: bool = False):
        self.gen, self.months = gen, window_months
        #: with ``keep_frames``: every window's frame (H, W) NDSI and mean scene time (days)
        self.frames: list[np.ndarray] | None = [] if keep_frames else None
        self.times: list[float] = []
        g = gen.geom
        r0, r1, c0, c1 = gen.roi
        y = np.arange(r0, r1, dtype=np.float64)[:, None]
        x = np.arange(c0, c1, dtype=np.float64)[None, :]
        s, eta = g.coords(x, y)
        band = np.abs(eta) < 1.0
        self.along = np.where(band, g.along(s, eta), np.inf)
        vx, vy = g.velocity(x, y)
        self.velocity = np.stack([np.where(band, vx, 0), np.where(band, vy, 0)]).astype(np.float32)
        self.key: tuple[int, int] | None = None  # (year, window) being summed
        self.sum, self.n, self.t = np.zeros(0), 0, 0.0  # its clean-surface sum, scenes, times
        self.prev: tuple[np.ndarray, float] | None = None  # the last window's frame and time
        self.persist = self.advected = 0.0
        self.pairs = 0

    def add(self, p: ScenePlan, clean: np.ndarray) -> None:
        """Add a scene's clean surface: green/swir16 reflectance (2, Hg, Wg) in the TRUE frame."""
        year = int(np.datetime64(p.time, "Y").astype(int)) + 1970
        key = (year, (_month(p.time) - 1) // self.months)
        if key != self.key:
            self._close()
            self.key, self.sum, self.n, self.t = key, np.zeros_like(clean, np.float64), 0, 0.0
        self.sum += clean
        self.n += 1
        self.t += p.t

    def _close(self) -> None:
        if self.key is None:
            return
        r0, r1, c0, c1 = self.gen.roi
        dn = (self.sum[:, r0:r1, c0:c1] / self.n - OFFSET) / SCALE
        frame = preprocessing.snow_mask(preprocessing.ndsi(dn[0], dn[1]))
        t = self.t / self.n
        if self.frames is not None:
            self.frames.append(frame)
            self.times.append(t)
        if self.prev is not None:
            before, t0 = self.prev
            mask = self.along <= self.gen.geom.terminus(t)
            p, a, _ = motion.motion_share_terms(before, frame, self.velocity * (t - t0), mask)
            self.persist, self.advected, self.pairs = (
                self.persist + p,
                self.advected + a,
                self.pairs + 1,
            )
        self.prev, self.key = (frame, t), None

    def share(self) -> float:
        """The pooled motion share of the windows added so far (NaN under two windows)."""
        self._close()
        return motion.share_from_terms(self.persist, self.advected)


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


# ------------------------------------------------------------------------------------ geometry
@dataclass(frozen=True)
class Geometry:
    """The glacier's flow coordinates and known motion on the raw scene grid (pixels, days).

    ``H, W`` is the ROI size, ``r0, c0`` its offset in the scene grid. All functions take and
    return numpy arrays; ``s`` = row − r0, ``eta`` ∈ (−1, 1) on the glacier.
    """

    H: int
    W: int
    r0: int
    c0: int
    clim: Climate

    @property
    def w0(self) -> float:
        """Half-width of the upper glacier, px."""
        return max(self.clim.half_width * min(self.H, self.W), 5.0)

    # centreline: straight in the upper glacier (a uniform flow to measure), then a tanh bend
    # centred at 0.66 H
    def centre(self, s):
        """Centreline column x_c(s) and its slope dx_c/ds."""
        lb = 0.07 * self.H
        th = np.tanh((s - 0.66 * self.H) / lb)
        amp = self.clim.bend * self.W
        xc = self.c0 + self.clim.x_frac * self.W + 0.5 * amp * (1.0 + th)
        return xc, 0.5 * amp * (1.0 - th**2) / lb

    def half_width(self, s):
        """Half-width w(s) (constant down to 0.5 H, then tapering by 25 %) and dw/ds."""
        a, b = 0.5 * self.H, 0.8 * self.H
        u = np.clip((s - a) / (b - a), 0.0, 1.0)
        w = self.w0 * (1.0 - 0.25 * u * u * (3.0 - 2.0 * u))
        dw = -self.w0 * 0.25 * 6.0 * u * (1.0 - u) / (b - a)
        return w, dw

    # deceleration towards the terminus: g(s) = 1 / (1 + β·logistic((s − s_g)/L_g))
    _BETA = 1.2

    def sigma(self, s):
        """σ(s) = ∫ ds / g(s): the along-flow coordinate in which the ice moves at u(η)."""
        sg, lg = 0.68 * self.H, 0.05 * self.H
        return s + self._BETA * lg * np.logaddexp(0.0, (s - sg) / lg)

    def decel(self, s):
        """g(s) ∈ (0.45, 1]: the fraction of u(η) at which the ice moves at s."""
        sg, lg = 0.68 * self.H, 0.05 * self.H
        return 1.0 / (1.0 + self._BETA / (1.0 + np.exp(-(s - sg) / lg)))

    def speed(self, eta):
        """u(η) = max_speed · (1 − η⁴) on the glacier, 0 off it (px/day)."""
        return np.where(np.abs(eta) < 1.0, self.clim.max_speed * (1.0 - eta**4), 0.0)

    def coords(self, x, y):
        """(s, η) of pixel coordinates (x = column, y = row), broadcast."""
        s = np.asarray(y, dtype=np.float64) - self.r0
        xc, _ = self.centre(s)
        w, _ = self.half_width(s)
        return s, (np.asarray(x, dtype=np.float64) - xc) / w

    def along(self, s, eta):
        """Terminus coordinate: ice where ``along ≤ terminus(t)`` (a rounded tongue)."""
        w, _ = self.half_width(s)
        return s + 0.8 * w * (1.0 - np.sqrt(np.clip(1.0 - eta**2, 0.0, 1.0)))

    def terminus(self, t_days):
        """Terminus position (px along flow) at ``t_days`` since :data:`EPOCH`: 0.5 % of H a year."""
        return self.H * (0.80 - 0.005 * np.asarray(t_days, dtype=np.float64) / 365.25)

    def velocity(self, x, y):
        """Velocity (vx, vy) in px/day at pixel coordinates (x, y) (on the glacier band |η| < 1)."""
        s, eta = self.coords(x, y)
        _, dxc = self.centre(s)
        _, dw = self.half_width(s)
        v = self.speed(eta) * self.decel(s)
        return v * (dxc + eta * dw), v * np.ones_like(eta)


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


# --------------------------------------------------------------------------------------- plans
@dataclass
class ScenePlan:
    """Everything random about one scene, drawn before rendering (deterministic per seed)."""

    time: np.datetime64  # UTC, ns
    t: float  # days since EPOCH
    doy: int
    path: int  # 0 = main WRS path, 1 = neighbouring path
    cloud: float  # cloud fraction to render, 0–1
    ice_cloud: float  # share of ice cloud (low swir16: NDSI-ambiguous), 0–1
    wedge: tuple[str, float, float] | None  # (side, fraction of the ROI, tilt in degrees)
    stripes: int
    holes: float  # fraction of the scene in holes
    warp: np.ndarray  # (3, 3) TRUE → OBSERVED
    snowline: float  # m
    haze: float
    seed: int
    missing: float = 0.0  # fraction of nodata pixels (computed while planning)
    #: age of the snow surface 0 (fresh) … 1 (old); None = the season's (the motion regime)
    snow_age: float | None = None
    cloud_cover: float = 0.0  # percent, realised (computed while rendering)


def _snowline_season(doy: float) -> float:
    """0 in winter, rising smoothly from early March to 1 in early September, back by mid-November."""
    if 75 <= doy <= 245:
        return 0.5 - 0.5 * np.cos(np.pi * (doy - 75) / 170)
    if 245 < doy <= 320:
        return 0.5 + 0.5 * np.cos(np.pi * (doy - 245) / 75)
    return 0.0


# ---------------------------------------------------------------------------------- generator
class Generator:
    """A synthetic glacier on a scene grid: static landscape, per-year plans, per-scene rendering.

    ``size`` is the ROI size (H, W); the scene grid is (roi_row0 + H, roi_col0 + W).
    """

    def __init__(
        self,
        cfg: GlacierConfig,
        size: tuple[int, int] | None = None,
        seed: int = 0,
        regime: str = "realistic",
        persistence: float = landscape.PERSISTENCE,
    ):
        if regime not in REGIMES:
            raise GlacierError(f"unknown regime {regime!r}: choose one of {', '.join(REGIMES)}")
        h, w = size if size is not None else cfg.roi_shape
        h, w = int(h), int(w)
        if min(h, w) < MIN_SIZE:
            raise GlacierError(
                f"size {h}×{w} is too small: the synthetic glacier needs at least {MIN_SIZE}×{MIN_SIZE} pixels"
            )
        if max(h, w) > MAX_SIZE:
            raise GlacierError(f"size {h}×{w} is too large: use at most {MAX_SIZE} pixels a side")
        if seed < 0:
            raise GlacierError(f"seed {seed} is negative: use a seed >= 0")
        self.cfg, self.seed, self.size = cfg, int(seed), (h, w)
        self.regime = regime
        self.clim = climate(cfg)
        #: the realistic regime's mountain range and weather (landscape.py); None in the motion
        #: regime, which keeps its smooth valley and fixed snow line
        self.range = landscape.range_of(cfg.name) if regime == "realistic" else None
        if self.range is not None:
            if not 0.0 <= persistence < 1.0:
                raise GlacierError(f"persistence {persistence} is outside [0, 1): use e.g. 0.5")
            self.clim = dataclasses.replace(
                self.clim,
                z_low=self.range.z_low or self.clim.z_low,
                snow_winter=self.range.snow_winter,
                snow_summer=self.range.snow_summer or self.clim.snow_summer,
            )
            # the snow-line anomaly, AR(1) from window to window (correlation `persistence`)
            self.anomaly = landscape.SnowlineAnomaly(
                [self.seed, _glacier_id(cfg.name), 7],
                self.range.anomaly_m,
                persistence,
                80 * 365.25,
            )
        self.persistence = float(persistence)
        self._shadows: dict[int, np.ndarray] = {}
        if regime == "motion":  # speeds scale with the landscape (px per px of the ROI)
            ratio = min(h, w) / min(cfg.roi_shape)
            self.clim = dataclasses.replace(self.clim, max_speed=MOTION_SPEED * ratio)
        r0, c0 = cfg.roi[0], cfg.roi[2]
        self.roi = (r0, r0 + h, c0, c0 + w)
        self.shape = (r0 + h, c0 + w)  # the raw scene grid
        self.geom = Geometry(h, w, r0, c0, self.clim)
        self.gid = _glacier_id(cfg.name)
        west, south, east, north = cfg.bbox
        self.lon, self.lat = 0.5 * (west + east), 0.5 * (south + north)
        self._build()

    # ---------------------------------------------------------------------------- static world
    def _build(self) -> None:
        g, clim = self.geom, self.clim
        rng = np.random.default_rng([self.seed, self.gid, 0])
        hg, wg = self.shape
        hp, wp = hg + 2 * PAD, wg + 2 * PAD
        self.phase = int(rng.integers(0, REVISIT_DAYS))  # the main path's place in its 16-day cycle
        y = np.arange(hp, dtype=np.float64) - PAD
        x = np.arange(wp, dtype=np.float64) - PAD
        s = y - g.r0
        xc, _ = g.centre(s)
        wid, _ = g.half_width(s)
        n = x[None, :] - xc[:, None]  # across-flow distance, px
        eta = n / wid[:, None]
        d = np.abs(n)
        w0 = g.w0

        # A smaller --size shows the configured ROI's landscape on fewer pixels: landscape
        # features scale with it (at least 2 px) and slopes are computed on the coarser pixels, so
        # a 96 px demo is not a wall of cliffs (no winter snow, black shadows).
        zoom = self.zoom = min(1.0, min(g.H, g.W) / min(self.cfg.roi_shape))

        def scale(px: float) -> float:
            return max(2.0, px * zoom)

        # Elevation: valley floor falling down-flow, U-shaped walls, ridged peaks away from the ice
        # (none on the valley floor).
        zf = clim.z_low + (clim.z_head - clim.z_low) * np.clip((g.H - s) / g.H, 0.0, None) ** 1.2
        beyond = np.maximum(d - 0.9 * wid[:, None], 0.0)
        wall = clim.relief * (1.0 - np.exp(-((beyond / (2.5 * w0)) ** 2)))
        # ridges from the zero crossings of the two large octaves, plain noise for the small ones
        # (small ridged octaves ring isolated bumps: craters)
        ridged = (1.0 - np.abs(_noise(rng, (hp, wp), scale(110)))) ** 2
        ridged += 0.5 * (1.0 - np.abs(_noise(rng, (hp, wp), scale(45)))) ** 2
        ridged += 0.12 * _noise(rng, (hp, wp), scale(18)) + 0.05 * _noise(rng, (hp, wp), scale(7))
        ridged = (ridged - ridged.mean()) / ridged.std()
        away = np.clip(beyond / (1.5 * w0), 0.0, 1.0)
        on_ice = np.abs(eta) < 1.0
        z = zf[:, None] + wall + 0.4 * clim.relief * ridged * away
        z += np.where(on_ice, 50.0 * (1.0 - eta**2), 0.0)  # convex ice surface
        if self.range is not None:  # the mountain range around the valley (landscape.py)
            lr = np.random.default_rng([self.seed, self.gid, 6])
            peaks = (1.0 - np.abs(_noise(lr, (hp, wp), scale(140)))) ** 2
            peaks += 0.5 * (1.0 - np.abs(_noise(lr, (hp, wp), scale(50)))) ** 2
            peaks = (peaks - peaks.mean()) / peaks.std()
            rough = 0.5 * _noise(lr, (hp, wp), scale(2.0)) + 0.8 * _noise(lr, (hp, wp), scale(5.0))
            z += landscape.range_relief(peaks, rough, away, self.range)
        z = z.astype(np.float32)
        gy, gx = np.gradient(z, PIXEL_M / zoom)
        norm = np.sqrt(gx * gx + gy * gy + 1.0)
        self.normal = (-gx / norm, -gy / norm, 1.0 / norm)  # (x east, y south, up)
        slope = np.degrees(np.arccos(self.normal[2]))

        # Ground: lithologies, vegetation, moraines/outwash in the valley, the river.
        lith = 1.0 / (1.0 + np.exp(-1.5 * _noise(rng, (hp, wp), scale(40))))
        rock = SPECTRA["rock_dark"] + lith[..., None] * (
            SPECTRA["rock_light"] - SPECTRA["rock_dark"]
        )
        rock *= (1.0 + 0.08 * _noise(rng, (hp, wp), 2))[..., None]
        valley = np.clip(
            (1.25 - np.abs(eta)) / 0.05, 0.0, 1.0
        )  # ice bed, outwash, lateral moraines
        rx = xc + 0.35 * wid * np.sin(2 * np.pi * s / (0.18 * g.H) + rng.uniform(0, 2 * np.pi))
        water = np.clip(1.5 - np.abs(x[None, :] - rx[:, None]), 0.0, 1.0) * (s > 0.5 * g.H)[:, None]
        veg = np.clip((clim.treeline - z) / 250.0, 0, 1) * (1 - np.clip((slope - 28) / 14, 0, 1))
        veg *= np.clip(0.45 + 0.5 * _noise(rng, (hp, wp), scale(10)), 0, 1) * (1 - valley)
        a = rock
        a += veg[..., None] * (SPECTRA["veg_dry"] - a)
        a += valley[..., None] * (SPECTRA["debris"] - a)
        a += water[..., None] * (SPECTRA["water"] - a)
        self.ground_a = a.astype(np.float32)
        self.ground_b = (veg * (1 - water))[..., None].astype(np.float32) * (
            SPECTRA["veg_green"] - SPECTRA["veg_dry"]
        )

        # Snow: the elevation the snow line is compared with (patchy, longer on north faces),
        # and cliffs that shed snow.
        patch = _noise(rng, (hp, wp), scale(8))
        self.z_snow = np.where(
            on_ice, z + 25.0 * patch, z + 90.0 * patch - 160.0 * self.normal[1]
        ).astype(np.float32)
        self.shed = (1.0 - 0.8 * np.clip((slope - 38.0) / 17.0, 0.0, 1.0)).astype(np.float32)
        if self.range is not None:  # where snow stays in a mountain range (landscape.py)
            lr = np.random.default_rng([self.seed, self.gid, 8])
            patches = (_noise(lr, (hp, wp), 2.0), patch, _noise(lr, (hp, wp), scale(30)))
            north = np.clip(-self.normal[1] / 0.5, -1.0, 1.0)
            z_snow, self.shed = landscape.snow_holding(
                z, slope, north, patches, veg, on_ice, PIXEL_M / zoom, self.range
            )
            self.z_snow = np.where(on_ice, self.z_snow, z_snow).astype(np.float32)
        self.elevation = z

        self._build_band(s, eta, wid, xc, z)

    def _build_band(
        self, s: np.ndarray, eta: np.ndarray, wid: np.ndarray, xc: np.ndarray, z: np.ndarray
    ) -> None:
        """The glacier band's static arrays (flat indices, flow coordinates, moraines, texture
        grid) and the motion regime's snow-line elevation.

        ``s`` (Hp,) is the along-flow coordinate of each padded row (px), ``eta`` (Hp, Wp) the
        across-flow coordinate (−1…1 on the ice), ``wid`` (Hp,) the half-width and ``xc`` (Hp,)
        the centreline column (px, unpadded), ``z`` (Hp, Wp) the elevation (m).
        """
        g = self.geom
        hp, wp = eta.shape
        w0 = g.w0
        # The glacier band (|η| < 1): flat indices and flow coordinates for the texture.
        idx = np.flatnonzero(np.abs(eta) < 1.0)
        rows, cols = np.divmod(idx, wp)
        bs, be = s[rows], eta.ravel()[idx]
        self.band_idx = idx
        self.band_eta = be.astype(np.float32)
        self.band_sigma = g.sigma(bs)
        self.band_u = g.speed(be)
        self.band_along = g.along(bs, be)
        self.band_w = wid[rows]
        moraine = np.zeros_like(be)
        for m in self.clim.moraines:
            moraine = np.maximum(moraine, 0.85 * np.exp(-(((be - m) / 0.045) ** 2)))
        self.band_moraine = moraine.astype(np.float32)
        # texture image: rows = σ (1 px), cols = η·w0 (1 px at the widest)
        sig_all = g.sigma(s)
        margin = self.clim.max_speed * TEXTURE_REACH_DAYS + 8.0
        self._tex_row0 = float(sig_all.min()) - margin
        self._tex_shape = (
            int(np.ceil(sig_all.max() - sig_all.min() + 2 * margin)) + 2,
            int(2 * w0 + 8),
        )
        self.band_col = ((be + 1.0) * w0 + 3.0).astype(np.float32)
        self._t_epoch = float((TEXTURE_EPOCH - EPOCH) / _DAY)
        # motion regime: the glacier's fixed snow line, the ice surface on the centreline there
        r_line = min(PAD + g.r0 + int(STABLE_SNOWLINE_FRAC * g.H), hp - 1)
        c_line = int(np.clip(round(xc[r_line]) + PAD, 0, wp - 1))
        self.z_stable = float(z[r_line, c_line])

    @functools.cached_property
    def pattern(self) -> np.ndarray:
        """The ice texture at :data:`TEXTURE_EPOCH` in flow coordinates, (rows σ, cols η, 4) float32
        unit Gaussian fields: 0 albedo (ogive arcs + mottling), 1 crevasse lines (chevrons),
        2 crevasse-field envelope, 3 debris."""
        rng = np.random.default_rng([self.seed, self.gid, 3])
        shape = self._tex_shape
        w0 = self.geom.w0
        rr, cc = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
        eta = (cc - 3.0) / w0 - 1.0
        # ogives: bands across flow, bent into downstream-convex arcs
        ogive = _aniso(rng, shape, 2.5, 0.4 * w0)
        ogive = cv2.remap(
            ogive, cc, rr + 0.35 * w0 * eta**2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        )
        albedo = 0.6 * ogive + 0.4 * _aniso(rng, shape, 1.5, 1.5)
        if self.regime == "motion":
            # ogives as they form: one light/dark band pair per year's travel, arcs bent
            # downstream, with wandering phase and strength (an exact period would alias motion
            # estimates); mottling on top
            lam = max(6.0, self.clim.max_speed * 365.25)
            phase = 2 * np.pi * (rr + 0.35 * w0 * eta**2) / lam + 0.8 * _aniso(rng, shape, 20, 20)
            strength = 1.0 + 0.3 * _aniso(rng, shape, 15, 15)
            albedo = strength * np.cos(phase) + 0.35 * _aniso(rng, shape, 1.5, 1.5)
        # crevasses: zero crossings of a field stretched across flow, bent into chevrons
        crev = _aniso(rng, shape, 1.3, max(3.0, 0.12 * w0))
        crev = cv2.remap(
            crev, cc, rr + 0.5 * w0 * np.abs(eta), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        )
        env = _aniso(rng, shape, 10.0, 10.0)
        debris = 0.6 * _aniso(rng, shape, 1.6, 1.8) + 0.4 * _aniso(rng, shape, 5.0, 7.0)
        layer = np.stack([albedo, crev, env, debris], axis=-1)
        layer /= layer.reshape(-1, 4).std(axis=0)
        return layer.astype(np.float32)

    def texture(self, t: float, sel: np.ndarray) -> np.ndarray:
        """The advected ice texture at ``t`` days since :data:`EPOCH` for band pixels ``sel``:
        (n, 4) unit Gaussian fields, sampled at (σ − u(η)·(t − t_epoch), η): exact advection."""
        if abs(t - self._t_epoch) > TEXTURE_REACH_DAYS:
            raise GlacierError(
                f"scene time {t:.0f} days after 2013-01-01 is beyond the synthetic texture's reach"
            )
        n = sel.size
        width = 1024  # maps are (rows, 1024): OpenCV's remap takes at most 32767 columns
        padded = -(-max(n, 1) // width) * width
        col = np.zeros(padded, np.float32)
        row = np.zeros(padded, np.float32)
        col[:n] = self.band_col[sel]
        row[:n] = self.band_sigma[sel] - self.band_u[sel] * (t - self._t_epoch) - self._tex_row0
        out = cv2.remap(
            self.pattern,
            col.reshape(-1, width),
            row.reshape(-1, width),
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT,
        )
        return out.reshape(-1, 4)[:n]

    # ----------------------------------------------------------------------------------- plans
    def t_days(self, times: np.ndarray) -> np.ndarray:
        return (np.asarray(times, dtype="datetime64[ns]") - EPOCH) / _DAY

    def plan_year(self, year: int) -> list[ScenePlan]:
        """Acquisition dates, clouds, gaps, warps and snow of one year (deterministic per seed/year)."""
        rng = np.random.default_rng([self.seed, self.gid, year, 1])
        clim = self.clim
        start = max(np.datetime64(f"{year}-01-01", "D"), FIRST_ACQUISITION)
        end = np.datetime64(f"{year + 1}-01-01", "D")
        base = FIRST_ACQUISITION + self.phase
        days = []
        for path, shift, p_take in ((0, 0, 0.93), (1, 7, 0.12)):
            k0 = int(np.ceil((start - base - shift) / _DAY / REVISIT_DAYS))
            k1 = int(np.ceil((end - base - shift) / _DAY / REVISIT_DAYS))
            for k in range(k0, k1):
                take = rng.random() < p_take
                if take:
                    days.append((base + shift + k * REVISIT_DAYS, path))
        days.sort()
        # overpass at 10:12 local mean solar time, a few seconds of jitter
        utc_hours = 10.2 - self.lon / 15.0
        anomaly = float(np.clip(rng.normal(0, 100), -200, 200))  # this year's snow-line anomaly, m
        storms = np.random.default_rng([self.seed, self.gid, year, 9])  # realistic regime only
        last_storm = float(self.t_days(np.datetime64(f"{year}-01-01", "ns"))) - 20.0
        hg, wg = self.shape
        corners = np.array([[0, 0], [wg - 1, 0], [wg - 1, hg - 1], [0, hg - 1]], dtype=np.float32)
        plans = []
        for day, path in days:
            seconds = int(round(utc_hours * 3600 + rng.uniform(-30, 30))) % 86400
            time = (day.astype("datetime64[ns]") + np.timedelta64(seconds, "s")).astype(
                "datetime64[ns]"
            )
            doy = int((day - np.datetime64(f"{year}-01-01", "D")) / _DAY) + 1
            month = int(str(day)[5:7])
            cloudy = rng.random() < clim.cloudy[month - 1]
            if cloudy:
                cloud = 0.21 + 0.79 * rng.beta(1.1, 1.4)
            else:
                cloud = rng.uniform(0.0, 0.02) if rng.random() < 0.6 else rng.uniform(0.02, 0.19)
            # gaps: big wedges on the neighbouring path, sometimes on the main one
            side_main = ("left", "right", "top", "bottom")[int(rng.integers(0, 4))]
            tilt = 12.0 + rng.uniform(-3, 3)
            if path == 1:
                wedge = ("right", rng.uniform(0.3, 0.85), tilt)
            elif rng.random() < 0.04:
                wedge = (side_main, rng.uniform(0.5, 0.8), tilt)
            elif rng.random() < 0.3:
                wedge = (side_main, rng.uniform(0.02, 0.3), tilt)
            else:
                wedge = None
            stripes = int(rng.integers(1, 6)) if rng.random() < 0.15 else 0
            holes = rng.uniform(0.005, 0.04) if rng.random() < 0.12 else 0.0
            # misregistration: translation (some sub-pixel) + corner jitter (slight perspective)
            shift = np.clip(rng.normal(0, 1.2, 2), -3.5, 3.5) * (
                0.3 if rng.random() < 0.25 else 1.0
            )
            jitter = np.clip(rng.normal(0, 0.25, (4, 2)), -0.7, 0.7)
            warp = cv2.getPerspectiveTransform(
                corners, (corners + shift + jitter).astype(np.float32)
            )
            event = (
                rng.uniform(200, 700)
                if (90 <= doy <= 170 or 255 <= doy <= 310) and rng.random() < 0.2
                else 0.0
            )
            seasonal = clim.snow_winter + (clim.snow_summer - clim.snow_winter) * _snowline_season(
                doy
            )
            if self.range is None:
                snowline = seasonal + anomaly - event
            else:  # persistent anomaly, storms in every season (landscape.py)
                snowline = clim.snow_winter + (
                    clim.snow_summer - clim.snow_winter
                ) * landscape.snowline_season(
                    doy, self.range.peak_doy, self.range.winter_doy, self.range.fall_doy
                )
                snowline += float(self.anomaly(self.t_days(time)))
                drop = landscape.snowfall(storms, month, self.range, snowline)
                snowline -= drop
                t_scene = float(self.t_days(time))
                if drop > 0:
                    last_storm = t_scene
                age = landscape.snow_age(
                    t_scene - last_storm,
                    landscape.snowline_season(
                        doy, self.range.peak_doy, self.range.winter_doy, self.range.fall_doy
                    ),
                )
            plans.append(
                ScenePlan(
                    time=time,
                    t=float(self.t_days(time)),
                    doy=doy,
                    path=path,
                    cloud=float(cloud),
                    ice_cloud=float(rng.uniform(0, 1)),
                    wedge=wedge,
                    stripes=stripes,
                    holes=float(holes),
                    warp=warp.astype(np.float64),
                    snowline=float(snowline),
                    snow_age=age if self.range is not None else None,
                    haze=float(rng.uniform(0, 1) ** 2),
                    seed=int(rng.integers(0, 2**62)),
                )
            )
        for p in plans:
            p.missing = float(self.nodata(p).mean())
        self._balance(plans, rng)
        return plans

    @staticmethod
    def _balance(plans: list[ScenePlan], rng: np.random.Generator) -> None:
        """Redraw cloud fractions so that 8–20 scenes pass the filter and ≥ 3 are cloudy (> 20 %)."""

        def kept() -> np.ndarray:
            return np.array(
                [p.cloud <= 0.195 and p.missing < MAX_MISSING for p in plans], dtype=bool
            )

        def cloudy(p: ScenePlan) -> None:
            p.cloud = 0.21 + 0.79 * rng.beta(1.1, 1.4)

        n = len(plans)
        while sum(p.cloud > 0.2 for p in plans) < min(3, n // 4) and kept().sum() > 8:
            cloudy(plans[int(rng.choice(np.flatnonzero(kept())))])
        while kept().sum() > 20:
            cloudy(plans[int(rng.choice(np.flatnonzero(kept())))])
        while kept().sum() < 8:
            cand = [i for i, p in enumerate(plans) if p.cloud > 0.195 and p.missing < MAX_MISSING]
            if not cand:
                break
            plans[int(rng.choice(cand))].cloud = rng.uniform(0.0, 0.19)

    # --------------------------------------------------------------------------------- masks
    def nodata(self, p: ScenePlan) -> np.ndarray:
        """Nodata mask of a scene in the sensor frame, bool (Hg, Wg)."""
        rng = np.random.default_rng([p.seed, 1])
        hg, wg = self.shape
        yy = np.arange(hg, dtype=np.float32)[:, None]
        xx = np.arange(wg, dtype=np.float32)[None, :]
        mask = np.zeros(self.shape, dtype=bool)
        if p.wedge is not None:
            side, frac, tilt = p.wedge
            tan = np.float32(np.tan(np.radians(tilt)))
            if side in ("left", "right"):
                dist = xx - tan * (yy - hg / 2)
            else:
                dist = yy + tan * (xx - wg / 2)
            if side in ("right", "bottom"):
                dist = -dist
            r0, r1, c0, c1 = self.roi
            roi_d = np.broadcast_to(dist, self.shape)[r0:r1, c0:c1]
            mask |= dist < np.quantile(roi_d[::2, ::2], frac)  # `frac` of the ROI is in the wedge
        tan = np.float32(np.tan(np.radians(12.0)))
        for _ in range(p.stripes):
            width = rng.uniform(1.0, 3.0)
            if rng.random() < 0.5:  # a dead detector: a stripe along the track
                mask |= np.abs(xx - rng.uniform(0, wg) + tan * yy) < width / 2
            else:  # a line drop-out across the track
                mask |= np.abs(yy - rng.uniform(0, hg) - tan * xx) < width
        if p.holes > 0:
            field = _noise(rng, self.shape, 6)
            mask |= field > np.quantile(field[::2, ::2], 1.0 - p.holes)
        return mask

    def clouds(
        self, p: ScenePlan, sun: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """Cloud opacity α, ice-cloud share, shadow opacity (all (Hp, Wp)) and the cloud cover (%)."""
        rng = np.random.default_rng([p.seed, 2])
        hp, wp = self.shape[0] + 2 * PAD, self.shape[1] + 2 * PAD
        if p.cloud <= 0.0:
            zero = np.zeros((hp, wp), np.float32)
            return zero, zero, zero, 0.0
        # clouds of a few km (scaled with the landscape when --size is smaller), ragged edges
        z = self.zoom
        field = 0.75 * _noise(rng, (hp, wp), max(8.0, 45 * z)) + 0.25 * _noise(
            rng, (hp, wp), max(3.0, 10 * z)
        )
        inner = field[PAD:-PAD, PAD:-PAD]
        # threshold at the (1 − cloud) quantile (of a subsample: the field is smooth); the cover
        # reported is the fraction actually under cloud
        thr = float(np.quantile(inner[::3, ::3], 1.0 - p.cloud)) if p.cloud < 1.0 else -np.inf
        cover = 100.0 * float(np.count_nonzero(inner > thr)) / inner.size
        opacity = rng.uniform(0.85, 1.0)
        alpha = (np.clip((field - thr) / 0.6, 0.0, 1.0) ** 0.6 * opacity).astype(np.float32)
        ice = np.clip(p.ice_cloud + 0.35 * _noise(rng, (hp, wp), 30), 0.0, 1.0)
        # the shadow falls away from the sun, a cloud height's worth of pixels
        offset = min(40.0, 0.1 * min(self.size)) / max(np.hypot(sun[0], sun[1]), 1e-3)
        m = np.float32([[1, 0, -sun[0] * offset], [0, 1, -sun[1] * offset]])
        shadow = cv2.warpAffine(alpha, m, (wp, hp), flags=cv2.INTER_LINEAR, borderValue=0.0)
        return alpha, ice.astype(np.float32), shadow, cover

    # ------------------------------------------------------------------------------- render
    def sun(self, doy: int) -> np.ndarray:
        """Unit vector towards the sun (x east, y south, up) at the morning overpass."""
        elev = 90.0 - self.lat + 23.44 * np.sin(2 * np.pi * (doy - 81) / 365.0) - 12.0
        elev = np.radians(np.clip(elev, 12.0, 75.0))
        azim = np.radians(145.0)
        return np.array([np.sin(azim) * np.cos(elev), -np.cos(azim) * np.cos(elev), np.sin(elev)])

    def shadow(self, doy: int) -> np.ndarray:
        """The terrain's cast shadow at the overpass of day ``doy`` ((Hp, Wp) float32, 1 = in
        shadow), computed for the middle of its 8-day span and kept (the sun moves < 4° in 8 days)."""
        key = (doy - 1) // 8
        if key not in self._shadows:
            sun = self.sun(8 * key + 5)
            self._shadows[key] = landscape.cast_shadow(self.elevation, sun, PIXEL_M / self.zoom)
        return self._shadows[key]

    def render(self, p: ScenePlan) -> np.ndarray:
        """The observed scene: uint16 DN (7, Hg, Wg), 0 = nodata. Sets ``p.cloud_cover`` (%)."""
        return self.render_full(p)[0]

    def render_full(
        self, p: ScenePlan, cloud_mask: bool = False, clean: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """:meth:`render` plus, with ``cloud_mask``, where clouds or their shadows touch the
        observed scene (bool (Hg, Wg), sensor frame) and, with ``clean``, the clean surface:
        green and swir16 reflectance float32 (2, Hg, Wg) in the TRUE frame, lit, without clouds,
        haze, misregistration, noise or gaps (``None`` where not asked for).

        Steps: the lit surface (:meth:`_surface`: ground, ice, snow), clouds, their shadows and
        haze (:meth:`_atmosphere`), then the sensor (:meth:`_observe`: misregistration, noise,
        DN, gaps)."""
        sun = self.sun(p.doy)
        surf, tmp = self._surface(p, sun)
        surface = None
        if clean:
            inner = surf[PAD:-PAD, PAD:-PAD]
            surface = np.stack(
                [inner[..., BANDS.index("green")], inner[..., BANDS.index("swir16")]]
            )
        cloudy = self._atmosphere(p, sun, surf, tmp, cloud_mask)
        return self._observe(p, surf), cloudy, surface

    def _surface(self, p: ScenePlan, sun: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The lit surface reflectance of scene ``p`` in the TRUE frame, padded: (Hp, Wp, 7)
        float32, and the scratch buffer of the same shape (both reused from scene to scene)."""
        hg, wg = self.shape
        hp, wp = hg + 2 * PAD, wg + 2 * PAD
        nx, ny, nz = self.normal
        cos_i = nx * sun[0] + ny * sun[1] + nz * sun[2]
        if self.range is None:
            shade = (0.45 + 0.55 * np.clip(cos_i / sun[2], 0.0, 1.4)).astype(np.float32)
        else:  # skylight in the shade and in the ridges' cast shadows (landscape.py)
            shade = landscape.illumination(cos_i, float(sun[2]), self.shadow(p.doy))

        green = np.float32(np.exp(-(((p.doy - 215) / 45.0) ** 2)))
        # Work in two reusable (Hp, Wp, 7) buffers: fresh 18 MB temporaries per operation cost
        # more in page faults than the arithmetic.
        if getattr(self, "_buf", None) is None:
            self._buf = (
                np.empty((hp, wp, len(BANDS)), np.float32),
                np.empty((hp, wp, len(BANDS)), np.float32),
            )
        surf, tmp = self._buf
        np.multiply(self.ground_b, green, out=surf)
        surf += self.ground_a
        idx, fi, crev = self._add_ice(p, surf.reshape(-1, len(BANDS)))
        self._add_snow(p, surf, tmp, idx, fi, crev)
        surf *= shade[..., None]
        return surf, tmp

    def _add_ice(self, p: ScenePlan, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Blend the ice at ``p.t`` into the ground reflectance ``flat`` ((Hp·Wp, 7) float32, in
        place): its extent (antialiased terminus and margins) and advected texture.

        Returns (flat indices (n,) of the ice pixels, their ice fraction (n, 1) float32, their
        crevasse strength (n,))."""
        g = self.geom
        f_ice = np.clip(g.terminus(p.t) - self.band_along + 0.5, 0, 1) * np.clip(
            (1 - np.abs(self.band_eta)) * self.band_w + 0.5, 0, 1
        )
        sel = np.flatnonzero(f_ice > 0)
        tex = self.texture(p.t, sel)
        # dirty/clean ogive bands and mottling (fine dust: lowers NDSI a little), debris patches and
        # medial moraines (NDSI < 0.3), crevasses (shadowed lines: darker, lower NDSI from DN)
        motion = self.regime == "motion"
        if motion:
            # high contrast: white bubbly ogive bands (towards old snow, DN-NDSI up to ≈ 0.65),
            # dusty bands, and debris bands where the dust wins (DN-NDSI < 0.3)
            bright = np.clip(0.45 * tex[:, 0], 0.0, 0.8)
            dirt = np.clip(0.10 - 0.28 * tex[:, 0], 0.0, 0.85)
        else:
            dirt = np.clip(0.08 + 0.10 * tex[:, 0], 0.0, 0.45)
        crev = np.exp(-((tex[:, 1] / 0.22) ** 2)) * np.clip(tex[:, 2] + 0.3, 0.0, 1.0)
        patches = np.clip((tex[:, 3] - 0.9) / 0.5, 0.0, 1.0)
        debris = np.maximum(np.maximum(dirt, patches), self.band_moraine[sel])
        ice = (1.0 - 0.5 * crev)[:, None] * SPECTRA["ice"]
        if motion:
            ice += bright[:, None] * (SPECTRA["snow_old"] - ice)
        ice += debris[:, None] * (SPECTRA["debris"] - ice)
        idx = self.band_idx[sel]
        fi = f_ice[sel].astype(np.float32)[:, None]
        flat[idx] += fi * (ice - flat[idx])
        return idx, fi, crev

    def _add_snow(
        self,
        p: ScenePlan,
        surf: np.ndarray,
        tmp: np.ndarray,
        idx: np.ndarray,
        fi: np.ndarray,
        crev: np.ndarray,
    ) -> None:
        """Blend the season's snow (and firn) into ``surf`` ((Hp, Wp, 7) float32, in place;
        ``tmp`` scratch of the same shape); crevasses show faintly through snow on the glacier
        (ice pixels ``idx``, fractions ``fi`` (n, 1), crevasse strength ``crev`` (n,))."""
        hp, wp = surf.shape[:2]
        age = np.float32(_snowline_season(p.doy) if p.snow_age is None else p.snow_age)
        snow = SPECTRA["snow_fresh"] + age * (SPECTRA["snow_old"] - SPECTRA["snow_fresh"])
        f_snow = np.clip((self.z_snow - p.snowline) / _NDSI_SOFT + 0.5, 0.0, 1.0) * self.shed
        snow_dim = np.ones(hp * wp, np.float32)
        snow_dim[idx] -= 0.25 * crev * fi[:, 0]
        np.multiply(snow_dim.reshape(hp, wp, 1), snow, out=tmp)
        # firn: on the glacier, the aged snow pack just above the season's snow line is last
        # years' firn (denser, dustier, darker than the snow higher up)
        if age > 0:
            firn = age * np.clip(1.0 - (self.z_snow.ravel()[idx] - p.snowline) / _FIRN_BAND, 0, 1)
            tmp.reshape(-1, len(BANDS))[idx] += (firn * snow_dim[idx])[:, None] * (
                SPECTRA["firn"] - snow
            )
        if self.regime == "motion":
            # the glacier's snow line is stable and its snow old: below it the tongue is bare
            # ice all year, above it the accumulation area's snow and firn do not change
            zs = self.z_snow.ravel()[idx]
            f_snow.ravel()[idx] = (
                np.clip((zs - self.z_stable) / _NDSI_SOFT + 0.5, 0, 1) * (self.shed.ravel()[idx])
            )
            firn = np.clip(1.0 - (zs - self.z_stable) / _FIRN_BAND, 0, 1)[:, None]
            glacier_snow = SPECTRA["snow_old"] + firn * (SPECTRA["firn"] - SPECTRA["snow_old"])
            tmp.reshape(-1, len(BANDS))[idx] = snow_dim[idx, None] * glacier_snow
        tmp -= surf
        tmp *= f_snow[..., None]
        surf += tmp

    def _atmosphere(
        self, p: ScenePlan, sun: np.ndarray, surf: np.ndarray, tmp: np.ndarray, cloud_mask: bool
    ) -> np.ndarray | None:
        """Add clouds, their shadows and a haze term to ``surf`` ((Hp, Wp, 7) float32, in place;
        ``tmp`` scratch); sets ``p.cloud_cover`` (%). Returns, with ``cloud_mask``, where clouds
        or shadows touch the observed scene (bool (Hg, Wg), sensor frame), else None."""
        hg, wg = self.shape
        alpha, ice_share, shadow, cover = self.clouds(p, sun)
        p.cloud_cover = cover
        cloudy = None
        if cloud_mask:
            cloudy = (
                cv2.warpPerspective(
                    np.maximum(alpha, shadow),
                    p.warp @ np.array([[1, 0, -PAD], [0, 1, -PAD], [0, 0, 1]], dtype=np.float64),
                    (wg, hg),
                    flags=cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REPLICATE,
                )
                > 0.01
            )
        if cover > 0:
            surf *= (1.0 - 0.55 * shadow * (1.0 - alpha))[..., None]
            cw, ci = SPECTRA["cloud_water"], SPECTRA["cloud_ice"]
            np.subtract(cw, surf, out=tmp)
            tmp *= alpha[..., None]
            surf += tmp
            np.multiply((alpha * ice_share)[..., None], ci - cw, out=tmp)
            surf += tmp
        surf += np.float32(0.6 * p.haze) * SPECTRA["haze"]
        return cloudy

    def _observe(self, p: ScenePlan, surf: np.ndarray) -> np.ndarray:
        """The sensor's view of the padded top-of-atmosphere reflectance ``surf`` (Hp, Wp, 7):
        misregistered, noisy, as uint16 DN (7, Hg, Wg) with 0 at the nodata pixels."""
        hg, wg = self.shape
        # misregistration: observed(x) = true(H⁻¹ x); the render is offset by PAD
        shift = np.array([[1, 0, -PAD], [0, 1, -PAD], [0, 0, 1]], dtype=np.float64)
        obs = cv2.warpPerspective(
            surf, p.warp @ shift, (wg, hg), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )

        # sensor noise: independent per scene (a shared noise pattern would correlate scenes and
        # fool motion estimates), uniform with σ 0.002 (cheaper to draw than normal), then
        # DN = (reflectance − offset) / scale, rounded, clipped to 1…65535 (0 is nodata)
        rng = np.random.default_rng([p.seed, 3])
        amp = 0.002 * np.sqrt(12.0)
        cv2.scaleAdd(rng.random((hg, wg, len(BANDS)), dtype=np.float32), amp, obs, dst=obs)
        obs *= np.float32(1.0 / SCALE)
        obs += np.float32((-OFFSET - 0.5 * amp) / SCALE + 0.5)  # + 0.5: the cast below truncates
        np.clip(obs, 1.0, 65535.0, out=obs)
        dn = np.empty((len(BANDS), hg, wg), dtype=np.uint16)
        np.copyto(dn, obs.transpose(2, 0, 1), casting="unsafe")  # transpose and cast in one pass
        dn *= ~self.nodata(p)  # nodata: 0 in every band
        return dn

    # -------------------------------------------------------------------------------- truth
    def truth(self, plans: list[ScenePlan], written: np.ndarray) -> dict[str, np.ndarray]:
        """The truth.npz arrays (see the module docstring) for the generated ``plans``."""
        g = self.geom
        hg, wg = self.shape
        y = np.arange(hg, dtype=np.float64)[:, None]
        x = np.arange(wg, dtype=np.float64)[None, :]
        s, eta = g.coords(x, y)
        band = np.abs(eta) < 1.0
        along = np.where(band, g.along(s, eta), np.nan)
        times = np.array([p.time for p in plans], dtype="datetime64[ns]")
        t = np.array([p.t for p in plans], dtype=np.float64)
        term = g.terminus(t)
        first = term[0] if len(plans) else g.terminus(0.0)
        with np.errstate(invalid="ignore"):
            mask = band & (along <= first)
        vx, vy = g.velocity(x, y)
        vel = np.stack([np.where(mask, vx, 0.0), np.where(mask, vy, 0.0)]).astype(np.float32)
        cc = np.array([p.cloud_cover for p in plans], dtype=np.float64)
        miss = np.array([p.missing for p in plans], dtype=np.float64)
        return dict(
            velocity=vel,
            glacier_mask=mask,
            along_flow=along.astype(np.float32),
            terminus_position=term.astype(np.float64),
            scene_times=times,
            warps=np.array([p.warp for p in plans], dtype=np.float64).reshape(-1, 3, 3),
            cloud_cover=cc,
            missing_fraction=miss,
            kept=(cc <= MAX_CLOUD) & (miss < MAX_MISSING),
            written=np.asarray(written, dtype=bool),
            snowline=np.array([p.snowline for p in plans], dtype=np.float64),
            elevation=self.elevation[PAD:-PAD, PAD:-PAD].copy(),
            roi=np.asarray(self.roi, dtype=np.int64),
            max_speed=np.float64(self.clim.max_speed),
            glacier=np.array(self.cfg.name),
            seed=np.int64(self.seed),
            persistence=np.float64(self.persistence if self.range is not None else np.nan),
            snowline_anomaly=(
                np.asarray(self.anomaly(t), dtype=np.float64)
                if self.range is not None
                else np.full(t.shape, np.nan)
            ),
            anomaly_std_m=np.float64(self.range.anomaly_m if self.range is not None else np.nan),
        )


# ------------------------------------------------------------------------------- georeference
def geotransform(cfg: GlacierConfig) -> tuple[float, ...]:
    """Affine (a, b, c, d, e, f) of the 30 m grid whose upper-left corner is the bbox's projected
    upper-left corner (the bounds of the bbox in ``cfg.epsg``, as stackstac builds them)."""
    from pyproj import Transformer  # PROJ bindings and their database: only for this grid

    west, south, east, north = cfg.bbox
    tr = Transformer.from_crs(4326, cfg.epsg, always_xy=True)
    left, _, _, top = tr.transform_bounds(west, south, east, north)
    return (
        PIXEL_M,
        0.0,
        float(np.floor(left / PIXEL_M) * PIXEL_M),
        0.0,
        -PIXEL_M,
        float(np.ceil(top / PIXEL_M) * PIXEL_M),
    )


def _check_years(years: tuple[int, int]) -> tuple[int, int]:
    """Validate an inclusive (first, last) year pair like ``--years`` (one-line GlacierError)."""
    first, last = (int(v) for v in years)
    return config.parse_years(f"{first}-{last}")


# ---------------------------------------------------------------------------------- the stage
def synthesize(
    cfg: GlacierConfig,
    root: str | Path,
    size: tuple[int, int] | None = None,
    years: tuple[int, int] = (2013, 2021),
    seed: int = 0,
    progress: bool = True,
    only_kept: bool = False,
    force: bool = False,
    regime: str = "realistic",
    persistence: float = landscape.PERSISTENCE,
) -> list[Path]:
    """Write ``<root>/<glacier>/raw/<year>.npz`` for each year and ``<root>/<glacier>/truth.npz``.

    ``regime`` (:data:`REGIMES`): ``realistic`` (default) or ``motion`` (the motion benchmark).
    ``persistence``: the realistic regime's snow-line anomaly correlation ρ between windows 3
    months apart (AR(1), :class:`landscape.SnowlineAnomaly`; recorded in the truth).
    Besides the files, the truth holds the summer DN-NDSI percentiles of snow/ice pixels and the
    motion share of the clean surface's window means (:class:`WindowMotionShare`).

    ``size`` is the ROI size (H, W) (default: the configured ROI, Parvati 800×800, Aletsch
    600×600); the scene grid is (roi_row0 + H, roi_col0 + W). Returns the year files, then the
    truth file. Refuses (:class:`GlacierError`) sizes under 32 px, bad years, and — unless
    ``force`` — a glacier folder that holds scene files but no truth.npz (real downloads).
    """
    first, last = _check_years(years)
    gen = Generator(cfg, size, seed, regime, persistence)
    paths = Paths(Path(root), cfg.name)
    existing = sorted(paths.raw_dir.glob("*.npz")) if paths.raw_dir.is_dir() else []
    if existing and not paths.truth.exists() and not force:
        raise GlacierError(
            f"{paths.raw_dir} holds scene files without truth.npz (acquired data?): synthesize into "
            "another --data-root, or pass --force to overwrite them"
        )
    stale = [p.name for p in existing if p.stem.isdigit() and not first <= int(p.stem) <= last]
    if stale:
        print(
            f"note: {paths.raw_dir} also holds {', '.join(stale)} from an earlier run; remove them "
            "if they are not wanted (preprocessing reads every year file)",
            file=sys.stderr,
        )

    plans = {year: gen.plan_year(year) for year in range(first, last + 1)}
    flat = [p for year in plans for p in plans[year]]
    written = np.ones(len(flat), dtype=bool)
    transform = geotransform(cfg)
    out: list[Path] = []
    i = 0
    bar = tqdm(
        total=len(flat),
        desc=f"synthesizing {cfg.name}",
        unit="scene",
        disable=None if progress else True,
    )
    summer = SnowNdsiHistogram()
    motion = WindowMotionShare(gen, cfg.window_months)
    with bar:
        for year, year_plans in plans.items():
            data = np.empty((len(year_plans), len(BANDS), *gen.shape), dtype=np.uint16)
            for j, p in enumerate(year_plans):
                is_summer = _month(p.time) in SUMMER_MONTHS
                data[j], cloudy, clean = gen.render_full(p, cloud_mask=is_summer, clean=True)
                if is_summer:
                    summer.add(data[j], gen.roi, cloudy)
                if round(p.cloud_cover, 2) <= MAX_CLOUD and p.missing < MAX_MISSING:
                    motion.add(p, clean)  # the scenes preprocessing would average
                bar.update()
            cc = np.array([p.cloud_cover for p in year_plans], dtype=np.float64)
            miss = np.array([p.missing for p in year_plans], dtype=np.float64)
            keep = (
                (cc <= MAX_CLOUD) & (miss < MAX_MISSING)
                if only_kept
                else np.ones(len(year_plans), bool)
            )
            written[i : i + len(year_plans)] = keep
            i += len(year_plans)
            scenes = io.Scenes(
                times=np.array([p.time for p in year_plans], dtype="datetime64[ns]")[keep],
                data=data[keep],
                cloud_cover=np.round(cc[keep], 2),
                glacier=cfg.name,
                epsg=cfg.epsg,
                transform=transform,
                scale=SCALE,
                offset=OFFSET,
            )
            out.append(io.write_scenes(paths.raw_year(year), scenes))
            del data, scenes
    truth = gen.truth(flat, written)
    truth["summer_ndsi_percentiles"] = summer.percentiles()
    truth["summer_ndsi_pixels"] = np.int64(summer.n)
    truth["motion_share"] = np.float64(motion.share())
    truth["regime"] = np.array(regime)
    truth["cloud_cover"] = np.round(truth["cloud_cover"], 2)
    truth["kept"] = (truth["cloud_cover"] <= MAX_CLOUD) & (truth["missing_fraction"] < MAX_MISSING)
    out.append(io.save_npz(paths.truth, compress=True, **truth))
    return out


def summarize(cfg: GlacierConfig, root: str | Path) -> list[str]:
    """One line per year of the last synthesis: scenes generated, kept-quality, cloud and gap ranges."""
    paths = Paths(Path(root), cfg.name)
    t = io.load_npz(paths.truth, {"scene_times": "scene times", "kept": "filter flags"})
    years = t["scene_times"].astype("datetime64[Y]").astype(int) + 1970
    lines = []
    for year in np.unique(years):
        sel = years == year
        cc, miss = t["cloud_cover"][sel], t["missing_fraction"][sel]
        lines.append(
            f"{cfg.name} {year}: {sel.sum()} scenes generated, {int(t['kept'][sel].sum())} kept-quality "
            f"(cloud <= {MAX_CLOUD:.0f} %, missing < {MAX_MISSING}), {int(t['written'][sel].sum())} written; "
            f"cloud {cc.min():.0f}-{cc.max():.0f} %, missing {miss.min():.2f}-{miss.max():.2f} "
            f"-> {paths.raw_year(int(year))}"
        )
    if "summer_ndsi_percentiles" in t:
        pct = " ".join(f"{v:.3f}" for v in t["summer_ndsi_percentiles"])
        lines.append(
            f"{cfg.name}: summer (Jul-Sep) DN-NDSI of snow/ice pixels (NDSI >= 0.3, clear, valid; "
            f"{int(t['summer_ndsi_pixels'])} px), percentiles "
            f"{'/'.join(str(q) for q in NDSI_PERCENTILES)}: {pct} (a real Landsat-8 glacier, "
            f"Athabasca 2020-08-16: {REAL_SUMMER_NDSI[0]}-{REAL_SUMMER_NDSI[1]}, snow mode 0.69)"
        )
    if "motion_share" in t:
        lines.append(
            f"{cfg.name}: regime {t['regime']}, motion share {float(t['motion_share']):.3f} (the "
            "part of the change between consecutive windows on the glacier that the true ice "
            "motion explains, clean surface)"
        )
    return lines


def quicklooks(
    cfg: GlacierConfig,
    root: str | Path,
    years: tuple[int, int] | None = None,
    progress: bool = False,
) -> list[Path]:
    """RGB quick-look grids ``figures/quicklook_<year>.png`` of the scene files (synthetic or
    acquired): every scene of the year, titled with date, cloud cover and gaps."""

    paths = Paths(Path(root), cfg.name)
    files = (
        sorted(p for p in paths.raw_dir.glob("*.npz") if p.stem.isdigit())
        if paths.raw_dir.is_dir()
        else []
    )
    if years is not None:
        files = [p for p in files if years[0] <= int(p.stem) <= years[1]]
    out: list[Path] = []
    for path in tqdm(files, desc="quick-looks", unit="year", disable=None if progress else True):
        s = io.read_scenes(path)
        r0, r1, c0, c1 = cfg.roi
        h, w = s.data.shape[2:]
        roi = (min(r0, h), min(r1, h), min(c0, w), min(c1, w))
        out += scene_quicklook(
            s.data,
            s.times,
            s.cloud_cover,
            paths.figures_dir / f"quicklook_{path.stem}.png",
            title=f"{cfg.name} {path.stem}: {len(s.times)} scenes (RGB; red titles fail the "
            f"{MAX_CLOUD:.0f} % cloud / {MAX_MISSING:.0%} gap filter)",
            roi=roi,
            max_cloud=MAX_CLOUD,
            max_missing=MAX_MISSING,
        )
    return out


# ---------------------------------------------------------------------------------- the stage
@dataclass(frozen=True)
class SynthesizeSettings:
    """Write synthetic Landsat-8 scene files of a glacier with known motion.

    Write <data-root>/<glacier>/raw/<year>.npz (every generated scene: 7-band DN, clouds, gaps,
    misregistration, seasonal snow, a moving glacier) and <glacier>/truth.npz (velocity in px/day,
    glacier mask, per-scene warps), plus RGB quick-looks in <glacier>/figures/.
    """

    glacier: str = glacier_option()
    size: tuple[int, int] | None = option(
        None,
        nargs=2,
        metavar=("H", "W"),
        help="ROI size in pixels (default: the configured ROI, 800 800 / 600 600)",
    )
    years: str | None = option(
        None, help="year range FIRST-LAST (default: the glacier's, 2013-2021)"
    )
    seed: int = option(0, help="random seed (default 0); the same seed gives the same data")
    regime: str = option(
        "realistic",
        choices=REGIMES,
        help="realistic (default: a mountain range calibrated to real Parvati and Aletsch "
        "frames, docs/synthetic.md) or motion (a benchmark where ice motion dominates the "
        "frame-to-frame change: stable snow line, textured bare tongue, speeds scaled with --size)",
    )
    only_kept: bool = option(
        False, help="write only the scenes acquisition would keep (cloud <= 20 %, missing < 0.5)"
    )
    quicklook: bool = option(
        True, flag="--no-quicklook", help="do not write the quick-look figures"
    )
    persistence: float = option(
        landscape.PERSISTENCE,
        metavar="RHO",
        help="realistic regime: correlation ρ of the snow-line anomaly between windows 3 months "
        f"apart, 0 <= RHO < 1 (default {landscape.PERSISTENCE}: an AR(1) anomaly that lasts about "
        "a season; 0 = independent windows; docs/synthetic.md)",
    )
    force: bool = option(False, help="overwrite scene files that have no truth.npz (acquired data)")
    progress: bool = option(True, cli=False, help="progress bars")

    def __post_init__(self) -> None:
        settings.check_choices(self)
        if not 0.0 <= self.persistence < 1.0:
            raise SettingsError(
                "persistence",
                f"must satisfy 0 <= RHO < 1 (an AR(1) correlation), got {self.persistence}",
            )
        if self.years is not None:
            config.parse_years(self.years)


def run(s: SynthesizeSettings, catalog: Catalog) -> list[Path]:
    """The ``synthesize`` stage: scene files, truth and quick-looks of one glacier (holding the
    glacier's data lock); returns the files written."""
    cfg = config.get_glacier(s.glacier, catalog.root)
    years = config.parse_years(s.years) if s.years else cfg.years
    paths = catalog.glacier(cfg.name)
    with locks.hold(paths.glacier_dir, f"the data of glacier {cfg.name!r}"):
        files = synthesize(
            cfg, catalog.root, size=s.size, years=years, seed=s.seed, progress=s.progress,
            only_kept=s.only_kept, force=s.force, regime=s.regime, persistence=s.persistence,
        )  # fmt: skip
        settings.write(s, paths.settings_file("synthesize"), "synthesize")
        for line in summarize(cfg, catalog.root):
            print(line)
        print(f"{cfg.name}: ground truth -> {files[-1]}")
        if s.quicklook:
            figs = quicklooks(cfg, catalog.root, years, progress=s.progress)
            print(f"{cfg.name}: {len(figs)} quick-look figures -> {paths.figures_dir}")
            files += figs
    return files
