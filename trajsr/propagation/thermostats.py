"""Thermostats applied between learned strides: Bussi stochastic velocity rescaling and Langevin.

Both act on the internal velocities (centre-of-mass velocity kept exactly) of a batch of replicas
(B, N, 3) in nm/ps, with masses in Da, temperatures in K and times in fs.
"""
from __future__ import annotations

import numpy as np

from ..errors import TrajsrError
from ..physics import degrees_of_freedom, internal_velocities, kinetic_energy
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


def bussi(v, masses, temperature, dt_fs, tau_fs, rng) -> np.ndarray:
    """Bussi–Donadio–Parrinello stochastic velocity rescaling over ``dt_fs`` with time constant ``tau_fs``,
    3N − 3 degrees of freedom. Replicas at rest are restarted from Maxwell–Boltzmann velocities."""
    internal, com = internal_velocities(v, masses)
    n_f = degrees_of_freedom(len(masses))
    k = kinetic_energy(internal, masses)
    frozen = k < 1e-12
    if frozen.any():  # nothing to rescale
        internal[frozen] = maxwell_boltzmann(internal[frozen].shape, masses, temperature, rng)
        k = kinetic_energy(internal, masses)
    k_target = 0.5 * n_f * KB_KJ_PER_MOL_PER_K * temperature
    c = np.exp(-dt_fs / tau_fs)
    r1 = rng.normal(size=len(v))
    rest = rng.chisquare(n_f - 1, size=len(v))
    ratio = k_target / (n_f * k)
    alpha2 = c + ratio * (1 - c) * (r1 ** 2 + rest) + 2 * r1 * np.sqrt(c * ratio * (1 - c))
    return internal * np.sqrt(alpha2)[:, None, None] + com


def apply_thermostat(kind, v, masses, temperature, dt_fs, *, tau_fs=100.0, friction_per_fs=0.01, rng=None):
    """Dispatch to :func:`bussi` or :func:`langevin` by name."""
    rng = rng if rng is not None else np.random.default_rng()
    if kind == "bussi":
        return bussi(v, masses, temperature, dt_fs, tau_fs, rng)
    if kind == "langevin":
        return langevin(v, masses, temperature, dt_fs, friction_per_fs, rng)
    raise TrajsrError(f"unknown thermostat {kind!r}; choose {' or '.join(THERMOSTATS)}")
