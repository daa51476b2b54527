"""What ``synthesize`` measures on the scenes it renders and adds to the truth: the summer
DN-NDSI of snow and ice (compare with a real scene) and the motion share of window means."""

from __future__ import annotations

import numpy as np

from .. import motion, preprocessing
from ..config import BANDS, OFFSET, SCALE
from .generator import Generator
from .plans import ScenePlan

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
    return int(time.astype("datetime64[M]").astype(int) % 12) + 1


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
        year = int(p.time.astype("datetime64[Y]").astype(int)) + 1970
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
