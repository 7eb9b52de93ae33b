"""Train learned propagators: (x, v) at t -> (x, v) at t + S·dt, on multi-stride rollouts.

Each example starts from a fine frame and unrolls ``strides`` strides, so the loss sees how errors
compound; for NVE data the time-reversed sequence (v -> −v, order reversed) is an equally valid
example and doubles the data for free. Callbacks, resume and saving: :mod:`trajsr.training`.
"""
from __future__ import annotations

from ..backend import keras
import numpy as np

from ..card import card_path, command_line, recorded_paths, write_card
from ..errors import TrajsrError
from ..geometry import align, remove_center_of_mass
from ..io import check_writable
from ..physics import internal_velocities
from ..modelfile import check_output
from ..trajectory import check_factor
from ..training import (architecture_argument, check_work_folder, distribution_strategy, fit_and_save,
                        is_chief, split_data, work_folder)
from ..units import ANGSTROM_PER_NM, FS_PER_PS
from .model import build_propagator, propagator_families, propagator_step


def rollout_examples(traj, factor: int, strides: int, step: int = 1, reverse: bool = True):
    """Start states (x0, v0) (W, N, 3) and targets (W, strides, 6N): positions and velocities × stride."""
    if traj.velocities is None:
        raise TrajsrError(f"{traj.source}: propagators learn from velocities; this file stores none")
    span = strides * factor
    if traj.n_frames <= span:
        raise TrajsrError(f"{traj.source}: {traj.n_frames} frames is too short for {strides} strides of {factor}")
    stride_ps = traj.dt * factor
    starts = np.arange(0, traj.n_frames - span, step)
    idx = starts[:, None] + factor * np.arange(strides + 1)
    x, v = traj.positions[idx], traj.velocities[idx]
    if reverse:  # time reversal: run the sequence backwards with velocities flipped
        x = np.concatenate([x, x[:, ::-1]])
        v = np.concatenate([v, -v[:, ::-1]])
    w, n = len(x), traj.n_atoms
    targets = np.concatenate([x[:, 1:].reshape(w, strides, 3 * n), v[:, 1:].reshape(w, strides, 3 * n) * stride_ps], -1)
    return x[:, 0].astype(np.float32), v[:, 0].astype(np.float32), targets.astype(np.float32)


def _forces_only(trajs, architecture) -> bool:
    """True when the files store forces and no velocities: a Hamiltonian family then learns its potential
    from the forces alone (no rollout fit). One-line errors for what cannot be learned from."""
    missing = [t for t in trajs if t.velocities is None]
    if not missing:
        return False
    from ..dynamics.registry import FAMILIES
    first = missing[0].source
    if not FAMILIES[architecture].step.has_potential:
        raise TrajsrError(f"{first}: no velocities; the {architecture!r} family learns from them (a Hamiltonian "
                          f"family, --architecture hnn, can learn its potential from stored forces alone)")
    bare = [t.source for t in trajs if t.forces is None]
    if bare:
        raise TrajsrError(f"{bare[0]}: neither velocities nor forces; a propagator learns from one of them "
                          "(for positions only, trajsr adapt fits a propagator of the same molecule to the paths "
                          "between its frames)")
    with_velocities = [t.source for t in trajs if t.velocities is not None]
    if with_velocities:
        raise TrajsrError(f"{first} stores no velocities, {with_velocities[0]} does: train on files of one kind")
    return True


def propagator_stats(trajs, factor, reference, masses) -> dict:
    """Normalisation from training trajectories only: aligned positions, velocities, stride changes,
    inverse-distance features."""
    xs, vs, dxs, dvs, feats = [], [], [], [], []
    for t in trajs:
        stride_ps = t.dt * factor
        # a file without velocities trains only a potential, which reads only the feature statistics
        velocities = t.velocities if t.velocities is not None else np.gradient(t.positions, t.dt, axis=0)
        x0, v0 = t.positions[:-factor], velocities[:-factor]
        aligned, com, rot = align(x0, reference, masses)
        v_rot = np.einsum("fai,fij->faj", internal_velocities(v0, masses)[0], rot)
        x1 = np.einsum("fai,fij->faj", t.positions[factor:] - com, rot)
        v1 = np.einsum("fai,fij->faj", velocities[factor:], rot)
        xs.append(aligned.reshape(len(x0), -1))
        vs.append(v_rot.reshape(len(x0), -1))
        dxs.append((x1 - aligned - v_rot * stride_ps).reshape(len(x0), -1))
        dvs.append((v1 - v_rot).reshape(len(x0), -1))
        i, j = np.triu_indices(t.n_atoms, 1)
        feats.append(1.0 / np.linalg.norm(t.positions[:, i] - t.positions[:, j], axis=-1))
    cat = np.concatenate
    x, v, dx, dv, f = cat(xs), cat(vs), cat(dxs), cat(dvs), cat(feats)
    return dict(x_mean=x.mean(0), x_std=x.std(0) + 1e-6, v_std=np.sqrt((v ** 2).mean(0)) + 1e-6,
                feature_mean=f.mean(0), feature_std=f.std(0) + 1e-6, dx_std=np.sqrt((dx ** 2).mean(0)) + 1e-9,
                dv_std=np.sqrt((dv ** 2).mean(0)) + 1e-9)


