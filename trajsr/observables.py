"""What a trajectory samples, compared with a reference: the VDOS, bond-length and angle distributions,
temperature by element and energy drift. The figures a propagator is judged on (and a reconstruction's
dynamics); :mod:`trajsr.metrics` holds the frame-by-frame reconstruction errors.

Spectra follow the usual practice for small molecules: the centre-of-mass velocity is removed, the
mass-weighted velocity power spectrum is averaged over Welch segments (Hann window, half overlap) of
a fixed resolution, and overlaps are taken above the torsion/rotation band, where a 9-atom molecule's
spectrum converges in ~100 ps.
"""
from __future__ import annotations

import numpy as np

from .errors import TrajsrError
from .trajectory import Trajectory
from .units import ANGSTROM_PER_NM, FS_PER_PS, INVERSE_CM_PER_THZ

#: spectral resolution of the VDOS (cm⁻¹): Welch segments of 1/(c · 67 cm⁻¹) ≈ 0.5 ps
VDOS_RESOLUTION = 67.0
#: overlaps start here (cm⁻¹): below lie torsions and rotation, slow to converge and not vibrations
VDOS_MIN_WAVENUMBER = 300.0


def _as_list(trajectories) -> list:
    return [trajectories] if isinstance(trajectories, Trajectory) else list(trajectories)


# -- vibrational density of states --------------------------------------------------------------
#: where velocities come from: the file's own, central differences of its positions, or "auto" (the
#: file's own where it stores them)
VELOCITY_SOURCES = ("auto", "velocities", "positions")


def velocity_source(traj: Trajectory, source: str = "auto") -> str:
    """Where :func:`velocities_of` takes ``traj``'s velocities from: ``"velocities"`` or ``"positions"``."""
    return "velocities" if traj.velocities is not None and source != "positions" else "positions"


def velocities_of(traj: Trajectory, source: str = "auto") -> np.ndarray:
    """Velocities (nm/ps) of every frame: the stored ones (``source="velocities"``), central finite
    differences of the positions (``"positions"``; one-sided at the ends), or the stored ones where the
    file has them (``"auto"``).

    Differences of positions ``dt`` apart read a vibration of wavenumber ν at sin(x)/x of its speed,
    x = 2πcν·dt: 98% for an O–H stretch (3700 cm⁻¹) at 0.5 fs; at 5 fs it lies above the Nyquist
    limit (3336 cm⁻¹) and is lost.
    """
    if source not in VELOCITY_SOURCES:
        raise TrajsrError(f"velocity source must be one of {', '.join(VELOCITY_SOURCES)}, got {source!r}")
    if source == "velocities" and traj.velocities is None:
        raise TrajsrError(f"{traj.source}: stores no velocities; take them from the positions instead "
                          "(--source positions)")
    if velocity_source(traj, source) == "velocities":
        return traj.velocities
    if traj.time is None:
        raise TrajsrError(f"{traj.source}: velocities from positions need the frame spacing, and this file has no "
                          "time: give it with --dt (fs)")
    if traj.n_frames < 3:
        raise TrajsrError(f"{traj.source}: {traj.n_frames} frames; velocities from positions need at least 3")
    positions = traj.positions
    if traj.is_periodic:  # a wrapped atom would jump a box length between frames
        from .geometry import unwrap
        positions = unwrap(positions, traj.unitcell_vectors)
    return np.gradient(positions, traj.dt, axis=0)


def welch_segment(dt: float, resolution: float) -> int:
    """Frames in one Welch segment for a spectral ``resolution`` (cm⁻¹) at frames ``dt`` ps apart."""
    if not resolution > 0:
        raise TrajsrError(f"VDOS resolution must be positive (cm⁻¹), got {resolution}")
    return max(int(round(INVERSE_CM_PER_THZ / (resolution * dt))), 4)


