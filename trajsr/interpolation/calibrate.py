"""``trajsr calibrate``: load trained models (one, or several combined into an ensemble), check the
validation and training files against them, fit the uncertainty (:mod:`.uncertainty`, the maths) and save
the calibrated model. The workflow around the fit, kept apart from it so that the maths module imports no
model code. A propagator file is calibrated for shooting (:mod:`.shooting_uncertainty`), per factor."""
from __future__ import annotations

import numpy as np

from ..errors import TrajsrError
from ..units import ANGSTROM_PER_NM, FS_PER_PS
from .uncertainty import calibrate, store, window_parts


def _check_unseen(path, metadata, validation, hashes) -> None:
    """Validation trajectories (their :func:`~trajsr.training.content_hashes`) must not be the model's
    training data (by content, when the model's ``metadata`` recorded it)."""
    training = metadata.get("training", {})
    recorded = set(training.get("positions_sha256", []) if hasattr(training, "get") else [])
    for traj, digest in zip(validation, hashes):
        if digest in recorded:
            raise TrajsrError(f"{traj.source}: {path} was trained on this trajectory (same positions); calibrate "
                              "on trajectories it never saw")


def calibrate_model(models, validation, output, *, training=(), force: bool = False, top=None, dt_fs=None,
                    batch_size: int = 2048):
    """Calibrate a trained model, or combine several into an ensemble and calibrate that, and save it.

    Parameters
    ----------
    models : list of path
        One trained super-resolution model, or several of the same molecule and factor (an ensemble,
        each member weighted by the inverse of its mean squared error on ``validation``).
    validation : list of path or Trajectory
        Fine trajectories never used for training (nor for testing afterwards).
    training : list of path or Trajectory, optional
        Some of the training trajectories: what counts as out of distribution (default: validation).
    output : path
        The calibrated ``.keras`` file (no optimizer state).

    Returns
    -------
    Calibration, LearnedInterpolator
    """
    from ..modelfile import check_output
    from ..training import as_trajectories, check_disjoint, save_model
    from .ensemble import EnsembleGapInterpolator
    from .gap import gap_layer
    from .learned import LearnedInterpolator
    output = check_output(output, force)
    if not validation:
        raise TrajsrError("calibration needs validation trajectories (--validation), never the test set")
    trajectories = as_trajectories(validation, top, dt_fs)
    training = as_trajectories(training, top, dt_fs)
    interps = [LearnedInterpolator(m, batch_size) for m in models]
    for path, member in zip(models, interps):
        if len(interps) > 1 and isinstance(gap_layer(member.model), EnsembleGapInterpolator):
            raise TrajsrError(f"{path}: already an ensemble; combine the single models it was made of")
        for traj in trajectories + training:  # atoms, elements and spacing fit every model
            member.check(traj.stride(member.factor), member.factor)
    hashes = check_disjoint(validation=trajectories, training=training)["validation"]
    for path, member in zip(models, interps):
        _check_unseen(path, member.meta, trajectories, hashes)
    if len(interps) > 1:
        from .ensemble import combine, inverse_mse_weights
        mse = [np.mean(window_parts(i, trajectories)[1] ** 2) for i in interps]  # weights from validation
        interp = LearnedInterpolator(combine([i.model for i in interps], inverse_mse_weights(mse),
                                             name=f"ensemble-{len(interps)}", labels=list(map(str, models))),
                                     batch_size)
        interp.meta["member_validation_rmse_angstrom"] = [float(np.sqrt(m) * ANGSTROM_PER_NM) for m in mse]
    else:
        interp = interps[0]
    calibration = calibrate(interp, trajectories, training)
    store(interp.model, calibration)
    save_model(interp.model, output, force)
    return calibration, interp


def calibrate_propagator(model, validation, output, *, factors=None, training=(), force: bool = False, top=None,
                         dt_fs=None):
    """Calibrate shooting with a Hamiltonian propagator (``trajsr upsample --model PROPAGATOR --uncertainty``)
    on fine validation trajectories, for each of ``factors`` (default: the propagator's stride over the files'
    spacing), from positions only and, when the files store velocities, with them; save the propagator with
    the calibrations in its metadata.

    Returns
    -------
    dict
        :func:`.shooting_uncertainty.calibration_key` -> :class:`.uncertainty.Calibration` (all stored).
    """
    from ..dynamics.unroll import propagator_step
    from ..modelfile import check_output, load_model
    from ..training import as_trajectories, check_disjoint, save_model
    from .shooting import ShootingInterpolator
    from .shooting_uncertainty import calibrate_shooting, stored_calibrations
    output = check_output(output, force)
    if not validation:
        raise TrajsrError("calibration needs validation trajectories (--validation), never the test set")
    net = load_model(model, expect="propagate")
    interp = ShootingInterpolator(propagator_step(net))
    trajectories, training = as_trajectories(validation, top, dt_fs), as_trajectories(training, top, dt_fs)
    spacing_fs = trajectories[0].dt * FS_PER_PS  # a file without time: its own one-line error (give --dt)
    stride_fs = interp.step.stride_ps * FS_PER_PS
    if spacing_fs > stride_fs / 2:  # a coarse file: its dropped frames are not there to judge errors by
        raise TrajsrError(f"{trajectories[0].source}: frames {spacing_fs:g} fs apart; calibration needs fine "
                          f"trajectories (every MD step, at least twice as fine as the propagator's {stride_fs:g} fs "
                          "stride), of which it drops frames itself")
    if factors is None:
        factors = [round(stride_fs / spacing_fs)]
    for traj in trajectories + training:
        for factor in factors:
            if traj.n_frames < 4 * factor + 1:
                raise TrajsrError(f"{traj.source}: {traj.n_frames} frames; calibrating factor {factor} needs "
                                  f"at least {4 * factor + 1} (fine frames, every MD step)")
            interp.check(traj.stride(factor), factor)
    hashes = check_disjoint(validation=trajectories, training=training)["validation"]
    _check_unseen(model, interp.step.metadata, trajectories, hashes)
    calibrations = calibrate_shooting(interp, trajectories, list(factors), training)
    stored = {key: cal.to_config() for key, cal in stored_calibrations(interp.step).items()}
    interp.step.metadata["uncertainty"] = stored | {key: cal.to_config() for key, cal in calibrations.items()}
    save_model(net, output, force)
    return calibrations
