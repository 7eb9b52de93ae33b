"""Train learned propagators: (x, v) at t -> (x, v) at t + S·dt, on multi-stride rollouts.

Each example starts from a fine frame and unrolls ``strides`` strides, so the loss sees how errors
compound; for NVE data the time-reversed sequence (v -> −v, order reversed) is an equally valid
example and doubles the data for free. Callbacks, saving and metadata follow :mod:`trajsr.train`.
"""
from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np

from .errors import TrajsrError
from .geometry import align, remove_center_of_mass
from .io import check_writable
from .stepper import PropagatorStep, Unroll
from .train import distribution_strategy, save_model, split_data, standard_callbacks
from .trajectory import check_factor
from .units import FS_PER_PS

FAMILIES = ("hnn", "ode", "lstm")


def rollout_examples(traj, factor: int, strides: int, step: int = 1, reverse: bool = True):
    """Start states (x0, v0) (W, N, 3) and targets (W, strides, 6N): positions and velocities × stride."""
    if traj.velocities is None:
        raise TrajsrError(f"{traj.source}: propagators learn from velocities; this file stores none")
    span = strides * factor
    if traj.n_frames <= span:
        raise TrajsrError(f"{traj.source}: {traj.n_frames} frames is too short for {strides} strides of {factor}")
    tau = traj.dt * factor
    starts = np.arange(0, traj.n_frames - span, step)
    idx = starts[:, None] + factor * np.arange(strides + 1)
    x, v = traj.positions[idx], traj.velocities[idx]
    if reverse:  # time reversal: run the sequence backwards with velocities flipped
        x = np.concatenate([x, x[:, ::-1]])
        v = np.concatenate([v, -v[:, ::-1]])
    w, n = len(x), traj.n_atoms
    targets = np.concatenate([x[:, 1:].reshape(w, strides, 3 * n), v[:, 1:].reshape(w, strides, 3 * n) * tau], -1)
    return x[:, 0].astype(np.float32), v[:, 0].astype(np.float32), targets.astype(np.float32)


def propagator_stats(trajs, factor, reference, masses) -> dict:
    """Normalisation from training trajectories only: aligned positions, velocities, stride changes,
    inverse-distance features."""
    xs, vs, dxs, dvs, feats = [], [], [], [], []
    for t in trajs:
        tau = t.dt * factor
        x0, v0 = t.positions[:-factor], t.velocities[:-factor]
        aligned, com, rot = align(x0, reference, masses)
        v_rot = np.einsum("fai,fij->faj", v0 - remove_center_of_mass(v0, masses)[1], rot)
        x1 = np.einsum("fai,fij->faj", t.positions[factor:] - com, rot)
        v1 = np.einsum("fai,fij->faj", t.velocities[factor:], rot)
        xs.append(aligned.reshape(len(x0), -1))
        vs.append(v_rot.reshape(len(x0), -1))
        dxs.append((x1 - aligned - v_rot * tau).reshape(len(x0), -1))
        dvs.append((v1 - v_rot).reshape(len(x0), -1))
        i, j = np.triu_indices(t.n_atoms, 1)
        feats.append(1.0 / np.linalg.norm(t.positions[:, i] - t.positions[:, j], axis=-1))
    cat = np.concatenate
    x, v, dx, dv, f = cat(xs), cat(vs), cat(dxs), cat(dvs), cat(feats)
    return dict(x_mean=x.mean(0), x_std=x.std(0) + 1e-6, v_std=np.sqrt((v ** 2).mean(0)) + 1e-6,
                feature_mean=f.mean(0), feature_std=f.std(0) + 1e-6, dx_std=np.sqrt((dx ** 2).mean(0)) + 1e-9,
                dv_std=np.sqrt((dv ** 2).mean(0)) + 1e-9)