def vdos(trajectories, resolution: float = VDOS_RESOLUTION, mass_weighted: bool = True, source: str = "auto",
         per_atom: bool = False):
    """Vibrational density of states: the power spectrum of the centre-of-mass-free velocities
    (Wiener–Khinchin: the Fourier transform of the velocity autocorrelation), Welch-averaged.

    Parameters
    ----------
    trajectories : Trajectory or list of Trajectory
        One trajectory, or several of the same molecule and frame spacing pooled into one spectrum
        (independent runs, or rollouts from many starts).
    resolution : float
        Frequency resolution in cm⁻¹ (sets the Welch segment length, 1/(c · resolution)).
    mass_weighted : bool
        Weight each atom's velocities by √m (the usual VDOS; equipartition puts kT in every mode).
    source : {"auto", "velocities", "positions"}
        Where the velocities come from (:func:`velocities_of`).
    per_atom : bool
        Also return each atom's share of the spectrum (its partial VDOS).

    Returns
    -------
    wavenumber : ndarray
        Frequencies in cm⁻¹, spaced ~``resolution`` up to the Nyquist frequency of the frame spacing.
    intensity : ndarray
        Spectrum normalised to unit area over cm⁻¹.
    partial : ndarray, shape (frequencies, atoms)
        Only with ``per_atom``: each atom's part of ``intensity`` (they sum to it).
    """
    from scipy.signal import welch

    from .physics import internal_velocities
    trajs = _as_list(trajectories)
    dt = trajs[0].dt
    for t in trajs[1:]:
        if abs(t.dt - dt) > 1e-9 * max(dt, 1e-12) or t.n_atoms != trajs[0].n_atoms:
            raise TrajsrError(f"{t.source}: a pooled VDOS needs the same frame spacing and atoms; "
                              f"{t.dt * FS_PER_PS:g} fs / {t.n_atoms} atoms vs {dt * FS_PER_PS:g} fs / "
                              f"{trajs[0].n_atoms}")
    segment = welch_segment(dt, resolution)
    total, weight = 0.0, 0
    for t in trajs:
        if t.n_frames < segment:
            raise TrajsrError(f"{t.source}: {t.n_frames} frames; a VDOS at {resolution:g} cm⁻¹ needs at least "
                              f"{segment} frames of {dt * FS_PER_PS:g} fs (a longer file, or a coarser --resolution)")
        v, _ = internal_velocities(velocities_of(t, source), t.masses)
        if mass_weighted:
            v = v * np.sqrt(t.masses)[None, :, None]
        freq, power = welch(v.reshape(len(v), -1), fs=1.0 / dt, window="hann", nperseg=segment, axis=0)
        n_segments = 1 + (t.n_frames - segment) // (segment // 2)
        total = total + power.reshape(len(freq), t.n_atoms, 3).sum(axis=2) * n_segments
        weight += n_segments
    wavenumber = freq * INVERSE_CM_PER_THZ
    partial = total / weight
    area = np.trapezoid(partial.sum(axis=1), wavenumber)
    partial = partial / area if area > 0 else partial
    return (wavenumber, partial.sum(axis=1), partial) if per_atom else (wavenumber, partial.sum(axis=1))


def vdos_overlap(a, b, min_wavenumber: float = VDOS_MIN_WAVENUMBER, max_wavenumber: float | None = None,
                 resolution: float = VDOS_RESOLUTION) -> float:
    """Overlap Σ min(p, q) of two VDOS over ``[min_wavenumber, max_wavenumber]`` cm⁻¹ (each normalised to
    unit sum there); 1 = identical, 0 = disjoint. ``a`` and ``b``: a trajectory or a list (pooled), with
    the same frame spacing (compare at the same sampling; aliasing then folds both alike).
    """
    wa, p = vdos(a, resolution)
    wb, q = vdos(b, resolution)
    if len(wa) != len(wb) or not np.allclose(wa, wb):
        raise TrajsrError("VDOS overlap needs both sides at the same frame spacing; stride the finer one first")
    top = wa[-1] if max_wavenumber is None else max_wavenumber
    band = (wa >= min_wavenumber) & (wa <= top)
    if band.sum() < 2:
        raise TrajsrError(f"no VDOS bins between {min_wavenumber:g} and {top:g} cm⁻¹")
    p, q = p[band] / p[band].sum(), q[band] / q[band].sum()
    return float(np.minimum(p, q).sum())


