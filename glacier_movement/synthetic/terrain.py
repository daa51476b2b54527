"""The static world of a synthetic glacier: terrain, ground materials, where snow stays, and
the glacier band with its advected ice texture (the base of :class:`~.generator.Generator`)."""

from __future__ import annotations

import dataclasses
import functools

import cv2
import numpy as np

from ..config import GlacierConfig
from ..errors import GlacierError
from . import landscape
from .geometry import Geometry
from .world import (
    _DAY,
    EPOCH,
    MAX_SIZE,
    MIN_SIZE,
    MOTION_SPEED,
    PAD,
    PIXEL_M,
    REGIMES,
    REVISIT_DAYS,
    SPECTRA,
    STABLE_SNOWLINE_FRAC,
    TEXTURE_EPOCH,
    TEXTURE_REACH_DAYS,
    _aniso,
    _glacier_id,
    _noise,
    climate,
)


class Terrain:
    """A synthetic glacier's static landscape on a scene grid (what every scene shares).

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
