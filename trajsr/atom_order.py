"""Whether a file holds the molecule a trained model knows, atom for atom: the same elements in the same
order, and the same atoms bonded to each other as in the model's reference geometry.

The element check alone cannot see two hydrogens swapped (ethanol's hydroxyl hydrogen listed where a
methyl hydrogen was): a model reads such a file as a strained molecule it never saw, and shooting on the
shipped ethanol with two hydrogens swapped came out 4.8× worse (and the Bi-LSTM worse than the spline),
with exit 0 and only a warning that the contexts looked unfamiliar. Hydrogens are judged by the heavy atom
they sit nearest, heavy atoms by their bonds (covalent radii, with room for vibrations). One hydrogen on
another heavy atom is chemistry, not another order: a proton transfer, as in malonaldehyde's enol.
Positions in another unit (Å read as nm) make every bond longer, or shorter, by the same factor, which is
named. Periodic files are not judged by bonds (their molecules may be wrapped). Units: nm.
"""
from __future__ import annotations

import numpy as np

from .errors import TrajsrError
from .trajectory import Trajectory
from .units import ANGSTROM_PER_NM

#: heavy atoms closer than BONDED × the sum of their covalent radii are bonded, farther than APART × apart
BONDED, APART = 1.25, 1.6
#: frames (spread over the file) whose median distances judge it, so that one distorted frame decides nothing
FRAMES = 20
#: bonds all longer, or all shorter, than the model's by this ratio are positions in another unit
LENGTH_RATIO = 1.25


def check_elements(traj: Trajectory, elements, what: str = "the model") -> None:
    """One-line error naming the first atom whose element differs from a trained model's ``elements``
    (another molecule of the same size, or another atom order); nothing is checked without elements."""
    if elements and traj.elements != list(elements):
        i = next(i for i, (a, b) in enumerate(zip(traj.elements, elements)) if a != b)
        raise TrajsrError(f"{traj.source}: atom {i} is {traj.elements[i]}, {what} expects {elements[i]} "
                          "(another molecule, or another atom order)")


def check_atoms(traj: Trajectory, elements, reference, what: str = "the model", where: str | None = None) -> None:
    """:func:`check_elements`, then one-line error where ``traj``'s bonds are all longer or shorter than in
    the model's ``reference`` geometry (N, 3) nm (positions in another unit), or where its atoms are bonded
    otherwise: two or more hydrogens nearest another heavy atom than there, or a bond between heavy atoms
    made or broken. Nothing more is checked without elements or reference, or for a periodic file.
    ``where`` names the reference geometry (default: ``what``'s training geometry)."""
    where = where or f"{what}'s training geometry"
    check_elements(traj, elements, what)
    if not elements or reference is None or traj.is_periodic or traj.n_atoms < 2:
        return
    here, there = _median_distances(traj), _distances(np.asarray(reference, float).reshape(traj.n_atoms, 3))
    bonded = np.triu(there < BONDED * _covalent_limits(traj.elements), 1)
    ratios = here[bonded] / there[bonded] if bonded.any() else np.ones(1)
    low, ratio, high = ratios.min(), np.median(ratios), ratios.max()  # another unit scales every bond, not some
    if low > LENGTH_RATIO or high < 1 / LENGTH_RATIO:
        raise TrajsrError(f"{traj.source}: its bonds are {ratio:.3g}x as long as in {where}: "
                          "positions in another unit? (Å read as nm is 10x; trajsr reads nm from .h5, Å from "
                          ".xyz, .npz and .pdb)")
    problems = _bonding_differences(traj, here, there)
    if problems:
        shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
        raise TrajsrError(f"{traj.source}: its atoms are bonded otherwise than in {where}: "
                          f"{shown} (the same elements in another order? list the atoms as {what} does)")


def _bonding_differences(traj: Trajectory, here: np.ndarray, there: np.ndarray) -> list:
    """How ``traj`` (distances ``here``) is bonded otherwise than the reference (distances ``there``), nm."""
    names = [f"{e}{i}" for i, e in enumerate(traj.elements)]
    heavy = np.array([e != "H" for e in traj.elements])
    hydrogens, heavy_atoms = np.flatnonzero(~heavy), np.flatnonzero(heavy)
    limit = _covalent_limits(traj.elements)
    pairs, problems = np.triu(heavy[:, None] & heavy[None, :], 1), []
    for i, j in zip(*np.nonzero(pairs & (there < BONDED * limit) & (here > APART * limit))):
        problems.append(f"{names[i]}-{names[j]} {here[i, j] * ANGSTROM_PER_NM:.2f} Å apart here, bonded there "
                        f"({there[i, j] * ANGSTROM_PER_NM:.2f} Å)")
    for i, j in zip(*np.nonzero(pairs & (here < BONDED * limit) & (there > APART * limit))):
        problems.append(f"{names[i]}-{names[j]} bonded here ({here[i, j] * ANGSTROM_PER_NM:.2f} Å), "
                        f"{there[i, j] * ANGSTROM_PER_NM:.2f} Å apart there")
    if len(heavy_atoms) and len(hydrogens):
        near_here = heavy_atoms[np.argmin(here[np.ix_(hydrogens, heavy_atoms)], axis=1)]
        near_there = heavy_atoms[np.argmin(there[np.ix_(hydrogens, heavy_atoms)], axis=1)]
        moved = [f"{names[h]} sits on {names[a]} here, on {names[b]} there"
                 for h, a, b in zip(hydrogens, near_here, near_there) if a != b]
        if len(moved) >= 2:  # one is a proton transfer
            problems += moved
    return problems


def _median_distances(traj: Trajectory) -> np.ndarray:
    """Interatomic distances (N, N) nm, the median over up to :data:`FRAMES` frames spread over ``traj``."""
    from scipy.spatial.distance import pdist, squareform
    n = traj.n_atoms
    count = max(1, min(FRAMES, traj.n_frames, int(2e7 // (n * n))))  # at most ~20 M distances at once
    frames = np.unique(np.linspace(0, traj.n_frames - 1, count).astype(int))
    return squareform(np.median([pdist(traj.positions[f]) for f in frames], axis=0))


def _distances(positions: np.ndarray) -> np.ndarray:
    """Interatomic distances (N, N) of one geometry (N, 3)."""
    from scipy.spatial.distance import pdist, squareform
    return squareform(pdist(positions))


def _covalent_limits(elements) -> np.ndarray:
    """Sums of covalent radii (N, N) nm (ASE's table)."""
    from ase.data import atomic_numbers, covalent_radii
    radii = np.array([covalent_radii[atomic_numbers[e]] for e in elements]) / ANGSTROM_PER_NM
    return radii[:, None] + radii[None, :]