# -- bond lengths and angles ----------------------------------------------------------------------
def bonds_of(traj: Trajectory) -> np.ndarray:
    """Bonded atom pairs (n_bonds, 2): the topology's bonds, else covalent radii on frame 0."""
    if traj.topology is not None and traj.topology.n_bonds:
        return np.array([[b[0].index, b[1].index] for b in traj.topology.bonds])
    from ase import Atoms
    from ase.neighborlist import NeighborList, natural_cutoffs
    atoms = Atoms(traj.elements, positions=traj.positions[0] * ANGSTROM_PER_NM)
    nl = NeighborList(natural_cutoffs(atoms), self_interaction=False, bothways=False)
    nl.update(atoms)
    pairs = [(i, j) for i in range(len(atoms)) for j in nl.get_neighbors(i)[0]]
    return np.array(sorted(pairs), dtype=int).reshape(-1, 2)


def angles_of(bonds: np.ndarray) -> np.ndarray:
    """Bond angles (n_angles, 3) as atom triplets (i, centre, k) from bonded pairs."""
    neighbours: dict = {}
    for i, j in np.asarray(bonds):
        neighbours.setdefault(int(i), []).append(int(j))
        neighbours.setdefault(int(j), []).append(int(i))
    triplets = [(a, c, b) for c, ns in sorted(neighbours.items()) for x, a in enumerate(sorted(ns))
                for b in sorted(ns)[x + 1:]]
    return np.array(triplets, dtype=int).reshape(-1, 3)


def bond_lengths(traj: Trajectory, bonds: np.ndarray) -> np.ndarray:
    """Bond lengths in Å, shape (frames, bonds)."""
    return np.linalg.norm(traj.positions[:, bonds[:, 0]] - traj.positions[:, bonds[:, 1]],
                          axis=-1) * ANGSTROM_PER_NM


def sorted_bond_lengths(traj: Trajectory, bonds: np.ndarray) -> np.ndarray:
    """Bond lengths in Å, shape (frames, bonds), blind to which atoms are bonded: for each element pair
    with k bonds in ``bonds``, each frame's k shortest distances between atoms of those elements, sorted.

    A proton transfer (malonaldehyde's two equivalent enols: the O–H, C–O and C–C bonds swap lengths)
    or a methyl rotation relabels bonds without changing these, so a rare hop between equivalent
    structures does not count as a different bond-length distribution.
    """
    x, elements = traj.positions, np.asarray(traj.elements)
    pairs: dict = {}
    for i, j in np.asarray(bonds):
        pair = tuple(sorted((elements[i], elements[j])))
        pairs[pair] = pairs.get(pair, 0) + 1
    columns = []
    for (e1, e2), k in sorted(pairs.items()):
        a, b = np.flatnonzero(elements == e1), np.flatnonzero(elements == e2)
        d = np.linalg.norm(x[:, a, None] - x[:, None, b], axis=-1)
        upper = np.triu_indices(len(a), 1)
        d = d[:, upper[0], upper[1]] if e1 == e2 else d.reshape(len(x), -1)
        columns.append(np.sort(d, axis=1)[:, :k])
    return np.concatenate(columns, axis=1) * ANGSTROM_PER_NM


def bond_angles(traj: Trajectory, angles: np.ndarray) -> np.ndarray:
    """Bond angles in degrees, shape (frames, angles), for triplets (i, centre, k)."""
    u = traj.positions[:, angles[:, 0]] - traj.positions[:, angles[:, 1]]
    w = traj.positions[:, angles[:, 2]] - traj.positions[:, angles[:, 1]]
    cos = (u * w).sum(-1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(w, axis=-1))
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def _mean_w1(reference, other, measure, items) -> float:
    from scipy.stats import wasserstein_distance
    refs, others = _as_list(reference), _as_list(other)
    for t in others:
        if t.n_atoms != refs[0].n_atoms:
            raise TrajsrError(f"{t.source}: {t.n_atoms} atoms, reference has {refs[0].n_atoms}")
    a = np.concatenate([measure(t, items) for t in refs])
    b = np.concatenate([measure(t, items) for t in others])
    return float(np.mean([wasserstein_distance(a[:, k], b[:, k]) for k in range(len(items))]))


