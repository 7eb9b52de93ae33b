"""Physics-free baselines: linear, cubic spline and cubic Hermite (with velocities), via SciPy."""
from __future__ import annotations

import numpy as np
from scipy.interpolate import CubicHermiteSpline, CubicSpline, make_interp_spline

from .errors import TrajsrError
from .interpolator import Interpolator, fine_times


class LinearInterpolator(Interpolator):
    """Straight lines between kept frames; no velocities out."""

    name = "linear"

    def fill(self, positions, velocities, dt, factor):
        kept, fine = fine_times(len(positions), factor, dt)
        return make_interp_spline(kept, positions, k=1, axis=0)(fine), None


class SplineInterpolator(Interpolator):
    """Cubic spline through the kept positions (not-a-knot ends); velocities are its derivative."""

    name = "spline"

    def fill(self, positions, velocities, dt, factor):
        kept, fine = fine_times(len(positions), factor, dt)
        spline = CubicSpline(kept, positions, axis=0)
        return spline(fine), spline(fine, 1)


class HermiteInterpolator(Interpolator):
    """Cubic Hermite spline through the kept positions *and* velocities (needs stored velocities)."""

    name = "hermite"
    needs_velocities = True

    def fill(self, positions, velocities, dt, factor):
        kept, fine = fine_times(len(positions), factor, dt)
        spline = CubicHermiteSpline(kept, positions, velocities, axis=0)
        return spline(fine), spline(fine, 1)


BASELINES = {cls.name: cls for cls in (LinearInterpolator, SplineInterpolator, HermiteInterpolator)}


def get_baseline(name: str) -> Interpolator:
    """A baseline interpolator by name: ``"linear"``, ``"spline"`` or ``"hermite"``."""
    if name not in BASELINES:
        raise TrajsrError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
    return BASELINES[name]()


def spline_fill(positions: np.ndarray, factor: int) -> np.ndarray:
    """Cubic spline of evenly spaced frames along axis 0 (unit spacing); returns the fine frames."""
    kept, fine = fine_times(len(positions), factor)
    return CubicSpline(kept, positions, axis=0)(fine)
