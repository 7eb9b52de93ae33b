"""Training and inference windows: K kept frames each side of a gap, and the gap's S − 1 dropped frames.

A window is put in a canonical frame before the network sees it: its centre of mass is removed and it
is rotated (Kabsch, one rotation for the whole window) onto a reference geometry; :func:`restore`
undoes both. Periodic trajectories are unwrapped first. The baseline the network corrects is the
cubic spline through the 2K kept frames (positions only) or the cubic Hermite between the two inner
kept frames (with velocities); both are linear in the kept frames, so they are precomputed matrices.
Units: nm, nm/ps; inside a window time runs in units of the kept-frame spacing.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from scipy.interpolate import CubicSpline

from ..errors import TrajsrError
from ..geometry import kabsch_rotation, remove_center_of_mass, unwrap


@dataclasses.dataclass
class Windows:
    """Arrays for W windows of a trajectory with N atoms, in the canonical frame (nm, nm/ps·spacing).

    Attributes
    ----------
    kept : (W, 2K, N, 3)       kept frames
    kept_velocities : (W, 2K, N, 3) or None   velocities × kept spacing (nm), for with-velocities
    baseline : (W, S − 1, N, 3)  spline/Hermite of the kept frames at the dropped frames
    target : (W, S − 1, N, 3) or None   the true dropped frames
    com : (W, 1, 3), rotation : (W, 3, 3)   what :func:`restore` needs
    """

    kept: np.ndarray
    kept_velocities: np.ndarray | None
    baseline: np.ndarray
    target: np.ndarray | None
    com: np.ndarray
    rotation: np.ndarray

    def __len__(self):
        return len(self.kept)

    def inputs(self) -> dict:
        """The model inputs: ``kept`` (W, 2K, F) with F = 3N (or 6N with velocities), ``baseline``."""
        w, k, n, _ = self.kept.shape
        ctx = self.kept.reshape(w, k, 3 * n)
        if self.kept_velocities is not None:
            ctx = np.concatenate([ctx, self.kept_velocities.reshape(w, k, 3 * n)], axis=-1)
        return {"kept": ctx.astype(np.float32),
                "baseline": self.baseline.reshape(w, -1, 3 * n).astype(np.float32)}

    def targets(self) -> np.ndarray:
        w, g, n, _ = self.target.shape
        return self.target.reshape(w, g, 3 * n).astype(np.float32)


def spline_matrix(context: int, factor: int, gap: int | None = None) -> np.ndarray:
    """(S − 1, 2K) weights: not-a-knot cubic spline through 2K kept frames, evaluated in gap ``gap``
    (default: the middle one, K − 1)."""
    knots = np.arange(2 * context, dtype=float)
    at = (context - 1 if gap is None else gap) + np.arange(1, factor) / factor
    if context == 1:  # two knots: the spline is the straight line
        return np.stack([1 - at, at], axis=1)
    return CubicSpline(knots, np.eye(2 * context), axis=0)(at)


def hermite_matrices(context: int, factor: int):
    """Cubic Hermite between the two inner kept frames: weights (S − 1, 2K) on positions and on
    velocities × kept spacing."""
    s = np.arange(1, factor) / factor
    h00, h10, h01, h11 = 2 * s**3 - 3 * s**2 + 1, s**3 - 2 * s**2 + s, -2 * s**3 + 3 * s**2, s**3 - s**2
    wp, wv = np.zeros((factor - 1, 2 * context)), np.zeros((factor - 1, 2 * context))
    wp[:, context - 1], wp[:, context] = h00, h01
    wv[:, context - 1], wv[:, context] = h10, h11
    return wp, wv


def canonical_frame(kept: np.ndarray, masses: np.ndarray, reference: np.ndarray):
    """Centre of mass (W, 1, 3) and rotation (W, 3, 3) that take each window's two inner kept frames
    (averaged) onto ``reference`` (N, 3, centred)."""
    k = kept.shape[1] // 2
    inner = 0.5 * (kept[:, k - 1] + kept[:, k])
    centred, com = remove_center_of_mass(inner, masses)
    rotation = kabsch_rotation(centred, reference, masses)
    return com, rotation


def _rotate(x, rotation):
    """x (W, ..., 3) @ rotation (W, 3, 3), as one batched matmul (much faster than einsum here)."""
    return np.matmul(x.reshape(len(x), -1, 3), rotation).reshape(x.shape)


def _canonical(windows_positions, com, rotation):
    return _rotate(windows_positions - com[:, None], rotation)


def restore(positions: np.ndarray, com: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """Undo the canonical frame: positions (W, G, N, 3) back to the file's frame (nm)."""
    return _rotate(positions, np.swapaxes(rotation, 1, 2)) + com[:, None]


