"""Pinning paths to both ends of a gap: how a gap's learned motion is made to meet its kept frames.

A path of the dynamics started at one kept frame misses the other by a little. A cubic Hermite term in the
gap's reduced time s ∈ [0, 1] adds exactly the four end misses (positions and velocities at s = 0 and 1),
bending the path onto both kept frames while keeping its shape inside the gap; for a free particle under
random kicks this is the mean of the pinned path (the integrated Brownian bridge). Used by
:meth:`.shooting.ShootingInterpolator.bridge` and by ``bench/langevin_floor.py`` (the exact potential's
paths).
"""
from __future__ import annotations

import numpy as np


def pin_and_average(forward, backward, x_a, v_a, x_b, v_b, dt: float):
    """Each gap's forward and backward path bent onto both kept frames' positions and velocities by a cubic
    Hermite term, then averaged (what :meth:`ShootingInterpolator.bridge` does with the learned paths).

    Parameters
    ----------
    forward, backward : tuple of ndarray, shape (gaps, factor + 1, N, 3)
        Positions (nm) and velocities (nm/ps) of a path from each gap's left kept frame, and of one from its
        right kept frame run backwards, both in forward time, the kept frames included.
    x_a, v_a, x_b, v_b : ndarray, shape (gaps, N, 3)
        Each gap's kept frames: positions (nm) and velocities (nm/ps) at its start and at its end, ``dt``
        later.
    dt : float
        Length of a gap (ps).

    Returns
    -------
    positions, velocities : ndarray, shape (gaps, factor + 1, N, 3)
        The averaged bent paths (nm, nm/ps): at both kept frames exactly their positions and velocities.
    bent, bends : list of two ndarrays
        Each bent path (nm) and its Hermite term (nm).
    """
    factor = forward[0].shape[1] - 1
    s = np.linspace(0.0, 1.0, factor + 1)[None, :, None, None]
    # cubic Hermite basis on [0, 1] and its derivatives (per unit s; divide by dt for per ps)
    basis = [2 * s ** 3 - 3 * s ** 2 + 1, s ** 3 - 2 * s ** 2 + s, 3 * s ** 2 - 2 * s ** 3, s ** 3 - s ** 2]
    slopes = [6 * s ** 2 - 6 * s, 3 * s ** 2 - 4 * s + 1, 6 * s - 6 * s ** 2, 3 * s ** 2 - 2 * s]
    fine_x, fine_v, bent, bends = 0.0, 0.0, [], []
    for px, pv in (forward, backward):
        misses = [x_a - px[:, 0], dt * (v_a - pv[:, 0]), x_b - px[:, -1], dt * (v_b - pv[:, -1])]
        bend = sum(h * m[:, None] for h, m in zip(basis, misses))
        fine_x = fine_x + 0.5 * (px + bend)
        fine_v = fine_v + 0.5 * (pv + sum(h * m[:, None] for h, m in zip(slopes, misses)) / dt)
        bent.append(px + bend)
        bends.append(bend)
    return fine_x, fine_v, bent, bends
