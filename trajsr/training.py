"""What both trainings share: data loading and checks, Keras callbacks, the time limit, the
distribution strategy, the fit skeleton and atomic saving.

The usual Keras callbacks do the work: EarlyStopping, ReduceLROnPlateau, ModelCheckpoint (best
model), BackupAndRestore (a killed run resumes where it stopped), CSVLogger.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import keras

from .errors import TrajsrError
from .io import atomic_path, check_writable, load
from .trajectory import Trajectory
from .units import FS_PER_PS


class TimeLimit(keras.callbacks.Callback):
    """Stop training after ``minutes`` of wall-clock, checked after every batch."""

    def __init__(self, minutes: float):
        super().__init__()
        self.seconds, self.start = minutes * 60.0, None

    def on_train_begin(self, logs=None):
        self.start = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
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


def check_output(output, force: bool):
    """The output path of a model (``.keras``), refused before any work if it exists or cannot be written."""
    if output is None:
        return None
    output = check_writable(output, force)
    if output.suffix != ".keras":
        raise TrajsrError(f"{output}: models are saved as .keras files")
    return output


def split_data(train, validation=None, top=None, dt_fs=None):
    """Load training and validation trajectories (whole trajectories; default validation: the last
    training file when there are several) and check they are the same molecule at the same spacing."""
    trajs = _as_trajectories(train, top, dt_fs)
    if not trajs:
        raise TrajsrError("no training trajectories given")
    if validation is None and len(trajs) > 1:
        trajs, validation = trajs[:-1], trajs[-1:]
    valid = _as_trajectories(validation or [], top, dt_fs)
    _check_compatible(trajs + valid)
    return trajs, valid


def _as_trajectories(items, top=None, dt_fs=None) -> list[Trajectory]:
    return [t if isinstance(t, Trajectory) else load(t, top=top, dt_fs=dt_fs) for t in items]


def _check_compatible(trajs: list[Trajectory]) -> None:
    first = trajs[0]
    for t in trajs[1:]:
        if t.elements != first.elements:
            raise TrajsrError(f"{t.source}: atoms ({t.n_atoms}, {''.join(t.elements)}) differ from "
                              f"{first.source} ({first.n_atoms}, {''.join(first.elements)})")
        if abs(t.dt - first.dt) > 1e-6 * first.dt:
            raise TrajsrError(f"{t.source}: frame spacing {t.dt * FS_PER_PS:g} fs differs from "
                              f"{first.source} ({first.dt * FS_PER_PS:g} fs)")


def fit_and_save(net, train_ds, valid_ds, *, metadata: dict, epochs: int, patience: int, max_minutes=None,
                 output=None, work_dir=None, force: bool = False, callbacks=(), verbose: int = 1):
    """The skeleton both trainings share: ``net.fit`` with the standard callbacks, the training record
    in ``metadata["training"]`` (seconds, epochs), and an atomic save of the best model to ``output``.

    Returns the ``keras.callbacks.History``.
    """
    monitor = "val_loss" if valid_ds is not None else "loss"
    work = Path(work_dir) if work_dir else (Path(str(output) + ".work") if output else None)
    start = time.monotonic()
    history = net.fit(train_ds, validation_data=valid_ds, epochs=epochs, shuffle=False, verbose=verbose,
                      callbacks=standard_callbacks(monitor, patience, max_minutes, work) + list(callbacks))
    metadata["training"] = dict(metadata.get("training", {}), seconds=round(time.monotonic() - start, 1),
                                epochs=len(history.history.get("loss", [])))
    if output is not None:
        save_model(net, output, force, work, history)
    return history


def save_model(net, output, force, work=None, history=None) -> None:
    """Save atomically to ``output`` and the history as JSON beside the work files."""
    with atomic_path(output, force) as tmp:
        net.save(tmp)
    if work is not None and history is not None:
        (Path(work) / "history.json").write_text(json.dumps(
            {k: [float(x) for x in v] for k, v in history.history.items()}, indent=1))