def fit_propagator(train, *, architecture=None, factor=10, strides=4, substeps=10, validation=None, output=None,
                   epochs=100, batch_size=128, width=128, learning_rate=1e-3, patience=8, window_step=1,
                   max_minutes=None, seed=0, strategy="default", work_dir=None, force=False, top=None,
                   dt_fs=None, force_matching_minutes=None, initial=None, callbacks=(), verbose=1, model=None):
    """Train a propagator (``architecture``: a registered family, ``hnn`` by default, ``ode``, ``lstm``, ...;
    ``model=`` is its earlier spelling) on fine trajectories with velocities; a Hamiltonian family also on
    files that store forces but no velocities (any spacing: its potential is fitted to the forces alone, with
    this call's epochs, batch size, learning rate, patience and ``max_minutes``, and there is no rollout fit).
    Writes the model to ``output`` and its card (:mod:`trajsr.card`) beside it.

    Parameters are those of :func:`trajsr.interpolation.train.fit`, plus ``strides`` (rollout length of each example)
    and ``substeps`` (integrator steps per stride). ``force_matching_minutes``: first fit a Hamiltonian
    family's potential to the forces the velocity-Verlet training frames hold
    (:func:`trajsr.propagation.forces.fit_forces`) for at most this long. ``initial``: a propagator
    ``.keras`` of the same family and width to start from (its weights and normalisation; e.g. a
    force-matched potential fine-tuned to another stride). Every training batch holds ``batch_size`` examples
    (each shuffled epoch leaves out its last, smaller one, different examples each time), so the unrolled
    rollout is traced once. Returns the unrolled ``keras.Model`` and the history; the saved ``.keras`` file is
    loaded with :meth:`trajsr.Propagator.load`.
    """
    import tensorflow as tf
    architecture = architecture_argument(architecture, model, "hnn")
    factor = check_factor(factor)
    if architecture not in propagator_families():
        raise TrajsrError(f"--task propagate takes --architecture {', '.join(propagator_families())}, "
                          f"not {architecture!r}")
    output = check_output(output, force)
    if output is not None:
        check_writable(card_path(output), force)
    if initial is not None:
        from ..modelfile import load_model
        initial_step = propagator_step(load_model(initial, expect="propagate"))
        if (initial_step.family, initial_step.width) != (architecture, width):
            raise TrajsrError(f"{initial}: a {initial_step.family} propagator of width {initial_step.width}; "
                              f"this training is {architecture}, width {width}")
    trajs, valid = split_data(train, validation, top, dt_fs)
    forces_only = _forces_only(trajs + valid, architecture)
    if forces_only and not force_matching_minutes:
        force_matching_minutes = max_minutes  # the forces are all there is to fit; None: until it stops improving
    strategy_ = distribution_strategy(strategy)  # before other TensorFlow work (collectives need it)
    keras.utils.set_random_seed(seed)
    first = trajs[0]
    masses = first.masses
    reference, _ = remove_center_of_mass(first.positions[0], masses)
    metadata = dict(elements=first.elements, units={"positions": "nm", "velocities": "nm/ps", "energy": "kJ/mol"},
                    training=dict(files=recorded_paths(t.source for t in trajs),
                                  validation=recorded_paths(t.source for t in valid), seed=seed,
                                  strides=strides, command=command_line()))
    with strategy_.scope():
        net = build_propagator(architecture, masses=masses, reference=reference, factor=factor,
                               dt_fs=first.dt * FS_PER_PS, strides=strides, width=width, substeps=substeps,
                               metadata=metadata, learning_rate=learning_rate)
    step = propagator_step(net)
    if initial is None:
        step.set_normalization(propagator_stats(trajs, factor, reference, masses))
    elif initial_step.masses_list != step.masses_list:
        raise TrajsrError(f"{initial}: made for {initial_step.n_atoms} atoms of other masses than {trajs[0].source}")
    else:  # its potential is defined on its own normalised features: keep them with the weights
        step.set_weights(initial_step.get_weights())
    settings = dict(task="propagate", model=architecture, factor=factor, strides=strides, substeps=substeps,
                    width=width, batch_size=batch_size, learning_rate=learning_rate, window_step=window_step, seed=seed,
                    force_matching_minutes=force_matching_minutes, initial=str(initial) if initial else None,
                    files=recorded_paths(t.source for t in trajs), validation=recorded_paths(t.source for t in valid))
    check_work_folder(work_folder(output, work_dir), settings)  # before the minutes of force matching
    if force_matching_minutes or forces_only:
        from .forces import fit_forces
        with strategy_.scope():
            # forces alone: this is the whole training, and the files' options are its options; every
            # stored frame counts (strided frames are far apart already)
            alone = dict(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, patience=patience,
                         every=1) if forces_only else {}
            forces = fit_forces(step, trajs, valid, max_minutes=force_matching_minutes, seed=seed,
                                verbose=verbose, **alone)
        step.metadata["training"]["force_matching"] = dict(epochs=len(forces.history["loss"]),
                                                      minutes=force_matching_minutes and float(force_matching_minutes),
                                                      best_loss=float(min(forces.history.get(
                                                          "val_loss", forces.history["loss"]))))

    if forces_only:  # no rollout to fit: the potential is the model
        from ..training import save_model
        step.metadata["training"]["rollout"] = "none: the training files store forces but no velocities"
        if output is not None:
            save_model(net, output, force)
            _write_card(output, step, settings, forces, force, "force error (MAE over the forces' RMS)", 1.0)
        forces.fitted_to = "forces"
        return net, forces

    def dataset(ts, shuffle, step_):
        parts = [rollout_examples(t, factor, strides, step_) for t in ts]
        x0, v0, y = (np.concatenate(p) for p in zip(*parts))
        ds = tf.data.Dataset.from_tensor_slices(({"positions": x0, "velocities": v0}, y))
        if shuffle:
            ds = ds.shuffle(min(len(y), 200_000), seed=seed)
        options = tf.data.Options()  # multi-worker: each worker takes its share of the examples
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        # training batches of one shape: the unrolled rollout's graph is traced once, not again for a last,
        # smaller batch (~7 s each on 2 cores); the shuffle drops different examples each epoch
        whole = strategy != "default" or (shuffle and len(y) > batch_size)
        return ds.batch(batch_size, drop_remainder=whole).prefetch(tf.data.AUTOTUNE).with_options(options)
    train_ds = dataset(trajs, True, window_step)
    valid_ds = dataset(valid, False, max(window_step, factor)) if valid else None
    history = fit_and_save(net, train_ds, valid_ds, metadata=step.metadata, settings=settings, epochs=epochs,
                           patience=patience,
                           max_minutes=max_minutes, output=output, work_dir=work_dir, force=force,
                           callbacks=callbacks, verbose=verbose)
    if output is not None and is_chief(strategy_):
        _write_card(output, step, settings, history, force, f"rollout MAE over {strides} strides (Å)",
                    ANGSTROM_PER_NM)
    return net, history


def _write_card(output, step, settings, history, force, what: str, scale: float):
    """The propagator's card: settings, training record and its best epoch's figure (``what``, the loss times
    ``scale``) on the validation files, else the training ones; bench/shooting.py adds shooting figures on
    test files."""
    on = "validation" if any(v == v for v in history.history.get("val_loss", [])) else "training"
    losses = [v for v in history.history.get("val_loss" if on == "validation" else "loss", []) if v == v]
    write_card(card_path(output), metadata=step.metadata, settings=settings, force=force,
               evaluation=dict(best=min(losses) * scale if losses else None, figure=what),
               evaluated_on=f"{on} trajectories" + (" (they chose the best epoch)" if on == "validation" else ""))
