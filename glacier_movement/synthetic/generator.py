"""The synthetic glacier end to end (:class:`Generator`: terrain, plans, rendering) and the
arrays of its ground truth.

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

import numpy as np

from .plans import ScenePlan
from .render import Renderer
from .world import (
    MAX_CLOUD,
    MAX_MISSING,
    PAD,
)


class Generator(Renderer):
    """A synthetic glacier on a scene grid: static landscape, per-year plans, per-scene rendering.

    ``size`` is the ROI size (H, W); the scene grid is (roi_row0 + H, roi_col0 + W).
    """

    # -------------------------------------------------------------------------------- truth
    def truth(
        self, plans: list[ScenePlan], written: np.ndarray
    ) -> dict[str, np.ndarray | np.generic]:
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
