"""Thermostats applied between learned strides: Bussi stochastic velocity rescaling and Langevin.

Both act on a batch of replicas (B, N, 3) in nm/ps (positions in nm), with masses in Da, temperatures in
K and times in fs, and keep the centre-of-mass velocity exactly. Bussi rescales the vibrations alone
(3N − 6 degrees of freedom) and leaves the rigid rotation as it is: a global rescaling cannot thermalise the
angular momentum of an isolated molecule, and counting the rotation would let each run's rotational
energy set its vibrational temperature. Langevin acts on every atom and thermalises the rotation too.
"""
from __future__ import annotations

import numpy as np

from ..errors import TrajsrError
from ..physics import internal_velocities, kinetic_energy, rigid_body_split
from ..units import KB_KJ_PER_MOL_PER_K

THERMOSTATS = ("bussi", "langevin")


def maxwell_boltzmann(shape, masses, temperature, rng) -> np.ndarray:
    """Velocities (nm/ps) drawn at ``temperature`` (K) with zero centre-of-mass velocity."""
    draw = rng.normal(size=shape) * np.sqrt(KB_KJ_PER_MOL_PER_K * temperature / masses)[None, :, None]
    return internal_velocities(draw, masses)[0]


def langevin(v, masses, temperature, dt_fs, friction_per_fs, rng) -> np.ndarray:
    """One Ornstein–Uhlenbeck velocity update over ``dt_fs`` with friction ``friction_per_fs`` (1/fs)."""
    internal, com = internal_velocities(v, masses)
    c = np.exp(-friction_per_fs * dt_fs)
    return c * internal + np.sqrt(1 - c * c) * maxwell_boltzmann(v.shape, masses, temperature, rng) + com


def bussi(v, masses, temperature, dt_fs, tau_fs, rng, positions) -> np.ndarray:
    """Bussi–Donadio–Parrinello stochastic velocity rescaling of the vibrations over ``dt_fs`` with time
    constant ``tau_fs``: 3N − 6 degrees of freedom (3N − 5 linear); the centre-of-mass velocity and the
    rigid rotation at ``positions`` (nm) are kept. Replicas without vibrational energy are restarted from
    Maxwell–Boltzmann vibrations."""
    vibrational, rigid, shares = rigid_body_split(positions, v, masses)
    n_f = int(round(shares[0].sum()))
    if n_f < 1:
        raise TrajsrError(f"a {len(masses)}-atom molecule has no vibrations for the Bussi thermostat; use Langevin")
    k = kinetic_energy(vibrational, masses)
    frozen = k < 1e-12
    if frozen.any():  # nothing to rescale
        draw = maxwell_boltzmann(vibrational[frozen].shape, masses, temperature, rng)
        vibrational[frozen] = rigid_body_split(positions[frozen], draw, masses)[0]
        k = kinetic_energy(vibrational, masses)
    k_target = 0.5 * n_f * KB_KJ_PER_MOL_PER_K * temperature
    c = np.exp(-dt_fs / tau_fs)
    r1 = rng.normal(size=len(v))
    rest = rng.chisquare(n_f - 1, size=len(v)) if n_f > 1 else np.zeros(len(v))
    ratio = k_target / (n_f * k)
    alpha2 = c + ratio * (1 - c) * (r1 ** 2 + rest) + 2 * r1 * np.sqrt(c * ratio * (1 - c))
    return vibrational * np.sqrt(alpha2)[:, None, None] + rigid


def apply_thermostat(kind, v, masses, temperature, dt_fs, *, positions, tau_fs=100.0, friction_per_fs=0.01,
                     rng=None):
    """Dispatch to :func:`bussi` (which needs the ``positions``, nm) or :func:`langevin` by name."""
    rng = rng if rng is not None else np.random.default_rng()
    if kind == "bussi":
        return bussi(v, masses, temperature, dt_fs, tau_fs, rng, np.asarray(positions, np.float64))
    if kind == "langevin":
        return langevin(v, masses, temperature, dt_fs, friction_per_fs, rng)
    raise TrajsrError(f"unknown thermostat {kind!r}; choose {' or '.join(THERMOSTATS)}")
