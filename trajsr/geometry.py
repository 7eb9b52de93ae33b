"""Geometry helpers: centre of mass, Kabsch alignment (NumPy and TensorFlow), periodic unwrap and wrap.

Units: nm (positions) or nm/ps (velocities: the same centre-of-mass formula); masses in Da.
The TensorFlow twins (``*_tf``) import TensorFlow only when called; a test checks they agree.
"""
from __future__ import annotations

import numpy as np


def center_of_mass(positions: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """Centre of mass, shape (..., 1, 3), of positions (..., atoms, 3) with masses (atoms,) in Da."""
    w = np.asarray(masses, np.float64) / np.sum(masses)
    return np.einsum("...ai,a->...i", positions, w)[..., None, :]


def remove_center_of_mass(positions: np.ndarray, masses: np.ndarray):
    """Return (positions − centre of mass, centre of mass); works on any leading frame axes."""
    com = center_of_mass(positions, masses)
    return positions - com, com


def kabsch_rotation(mobile: np.ndarray, reference: np.ndarray, weights=None) -> np.ndarray:
    """The proper rotation ``R`` (3, 3) minimising ``|mobile @ R − reference|`` for centred point sets.

    Both inputs have shape (..., atoms, 3) and must already be centred; leading axes are batched.
    ``weights`` (atoms,) weight each atom (for example by mass).
    """
    w = np.ones(mobile.shape[-2]) if weights is None else np.asarray(weights, np.float64)
    h = np.einsum("...ai,a,...aj->...ij", mobile, w, reference)
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(u @ vt))  # no reflections
    fix = np.ones(h.shape[:-2] + (3,))
    fix[..., 2] = d
    return (u * fix[..., None, :]) @ vt


def align(positions: np.ndarray, reference: np.ndarray, masses=None):
    """Centre and rotate ``positions`` (..., atoms, 3) onto ``reference`` (atoms, 3).

    Returns
    -------
    aligned : ndarray
        ``(positions − com) @ R``, with the reference centred at the origin.
    com : ndarray, shape (..., 1, 3)
        The removed centre of mass (nm).
    rotation : ndarray, shape (..., 3, 3)
        ``aligned @ rotationᵀ + com`` gives ``positions`` back (``rotation`` is orthogonal).
    """
    masses = np.ones(positions.shape[-2]) if masses is None else masses
    centred, com = remove_center_of_mass(positions, masses)
    ref, _ = remove_center_of_mass(reference, masses)
    rotation = kabsch_rotation(centred, ref, masses)
    return centred @ rotation, com, rotation


def unwrap(positions: np.ndarray, unitcell_vectors: np.ndarray) -> np.ndarray:
    """Remove periodic jumps between consecutive frames (minimum-image displacements).

    Parameters
    ----------
    positions : ndarray, shape (frames, atoms, 3)
        Positions in nm.
    unitcell_vectors : ndarray, shape (frames, 3, 3)
        Box vectors (rows) in nm, any triclinic cell.
    """
    inverse = np.linalg.inv(unitcell_vectors)
    frac = np.einsum("fai,fij->faj", positions, inverse)
    step = np.diff(frac, axis=0)
    step -= np.round(step)
    frac = np.concatenate([frac[:1], frac[:1] + np.cumsum(step, axis=0)])
    return np.einsum("faj,fji->fai", frac, unitcell_vectors)


# -- TensorFlow twins, for layers that work on batches inside a graph ----------------------------------
def center_of_mass_tf(x, masses):
    """Centre of mass (B, 1, 3) of ``x`` (B, N, 3), TensorFlow; ``masses`` (N,) in Da."""
    import tensorflow as tf
    masses = tf.cast(masses, x.dtype)
    return tf.einsum("bai,a->bi", x, masses / tf.reduce_sum(masses))[:, None, :]


def kabsch_rotation_tf(mobile, reference, weights):
    """TensorFlow twin of :func:`kabsch_rotation` for centred ``mobile`` (B, N, 3) and ``reference``
    (N, 3); returns (B, 3, 3) with ``mobile @ R ≈ reference``. No gradient flows through the rotation."""
    import tensorflow as tf
    h = tf.einsum("bai,a,aj->bij", mobile, tf.cast(weights, mobile.dtype), tf.cast(reference, mobile.dtype))
    _, u, v = tf.linalg.svd(h)
    d = tf.sign(tf.linalg.det(tf.matmul(u, v, transpose_b=True)))  # no reflections
    fix = tf.stack([tf.ones_like(d), tf.ones_like(d), d], axis=-1)[:, None, :]
    return tf.stop_gradient(tf.matmul(u * fix, v, transpose_b=True))
