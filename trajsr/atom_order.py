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
from .physics import covalent_radii_of
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
        same = sorted(traj.elements) == sorted(elements)
        raise TrajsrError(f"{traj.source}: atom {i} is {traj.elements[i]}, {what} expects {elements[i]} "
                          + (f"(the same atoms in another order: trajsr reorder --like lists them as {what} does)"
                             if same else f"(another molecule: {_formula(traj.elements)}, not {_formula(elements)})"))


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
                          f"{shown} (the same elements in another order? trajsr reorder --like lists them as {what} "
                          "does)")


def molecule_of(like) -> tuple[list, np.ndarray, str]:
    """The molecule whose order :func:`match_atoms` lists atoms in: a trajsr ``.keras`` model's elements and
    training geometry (read without TensorFlow), or a trajectory file's elements and first frame (nm);
    and its name."""
    from pathlib import Path
    like = Path(like)
    if like.suffix == ".keras":
        from .modelfile import molecule
        if not like.exists():
            raise TrajsrError(f"{like}: no such model file")
        elements, reference = molecule(like)
        return elements, np.asarray(reference, float), like.name
    from .io import load
    try:
        traj = load(like)  # a file that names its atoms (a topology given with -t is the input's, in its order)
    except TrajsrError as err:
        if "hold no atoms" not in str(err):
            raise
        raise TrajsrError(f"{like}: {like.suffix} files hold no atoms; --like takes a trajsr model or a file that "
                          "names its atoms (.h5, .pdb, .xyz, .npz, ...)") from None
    return traj.elements, traj.positions[0], like.name


def match_atoms(traj: Trajectory, elements, reference, what: str = "the model") -> np.ndarray:
    """The order that lists ``traj``'s atoms as a model does (atom ``k`` of the result is ``traj``'s atom
    ``order[k]``), matched within each element (Hungarian assignment) by each atom's place in the bond graph
    (its number of bonds to each element at each distance along the bonds, which no conformation changes),
    ties broken by position after aligning the molecule onto the model's ``reference`` (N, 3) nm (proper
    rotations only, so that mirror images are told apart), aligned again until the order holds. Among
    equivalent atoms (a methyl's hydrogens) the nearest after alignment is taken. One-line error for another
    molecule, or where the order found does not pass :func:`check_atoms`.
    """
    from scipy.optimize import linear_sum_assignment

    from .geometry import align
    from .physics import masses_of
    elements = list(elements)
    if sorted(traj.elements) != sorted(elements):
        raise TrajsrError(f"{traj.source}: {_formula(traj.elements)}, {what} holds {_formula(elements)}: another "
                          "molecule, which no order of its atoms makes")
    reference = np.asarray(reference, float).reshape(len(elements), 3)
    here, there = _median_distances(traj), _distances(reference)
    kinds = {e: (np.flatnonzero(np.array(traj.elements) == e), np.flatnonzero(np.array(elements) == e))
             for e in dict.fromkeys(elements)}
    mine_graph, their_graph = (_graph_profiles(here, traj.elements, list(kinds)),
                               _graph_profiles(there, elements, list(kinds)))
    masses = masses_of(elements)  # of the model's atoms, in its order: whatever order traj's take
    centred = reference - (masses[:, None] * reference).sum(0) / masses.sum()
    order = moved = None
    for _ in range(10):  # the graph decides; positions after alignment break its ties
        new = np.empty(len(elements), int)
        for mine, theirs in kinds.values():
            graph = np.abs(their_graph[theirs][:, None] - mine_graph[mine][None]).sum(-1)
            place = (0.0 if moved is None else  # nm, ≪ 1 per bond
                     np.linalg.norm(centred[theirs][:, None] - moved[mine][None], axis=-1))
            rows, cols = linear_sum_assignment(graph + 0.01 * place)
            new[theirs[rows]] = mine[cols]
        if order is not None and np.array_equal(new, order):
            break
        order = new  # aligned on it, back in traj's own atom indices
        moved = align(traj.positions[0][order], reference, masses)[0][np.argsort(order)]
    try:
        check_atoms(traj.reorder_atoms(order), elements, reference, what)
    except TrajsrError as err:
        reason = str(err).removeprefix(f"{traj.source}: ")
        raise TrajsrError(f"{traj.source}: no order of its atoms matches {what}'s molecule: {reason}") from None
    return order


def _graph_profiles(distances: np.ndarray, elements, symbols: list) -> np.ndarray:
    """Each atom's count of atoms of each of ``symbols`` at each number of bonds away (N, symbols × N): bonds
    where atoms lie within :data:`BONDED` × their covalent radii."""
    from scipy.sparse.csgraph import shortest_path
    n = len(elements)
    bonded = (distances < BONDED * _covalent_limits(elements)) & ~np.eye(n, dtype=bool)
    hops = shortest_path(bonded.astype(float), unweighted=True)
    hops[~np.isfinite(hops)] = n  # another molecule of the file: farther than any path
    of = np.array(elements)
    return np.stack([(hops[:, of == e] == k).sum(1) for e in symbols for k in range(1, n + 1)], axis=1)


def _formula(elements) -> str:
    counts = {e: list(elements).count(e) for e in sorted(set(elements), key=lambda e: (e != "C", e != "H", e))}
    return "".join(f"{e}{n if n > 1 else ''}" for e, n in counts.items())


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
    radii = covalent_radii_of(elements)
    return radii[:, None] + radii[None, :]
