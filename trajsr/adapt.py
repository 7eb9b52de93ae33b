"""``trajsr adapt``: a Hamiltonian propagator's potential fine-tuned to the user's own trajectory.

A propagator trained on trajsr's GFN2-xTB data knows GFN2-xTB's forces; the user's AIMD run is at another
level of theory, often thermostatted, saved every 5-10 fs. Most AIMD codes store the forces at the saved
frames (extxyz ``forces``, sGDML npz ``F``, trajsr h5 ``forces``): force matching on them moves the
learned potential to the user's level of theory without any fine frames. A file without forces is
explained by the learned dynamics itself: multiple shooting gives each kept frame a velocity (or the
file's own velocities are used), and the potential is fitted so that each gap's path joins its two kept
frames (:mod:`trajsr.propagation.paths`), the two steps alternating. The last part of each file is
held back and the card ``OUTPUT.json`` says what changed there: the force error and the multiple-shooting
residual (how far the learned dynamics is from joining the held-back frames). Sits above both rooms: it
trains with :mod:`trajsr.propagation.forces` and judges with :mod:`trajsr.interpolation.shooting`.
Units: nm, ps, kJ/mol/nm inside; Å and fs in the card's figures.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .errors import TrajsrError
from .units import ANGSTROM_PER_NM, FS_PER_PS

#: share of every file's frames (its end) held back to judge the adaptation
HOLD_BACK = 0.2


def force_error(step, trajs) -> float:
    """Mean absolute error of the potential's forces against the stored ones, over their RMS (0 = exact)."""
    from .propagation.forces import predicted_forces
    errors, scale = [], []
    for t in trajs:
        errors.append(np.abs(predicted_forces(step, t.positions) - t.forces).mean())
        scale.append(np.sqrt(np.mean(t.forces ** 2)))
    return float(np.mean(errors) / np.mean(scale))


def fine_steps(step, dt: float) -> int:
    """The model's fine time steps in a gap of ``dt`` ps (at least one)."""
    return max(1, int(round(dt * FS_PER_PS / step.dt_fs)))


def shooting_residual(step, traj) -> dict:
    """Multiple shooting through ``traj``'s frames (positions only): RMS position miss at the kept frames
    (Å) and RMS velocity jump (Å/fs) left after the solve: how far the learned dynamics is from one path
    through the file."""
    from .interpolation.shooting import ShootingInterpolator
    xs, vs, v = ShootingInterpolator(step).shoot_positions(traj.positions, traj.dt, fine_steps(step, traj.dt))
    miss = xs[:, -1] - traj.positions[1:]
    jump = vs[:, -1] - v[1:]
    return dict(position_miss_angstrom=float(np.sqrt(np.mean(miss ** 2)) * ANGSTROM_PER_NM),
                velocity_jump_angstrom_per_fs=float(np.sqrt(np.mean(jump ** 2)) * ANGSTROM_PER_NM / FS_PER_PS))


#: stored forces whose RMS differs from the base potential's by more than this factor are in another unit
FORCE_SCALE_LIMIT = 3.0


