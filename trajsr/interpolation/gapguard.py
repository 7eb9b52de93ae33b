"""The gap guard: find rebuilt gaps that tear the molecule apart, and put a baseline in their place.

A learned path can fail where the data leaves what its dynamics can bridge: a wrong frame spacing, a
factor far beyond its stride, another molecule. Such a gap stretches or squashes bonds far past anything
at its two kept frames. Bonds are the covalent-radii pairs of the first kept frame (as the propagator's
guard); a gap fails when one of them leaves ``bond_factor`` × the range it spans at the gap's two kept
frames (so a proton that transfers between kept frames is not a failure). Units: nm.
"""
from __future__ import annotations

import numpy as np

from ..errors import TrajsrError
from ..trajectory import Trajectory
from ..units import ANGSTROM_PER_NM, FS_PER_PS

#: allowed ratio of a bond inside a gap to its extent at the gap's ends (the propagator guard's 1.8)
BOND_FACTOR = 1.8
#: a file may have this fraction of failed gaps (at least one) replaced; more is an error
MAX_FAILED_FRACTION = 0.05


def torn_gaps(fine: np.ndarray, factor: int, elements, bond_factor: float = BOND_FACTOR):
    """Which gaps of a fine trajectory (frames, N, 3) nm tear a bond, and the worst one's description.

    Returns
    -------
    failed : ndarray of bool, shape (gaps,)
    worst : str
        The most stretched bond of a failed gap, e.g. ``"C1-O2 at 3.10 Å (0.143 Å at its kept frames)"``;
        empty when none failed.
    """
    from ..observables import bonds_of
    gaps = (len(fine) - 1) // factor
    bonds = bonds_of(Trajectory(positions=fine[:1], elements=elements))
    finite = np.isfinite(fine.reshape(len(fine), -1)).all(-1)
    failed = ~finite[:gaps * factor].reshape(gaps, factor).all(-1) | ~finite[factor::factor][:gaps]
    if not len(bonds):
        return failed, "non-finite positions" if failed.any() else ""
    with np.errstate(invalid="ignore"):
        length = np.linalg.norm(fine[:, bonds[:, 0]] - fine[:, bonds[:, 1]], axis=-1)  # (frames, bonds)
        inside = length[:gaps * factor + 1]
        windows = np.stack([inside[g * factor:(g + 1) * factor + 1] for g in range(gaps)])  # (gaps, f+1, bonds)
        ends = np.stack([windows[:, 0], windows[:, -1]], 1)
        longest, shortest = ends.max(1), ends.min(1)
        ratio = np.maximum(windows.max(1) / longest, shortest / windows.min(1))  # (gaps, bonds)
        torn = ~(ratio <= bond_factor)  # NaN counts as torn
    failed |= torn.any(-1)
    if not failed.any():
        return failed, ""
    gap, bond = np.unravel_index(np.nanargmax(np.where(torn, ratio, 0.0)), ratio.shape)
    a, b = bonds[bond]
    extreme = windows[gap, :, bond]
    far = extreme[np.nanargmax(np.abs(np.log(extreme / longest[gap, bond])))]
    return failed, (f"bond {elements[a]}{a}-{elements[b]}{b} at {far * ANGSTROM_PER_NM:.2f} Å in gap {gap}, "
                    f"{longest[gap, bond] * ANGSTROM_PER_NM:.2f} Å at its kept frames")


def guard(fine: Trajectory, coarse: Trajectory, factor: int, fallback, what: str) -> Trajectory:
    """Replace the torn gaps of ``fine`` (rebuilt from ``coarse``) by ``fallback``'s, flag them in
    ``info["guard_failed"]`` (per gap), or refuse the file when more than a few percent tear.

    ``fallback`` is an :class:`~.interpolator.Interpolator` (Hermite with the file's velocities, else the
    spline); ``what`` names the method in the error.
    """
    failed, worst = torn_gaps(fine.positions, factor, fine.elements)
    fine.info["guard_failed"] = failed
    if not failed.any():
        return fine
    if failed.sum() > max(1, MAX_FAILED_FRACTION * len(failed)):
        spacing = "" if coarse.time is None else f"{coarse.dt * FS_PER_PS:g} fs apart"
        raise TrajsrError(f"{coarse.source}: {what} tears the molecule apart in {failed.sum()} of {len(failed)} gaps "
                          f"({worst}): are the kept frames really {spacing or 'as far apart as --dt says'} "
                          f"(--dt)? is factor {factor} too large for the learned dynamics to bridge? is it the "
                          "molecule the model was trained on? Nothing was written")
    replacement = fallback.interpolate(coarse, factor)
    frames = np.zeros(len(fine.positions), bool)
    for g in np.flatnonzero(failed):
        frames[g * factor + 1:(g + 1) * factor] = True
    fine.positions[frames] = replacement.positions[frames]
    if fine.velocities is not None and replacement.velocities is not None:
        fine.velocities[frames] = replacement.velocities[frames]
    return fine
