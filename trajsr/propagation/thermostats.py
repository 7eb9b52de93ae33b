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
    return vibrational * np.sqrt(np.maximum(alpha2, 0.0))[:, None, None] + rigid


def apply_thermostat(kind, v, masses, temperature, dt_fs, *, positions, tau_fs=100.0, friction_per_fs=0.01,
                     rng=None):
    """Dispatch to :func:`bussi` (which needs the ``positions``, nm) or :func:`langevin` by name."""
    rng = rng if rng is not None else np.random.default_rng()
    if kind == "bussi":
        return bussi(v, masses, temperature, dt_fs, tau_fs, rng, np.asarray(positions, np.float64))
    if kind == "langevin":
        return langevin(v, masses, temperature, dt_fs, friction_per_fs, rng)
    raise TrajsrError(f"unknown thermostat {kind!r}; choose {' or '.join(THERMOSTATS)}")


# -- inside the compiled rollout: the same updates in TensorFlow, with the random numbers drawn in NumPy ----
def draws(kind, rng, updates: int, replicas: int, n_atoms: int, n_f: int) -> np.ndarray:
    """The random numbers ``updates`` thermostat updates of ``replicas`` use, drawn from ``rng`` (so a seed
    fixes a run whichever code does the arithmetic), float32: Bussi (updates, B, 2) = one normal and one
    χ²(n_f − 1) per replica; Langevin (updates, B, N, 3) standard normals."""
    if kind == "bussi":
        rest = rng.chisquare(n_f - 1, size=(updates, replicas)) if n_f > 1 else np.zeros((updates, replicas))
        return np.stack([rng.normal(size=(updates, replicas)), rest], -1).astype(np.float32)
    return rng.normal(size=(updates, replicas, n_atoms, 3)).astype(np.float32)


def vibrational_degrees_of_freedom(positions, masses) -> int:
    """3N − 6 (3N − 5 for a linear molecule) at ``positions`` (N, 3) nm: what Bussi rescales."""
    return int(round(rigid_body_split(positions, np.zeros_like(positions), masses)[2].sum()))


def bussi_tf(v, x, masses, temperature, dt_fs, tau_fs, n_f, draw):
    """TensorFlow twin of :func:`bussi` for (B, N, 3) nm/ps and nm, with ``draw`` (B, 2) from :func:`draws`."""
    import tensorflow as tf
    m = tf.constant(masses, v.dtype)
    total = tf.reduce_sum(m)
    r = x - tf.einsum("bai,a->bi", x, m / total)[:, None]
    v_com = tf.einsum("bai,a->bi", v, m / total)[:, None]
    internal = v - v_com
    eye = tf.eye(3, dtype=v.dtype)
    a = tf.reduce_sum(r * r, -1)[..., None, None] * eye - r[..., :, None] * r[..., None, :]
    inertia = tf.einsum("a,baij->bij", m, a)
    momentum = tf.einsum("a,bai->bi", m, tf.linalg.cross(r, internal))
    # ω = I⁺ L as a damped least-squares solve in float64, (I² + ε²) ω = I L: no SVD, and a linear
    # molecule's singular I stays solvable; exact to (ε/λ_min)² ~ 1e-10 for a bent one
    inertia, momentum = tf.cast(inertia, tf.float64), tf.cast(momentum, tf.float64)
    eps2 = (1e-6 * tf.linalg.trace(inertia) / 3)[:, None, None] ** 2
    omega = tf.cast(tf.linalg.solve(tf.matmul(inertia, inertia) + eps2 * tf.eye(3, dtype=tf.float64),
                                    tf.einsum("bij,bj->bi", inertia, momentum)[..., None])[..., 0], v.dtype)
    rotation = tf.linalg.cross(tf.broadcast_to(omega[:, None], tf.shape(r)), r)
    vibrational = internal - rotation
    k = tf.maximum(0.5 * tf.einsum("a,bai->b", m, vibrational ** 2), 1e-12)
    c = float(np.exp(-dt_fs / tau_fs))
    ratio = 0.5 * n_f * KB_KJ_PER_MOL_PER_K * temperature / (n_f * k)
    r1, rest = draw[:, 0], draw[:, 1]
    alpha2 = c + ratio * (1 - c) * (r1 ** 2 + rest) + 2 * r1 * tf.sqrt(c * ratio * (1 - c))
    # α² = (√c + r1 √(ratio (1 − c)))² + ... ≥ 0; in float32 a one-degree-of-freedom square can round below 0
    return vibrational * tf.sqrt(tf.maximum(alpha2, 0.0))[:, None, None] + rotation + v_com


def langevin_tf(v, masses, temperature, dt_fs, friction_per_fs, draw):
    """TensorFlow twin of :func:`langevin`, with ``draw`` (B, N, 3) standard normals from :func:`draws`."""
    import tensorflow as tf
    m = tf.constant(masses, v.dtype)
    com = lambda a: tf.einsum("bai,a->bi", a, m / tf.reduce_sum(m))[:, None]  # noqa: E731
    kick = draw * tf.sqrt(KB_KJ_PER_MOL_PER_K * temperature / m)[None, :, None]
    c = float(np.exp(-friction_per_fs * dt_fs))
    return c * (v - com(v)) + float(np.sqrt(1 - c * c)) * (kick - com(kick)) + com(v)