def bond_length_distance(reference, other, bonds=None, by_element: bool = False) -> float:
    """Mean over bonds of the Wasserstein-1 distance between bond-length distributions, in Å
    (``reference``/``other``: a trajectory or a list, pooled). ``by_element``: compare
    :func:`sorted_bond_lengths`, which a proton transfer between equivalent sites does not change."""
    bonds = bonds_of(_as_list(reference)[0]) if bonds is None else np.asarray(bonds)
    return _mean_w1(reference, other, sorted_bond_lengths if by_element else bond_lengths, bonds)


def bond_angle_distance(reference, other, bonds=None) -> float:
    """Mean over bond angles of the Wasserstein-1 distance between angle distributions, in degrees."""
    bonds = bonds_of(_as_list(reference)[0]) if bonds is None else np.asarray(bonds)
    return _mean_w1(reference, other, bond_angles, angles_of(bonds))


def hydrogen_hops_per_ps(trajectories, commit_angstrom: float = 1.1) -> float:
    """Hops of hydrogens between heavy atoms per ps (a proton transfer is one hop), pooled over
    ``trajectories``: a hydrogen is committed to a heavy atom while within ``commit_angstrom`` (Å) of it,
    and a hop is a change of that atom between two commitments (a proton in flight counts once)."""
    hops = picoseconds = 0.0
    for t in _as_list(trajectories):
        elements = np.asarray(t.elements)
        hydrogens, heavy = np.flatnonzero(elements == "H"), np.flatnonzero(elements != "H")
        if len(hydrogens) and len(heavy):
            d = np.linalg.norm(t.positions[:, hydrogens, None] - t.positions[:, None, heavy], axis=-1)
            nearest, close = d.argmin(-1), d.min(-1) * ANGSTROM_PER_NM < commit_angstrom
            for h in range(len(hydrogens)):
                site = nearest[close[:, h], h]
                hops += np.count_nonzero(site[1:] != site[:-1])
        picoseconds += float(t.time[-1] - t.time[0])
    return float(hops / picoseconds) if picoseconds else float("nan")


# -- temperatures and energies --------------------------------------------------------------------
def pooled_temperature_by_element(trajectories) -> dict:
    """Mean vibrational temperature (K) of each element's atoms, pooled: the rigid-body motion removed,
    each atom's kinetic energy over the degrees of freedom it keeps
    (:func:`trajsr.physics.temperature_by_element`)."""
    from .physics import temperature_by_element as by_element
    trajs = _as_list(trajectories)
    x = np.concatenate([t.positions for t in trajs])
    v = np.concatenate([velocities_of(t) for t in trajs])
    return by_element(x, v, trajs[0].masses, trajs[0].elements)


#: a pair of atoms this close (nm) whose distance varies less than RIGID_TOLERANCE (nm) is constrained
RIGID_CUTOFF, RIGID_TOLERANCE = 0.2, 1e-4


def rigid_distances(traj: Trajectory, frames: int = 50) -> int:
    """How many atom pairs the file holds at a fixed distance (rigid water, SHAKE/LINCS/SETTLE bonds): pairs
    closer than :data:`RIGID_CUTOFF` nm in frame 0 whose distance (minimum image in a box) changes less than
    :data:`RIGID_TOLERANCE` nm over up to ``frames`` frames spread over the file. Each takes one degree of
    freedom; a file of one frame shows none."""
    if traj.n_frames < 3:
        return 0
    from ase import Atoms
    from ase.neighborlist import NeighborList
    atoms = Atoms(traj.elements, positions=traj.positions[0] * ANGSTROM_PER_NM)
    if traj.is_periodic:
        atoms.cell, atoms.pbc = traj.unitcell_vectors[0] * ANGSTROM_PER_NM, True
    nl = NeighborList([RIGID_CUTOFF * ANGSTROM_PER_NM / 2] * traj.n_atoms, self_interaction=False, bothways=False,
                      skin=0.0)
    nl.update(atoms)
    pairs = np.array([(i, j) for i in range(traj.n_atoms) for j in nl.get_neighbors(i)[0]], int).reshape(-1, 2)
    if not len(pairs):
        return 0
    idx = np.unique(np.linspace(0, traj.n_frames - 1, min(frames, traj.n_frames)).astype(int))
    d = traj.positions[idx][:, pairs[:, 1]] - traj.positions[idx][:, pairs[:, 0]]
    if traj.is_periodic:  # minimum image, frame by frame
        box = traj.unitcell_vectors[idx]
        fractional = np.einsum("fpi,fij->fpj", d, np.linalg.inv(box))
        d = np.einsum("fpj,fji->fpi", fractional - np.round(fractional), box)
    length = np.linalg.norm(d, axis=-1)
    return int(np.count_nonzero(length.max(0) - length.min(0) < RIGID_TOLERANCE))


