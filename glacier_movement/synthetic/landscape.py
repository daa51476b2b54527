"""The realistic regime's mountain range and weather (docs/synthetic.md, "Calibrated to real frames").

The synthetic glacier of :mod:`glacier_movement.synthetic` sits in a valley between smooth walls
under a snow line that is a smooth function of the season. Measured against real preprocessed
frames of Parvati and Aletsch (``frames-stats``), that world was too smooth (3–4× less texture),
too white in winter (98 % snow and no change from window to window) and too regular from year to
year. This module adds the physical processes that make the real frames a high-contrast mosaic,
each used by the ``realistic`` regime only (the ``motion`` regime is unchanged):

* **A mountain range** (:func:`range_relief`): ridged peaks of the configured glacier's range
  (crests up to 1.2 km above the valley walls at Parvati, 0.9 km at Aletsch) and rough rock at
  60–150 m.
* **Deep shadow** (:func:`cast_shadow`, :func:`illumination`): slopes facing away from the low
  winter sun and the ground in the cast shadow of ridges get only skylight and light reflected by
  the terrain (:data:`SKY`, 25 % of a flat sunlit surface). Snow in deep shadow is dark, and the
  original's NDSI from digital numbers, (g − s) / (g + s + 0.4) in reflectance, falls below 0.3
  for dark snow: the real frames' black shadowed slopes.
* **Where snow stays** (:func:`snow_holding`): snow sloughs off slopes steeper than ≈ 48° and wind
  scours convex ridges, so steep rock and crests stay dark all winter; it collects in gullies and
  avalanche cones (concave ground holds snow several hundred metres lower); sun-facing slopes lose
  it first (the snow line is :attr:`Range.aspect_m` higher on south faces than on north faces); it
  is patchy at several scales (drifts, rock outcrops, elevation bands); a forest canopy hides the
  snow under it.
* **Weather that persists** (:class:`SnowlineAnomaly`): the snow line departs from its seasonal
  course by an AR(1) anomaly whose correlation from one 3-month window to the next is the
  ``persistence`` ρ (a wet autumn's low snow line is still low in winter; a dry winter stays dry
  for a while), with standard deviation :attr:`Range.anomaly_m`.
* **Snowfall in every season** (:func:`snowfall`): storms that whiten the ground for a scene or
  two, in winter and spring from western disturbances or Atlantic fronts, in the monsoon
  (Parvati, July–September) as fresh snow down to ≈ 4.4–4.5 km (rain below). A window
  averages few scenes (2–5 clear ones), so one storm shows in the window's frame.
* **Snow age** (:func:`snow_age`): between storms the snow's grains grow and its swir16
  reflectance falls, so its DN-NDSI rises from ≈ 0.56 (fresh) to ≈ 0.69 (old) within a month.

The residual clouds and their shadows that survive window averaging, and windows averaged from
few scenes, were already part of the generator (acquisition's filter keeps scenes with up to
20 % cloud).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Share of a flat sunlit surface's irradiance that reaches ground in shadow (diffuse sky light
#: plus light reflected by the surrounding, mostly snow-covered, slopes). The clear-sky diffuse
#: share at 4–5 km altitude is ≈ 10 %; reflections from snow-covered slopes add 10–20 %.
SKY = 0.25
#: Correlation of the snow-line anomaly between windows 3 months apart: the default ``persistence``
#: of the realistic regime (a correlation time of ≈ 130 days: snowpack anomalies last a season).
PERSISTENCE = 0.5
#: The anomaly's correlation is given per this many days (a 3-month window).
PERSISTENCE_DAYS = 91.3
#: Time step (days) of the anomaly process; scenes between steps interpolate linearly.
ANOMALY_STEP_DAYS = 4.0


@dataclass(frozen=True)
class Range:
    """The mountain range and weather of one glacier in the realistic regime (elevations in m)."""

    peaks: float  # relief of the ridged peaks above the valley walls
    rough: float  # std of the rough rock relief at 30-120 m
    snow_winter: float  # winter snow line (snow down to here on flat, shaded ground)
    aspect_m: float  # snow line this much higher on south than on north faces
    anomaly_m: float  # std of the snow-line anomaly
    #: per month: odds that a scene shows the fresh snow of a recent storm
    storm: tuple[float, ...]
    #: per month: lowest elevation a storm whitens (None: down to the valley floors)
    storm_floor: tuple[float | None, ...]
    snow_summer: float | None = None  # highest seasonal snow line (None: the climate's)
    z_low: float | None = None  # valley floor at the ROI's lower edge (None: the climate's)
    #: day of year of the highest seasonal snow line (before the storms of the season)
    peak_doy: int = 245
    #: day of year by which the snow line is back at its winter level
    winter_doy: int = 320
    #: day of year the snow line starts to fall back (None: right after ``peak_doy``)
    fall_doy: int | None = None
    canopy: float = 0.6  # share of the snow that a forest canopy hides


RANGES: dict[str, Range] = {
    # Parvati: the Great Himalayan range, peaks above 6 km; dry, sunny winters on south faces
    # (western disturbances bring the winter snow), monsoon snow down to ≈ 4.4–4.5 km in July–September.
    "parvati": Range(
        peaks=1200.0,
        rough=35.0,
        snow_winter=3700.0,
        aspect_m=600.0,
        anomaly_m=300.0,
        storm=(0.35, 0.35, 0.35, 0.3, 0.15, 0.15, 0.7, 0.7, 0.5, 0.15, 0.15, 0.3),
        storm_floor=(
            None,
            None,
            None,
            None,
            4000.0,
            4600.0,
            4500.0,
            4500.0,
            4400.0,
            None,
            None,
            None,
        ),
        snow_summer=5200.0,
        # the snow line is up from June (pre-monsoon melt) to mid-September; the monsoon's
        # storms whiten the high ground in between
        peak_doy=160,
        fall_doy=255,
    ),
    # Great Aletsch: Bernese Alps, peaks near 4 km, forest below ≈ 2.1 km, Atlantic storms in
    # every season (summer snow above ≈ 2.8 km).
    "aletsch": Range(
        peaks=900.0,
        rough=30.0,
        snow_winter=1900.0,
        aspect_m=450.0,
        anomaly_m=300.0,
        storm=(0.35, 0.35, 0.35, 0.3, 0.25, 0.2, 0.15, 0.15, 0.2, 0.25, 0.3, 0.35),
        storm_floor=(
            None,
            None,
            None,
            None,
            2400.0,
            2800.0,
            3000.0,
            3000.0,
            2600.0,
            None,
            None,
            None,
        ),
        winter_doy=345,  # the Alps' seasonal snow cover below 2.5 km comes in December
        z_low=1300.0,  # the ROI reaches down to the forested slopes above the Rhône valley
    ),
}


def range_of(name: str) -> Range:
    """The range of a configured glacier (Parvati's for other names)."""
    return RANGES.get(name, RANGES["parvati"])


# ---------------------------------------------------------------------------------- terrain
def range_relief(ridged: np.ndarray, rough: np.ndarray, away: np.ndarray, rng: Range) -> np.ndarray:
    """Extra elevation (m) of the range off the glacier's valley, (Hp, Wp) float32.

    ``ridged``: unit ridged noise (sharp crests at its maxima), ``rough``: unit noise at 1-4 px,
    ``away`` (Hp, Wp): 0 on the glacier and its valley floor, rising to 1 on the valley walls.
    The crests stand up to ``rng.peaks`` (the field's upper tail, clipped at 2.5 std), the valleys
    between them stay low (its lower part, clipped at −1 std)."""
    peaks = (np.clip(ridged, -1.0, 2.5) + 1.0) / 3.5
    return (away * (rng.peaks * peaks + rng.rough * rough)).astype(np.float32)


def cast_shadow(z: np.ndarray, sun: np.ndarray, pixel_m: float) -> np.ndarray:
    """Where the terrain ``z`` (H, W, metres) casts shadow: float32 (H, W), 1 = in shadow.

    ``sun`` is the unit vector towards the sun (x east = columns, y south = rows, up). A pixel is
    in shadow when any terrain along the ray towards the sun rises above the ray. Marched on a grid
    coarsened 2× (4× for large grids) and smoothed back: ridges of a few pixels are not lost
    (the coarse grid keeps each cell's highest elevation) and the shadow edge is soft (penumbra).
    """
    h, w = z.shape
    horiz = float(np.hypot(sun[0], sun[1]))
    if horiz < 1e-6:
        return np.zeros((h, w), np.float32)
    f = 4 if min(h, w) >= 600 else 2 if min(h, w) >= 150 else 1
    zc = z
    if f > 1:  # each coarse cell's highest elevation: crests still cast their shadow
        hc, wc = -(-h // f), -(-w // f)
        pad = np.pad(z, ((0, hc * f - h), (0, wc * f - w)), mode="edge")
        zc = pad.reshape(hc, f, wc, f).max(axis=(1, 3))
    zc = zc.astype(np.float32)
    dx, dy = sun[0] / horiz, sun[1] / horiz
    rise = float(sun[2] / horiz) * pixel_m * f  # the ray's rise per coarse cell, m
    kmax = int(np.ceil(float(zc.max() - zc.min()) / max(rise, 1e-6)))
    hc, wc = zc.shape
    shadow = np.zeros((hc, wc), bool)
    for k in range(1, min(kmax, max(hc, wc)) + 1):
        oy, ox = int(round(k * dy)), int(round(k * dx))
        if abs(oy) >= hc or abs(ox) >= wc:
            break
        # shadow[r, c] |= zc[r + oy, c + ox] > zc[r, c] + k·rise
        src = zc[max(oy, 0) : hc + min(oy, 0), max(ox, 0) : wc + min(ox, 0)]
        dst = (slice(max(-oy, 0), hc - max(oy, 0)), slice(max(-ox, 0), wc - max(ox, 0)))
        shadow[dst] |= src > zc[dst] + np.float32(k * rise)
    out = shadow.astype(np.float32)
    if f > 1:
        out = cv2.resize(out, (wc * f, hc * f), interpolation=cv2.INTER_LINEAR)[:h, :w]
    return cv2.GaussianBlur(out, (0, 0), 0.7)


def illumination(
    cos_i: np.ndarray, sun_z: float, shadow: np.ndarray, sky: float = SKY
) -> np.ndarray:
    """Irradiance relative to flat sunlit ground, (H, W) float32: skylight everywhere plus the
    direct sun on slopes facing it (cos of the incidence angle ``cos_i`` over the sun's ``sun_z``,
    at most 1.4) outside the cast ``shadow`` (1 = full shadow)."""
    direct = np.clip(cos_i / sun_z, 0.0, 1.4) * (1.0 - shadow)
    return (sky + (1.0 - sky) * direct).astype(np.float32)


def snow_holding(
    z: np.ndarray,
    slope: np.ndarray,
    north: np.ndarray,
    patches: tuple[np.ndarray, np.ndarray, np.ndarray],
    forest: np.ndarray,
    on_ice: np.ndarray,
    pixel_m: float,
    rng: Range,
) -> tuple[np.ndarray, np.ndarray]:
    """Where snow lies off the glacier: (z_snow, hold), both (H, W) float32.

    ``z_snow`` is the elevation the snow line is compared with (snow where z_snow > snow line):
    the terrain, higher on north faces (``north`` = −normal_y, +1 on a north-facing slope, holds
    snow longer, by ±``aspect_m``/2), lower in gullies and avalanche cones (concave ground), plus
    patches at three scales (``patches``: unit noise at ≈ 60 m, 250 m and 1 km). ``hold`` ∈ [0, 1]
    scales the snow cover: steep slopes (> 38°) shed it, wind scours convex crests, a forest canopy
    (``forest`` 0-1) hides it. On the glacier (``on_ice``) the caller keeps its own."""
    smooth = cv2.GaussianBlur(z.astype(np.float32), (0, 0), 3.0)
    lap = cv2.Laplacian(smooth, cv2.CV_32F) / (pixel_m * pixel_m)  # 1/m: > 0 concave, < 0 convex
    # ±1 at a curvature of 0.004 /m (a crest 100 m high and 220 m wide): the sharpest 10 % of
    # crests and gullies of a Himalayan range
    curv = np.clip(lap / 0.004, -1.0, 1.0)
    fine, mid, large = patches
    z_snow = (
        z
        + 0.5 * rng.aspect_m * north
        + 250.0 * np.clip(curv, 0.0, 1.0)  # gullies and cones hold snow lower down
        + 80.0 * fine
        + 90.0 * mid
        + 120.0 * large
    )
    shed = 1.0 - np.clip((slope - 48.0) / 12.0, 0.0, 0.9)
    scour = 1.0 - 0.5 * np.clip(-curv, 0.0, 1.0)
    hold = shed * scour * (1.0 - rng.canopy * forest)
    z_snow = np.where(on_ice, z, z_snow)
    hold = np.where(on_ice, 1.0, hold)
    return z_snow.astype(np.float32), hold.astype(np.float32)


# ---------------------------------------------------------------------------------- weather
class SnowlineAnomaly:
    """The snow line's departure from its seasonal course (m): a stationary AR(1) on a grid of
    :data:`ANOMALY_STEP_DAYS` days, standard deviation ``std_m`` and correlation ``persistence``
    at a lag of :data:`PERSISTENCE_DAYS` (one 3-month window), from day 0 of the time origin over
    ``span_days``; deterministic per ``seed`` (a sequence, as numpy's generators take)."""

    def __init__(self, seed: list[int], std_m: float, persistence: float, span_days: float):
        if not 0.0 <= persistence < 1.0:
            raise ValueError(f"persistence must be in [0, 1), got {persistence}")
        self.persistence = float(persistence)
        n = int(np.ceil(span_days / ANOMALY_STEP_DAYS)) + 2
        phi = persistence ** (ANOMALY_STEP_DAYS / PERSISTENCE_DAYS)
        eps = np.random.default_rng(seed).standard_normal(n) * np.sqrt(1.0 - phi * phi)
        a = np.empty(n)
        a[0] = np.random.default_rng([*seed, 1]).standard_normal()
        # the AR(1) recursion a[i] = φ a[i−1] + ε[i] as a linear filter (no Python loop)
        if phi > 0:
            from scipy.signal import lfilter

            a[1:] = lfilter([1.0], [1.0, -phi], eps[1:], zi=[phi * a[0]])[0]
        else:
            a[1:] = eps[1:]
        self.values = (std_m * a).astype(np.float64)

    def __call__(self, t_days: float | np.ndarray) -> np.ndarray:
        """The anomaly (m) at ``t_days`` (days since the time origin; linear between grid steps)."""
        grid = np.arange(self.values.size) * ANOMALY_STEP_DAYS
        return np.asarray(np.interp(t_days, grid, self.values))


def snowline_season(
    doy: float, peak_doy: int, winter_doy: int = 320, fall_doy: int | None = None
) -> float:
    """The seasonal snow line's course, 0 in winter to 1 at ``peak_doy``: rising smoothly from
    early March (day 75), staying up until ``fall_doy`` (default: ``peak_doy``; the melt season's
    plateau), back to 0 by ``winter_doy``."""
    fall = peak_doy if fall_doy is None else max(fall_doy, peak_doy)
    if 75 <= doy <= peak_doy:
        return 0.5 - 0.5 * np.cos(np.pi * (doy - 75) / (peak_doy - 75))
    if peak_doy < doy <= fall:
        return 1.0
    if fall < doy <= winter_doy:
        return 0.5 + 0.5 * np.cos(np.pi * (doy - fall) / (winter_doy - fall))
    return 0.0


#: Days for a fresh snow surface to reach the old-snow spectrum (grain growth between storms).
SNOW_AGE_DAYS = 30.0


def snow_age(days_since_storm: float, season: float) -> float:
    """Age of the snow surface, 0 = fresh (fine grains, swir16 ≈ 0.12) … 1 = old (coarse, ≈ 0.01):
    it grows with the days since the last storm, and in the melt season (``season`` = the seasonal
    course 0-1) wet-snow metamorphism keeps it at least at ``season``."""
    return float(np.clip(max(days_since_storm / SNOW_AGE_DAYS, season), 0.0, 1.0))


def snowfall(gen: np.random.Generator, month: int, rng: Range, snow_line: float) -> float:
    """How far a recent storm lowers the snow line (m) in a scene of ``month`` (1-12): 0 when the
    scene shows none; in summer months the storm's snow reaches down to ``rng.storm_floor`` only
    (fresh snow falls as rain below it). Draws two numbers from ``gen`` in every case."""
    hit, u = gen.random(), gen.random()
    if hit >= rng.storm[month - 1]:
        return 0.0
    drop = 300.0 + 600.0 * u
    floor = rng.storm_floor[month - 1]
    return max(0.0, min(drop, snow_line - floor)) if floor is not None else drop
