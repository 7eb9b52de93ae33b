"""Train interpolators: ``fit`` is a thin layer over ``keras.Model.fit`` on ``tf.data``.

Validation is by whole trajectories, normalisation statistics come from the training windows only;
callbacks, resume and saving are the shared skeleton of :mod:`trajsr.training`.
"""
from __future__ import annotations

from ..backend import keras
from ..card import card_path, recorded_paths
from ..errors import TrajsrError
from ..io import check_writable
from ..modelfile import check_output
from ..trajectory import check_factor
from ..training import (architecture_argument, as_trajectories, check_compatible, check_disjoint,
                        distribution_strategy, fit_and_save, is_chief, split_data)
from ..units import FS_PER_PS
from .gap import build_model, gap_layer
from .names import model_names
from .windows import concatenate, normalization_stats, reference_geometry, to_dataset, training_windows


def fit(train, *, architecture: str | None = None, factor: int = 10, context: int = 4, with_velocities: bool = False,
        validation=None, test=None, output=None, epochs: int = 100, batch_size: int = 256, width: int = 128,
        learning_rate: float = 1e-3, patience: int = 8, window_step: int = 1, max_minutes: float | None = None,
        seed: int = 0, strategy: str = "default", solver: str = "rk4", work_dir=None, force: bool = False,
        top=None, dt_fs=None, callbacks=(), verbose: int = 1, model: str | None = None):
    """Train a super-resolution model on fine trajectories.

    Parameters
    ----------
    train : list of path or Trajectory
        Fine reference trajectories (same molecule, same spacing).
    architecture : str
        What to train, one of :func:`trajsr.interpolation.names.model_names` (``bilstm``, the default,
        ``lstm``, ``biode``, ...); ``model=`` is its earlier spelling, still accepted.
    factor, context : int
        Upsampling factor S and kept frames K on each side of a gap.
    with_velocities : bool
        Feed the kept frames' velocities too (baseline: Hermite).
    validation : list, optional
        Held-out trajectories; default: the last of ``train`` when there are several.
    test : list, optional
        Trajectories used for nothing but the card's evaluation (the validation set picks the epoch,
        so only a test set is truly unseen); default: the card evaluates on the validation set.
    output : path, optional
        Where to save the best model (``.keras``) and its card (``.json``: data, settings, MAE against
        the spline and Hermite per trajectory, median and worst ratio); checkpoints, the CSV log and the
        BackupAndRestore state go to ``work_dir`` (default: ``OUTPUT.work/``).
    width : int
        Width of the network (encoder, dynamics, decoder).
    window_step : int
        Take a window at every ``window_step``-th fine frame.
    max_minutes : float, optional
        Wall-clock budget, checked after every batch.
    strategy : {"default", "mirrored", "multiworker"}
        ``tf.distribute`` strategy the model is built under.
    callbacks : sequence of keras.callbacks.Callback
        Extra callbacks, run after trajsr's own.

    Returns
    -------
    keras.Model, keras.callbacks.History
    """
    architecture = architecture_argument(architecture, model, "bilstm")
    factor = check_factor(factor)
    if architecture not in model_names():
        raise TrajsrError(f"unknown architecture {architecture!r}; choose from {', '.join(model_names())}")
    output = check_output(output, force)
    if output is not None:
        check_writable(card_path(output), force)
    trajs, valid = split_data(train, validation, top, dt_fs)
    tests = as_trajectories(test or [], top, dt_fs)
    check_compatible(trajs + valid + tests)  # before training, not when the test files are evaluated
    hashes = check_disjoint(training=trajs, validation=valid, test=tests)  # by content: copies are caught
    strategy_ = distribution_strategy(strategy)  # before other TensorFlow work (collectives need it)
    keras.utils.set_random_seed(seed)
    first = trajs[0]
    reference = reference_geometry(first)
    opts = dict(factor=factor, context=context, reference=reference, with_velocities=with_velocities)
    train_windows = concatenate([training_windows(t, step=window_step, **opts) for t in trajs])
    stats = normalization_stats(train_windows)  # training data only
    metadata = dict(elements=first.elements, dt_fs=first.dt * FS_PER_PS, reference=reference.tolist(),
                    units={"positions": "nm", "time": "ps", "dt_fs": "fs"},
                    training=dict(files=recorded_paths(t.source for t in trajs),
                                  validation=recorded_paths(t.source for t in valid),
                                  positions_sha256=hashes["training"], seed=seed, windows=len(train_windows)))
    with strategy_.scope():
        net = build_model(architecture, n_atoms=first.n_atoms, factor=factor, context=context,
                          with_velocities=with_velocities, width=width, solver=solver, metadata=metadata,
                          learning_rate=learning_rate)
    layer = gap_layer(net)
    layer.set_normalization(stats)
    even = strategy != "default"
    train_ds = to_dataset(train_windows, batch_size, shuffle=True, seed=seed, drop_remainder=even)
    valid_ds = None
    if valid:
        valid_ds = to_dataset(concatenate([training_windows(t, step=max(window_step, factor // 2), **opts)
                                           for t in valid]), batch_size if even else 4 * batch_size, shuffle=False,
                              drop_remainder=even)
    settings = dict(task="interpolate", model=architecture, factor=factor, context=context, width=width,
                    with_velocities=with_velocities, solver=solver, batch_size=batch_size, learning_rate=learning_rate,
                    window_step=window_step, seed=seed, files=recorded_paths(t.source for t in trajs),
                    validation=recorded_paths(t.source for t in valid), test=recorded_paths(t.source for t in tests))
    history = fit_and_save(net, train_ds, valid_ds, metadata=layer.metadata, settings=settings, epochs=epochs,
                           patience=patience,
                           max_minutes=max_minutes, output=output, work_dir=work_dir, force=force,
                           callbacks=callbacks, verbose=verbose)
    if output is not None and valid and is_chief(strategy_):
        from ..training import save_model
        from .learned import LearnedInterpolator
        from .uncertainty import calibrate, store
        store(net, calibrate(LearnedInterpolator(net), valid, trajs))  # the uncertainty, fitted on validation
        save_model(net, output, force=True)
    if output is not None and (tests or valid) and is_chief(strategy_):
        from ..card import write_card
        from .card import evaluate
        from .learned import LearnedInterpolator
        held_out = tests or valid
        write_card(card_path(output), metadata=layer.metadata, settings=settings, force=force,
                   evaluation=evaluate(LearnedInterpolator(net), held_out, factor),
                   evaluated_on="test trajectories (never seen in training or model selection)" if tests else
                   "validation trajectories (they chose the best epoch; give test trajectories for unseen ones)")
    return net, history