#: differences of positions whose kinetic energy :func:`differences_shortfall` puts more than this fraction
#: below the truth give a lower bound of the temperature, not the temperature
DIFFERENCES_TOLERANCE = 0.02
#: velocities from positions farther apart than this (fs) read the fast vibrations measurably slow (what is
#: assumed where a file is too short for :func:`differences_shortfall` to tell)
DIFFERENCES_EXACT_FS = 1.0


def differences_shortfall(traj: Trajectory) -> float | None:
    """How far below the truth the kinetic energy from central differences of ``traj``'s positions reads,
    estimated from the file itself: a fraction (0.03 = 3% low), or None with fewer than 5 frames.

    A vibration of angular frequency ω read through differences of frames ±h apart keeps (sin ωh / ωh)²
    ≈ 1 − (ωh)²/3 of its kinetic energy, through frames ±2h apart ≈ 1 − 4(ωh)²/3. The ratio r of the two
    readings then gives the shortfall at h as (1 − r)/3 while the motion is resolved; where it is not
    (frames farther apart than a fast vibration's period, or a diffusive stride) r falls far below 1.
    On the shipped trajectories the estimate is close where it is small (ethanol 1 fs apart: 3.9%
    estimated, 3.3% measured against its velocities; water 2 fs apart: 0.7%, 0.7%) and large where the
    figure is far off (ethanol 5 fs apart: 20% estimated, 52% measured).
    """
    if traj.time is None or traj.n_frames < 5:
        return None
    from .physics import temperature
    x = traj.positions
    if traj.is_periodic:
        from .geometry import unwrap
        x = unwrap(x, traj.unitcell_vectors)
    near = temperature((x[3:-1] - x[1:-3]) / (2 * traj.dt), traj.masses).mean()
    far = temperature((x[4:] - x[:-4]) / (4 * traj.dt), traj.masses).mean()
    return float(max(0.0, 1.0 - far / near) / 3) if near > 0 else None


def kinetic_temperature(traj: Trajectory, source: str = "auto", vibrations: bool = True) -> dict:
    """The kinetic temperature a trajectory file holds, averaged over its frames.

    Parameters
    ----------
    traj : Trajectory
    source : {"auto", "velocities", "positions"}
        Where the velocities come from (:func:`velocities_of`); differences of positions more than ~1 fs
        apart read the fast vibrations slow, hence the temperature low.
    vibrations : bool
        Also split off the rigid rotation (the vibrational and per-element temperatures below: a rotation
        fitted to every frame); False leaves them None.

    Returns
    -------
    dict
        ``temperature_K``: mean internal kinetic energy over 3N − 3 − C degrees of freedom (centre-of-mass
        motion removed; C the distances the file holds rigid, :func:`rigid_distances`: TIP3P water has 3
        a molecule), with ``temperature_std_K`` its spread over frames; ``degrees_of_freedom``, ``rigid``;
        for a file without rigid distances also ``vibrational_temperature_K``, the vibrations alone over
        3N − 6 (rigid rotation removed too; :mod:`trajsr.physics`), and ``by_element``, each element's
        vibrational temperature (K) (None otherwise); ``source`` used, ``frames``, ``dt_fs``. From
        positions also ``shortfall``, :func:`differences_shortfall`'s estimate of how low they read, and
        ``lower_bound``: True where it exceeds :data:`DIFFERENCES_TOLERANCE` (or, with too few frames to
        tell, the frames lie more than 1 fs apart), and every temperature above is then only a lower bound.
    """
    from .physics import degrees_of_freedom, temperature, vibrational_temperature
    from .physics import temperature_by_element as by_element
    v = velocities_of(traj, source)
    rigid = rigid_distances(traj)
    dof = degrees_of_freedom(traj.n_atoms, rigid=rigid)
    if dof < 1:
        raise TrajsrError(f"{traj.source}: {traj.n_atoms} atoms with {rigid} rigid distances leave no degrees of "
                          "freedom to hold a temperature")
    kelvin = temperature(v, traj.masses, rigid)
    spacing = traj.dt * FS_PER_PS if traj.time is not None and traj.n_frames > 1 else None
    used = velocity_source(traj, source)
    shortfall = differences_shortfall(traj) if used == "positions" else None
    lower_bound = used == "positions" and (spacing > DIFFERENCES_EXACT_FS if shortfall is None
                                           else shortfall > DIFFERENCES_TOLERANCE)
    return dict(source=used, frames=traj.n_frames, dt_fs=spacing, degrees_of_freedom=dof, rigid=rigid,
                shortfall=shortfall, lower_bound=bool(lower_bound),
                temperature_K=float(kelvin.mean()), temperature_std_K=float(kelvin.std()),
                vibrational_temperature_K=None if rigid or not vibrations else float(
                    vibrational_temperature(traj.positions, v, traj.masses).mean()),
                by_element=None if rigid or not vibrations else by_element(traj.positions, v, traj.masses,
                                                                            traj.elements))


