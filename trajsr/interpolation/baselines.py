"""Physics-free baselines: linear, cubic spline and cubic Hermite (with velocities), via SciPy."""
from __future__ import annotations

from scipy.interpolate import CubicHermiteSpline, CubicSpline, make_interp_spline

from ..errors import TrajsrError
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
    #: a not-a-knot spline's weights decay ~0.27× per knot: 24 knots away they are below 1e-13
    context = 24

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

