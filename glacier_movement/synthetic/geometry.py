"""The synthetic glacier's flow coordinates and its known motion (the module docstring of
:mod:`glacier_movement.synthetic` gives the formulas)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .world import (
    Climate,
)


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
