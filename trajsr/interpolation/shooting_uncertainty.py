"""How far off is each frame that shooting rebuilds? The signals it has for free, calibrated like a model's.

Shooting (:mod:`.shooting`) fills a gap with the learned path forward from its left kept frame and the
one backward from its right kept frame, each bent onto the far end by a Hermite term. From positions only,
the kept frames' velocities come from multiple shooting, which leaves a residual at each kept frame (the
path arriving there misses it by a little, and with a slightly different velocity than the next gap leaves
with). Those are the signals, per gap, dropped frame and atom (nm), in the ``parts`` layout of
:class:`.uncertainty.Calibration`:

- **disagreement**: half the distance between the two bent paths;
- **correction**: the bend the learned dynamics needed to meet the far end, and the multiple-shooting
  residual at the gap's two kept frames (position miss and velocity jump × spacing), each weighted towards
  its own end. A potential that does not fit the data (another level of theory, a thermostat's kicks, a
  wrong spacing) bends more and leaves more residual, throughout the file: the *difficulty* D sees that;
- **energy**: the kinetic temperature at the gap's kept frames over 300 K (hotter gaps err more);
- **structure**: the largest normalised inverse-distance feature of the potential at the two kept frames
  (how far the configuration lies from the potential's training data: its out-of-distribution score).

The uncertainty model and its fit are :mod:`.uncertainty`'s (Gaussian likelihood on validation errors,
then a scale for 90% coverage); here a calibration holds for one mode (positions only, or with the file's
velocities), one factor and one spacing, and a propagator file stores several, keyed by
:func:`calibration_key`, in its step's metadata under ``"uncertainty"``. Units: nm, ps, K.
"""
from __future__ import annotations

import numpy as np

from ..card import recorded_paths
from ..errors import TrajsrError
from ..units import FS_PER_PS, KB_KJ_PER_MOL_PER_K
from .uncertainty import Calibration, fit_calibration

#: modes of a shooting reconstruction, as the calibration keys and the summary name them
MODES = {"positions": "from positions only", "velocities": "with the file's velocities"}
#: the temperature the energy signal is measured in (K)
ENERGY_UNIT_K = 300.0


def calibration_key(mode: str, factor: int, spacing_fs: float) -> str:
    """The key of a calibration: ``"positions x10 5 fs"`` (mode, factor, kept-frame spacing in fs)."""
    return f"{mode} x{int(factor)} {round(float(spacing_fs), 3):g} fs"


def gap_parts(step, positions, velocities, signals: dict, residual: dict | None = None) -> dict:
    """The uncertainty signals of every gap (see the module docstring).

    Parameters
    ----------
    step : trajsr.dynamics.hamiltonian.HamiltonianStep
    positions, velocities : ndarray, shape (K, N, 3)
        Kept frames (nm) and the velocities the bridge used (nm/ps).
    signals : dict
        :meth:`.shooting.ShootingInterpolator.bridge`'s ``disagreement`` and ``bend`` (K − 1, G, N) nm.
    residual : dict, optional
        Multiple shooting's ``miss`` and ``jump`` (× spacing) at kept frames 1 … K − 1, (K − 1, N) nm.

    Returns
    -------
    dict
        ``disagreement``, ``correction`` (K − 1, G, N) nm; ``energy``, ``structure`` (K − 1,).
    """
    import tensorflow as tf
    gaps, frames = signals["bend"].shape[:2]
    correction = signals["bend"] ** 2
    if residual is not None:
        s = (np.arange(1, frames + 1) / (frames + 1))[None, :, None]
        right = np.hypot(residual["miss"], residual["jump"])  # at each gap's right kept frame
        left = np.concatenate([right[:1], right[:-1]])  # the first kept frame: its gap's other end
        correction = correction + ((1 - s) * left[:, None]) ** 2 + (s * right[:, None]) ** 2
    masses = np.asarray(step.masses_list)[None, :, None]
    temperature = np.sum(masses * velocities ** 2, axis=(1, 2)) / (3 * len(step.masses_list) * KB_KJ_PER_MOL_PER_K)
    features = step.features(tf.constant(positions, tf.float32)).numpy()
    outlying = np.max(np.abs(features), axis=-1)  # per kept frame
    return {"disagreement": signals["disagreement"], "correction": np.sqrt(correction),
            "energy": 0.5 * (temperature[:-1] + temperature[1:]) / ENERGY_UNIT_K,
            "structure": np.maximum(outlying[:-1], outlying[1:])}


