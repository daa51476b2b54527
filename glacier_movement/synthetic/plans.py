"""What is random about each scene, drawn before rendering: acquisition dates, the season's
snow line and its weather, cloud fractions, gaps and misregistration (deterministic per
seed and year)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import landscape
from .terrain import Terrain
from .world import (
    _DAY,
    EPOCH,
    FIRST_ACQUISITION,
    MAX_MISSING,
    REVISIT_DAYS,
    _noise,
)


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


class Planner(Terrain):
    """:class:`~.terrain.Terrain` plus the per-year scene plans and their nodata masks."""

    # ----------------------------------------------------------------------------------- plans
    def t_days(self, times: np.ndarray | np.datetime64) -> np.ndarray:
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