def check_force_scale(step, traj) -> None:
    """Refuse forces in another unit (eV/Å read as kJ/mol/nm is 96x too small): their RMS must be within
    :data:`FORCE_SCALE_LIMIT` of the base potential's on the same frames (levels of theory differ by tens
    of percent, units by factors of 4 to 1000)."""
    from .propagation.forces import predicted_forces
    frames = traj.positions[:: max(1, traj.n_frames // 50)]
    stored = np.sqrt(np.mean(traj.forces[:: max(1, traj.n_frames // 50)] ** 2))
    ratio = stored / np.sqrt(np.mean(predicted_forces(step, frames) ** 2))
    if not 1 / FORCE_SCALE_LIMIT < ratio < FORCE_SCALE_LIMIT:
        raise TrajsrError(f"{traj.source}: its forces are {ratio:.3g}x the base propagator's on the same frames: "
                          "another unit? (trajsr reads kJ/mol/nm in h5, eV/Å in extxyz, e_unit/r_unit in npz)")


def check_files(step, trajs) -> None:
    """One-line errors for files the base propagator cannot be adapted to."""
    from .atom_order import check_atoms
    elements = list(step.metadata.get("elements", []))
    for t in trajs:
        if t.n_atoms != len(step.masses_list):
            raise TrajsrError(f"{t.source}: {t.n_atoms} atoms; the base propagator is for {len(step.masses_list)}")
        check_atoms(t, elements, step.reference_list, "the base propagator")
        if (t.forces is None) != (trajs[0].forces is None):
            has, lacks = (t, trajs[0]) if t.forces is not None else (trajs[0], t)
            raise TrajsrError(f"{has.source} stores forces and {lacks.source} does not: adapt fits either the "
                              "forces of every file or the paths of every file")
        if t.time is None:
            raise TrajsrError(f"{t.source}: no time in this file: give the spacing of its frames with --dt (fs)")
        if abs(t.dt - trajs[0].dt) > 1e-6 * trajs[0].dt:
            raise TrajsrError(f"{t.source}: frames {t.dt * FS_PER_PS:g} fs apart, {trajs[0].source} "
                              f"{trajs[0].dt * FS_PER_PS:g} fs: adapt takes files of one spacing")
        if t.n_frames < 10:
            raise TrajsrError(f"{t.source}: {t.n_frames} frames; adapt holds back {HOLD_BACK:.0%} of each file and "
                              "needs at least 10")
        if t.forces is not None:
            check_force_scale(step, t)


#: alternations of multiple shooting (velocities) and path matching (potential) for files without forces
PATH_ROUNDS = 3


def fit_positions(step, trajs, *, max_minutes: float, learning_rate: float, seed: int, verbose: int = 0) -> int:
    """Files without forces: :data:`PATH_ROUNDS` times, velocities at the kept frames (the files' own, else
    multiple shooting with the current potential), then the potential fitted to join each gap's two kept
    frames (:func:`trajsr.propagation.paths.fit_paths`) in an equal share of ``max_minutes``. Returns the
    epochs run."""
    from .interpolation.shooting import ShootingInterpolator
    from .propagation.paths import fit_paths
    shooting, deadline, epochs = ShootingInterpolator(step), time.monotonic() + 60 * max_minutes, 0
    frames = fine_steps(step, trajs[0].dt)
    for done in range(PATH_ROUNDS):
        xa, va, xb, vb = [], [], [], []
        for t in trajs:
            v = t.velocities if t.velocities is not None else shooting.shoot_positions(t.positions, t.dt, frames)[2]
            xa.append(t.positions[:-1]), va.append(v[:-1]), xb.append(t.positions[1:]), vb.append(v[1:])
        minutes = (deadline - time.monotonic()) / 60 / (PATH_ROUNDS - done)
        if minutes <= 0:
            break
        history = fit_paths(step, (np.concatenate(xa), np.concatenate(va)), (np.concatenate(xb), np.concatenate(vb)),
                            trajs[0].dt, max_minutes=minutes, learning_rate=learning_rate, seed=seed + done,
                            verbose=verbose)
        epochs += len(history.history["loss"])
        if trajs[0].velocities is not None:  # the files' velocities do not change between rounds
            break
    return epochs


def adapt(base, trajectories, output, *, max_minutes: float = 5.0, learning_rate: float = 3e-4, seed: int = 0,
          force: bool = False, verbose: int = 0) -> dict:
    """Fine-tune ``base`` (a Hamiltonian propagator ``.keras``) to ``trajectories`` (their forces, else the
    paths between their frames) and save it to ``output`` with its card ``output.json``.

    Parameters
    ----------
    base : path
        A propagator with a learned potential (``hnn``/``bihnn``).
    trajectories : list of Trajectory
        The user's frames with time, one spacing; with forces (kJ/mol/nm) in every file (force matching),
        or in none (path matching, :func:`fit_positions`). The last :data:`HOLD_BACK` of each is held back
        (never trained on) to judge the result.
    max_minutes : float
        Wall-clock budget of the fitting (minutes).
    learning_rate : float
        Adam's step; small, so that the potential moves from the base rather than starting over.

    Returns
    -------
    dict
        The card: files, what was fitted (forces or paths), frames trained and held back, force error
        (relative MAE; None without forces) and shooting residual on the held-back frames before and
        after, minutes.
    """
    from .dynamics.unroll import propagator_step
    from .card import save_card
    from .io import check_writable
    from .modelfile import check_output, load_model
    from .propagation.forces import fit_forces
    from .card import command_line, recorded_paths
    from .training import save_model
    output = check_output(output, force)
    card_path = check_writable(Path(output).with_suffix(".json"), force)  # the card is the user's file too
    if not max_minutes > 0 or not learning_rate > 0:
        raise TrajsrError(f"--max-minutes and --learning-rate must be positive, got {max_minutes}, {learning_rate}")
    net = load_model(base, expect="propagate")
    step = propagator_step(net)
    if not step.has_potential:
        raise TrajsrError(f"{base}: a {step.family!r} propagator has no learned potential to adapt; adapt takes a "
                          "Hamiltonian one (hnn, bihnn)")
    check_files(step, trajectories)
    cuts = [int(round(t.n_frames * (1 - HOLD_BACK))) for t in trajectories]
    train = [t[:c] for t, c in zip(trajectories, cuts)]
    held = [t[c:] for t, c in zip(trajectories, cuts)]
    start = time.monotonic()
    with_forces = trajectories[0].forces is not None

    def judge():
        return dict(force_error=force_error(step, held) if with_forces else None,
                    shooting=[shooting_residual(step, t) for t in held])
    before, weights = judge(), step.get_weights()
    if with_forces:
        epochs = len(fit_forces(step, train, held, max_minutes=max_minutes, learning_rate=learning_rate, every=1,
                                seed=seed, verbose=verbose).history["loss"])
    else:
        epochs = fit_positions(step, train, max_minutes=max_minutes, learning_rate=learning_rate, seed=seed,
                               verbose=verbose)
    after = judge()
    miss = lambda figures: np.mean([s["position_miss_angstrom"] for s in figures["shooting"]])  # noqa: E731
    kept = bool(after["force_error"] <= before["force_error"] if with_forces else miss(after) <= miss(before))
    if not kept:  # the held-back frames say the fine-tuning did not help: the base stays as it was
        step.set_weights(weights)
    card = dict(name=Path(output).stem, task="propagate", adapted_from=Path(base).name, command=command_line(),
                files=recorded_paths(t.source for t in trajectories), fitted_to="forces" if with_forces else "paths",
                frames_trained=int(sum(map(len, train))),
                frames_held_back=int(sum(map(len, held))), epochs=epochs,
                minutes=round((time.monotonic() - start) / 60, 2), adapted=kept,
                held_back=dict(before=before, after=after),
                units=dict(force_error="MAE over the forces' RMS", position_miss="Å", velocity_jump="Å/fs"))
    step.metadata["adapted"] = {k: card[k] for k in ("adapted_from", "files", "frames_trained", "adapted")}
    step.metadata["training"] = dict(step.metadata.get("training", {}), adapted_command=card["command"])
    save_model(net, output, force)
    save_card(card_path, card, force)
    return card
