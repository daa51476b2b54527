"""Rendering a planned scene: the lit surface (ground, advected ice, snow and firn), clouds,
their shadows and haze, then the sensor (misregistration, noise, DN, gaps)."""

from __future__ import annotations

import cv2
import numpy as np

from ..config import BANDS, OFFSET, SCALE
from . import landscape
from .plans import Planner, ScenePlan, _snowline_season
from .world import (
    _FIRN_BAND,
    _NDSI_SOFT,
    PAD,
    PIXEL_M,
    SPECTRA,
    _noise,
)


class Renderer(Planner):
    """:class:`~.plans.Planner` plus the rendering of a planned scene."""

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
        m = np.array([[1, 0, -sun[0] * offset], [0, 1, -sun[1] * offset]], dtype=np.float32)
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
