"""What both trainings share: data loading and checks, Keras callbacks, the time limit, the
distribution strategy, the fit skeleton and atomic saving.

The usual Keras callbacks do the work: EarlyStopping, ReduceLROnPlateau, ModelCheckpoint (best
model), BackupAndRestore (a killed run resumes where it stopped), CSVLogger.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from .backend import keras

from .cluster import check_cluster
from .errors import TrajsrError
from .io import atomic_path, load
from .trajectory import Trajectory
from .units import FS_PER_PS


class TimeLimit(keras.callbacks.Callback):
    """Stop training after ``minutes`` of wall-clock, checked after every batch."""

    def __init__(self, minutes: float):
        super().__init__()
        self.seconds, self.start, self.stopped = minutes * 60.0, None, False

    def on_train_begin(self, logs=None):
        self.start = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        if time.monotonic() - self.start > self.seconds:
            self.model.stop_training = self.stopped = True


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


def architecture_argument(architecture: str | None, model: str | None, default: str) -> str:
    """The architecture a training call asked for: ``architecture``, or ``model``, its earlier spelling
    (elsewhere a model is a ``.keras`` file); one of them, not both."""
    from .spelling import renamed
    return renamed("architecture", architecture, "model", model, default)


def distribution_strategy(name: str = "default"):
    """``tf.distribute`` strategy by name: ``default``, ``mirrored`` (all local devices) or ``multiworker``:
    ``MultiWorkerMirroredStrategy`` over the cluster in ``TF_CONFIG``, or, run under ``srun``, the one
    TensorFlow's ``SlurmClusterResolver`` reads from SLURM. Create it before other TensorFlow work."""
    import tensorflow as tf
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        # a process belongs to one cluster, and its collectives can be configured only once, at start-up
        if "multiworker" not in _STRATEGIES:
            check_cluster()
            resolver = None
            if not os.environ.get("TF_CONFIG"):
                resolver = tf.distribute.cluster_resolver.SlurmClusterResolver()
            _STRATEGIES["multiworker"] = _per_element_reduce(
                tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver))
        return _STRATEGIES["multiworker"]
    raise TrajsrError(f"unknown strategy {name!r}; choose default, mirrored or multiworker")


_STRATEGIES = {}


