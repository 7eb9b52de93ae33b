"""Small physics shared by propagators, benchmarks and metrics: masses, kinetic energy, degrees of
freedom and temperature. Units: nm/ps, Da, kJ/mol, K.

A molecule whose centre of mass is fixed (or projected out) has 3N − 3 degrees of freedom; counting
3N reads a temperature 11 % low for ethanol, so everything in trajsr counts through :func:`degrees_of_freedom`.

An isolated molecule also keeps its angular momentum: no force inside it changes it, and a global
thermostat (Bussi) only scales it. Its rotation is then not sampled, so each run keeps the rotational
energy it started with and its vibrations make up the rest: 50 ps GFN2-xTB Bussi runs of ethanol at 700 K
read internal temperatures from 640 to 800 K. Temperatures meant to compare two ensembles are therefore
taken over the vibrations alone (:func:`rigid_body_split`: the centre-of-mass velocity and the rigid
rotation ω × r removed, 3N − 6 degrees of freedom, 3N − 5 for a linear molecule).
"""
from __future__ import annotations

import numpy as np

from .geometry import remove_center_of_mass
from .units import ANGSTROM_PER_NM, KB_KJ_PER_MOL_PER_K, KJ_PER_MOL_PER_EV


def masses_of(elements) -> np.ndarray:
    """Atomic masses in Da (g/mol) of element symbols; ones if ``elements`` is empty."""
    from ase.data import atomic_masses, atomic_numbers
    return atomic_masses[[atomic_numbers[e] for e in elements]] if len(elements) else np.ones(0)


def covalent_radii_of(elements) -> np.ndarray:
    """Covalent radii in nm of element symbols (ASE's table)."""
    from ase.data import atomic_numbers, covalent_radii
    return covalent_radii[[atomic_numbers[e] for e in elements]] / ANGSTROM_PER_NM