def temperature_by_element_error_bars(runs) -> dict:
    """Standard error (K) of each element's mean vibrational temperature over independent ``runs``
    (trajectories of about equal length): their sample standard deviation over √(number of runs).

    A global thermostat barely moves energy between modes, so one element's temperature differs from run
    to run by ~10% (one oxygen over 25 ps of ethanol) and only independent runs average it out; frames of
    one run are not independent samples. NaN for fewer than two runs.
    """
    per_run = [pooled_temperature_by_element(t) for t in _as_list(runs)]
    if len(per_run) < 2:
        return {e: float("nan") for e in per_run[0]}
    return {e: float(np.std([r[e] for r in per_run], ddof=1) / np.sqrt(len(per_run))) for e in per_run[0]}


def total_energies(traj: Trajectory, calculator, every: int = 1):
    """Times (ps) and E_pot (``calculator``, an ASE calculator) + E_kin (kJ/mol) of every ``every``-th frame."""
    from .physics import kinetic_energy, potential_energies
    if traj.velocities is None:
        raise TrajsrError(f"{traj.source}: the total energy needs velocities")
    idx = np.arange(0, traj.n_frames, every)
    pot = potential_energies(calculator, traj.elements, traj.positions[idx])
    return traj.time[idx], pot + kinetic_energy(traj.velocities[idx], traj.masses)


def energy_drift(time_ps: np.ndarray, energy_kj_per_mol: np.ndarray, n_atoms: int) -> float:
    """Slope of a least-squares line through the total energy, in meV per atom per ps."""
    from .units import MEV_PER_KJ_PER_MOL
    if len(time_ps) < 3:
        return float("nan")
    return float(np.polyfit(time_ps, energy_kj_per_mol, 1)[0] * MEV_PER_KJ_PER_MOL / n_atoms)


def compare_sampling(reference, other) -> dict:
    """What ``other`` samples against ``reference`` (each a trajectory or a list, pooled; same atoms and
    frame spacing): VDOS overlap (≥ 300 cm⁻¹), mean Wasserstein-1 distance of bond lengths (Å) and bond
    angles (degrees), the bond W1 blind to which atoms are bonded (Å, :func:`sorted_bond_lengths`),
    vibrational temperature by element (K) of both and the largest relative difference."""
    mine, theirs = pooled_temperature_by_element(other), pooled_temperature_by_element(reference)
    return dict(vdos_overlap=vdos_overlap(reference, other),
                bond_w1_angstrom=bond_length_distance(reference, other),
                bond_w1_by_element_angstrom=bond_length_distance(reference, other, by_element=True),
                angle_w1_degrees=bond_angle_distance(reference, other),
                temperature_by_element=mine, reference_temperature_by_element=theirs,
                temperature_by_element_error=max(abs(mine[e] / theirs[e] - 1) for e in theirs))