def stored_calibrations(step) -> dict:
    """The calibrations a propagator file holds, by :func:`calibration_key`."""
    return {key: Calibration.from_config(config) for key, config in step.metadata.get("uncertainty", {}).items()}


def reconstruct(interp, traj, factor: int, mode: str):
    """Shoot the coarse copy (every ``factor``-th frame) of a fine trajectory with known answers.

    Returns
    -------
    parts : dict
        :func:`gap_parts` of its gaps.
    errors, baseline_errors : ndarray, shape (gaps, factor − 1, N, 3)
        Shooting's and the fallback's errors at the dropped frames (nm): the spline from positions only,
        Hermite with the file's velocities.
    """
    from .baselines import get_baseline
    n_kept = (traj.n_frames - 1) // factor + 1
    truth = traj.positions[:(n_kept - 1) * factor + 1]
    positions, dt = truth[::factor], traj.dt * factor
    velocities = traj.velocities[:(n_kept - 1) * factor + 1:factor] if mode == "velocities" else None
    (fine, _), parts = interp.fill_with_parts(positions, velocities, dt, factor)
    baseline = get_baseline("hermite" if mode == "velocities" else "spline").fill(positions, velocities, dt,
                                                                                  factor)[0]
    n = positions.shape[1]

    def dropped(x):
        return x[:-1].reshape(n_kept - 1, factor, n, 3)[:, 1:]
    return parts, dropped(fine) - dropped(truth), dropped(baseline) - dropped(truth)


def calibrate_shooting(interp, trajectories, factors, training=()) -> dict:
    """Fit shooting's uncertainty on fine validation trajectories (never the test set) for each factor,
    from positions only and (when every file stores velocities) with them.

    Parameters
    ----------
    interp : :class:`.shooting.ShootingInterpolator`
    trajectories : list of Trajectory
        Fine validation trajectories (every MD step, or at least ``factor`` times finer than the files
        the calibration is for), all with the same spacing.
    factors : list of int
    training : list of Trajectory, optional
        Some of the potential's training data: sets what counts as out of distribution (default: validation).

    Returns
    -------
    dict
        :func:`calibration_key` -> :class:`.uncertainty.Calibration`.
    """
    spacing = {round(t.dt * FS_PER_PS, 6) for t in trajectories}
    if len(spacing) != 1:
        raise TrajsrError(f"validation trajectories have different frame spacings ({sorted(spacing)} fs); "
                          "calibrate with files of one spacing")
    modes = ["positions"] + (["velocities"] if all(t.velocities is not None for t in trajectories) else [])
    out = {}
    for mode in modes:
        for factor in factors:
            collected = [reconstruct(interp, t, factor, mode) for t in trajectories]
            parts = {k: np.concatenate([c[0][k] for c in collected]) for k in collected[0][0]}
            groups = np.concatenate([np.full(len(c[1]), i) for i, c in enumerate(collected)])
            training_parts = None
            if training:
                pieces = [reconstruct(interp, t, factor, mode)[0] for t in training]
                training_parts = {k: np.concatenate([p[k] for p in pieces]) for k in pieces[0]}
            key = calibration_key(mode, factor, trajectories[0].dt * FS_PER_PS * factor)
            out[key] = fit_calibration(parts, np.concatenate([c[1] for c in collected]),
                                       np.concatenate([c[2] for c in collected]), groups, training_parts,
                                       fitted_on={"files": recorded_paths(t.source for t in trajectories),
                                                  "training_files": recorded_paths(t.source for t in training),
                                                  "mode": MODES[mode], "factor": int(factor)})
    return out
