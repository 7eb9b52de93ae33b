"""Small physics shared by propagators, benchmarks and metrics: masses, kinetic energy, degrees of
freedom and temperature. Units: nm/ps, Da, kJ/mol, K.

A molecule whose centre of mass is fixed (or projected out) has 3N − 3 degrees of freedom; counting
3N reads a temperature 11 % low for ethanol, so everything in trajsr counts through :func:`degrees_of_freedom`.
"""
from __future__ import annotations

import numpy as np

from .geometry import remove_center_of_mass
from .units import ANGSTROM_PER_NM, KB_KJ_PER_MOL_PER_K, KJ_PER_MOL_PER_EV


def masses_of(elements) -> np.ndarray:
    """Atomic masses in Da (g/mol) of element symbols; ones if ``elements`` is empty."""
    from ase.data import atomic_masses, atomic_numbers
    return atomic_masses[[atomic_numbers[e] for e in elements]] if len(elements) else np.ones(0)


def kinetic_energy(velocities: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """Σ ½ m v² in kJ/mol over atoms, for velocities (..., N, 3) in nm/ps."""
    return 0.5 * np.einsum("a,...ai->...", np.asarray(masses, np.float64), np.asarray(velocities) ** 2)


def internal_velocities(velocities: np.ndarray, masses: np.ndarray):
    """(velocities − centre-of-mass velocity, centre-of-mass velocity (..., 1, 3)), nm/ps."""
    return remove_center_of_mass(velocities, masses)


def degrees_of_freedom(n_atoms: int, fixed_center_of_mass: bool = True) -> int:
    """3N − 3 with the centre of mass fixed (trajsr's propagators and thermostats), else 3N."""
    return 3 * n_atoms - (3 if fixed_center_of_mass else 0)


def temperature(velocities: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """Instantaneous temperature (K) of each frame (..., N, 3) nm/ps: internal kinetic energy over
    3N − 3 degrees of freedom."""
    internal, _ = internal_velocities(velocities, masses)
    return 2 * kinetic_energy(internal, masses) / (KB_KJ_PER_MOL_PER_K * degrees_of_freedom(len(masses)))


def temperature_by_element(velocities: np.ndarray, masses: np.ndarray, elements) -> dict:
    """Mean temperature (K) of each element's atoms over frames (F, N, 3) nm/ps, by equipartition after
    removing the centre-of-mass velocity: with the centre of mass at rest, atom i keeps
    ⟨½ m_i v_i²⟩ = 3/2 k_B T (1 − m_i/M) (heavy atoms give up more to the fixed centre of mass), so a
    canonical ensemble shows every element at the same T."""
    masses = np.asarray(masses, float)
    internal, _ = internal_velocities(velocities, masses)
    per_atom = 0.5 * masses[None, :] * (internal ** 2).sum(-1)                 # (F, N) kJ/mol
    share = 1.0 - masses / masses.sum()                                        # Σ share = N − 1: 3N − 3 dof
    per_atom = per_atom / (1.5 * KB_KJ_PER_MOL_PER_K * share[None, :])
    return {e: float(per_atom[:, [i for i, x in enumerate(elements) if x == e]].mean()) for e in dict.fromkeys(elements)}


def potential_energies(calc, elements, positions) -> np.ndarray:
    """E_pot (kJ/mol) of each frame of ``positions`` (B, N, 3) nm from an ASE calculator."""
    from ase import Atoms
    energies = []
    for frame in np.atleast_3d(positions):
        atoms = Atoms(elements, positions=frame * ANGSTROM_PER_NM)
        atoms.calc = calc
        energies.append(atoms.get_potential_energy() * KJ_PER_MOL_PER_EV)
    return np.array(energies)
