"""Force matching: fit a Hamiltonian propagator's learned potential to the reference forces first.

Files that store forces (AIMD outputs, trajsr's own xTB data) give them at every saved frame, at any
spacing. Without them, velocity-Verlet trajectories saved every step hold their forces exactly:
x(t + dt) = x(t) + v(t) dt + ½ a(t) dt², so a(t) = 2 (x(t + dt) − x(t) − v(t) dt) / dt². Matching −∇V/m to them is one force
evaluation per example where a rollout is ``strides × substeps`` of them, so the potential sees many
more configurations in the same minutes; the rollout fit that follows then tunes it to the stride.
Units: nm, ps, kJ/mol, forces in kJ/mol/nm.
"""
from __future__ import annotations

from ..backend import keras
import numpy as np

from ..errors import TrajsrError

#: a trajectory whose velocities disagree with its positions by more than this (relative) is not
#: velocity Verlet saved every step, and its forces cannot be read off it
VERLET_TOLERANCE = 1e-3


def verlet_forces(traj, masses) -> tuple[np.ndarray, np.ndarray]:
    """Positions (F − 1, N, 3) nm and the forces on them (kJ/mol/nm) of a velocity-Verlet trajectory
    saved every step (with velocities); :class:`TrajsrError` for anything else (strided, thermostatted)."""
    if traj.velocities is None or traj.n_frames < 3:
        raise TrajsrError(f"{traj.source}: force matching needs velocities and at least 3 frames")
    x, v, dt = traj.positions, traj.velocities, traj.dt
    a = 2.0 * (x[1:] - x[:-1] - v[:-1] * dt) / dt ** 2
    dv, predicted = v[1:-1] - v[:-2], 0.5 * dt * (a[:-1] + a[1:])
    mismatch = np.abs(dv - predicted).mean() / max(np.abs(dv).mean(), 1e-30)
    if mismatch > VERLET_TOLERANCE:
        raise TrajsrError(f"{traj.source}: positions and velocities do not follow velocity Verlet step by step "
                          f"(mismatch {mismatch:.1e}); force matching needs NVE frames saved every step")
    return x[:-1], a * np.asarray(masses)[None, :, None]


def frames_and_forces(traj, masses) -> tuple[np.ndarray, np.ndarray]:
    """Positions (nm) and the forces on them (kJ/mol/nm): the file's stored forces at every frame (any
    spacing, any ensemble), else those :func:`verlet_forces` reads off NVE frames saved every step."""
    if traj.forces is not None:
        return traj.positions, traj.forces
    return verlet_forces(traj, masses)


def predicted_forces(step, positions, batch: int = 1024) -> np.ndarray:
    """−∇V of ``step``'s learned potential at ``positions`` (frames, N, 3) nm, in kJ/mol/nm."""
    import tensorflow as tf

    from ..dynamics.integrators import gradient
    out = [-gradient(step.potential, tf.constant(positions[i:i + batch], tf.float32)).numpy()
           for i in range(0, len(positions), batch)]
    return np.concatenate(out).astype(np.float64)


class Forces(keras.layers.Layer):
    """−∇V(q) of a Hamiltonian step's learned potential, divided by ``scale`` (kJ/mol/nm)."""

    def __init__(self, step, scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.step, self.scale = step, float(scale)

    def call(self, positions):
        from ..dynamics.integrators import gradient
        return -gradient(self.step.potential, positions) / self.scale


def fit_forces(step, trajs, valid, *, epochs=200, batch_size=256, learning_rate=1e-3, patience=8,
               max_minutes=None, every=4, seed=0, verbose=1):
    """Train ``step``'s potential (in place) on the forces of ``trajs`` (every ``every``-th frame; stored
    forces where the files have them, see :func:`frames_and_forces`); ``valid`` for early stopping.
    Returns the history; loss: MAE of the forces over their RMS."""
    import tensorflow as tf

    from ..training import standard_callbacks
    if not step.has_potential:
        raise TrajsrError(f"force matching needs a learned potential; the {step.family!r} family has none")

    def arrays(ts):
        parts = [frames_and_forces(t, step.masses_list) for t in ts]
        return (np.concatenate([p[0][::every] for p in parts]).astype(np.float32),
                np.concatenate([p[1][::every] for p in parts]).astype(np.float32))
    x, f = arrays(trajs)
    scale = float(np.sqrt(np.mean(f ** 2)))
    q = keras.Input(tuple(x.shape[1:]), name="positions")
    net = keras.Model(q, Forces(step, scale, name="forces")(q))
    net.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=1.0), loss="mae")
    train_ds = tf.data.Dataset.from_tensor_slices((x, f / scale)).shuffle(len(x), seed=seed).batch(batch_size)
    valid_ds = None
    if valid:
        xv, fv = arrays(valid)
        valid_ds = tf.data.Dataset.from_tensor_slices((xv, fv / scale)).batch(1024)
    monitor = "val_loss" if valid_ds is not None else "loss"
    return net.fit(train_ds, validation_data=valid_ds, epochs=epochs, verbose=verbose, shuffle=False,
                   callbacks=standard_callbacks(monitor, patience, max_minutes))
