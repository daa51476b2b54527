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
The package's modules, from the world's constants to the stage: ``world`` (grid, calendar,
spectra, climates, noise), ``geometry`` (flow coordinates and the known motion), ``landscape``
(the realistic regime's mountain range and weather), ``terrain`` (the static world and the ice
texture), ``plans`` (what is random about each scene), ``render`` (a planned scene's pixels),
``generator`` (:class:`Generator`, and the truth.npz keys), ``statistics`` (what ``synthesize``
measures while rendering) and ``stage`` (the command). Every public name is importable from the
package itself.
"""

from __future__ import annotations

from .generator import Generator
from .geometry import Geometry
from .plans import ScenePlan
from .stage import SynthesizeSettings, geotransform, quicklooks, run, summarize, synthesize
from .statistics import (
    NDSI_PERCENTILES,
    REAL_SUMMER_NDSI,
    SUMMER_MONTHS,
    SnowNdsiHistogram,
    WindowMotionShare,
)
from .world import (
    CLIMATES,
    EPOCH,
    MAX_CLOUD,
    MAX_MISSING,
    MAX_SIZE,
    MAX_SPEED,
    MIN_SIZE,
    MOTION_SPEED,
    PAD,
    PIXEL_M,
    REGIMES,
    SPECTRA,
    Climate,
    climate,
)

__all__ = [
    "CLIMATES",
    "Climate",
    "EPOCH",
    "Generator",
    "Geometry",
    "MAX_CLOUD",
    "MAX_MISSING",
    "MAX_SIZE",
    "MAX_SPEED",
    "MIN_SIZE",
    "MOTION_SPEED",
    "NDSI_PERCENTILES",
    "PAD",
    "PIXEL_M",
    "REAL_SUMMER_NDSI",
    "REGIMES",
    "SPECTRA",
    "SUMMER_MONTHS",
    "ScenePlan",
    "SnowNdsiHistogram",
    "SynthesizeSettings",
    "WindowMotionShare",
    "climate",
    "geotransform",
    "quicklooks",
    "run",
    "summarize",
    "synthesize",
]