def build_propagator(family, *, masses, reference, factor, dt_fs, strides=4, units=128, substeps=10,
                     metadata=None, learning_rate=1e-3) -> keras.Model:
    """A compiled model that unrolls a :class:`PropagatorStep` ``strides`` times (loss: MAE, nm)."""
    n = len(masses)
    step = PropagatorStep(family, masses, reference, factor, dt_fs, units, substeps,
                          metadata=dict(metadata or {}, model=family, task="propagate"), name="propagator_step")
    x_in, v_in = keras.Input((n, 3), name="positions"), keras.Input((n, 3), name="velocities")
    net = keras.Model({"positions": x_in, "velocities": v_in}, Unroll(step, strides, name="unroll")(x_in, v_in),
                      name=f"{family}_propagator")
    net.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=1.0), loss="mae")
    return net


def fit_propagator(train, *, model="hnn", factor=10, strides=4, substeps=10, validation=None, output=None,
                   epochs=100, batch_size=128, units=128, learning_rate=1e-3, patience=8, window_step=1,
                   max_minutes=None, seed=0, strategy="default", work_dir=None, force=False, top=None,
                   dt_fs=None, callbacks=(), verbose=1):
    """Train a propagator (``model`` = ``hnn``, ``ode`` or ``lstm``) on fine trajectories with velocities.

    Parameters are those of :func:`trajsr.train.fit`, plus ``strides`` (rollout length of each example)
    and ``substeps`` (integrator steps per stride). Returns the unrolled ``keras.Model`` and the history;
    the saved ``.keras`` file is loaded with :meth:`trajsr.Propagator.load`.
    """
    import tensorflow as tf
    factor = check_factor(factor)
    if model not in FAMILIES:
        raise TrajsrError(f"--task propagate takes --model {', '.join(FAMILIES)}, not {model!r}")
    if output is not None:
        output = check_writable(output, force)
    trajs, valid = split_data(train, validation, top, dt_fs)
    keras.utils.set_random_seed(seed)
    first = trajs[0]
    masses = first.masses
    reference, _ = remove_center_of_mass(first.positions[0], masses)
    metadata = dict(elements=first.elements, units={"positions": "nm", "velocities": "nm/ps", "energy": "kJ/mol"},
                    training=dict(files=[t.source for t in trajs], validation=[t.source for t in valid], seed=seed,
                                  strides=strides))
    with distribution_strategy(strategy).scope():
        net = build_propagator(model, masses=masses, reference=reference, factor=factor, dt_fs=first.dt * FS_PER_PS,
                               strides=strides, units=units, substeps=substeps, metadata=metadata,
                               learning_rate=learning_rate)
    step = net.get_layer("unroll").step
    step.set_normalization(propagator_stats(trajs, factor, reference, masses))

    def dataset(ts, shuffle, step_):
        parts = [rollout_examples(t, factor, strides, step_) for t in ts]
        x0, v0, y = (np.concatenate(p) for p in zip(*parts))
        ds = tf.data.Dataset.from_tensor_slices(({"positions": x0, "velocities": v0}, y))
        if shuffle:
            ds = ds.shuffle(min(len(y), 200_000), seed=seed)
        return ds.batch(batch_size, drop_remainder=strategy != "default").prefetch(tf.data.AUTOTUNE)
    train_ds = dataset(trajs, True, window_step)
    valid_ds = dataset(valid, False, max(window_step, factor)) if valid else None
    monitor = "val_loss" if valid_ds is not None else "loss"
    work = Path(work_dir) if work_dir else (Path(str(output) + ".work") if output else None)
    start = time.monotonic()
    history = net.fit(train_ds, validation_data=valid_ds, epochs=epochs, shuffle=False, verbose=verbose,
                      callbacks=standard_callbacks(monitor, patience, max_minutes, work) + list(callbacks))
    step.metadata["training"] = dict(step.metadata["training"], seconds=round(time.monotonic() - start, 1),
                                     epochs=len(history.history.get("loss", [])))
    if output is not None:
        save_model(net, output, force, work, history)
    return net, history