def _mix(weights, frames):
    """weights (G, K) applied to frames (W, K, N, 3) along K: (W, G, N, 3)."""
    w, k = frames.shape[:2]
    return np.matmul(weights, frames.reshape(w, k, -1)).reshape((w, len(weights)) + frames.shape[2:])


def build_windows(positions, velocities, *, factor, context, masses, reference, starts, spacing_ps,
                  with_velocities=False, targets=True, index_step=None) -> Windows:
    """Windows whose first kept frame is at index ``starts`` (W,) of ``positions`` (frames, N, 3) nm.

    Kept frames lie ``index_step`` apart in ``positions``: ``factor`` for a fine trajectory (training),
    1 for a coarse one (inference, ``targets=False``). ``spacing_ps`` is the time between kept frames.
    """
    k = context
    index_step = factor if index_step is None else index_step
    kept_idx = starts[:, None] + index_step * np.arange(2 * k)
    ctx = positions[kept_idx]
    com, rotation = canonical_frame(ctx, masses, reference)
    ctx = _canonical(ctx, com, rotation)
    ctx_v = None
    if with_velocities:
        if velocities is None:
            raise TrajsrError("with-velocities mode needs stored velocities")
        ctx_v = _rotate(velocities[kept_idx], rotation) * spacing_ps
        wp, wv = hermite_matrices(k, factor)
        baseline = _mix(wp, ctx) + _mix(wv, ctx_v)
    else:
        baseline = _mix(spline_matrix(k, factor), ctx)
    target = None
    if targets:
        target = _canonical(positions[starts[:, None] + (k - 1) * factor + np.arange(1, factor)], com, rotation)
    return Windows(ctx, ctx_v, baseline, target, com, rotation)


def reference_geometry(traj) -> np.ndarray:
    """The canonical geometry windows are rotated onto: ``traj``'s first frame, centre of mass at 0 (nm)."""
    return remove_center_of_mass(traj.positions[0], traj.masses)[0]


def training_windows(traj, *, factor, context, reference, with_velocities=False, step=1) -> Windows:
    """Every window of a fine trajectory, starting at every ``step``-th fine frame (all coarse phases)."""
    positions = unwrap(traj.positions, traj.unitcell_vectors) if traj.is_periodic else traj.positions
    span = (2 * context - 1) * factor
    if traj.n_frames <= span:
        raise TrajsrError(f"{traj.source}: {traj.n_frames} frames is too short for factor {factor} with "
                          f"context {context} (needs more than {span})")
    starts = np.arange(0, traj.n_frames - span, step)
    return build_windows(positions, traj.velocities, factor=factor, context=context, masses=traj.masses,
                         reference=reference, starts=starts, spacing_ps=traj.dt * factor,
                         with_velocities=with_velocities)


def concatenate(windows: list) -> Windows:
    """One Windows from several (e.g. one per trajectory)."""
    def cat(name):
        parts = [getattr(w, name) for w in windows]
        return None if parts[0] is None else np.concatenate(parts)
    return Windows(*(cat(f.name) for f in dataclasses.fields(Windows)))


def normalization_stats(windows: Windows) -> dict:
    """Per-feature statistics from *training* windows only.

    The network sees each window as its mean structure plus displacements from it, since the
    displacements (~0.01 nm) carry the dynamics and would vanish beside the coordinates' spread.
    Returns ``structure_mean``, ``structure_std``, ``displacement_std`` (F,) and ``residual_std`` (3N,).
    """
    x = windows.inputs()
    ctx = x["kept"].astype(np.float64)
    structure = ctx.mean(axis=1)
    displacement = (ctx - structure[:, None]).reshape(-1, ctx.shape[-1])
    residual = (windows.targets() - x["baseline"]).reshape(-1, x["baseline"].shape[-1]).astype(np.float64)
    return {"structure_mean": structure.mean(0), "structure_std": structure.std(0) + 1e-6,
            "displacement_std": np.sqrt((displacement ** 2).mean(0)) + 1e-9,
            "residual_std": np.sqrt((residual ** 2).mean(0)) + 1e-9}


def to_dataset(windows: Windows, batch_size: int = 256, shuffle: bool = True, seed: int = 0,
               drop_remainder: bool = False):
    """A ``tf.data.Dataset`` of ``({"kept", "baseline"}, target)`` batches (``drop_remainder`` for
    distribution strategies, which split every batch evenly across replicas)."""
    import tensorflow as tf
    ds = tf.data.Dataset.from_tensor_slices((windows.inputs(), windows.targets()))
    if shuffle:
        ds = ds.shuffle(min(len(windows), 200_000), seed=seed, reshuffle_each_iteration=True)
    options = tf.data.Options()  # workers of a multi-worker strategy each take their share of the windows
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE).with_options(options)