def _per_element_reduce(strategy):
    """Work around two Keras 3 gaps with MultiWorkerMirroredStrategy's collective all-reduce: Keras
    reduces a whole first batch (a dict of inputs and the targets) at once to build the model, and
    reduces scalar losses along axis 0. Reducing element by element, scalars without an axis, gives what
    Keras means in both cases."""
    reduce = strategy.reduce

    def each(op, value, axis=None):
        if isinstance(value, dict):
            return {k: each(op, v, axis) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(each(op, v, axis) for v in value)
        shape = getattr(value, "shape", None)
        if axis is not None and shape is not None and len(shape) == 0:
            axis = None
        return reduce(op, value, axis)
    strategy.reduce = each
    return strategy


def is_chief(strategy) -> bool:
    """Whether this process writes the outputs: the chief, or worker 0 of a cluster without one."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or resolver.task_type in (None, "chief"):
        return True
    jobs = resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in jobs


def split_data(train, validation=None, top=None, dt_fs=None):
    """Load training and validation trajectories (whole trajectories; default validation: the last
    training file when there are several) and check they are the same molecule at the same spacing."""
    trajs = as_trajectories(train, top, dt_fs)
    if not trajs:
        raise TrajsrError("no training trajectories given")
    if validation is None and len(trajs) > 1:
        trajs, validation = trajs[:-1], trajs[-1:]
    valid = as_trajectories(validation or [], top, dt_fs)
    check_compatible(trajs + valid)
    check_disjoint(training=trajs, validation=valid)
    return trajs, valid


def content_hashes(trajs) -> list[str]:
    """sha256 of each trajectory's positions (float32, nm): the same data under another name, a symlink or
    a copy has the same hash."""
    import hashlib

    import numpy as np
    return [hashlib.sha256(np.ascontiguousarray(t.positions, np.float32).tobytes()).hexdigest() for t in trajs]


def check_disjoint(**groups) -> dict:
    """One-line error when a trajectory of one group (``training=[...]``, ``validation=[...]``, ``test=[...]``)
    holds the same positions as one of another group, or a group lists the same data twice. Returns each
    group's :func:`content_hashes`."""
    seen, hashes = {}, {group: content_hashes(trajs) for group, trajs in groups.items()}
    for group, trajs in groups.items():
        for traj, digest in zip(trajs, hashes[group]):
            if digest in seen:
                other_group, other = seen[digest]
                raise TrajsrError(f"{traj.source}: the same trajectory (same positions) as {other_group} file "
                                  f"{other.source}; {group} trajectories must be others than "
                                  f"{'each other' if other_group == group else other_group + ' ones'}")
            seen[digest] = (group, traj)
    return hashes


def as_trajectories(items, top=None, dt_fs=None) -> list[Trajectory]:
    """Trajectories as given, or loaded from their paths."""
    return [t if isinstance(t, Trajectory) else load(t, top=top, dt_fs=dt_fs) for t in items]


def check_compatible(trajs: list[Trajectory]) -> None:
    """One-line errors where a trajectory is not the first one's molecule (its elements, and its atoms in
    the same order: :func:`trajsr.atom_order.check_atoms` against the first's first frame) at its spacing."""
    from .atom_order import check_atoms
    first = trajs[0]
    for t in trajs[1:]:
        if t.elements != first.elements:
            raise TrajsrError(f"{t.source}: atoms ({t.n_atoms}, {''.join(t.elements)}) differ from "
                              f"{first.source} ({first.n_atoms}, {''.join(first.elements)})")
        check_atoms(t, first.elements, first.positions[0], first.source, f"{first.source} (its first frame)")
        if abs(t.dt - first.dt) > 1e-6 * first.dt:
            raise TrajsrError(f"{t.source}: frame spacing {t.dt * FS_PER_PS:g} fs differs from "
                              f"{first.source} ({first.dt * FS_PER_PS:g} fs)")


def fit_and_save(net, train_ds, valid_ds, *, metadata: dict, settings: dict, epochs: int, patience: int,
                 max_minutes=None, output=None, work_dir=None, force: bool = False, callbacks=(), verbose: int = 1):
    """The skeleton both trainings share: ``net.fit`` with the standard callbacks, resuming a killed run
    with the same ``settings`` from its work folder (and refusing one with other settings), the best
    weights over all epochs (before and after a kill), the training record in ``metadata["training"]``
    (seconds, epochs), and an atomic save to ``output``. The default work folder ``OUTPUT.work`` is
    removed after a successful save.

    Returns a ``keras.callbacks.History`` of every epoch, those before a kill included.
    """
    _check_positive(epochs=epochs, patience=patience)
    if max_minutes is not None and not max_minutes > 0:
        raise TrajsrError(f"max_minutes must be positive, got {max_minutes}")
    monitor = "val_loss" if valid_ds is not None else "loss"
    work = work_folder(output, work_dir)
    chief = is_chief(net.distribute_strategy)
    if not chief:  # other workers save too (saving reads distributed variables), but into a scratch folder
        scratch = Path(tempfile.mkdtemp(prefix="trajsr-worker-"))
        work, work_dir = scratch / "work", None
        output = scratch / Path(output).name if output is not None else None
    history_before = _claim_work_folder(work, settings) if work is not None else {}
    callbacks_ = standard_callbacks(monitor, patience, max_minutes, work)
    best_so_far = min(history_before.get(monitor, []), default=None)
    for cb in callbacks_:  # a resumed run must beat the best epoch before the kill, not only its own
        if isinstance(cb, keras.callbacks.ModelCheckpoint) and best_so_far is not None:
            cb.best = best_so_far
    start = time.monotonic()
    history = net.fit(train_ds, validation_data=valid_ds, epochs=epochs, shuffle=False, verbose=verbose,
                      callbacks=callbacks_ + list(callbacks))
    if work is not None:
        history.history = _read_log(work / "log.csv") or history.history
        best = work / "best.keras"
        if best.exists():
            net.set_weights(keras.saving.load_model(best, safe_mode=True, compile=False).get_weights())
    stopped = any(isinstance(cb, TimeLimit) and cb.stopped for cb in callbacks_)
    metadata["training"] = dict(metadata.get("training", {}), seconds=round(time.monotonic() - start, 1),
                                epochs=len(history.history.get("loss", [])), stopped_by_time_limit=stopped)
    history.stopped_by_time_limit = stopped  # the CLI says so: the model may be under-trained
    if output is not None:
        save_model(net, output, force, work, history)
        if work_dir is None and work is not None:
            shutil.rmtree(work, ignore_errors=True)
    if not chief:
        shutil.rmtree(scratch, ignore_errors=True)
    return history


def _check_positive(**values):
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise TrajsrError(f"{name} must be a positive integer, got {value!r}")


def work_folder(output=None, work_dir=None) -> Path | None:
    """Where a training keeps its checkpoints: ``work_dir``, else ``OUTPUT.work``."""
    return Path(work_dir) if work_dir else (Path(str(output) + ".work") if output else None)


def check_work_folder(work: Path | None, settings: dict) -> None:
    """Refuse, before any work, a folder where a killed run with other ``settings`` left state."""
    if work is None:
        return
    recorded = work / "settings.json"
    settings = json.loads(json.dumps(settings, default=str))
    if work.exists() and any(work.iterdir()):
        before = json.loads(recorded.read_text()) if recorded.exists() else None
        if before != settings:
            changed = sorted(k for k in set(settings) | set(before or {})
                             if (before or {}).get(k) != settings.get(k)) if before else ["(unknown)"]
            raise TrajsrError(f"{work}: holds a killed run with other settings ({', '.join(changed)}); it would "
                              "resume only with the same ones: delete the folder or choose another output")


def _claim_work_folder(work: Path, settings: dict) -> dict:
    """Record ``settings`` in ``work`` (after :func:`check_work_folder`); return the history of a killed
    run with the same settings so far (empty for a fresh folder)."""
    check_work_folder(work, settings)
    recorded = work / "settings.json"
    settings = json.loads(json.dumps(settings, default=str))
    leftover = work.exists() and any(work.iterdir())
    work.mkdir(parents=True, exist_ok=True)
    recorded.write_text(json.dumps(settings, indent=1, sort_keys=True))
    return _read_log(work / "log.csv") if leftover else {}


def _read_log(path: Path) -> dict:
    """Columns of a CSVLogger file as lists of floats (every epoch, across resumes)."""
    if not path.exists():
        return {}
    with open(path) as f:
        rows = list(csv.DictReader(f))
    def number(text):
        try:
            return float(text)
        except (TypeError, ValueError):  # CSVLogger writes NA for a value an epoch lacked
            return float("nan")
    return {key: [number(r[key]) for r in rows] for key in (rows[0] if rows else {}) if key != "epoch"}


def save_model(net, output, force, work=None, history=None) -> None:
    """Save atomically to ``output`` without optimizer state (an uncompiled model over the same layers:
    the file is for inference; compile it again to train on), and the history as JSON beside the work
    files."""
    uncompiled = keras.Model(net.input, net.output, name=net.name)  # the inputs keep their dict and names
    with atomic_path(output, force) as tmp:
        uncompiled.save(tmp)
    if work is not None and history is not None:
        (Path(work) / "history.json").write_text(json.dumps(
            {k: [float(x) for x in v] for k, v in history.history.items()}, indent=1))