def kinetic_energy(velocities: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """Σ ½ m v² in kJ/mol over atoms, for velocities (..., N, 3) in nm/ps."""
    return 0.5 * np.einsum("a,...ai->...", np.asarray(masses, np.float64), np.asarray(velocities) ** 2)


def internal_velocities(velocities: np.ndarray, masses: np.ndarray):
    """(velocities − centre-of-mass velocity, centre-of-mass velocity (..., 1, 3)), nm/ps."""
    return remove_center_of_mass(velocities, masses)


def degrees_of_freedom(n_atoms: int, fixed_center_of_mass: bool = True, rigid: int = 0) -> int:
    """3N − 3 with the centre of mass fixed (trajsr's propagators and thermostats), else 3N; less one for
    each of ``rigid`` distances held fixed (constraints)."""
    return 3 * n_atoms - (3 if fixed_center_of_mass else 0) - rigid


def temperature(velocities: np.ndarray, masses: np.ndarray, rigid: int = 0) -> np.ndarray:
    """Instantaneous temperature (K) of each frame (..., N, 3) nm/ps: internal kinetic energy over
    3N − 3 degrees of freedom, less ``rigid`` constrained distances."""
    internal, _ = internal_velocities(velocities, masses)
    return 2 * kinetic_energy(internal, masses) / (KB_KJ_PER_MOL_PER_K * degrees_of_freedom(len(masses),
                                                                                             rigid=rigid))


def rigid_body_split(positions: np.ndarray, velocities: np.ndarray, masses: np.ndarray):
    """Split velocities into vibrations and rigid-body motion.

    Parameters
    ----------
    positions, velocities : ndarray, shape (..., N, 3)
        Positions in nm and velocities in nm/ps.
    masses : ndarray, shape (N,)
        Da.

    Returns
    -------
    vibrational : ndarray, shape (..., N, 3)
        Velocities (nm/ps) with the centre-of-mass velocity and the rigid rotation ω × r removed
        (ω = I⁻¹ L, pseudo-inverse for linear molecules): no linear or angular momentum.
    rigid : ndarray, shape (..., N, 3)
        What was removed, so that ``vibrational + rigid == velocities``.
    shares : ndarray, shape (..., N)
        Degrees of freedom each atom's vibrational velocity holds by equipartition: 3 less what the
        translations and rotations take from it (Σ = 3N − 6, or 3N − 5 linear). Heavy atoms and atoms far
        from the centre give up more.
    """
    m = np.asarray(masses, np.float64)
    x, v = np.asarray(positions, np.float64), np.asarray(velocities, np.float64)
    r, _ = remove_center_of_mass(x, m)
    v_internal, v_com = internal_velocities(v, m)
    eye = np.eye(3)
    # per-atom inertia contributions A_i = |r_i|² 1 − r_i r_iᵀ; I = Σ m_i A_i
    a = (r * r).sum(-1)[..., None, None] * eye - r[..., :, None] * r[..., None, :]
    inertia = np.einsum("a,...aij->...ij", m, a)
    inverse = np.linalg.pinv(inertia, rcond=1e-8, hermitian=True)
    angular_momentum = np.einsum("a,...ai->...i", m, np.cross(r, v_internal))
    omega = np.einsum("...ij,...j->...i", inverse, angular_momentum)
    rotation = np.cross(omega[..., None, :], r)
    shares = 3.0 - 3.0 * m / m.sum() - m * np.einsum("...aij,...ji->...a", a, inverse)
    return v_internal - rotation, v_com + rotation, shares


def vibrational_temperature(positions: np.ndarray, velocities: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """Instantaneous temperature (K) of the vibrations of each frame (..., N, 3) (nm, nm/ps): their
    kinetic energy over 3N − 6 degrees of freedom (3N − 5 linear). Equals :func:`temperature` in a
    canonical ensemble; unlike it, it reads the vibrations right whatever the molecule's rotation."""
    vibrational, _, shares = rigid_body_split(positions, velocities, masses)
    return 2 * kinetic_energy(vibrational, masses) / (KB_KJ_PER_MOL_PER_K * shares.sum(-1))


def temperature_by_element(positions: np.ndarray, velocities: np.ndarray, masses: np.ndarray, elements) -> dict:
    """Mean vibrational temperature (K) of each element's atoms over frames (F, N, 3) (nm, nm/ps): each
    atom's kinetic energy after the rigid-body motion is removed, over the degrees of freedom it keeps
    (:func:`rigid_body_split`). In equilibrium every element reads the same T, whether or not the
    rotation is thermalised."""
    masses = np.asarray(masses, float)
    vibrational, _, shares = rigid_body_split(positions, velocities, masses)
    energy = (0.5 * masses * (vibrational ** 2).sum(-1)).reshape(-1, len(masses))   # (F, N) kJ/mol
    dof = shares.reshape(-1, len(masses))
    # ratio of sums (not mean of ratios): an atom on the rotation axis can hold few degrees of freedom
    return {e: float(2 * energy[:, idx].sum() / (KB_KJ_PER_MOL_PER_K * dof[:, idx].sum()))
            for e in dict.fromkeys(elements) for idx in [[i for i, x in enumerate(elements) if x == e]]}


def potential_energies(calc, elements, positions) -> np.ndarray:
    """E_pot (kJ/mol) of each frame of ``positions`` (B, N, 3) nm from an ASE calculator."""
    from ase import Atoms
    energies = []
    for frame in np.atleast_3d(positions):
        atoms = Atoms(elements, positions=frame * ANGSTROM_PER_NM)
        atoms.calc = calc
        energies.append(atoms.get_potential_energy() * KJ_PER_MOL_PER_EV)
    return np.array(energies)


def velocity_scale(positions: np.ndarray, velocities: np.ndarray, dt: float, elements) -> tuple[float, float]:
    """How well stored velocities explain the motion between frames ``dt`` ps apart (nm, nm/ps).

    The heavy atoms' displacement between consecutive frames is fitted (mass-weighted least squares) by
    ``scale`` × the trapezoid rule's ∫v dt. Velocities in the right unit and sign give a scale near 1;
    Å/ps read as nm/ps give ~0.1, Å/fs read as nm/ps ~100, reversed velocities ~−1. ``residual`` (0 to 1, blind to the
    scale) says whether the fit can tell: measured on GFN2-xTB and Amber trajectories it is below 0.5
    (scale 1.0–1.1) at 5–10 fs between frames, and near 1 (no information) once the frames are farther apart
    than the heavy atoms' fastest vibrations resolve (20 fs and more).

    Returns
    -------
    scale, residual : float
    """
    heavy = np.array([e != "H" for e in elements])
    if heavy.sum() < 2:
        heavy[:] = True
    weight = np.sqrt(masses_of([e for e, h in zip(elements, heavy) if h]))[None, :, None]
    x, v = np.asarray(positions)[:, heavy], np.asarray(velocities)[:, heavy]
    moved = (x[1:] - x[:-1]) * weight
    predicted = 0.5 * dt * (v[1:] + v[:-1]) * weight
    norm = float((predicted ** 2).sum())
    if norm == 0 or not float((moved ** 2).sum()) > 0:
        return float("nan"), 1.0
    scale = float((moved * predicted).sum()) / norm
    residual = float(np.sqrt(((moved - scale * predicted) ** 2).sum() / (moved ** 2).sum()))
    return scale, residual
