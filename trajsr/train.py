"""Train interpolators: ``fit`` is a thin layer over ``keras.Model.fit`` on ``tf.data``.

Validation is by whole trajectories, normalisation statistics come from the training windows only,
and the usual Keras callbacks do the rest: EarlyStopping, ReduceLROnPlateau, ModelCheckpoint (best
model), BackupAndRestore (a killed run resumes where it stopped), CSVLogger.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import keras

from .errors import TrajsrError
from .geometry import remove_center_of_mass
from .interpolate import MODELS, build_model, gap_layer
from .io import check_writable, load
from .trajectory import Trajectory, check_factor
from .units import FS_PER_PS
from .windows import concatenate, normalization_stats, to_dataset, training_windows


class TimeLimit(keras.callbacks.Callback):
    """Stop training after ``minutes`` of wall-clock (checked at the end of each epoch)."""

    def __init__(self, minutes: float):
        super().__init__()
        self.seconds, self.start = minutes * 60.0, None

    def on_train_begin(self, logs=None):
        self.start = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        if time.monotonic() - self.start > self.seconds:
            self.model.stop_training = True


def standard_callbacks(monitor: str, patience: int, max_minutes=None, work=None) -> list:
    """EarlyStopping and ReduceLROnPlateau on ``monitor``; with a ``work`` folder also ModelCheckpoint
    (best model), BackupAndRestore (resume after a kill) and a CSV log; TimeLimit for a budget."""
    callbacks = [keras.callbacks.EarlyStopping(monitor, patience=patience, restore_best_weights=True),
                 keras.callbacks.ReduceLROnPlateau(monitor, factor=0.5, patience=max(2, patience // 3),
                                                   min_lr=1e-5)]
    if max_minutes:
        callbacks.append(TimeLimit(max_minutes))
    if work is not None:
        work = Path(work)
        work.mkdir(parents=True, exist_ok=True)
        callbacks += [keras.callbacks.ModelCheckpoint(str(work / "best.keras"), monitor=monitor,
                                                      save_best_only=True),
                      keras.callbacks.BackupAndRestore(str(work / "backup")),
                      keras.callbacks.CSVLogger(str(work / "log.csv"), append=True)]
    return callbacks


def save_model(net, output, force, work=None, history=None) -> None:
    """Save atomically to ``output`` and the history as JSON beside the work files."""
    from .io import atomic_path
    with atomic_path(output, force) as tmp:
        net.save(tmp)
    if work is not None and history is not None:
        (Path(work) / "history.json").write_text(json.dumps(
            {k: [float(x) for x in v] for k, v in history.history.items()}, indent=1))


def distribution_strategy(name: str = "default"):
    """``tf.distribute`` strategy by name: ``default``, ``mirrored`` (all local devices) or ``multiworker``
    (reads ``TF_CONFIG``)."""
    import tensorflow as tf
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise TrajsrError(f"unknown strategy {name!r}; choose default, mirrored or multiworker")


def _as_trajectories(items, top=None, dt_fs=None) -> list[Trajectory]:
    return [t if isinstance(t, Trajectory) else load(t, top=top, dt_fs=dt_fs) for t in items]


def split_data(train, validation=None, top=None, dt_fs=None):
    """Load training and validation trajectories (whole trajectories; default validation: the last
    training file when there are several) and check they are the same molecule at the same spacing."""
    trajs = _as_trajectories(train, top, dt_fs)
    if validation is None and len(trajs) > 1:
        trajs, validation = trajs[:-1], trajs[-1:]
    valid = _as_trajectories(validation or [], top, dt_fs)
    _check_compatible(trajs + valid)
    return trajs, valid


def _check_compatible(trajs: list[Trajectory]) -> None:
    first = trajs[0]
    for t in trajs[1:]:
        if t.elements != first.elements:
            raise TrajsrError(f"{t.source}: atoms ({t.n_atoms}, {''.join(t.elements)}) differ from "
                              f"{first.source} ({first.n_atoms}, {''.join(first.elements)})")
        if abs(t.dt - first.dt) > 1e-6 * first.dt:
            raise TrajsrError(f"{t.source}: frame spacing {t.dt * FS_PER_PS:g} fs differs from "
                              f"{first.source} ({first.dt * FS_PER_PS:g} fs)")


def fit(train, *, model: str = "bilstm", factor: int = 10, context: int = 4, with_velocities: bool = False,
        validation=None, output=None, epochs: int = 100, batch_size: int = 256, units: int = 128,
        learning_rate: float = 1e-3, patience: int = 8, window_step: int = 1, max_minutes: float | None = None,
        seed: int = 0, strategy: str = "default", solver: str = "rk4", work_dir=None, force: bool = False,
        top=None, dt_fs=None, callbacks=(), verbose: int = 1):
    """Train a super-resolution model on fine trajectories.

    Parameters
    ----------
    train : list of path or Trajectory
        Fine reference trajectories (same molecule, same spacing).
    model : str
        One of ``bilstm, lstm, birnn, rnn, biode, ode, bihnn, hnn``.
    factor, context : int
        Upsampling factor S and kept frames K on each side of a gap.
    with_velocities : bool
        Feed the kept frames' velocities too (baseline: Hermite).
    validation : list, optional
        Held-out trajectories; default: the last of ``train`` when there are several.
    output : path, optional
        Where to save the best model (``.keras``); checkpoints, the CSV log and the BackupAndRestore
        state go to ``work_dir`` (default: ``OUTPUT.work/``).
    window_step : int
        Take a window at every ``window_step``-th fine frame.
    max_minutes : float, optional
        Wall-clock budget.
    strategy : {"default", "mirrored", "multiworker"}
        ``tf.distribute`` strategy the model is built under.
    callbacks : sequence of keras.callbacks.Callback
        Extra callbacks, run after trajsr's own.

    Returns
    -------
    keras.Model, keras.callbacks.History
    """
    factor = check_factor(factor)
    if model not in MODELS:
        raise TrajsrError(f"unknown model {model!r}; choose from {', '.join(MODELS)}")
    if output is not None:
        output = check_writable(output, force)
        if output.suffix != ".keras":
            raise TrajsrError(f"{output}: models are saved as .keras files")
    trajs, valid = split_data(train, validation, top, dt_fs)
    keras.utils.set_random_seed(seed)
    first = trajs[0]
    reference, _ = remove_center_of_mass(first.positions[0], first.masses)
    opts = dict(factor=factor, context=context, reference=reference, with_velocities=with_velocities)
    train_windows = concatenate([training_windows(t, step=window_step, **opts) for t in trajs])
    stats = normalization_stats(train_windows)  # training data only
    metadata = dict(elements=first.elements, dt_fs=first.dt * FS_PER_PS, reference=reference.tolist(),
                    units={"positions": "nm", "time": "ps", "dt_fs": "fs"},
                    training=dict(files=[t.source for t in trajs], validation=[t.source for t in valid],
                                  seed=seed, windows=len(train_windows)))
    with distribution_strategy(strategy).scope():
        net = build_model(model, n_atoms=first.n_atoms, factor=factor, context=context,
                          with_velocities=with_velocities, units=units, solver=solver, metadata=metadata,
                          learning_rate=learning_rate)
    gap_layer(net).set_normalization(stats)
    even = strategy != "default"
    train_ds = to_dataset(train_windows, batch_size, shuffle=True, seed=seed, drop_remainder=even)
    valid_ds = None
    if valid:
        valid_ds = to_dataset(concatenate([training_windows(t, step=max(window_step, factor // 2), **opts)
                                           for t in valid]), batch_size if even else 4 * batch_size, shuffle=False,
                              drop_remainder=even)
    monitor = "val_loss" if valid_ds is not None else "loss"
    work = Path(work_dir) if work_dir else (Path(str(output) + ".work") if output else None)
    extra, callbacks = list(callbacks), standard_callbacks(monitor, patience, max_minutes, work)
    callbacks += extra
    start = time.monotonic()
    history = net.fit(train_ds, validation_data=valid_ds, epochs=epochs, callbacks=callbacks, verbose=verbose,
                      shuffle=False)  # tf.data shuffles
    meta = gap_layer(net).metadata
    meta["training"] = dict(meta["training"], seconds=round(time.monotonic() - start, 1),
                            epochs=len(history.history.get("loss", [])))
    if output is not None:
        save_model(net, output, force, work, history)
    return net, history


