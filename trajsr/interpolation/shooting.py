"""Shooting: rebuild a gap with a learned propagator's own dynamics.

Given a gap's two kept frames x_a and x_b, find the start velocity v_a whose propagated path lands on
x_b (a two-point boundary-value problem), then keep the path's frames. The same learned dynamics that
:class:`trajsr.Propagator` rolls forward fills the gap, so a reconstruction obeys the learned
equations of motion exactly and hits both ends.

The path is velocity Verlet on the learned potential of a Hamiltonian propagator (``hnn``/``bihnn``
families: a force field on interatomic distances), at the data's fine time step (split into substeps
no longer than the model's own), so one propagator fills any factor. The start velocity comes from a
few Gauss–Newton steps through the compiled path. Two kept frames alone do not decide a gap as long as
half a period of the fastest vibration (O–H: ~9 fs), so :meth:`ShootingInterpolator.fill` shoots
through the whole trajectory at once (multiple shooting): each gap must also arrive with the velocity
the next one starts with. That gives a velocity at every kept frame (first guess: the cubic spline's).

With velocities at the kept frames (the file's own, or multiple shooting's), :meth:`~ShootingInterpolator.bridge`
fills each gap: the learned path forward from its left end and backward from its right end, each bent
onto the far end's position and velocity by a cubic Hermite term, averaged. On ethanol validation
trajectories at factor 10 this is ~1.5× closer than the multiple-shooting paths alone, and with the
file's velocities it is an order of magnitude below cubic Hermite interpolation.
Units: nm, nm/ps, ps.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..errors import Cancelled, TrajsrError
from ..units import FS_PER_PS
from ..atom_order import check_atoms
from .interpolator import Interpolator
from .pinned_paths import pin_and_average

#: Broyden corrects a gap's Jacobian only after a step larger than this (nm/ps); smaller ones are at the
#: level of the float32 paths' noise along ill-decided directions, and updates from them stall the solve
#: near 1e-2 nm/ps (ethanol validation), so such a gap keeps its Jacobian (once no gap changes, the last
#: factorisation is reused: chord steps)
BROYDEN_ABOVE = 0.1


class ShootingInterpolator(Interpolator):
    """Fill each gap with the learned dynamics path that joins its two kept frames.

    Parameters
    ----------
    step : trajsr.dynamics.PropagatorStep
        A Hamiltonian propagator's step (it has a learned ``potential(q)`` in kJ/mol of nm).
    iterations : int
        At most this many Gauss–Newton iterations of multiple shooting; it stops earlier once no kept
        frame's velocity changes by more than ``tolerance``.
    tolerance : float
        Convergence: the largest velocity update (nm/ps) below which the solve stops (thermal velocities
        are 1–20 nm/ps; float32 paths leave updates of ~5e-5). The one more step that 1e-3 would take
        changed no MAE in its fourth digit on the ethanol validation runs at factors 10 and 20, and costs
        one more path over every gap (~4% of a solve).
    refresh : float
        A gap is linearised afresh while its start velocity's last update was larger than this (nm/ps);
        after smaller updates its Jacobian is corrected by Broyden's rank-one update (see
        :meth:`shoot_through`).
    batch : int
        Gaps solved together (memory: one 3N×3N Jacobian per gap).
    """

    name = "shooting"
    #: with the file's velocities each gap is bridged from its two ends; without, multiple shooting finds them
    uses_stored_velocities = True
    out_of_distribution_means = (
        "lie outside what the propagator was calibrated on: hotter or unfamiliar configurations, or frames its "
        "learned dynamics cannot join (another level of theory, a thermostat's kicks, a wrong --dt); their "
        "reconstruction is less reliable (see --uncertainty, --max-uncertainty), and trajsr adapt fits the "
        "potential to this file")
    solves_whole_chunks = True
    #: a chunk's banded factorisations and Python steps leave a core idle that a second chunk's compiled
    #: paths fill (ethanol at 5 fs, chunks of 5,000 kept frames: 1.1-1.3x the fine frames a second)
    chunks_side_by_side = 2
    #: velocity continuity couples every gap to its neighbours; its pull fades along the chain, and
    #: streaming overlaps this many kept frames each side
    context = 8

    def __init__(self, step, iterations: int = 10, tolerance: float = 2e-3, refresh: float = 2.0, batch: int = 512):
        if isinstance(step, (str, os.PathLike)):
            raise TrajsrError(f"{step}: a file; load it with ShootingInterpolator.load(path)")
        if not getattr(step, "has_potential", False):
            raise TrajsrError(f"shooting needs a Hamiltonian propagator (a learned potential); this one is "
                              f"the {getattr(step, 'family', type(step).__name__)!r} family")
        for name, value, least in (("iterations", iterations, 0), ("batch", batch, 1)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
                raise TrajsrError(f"shooting: {name} must be an integer >= {least}, got {value!r}")
        for name, value in (("tolerance", tolerance), ("refresh", refresh)):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not 0 < value < np.inf:
                raise TrajsrError(f"shooting: {name} must be a positive velocity in nm/ps, got {value!r}")
        self.step, self.iterations, self.batch = step, int(iterations), int(batch)
        self.tolerance, self.refresh = float(tolerance), float(refresh)
        self.masses = np.asarray(step.masses_list)
        self.elements = list(step.metadata.get("elements", []))
        self._solvers, self._solvers_made = {}, threading.Lock()  # chunks side by side share them

    @classmethod
    def load(cls, path, **kwargs) -> "ShootingInterpolator":
        """From a propagator ``.keras`` file (``safe_mode=True``)."""
        from ..dynamics.unroll import propagator_step  # registers the Unroll layer with Keras
        from ..modelfile import load_model
        try:
            return cls(propagator_step(load_model(path, expect="propagate")), **kwargs)
        except ValueError:
            raise TrajsrError(f"{path}: not a propagator model (made with 'trajsr train --task propagate'?)") from None

    def check(self, coarse, factor):
        super().check(coarse, factor)
        if coarse.n_atoms != len(self.masses):
            raise TrajsrError(f"{coarse.source}: {coarse.n_atoms} atoms; the propagator is for {len(self.masses)}")
        check_atoms(coarse, self.elements, self.step.reference_list, "the propagator")
        if coarse.time is None:
            raise TrajsrError(f"{coarse.source}: shooting integrates in time, and this file has no time: "
                              "give the spacing of its frames with --dt (fs)")

    def calibration_for(self, coarse, factor: int):
        """The stored :class:`.uncertainty.Calibration` for rebuilding ``coarse`` by ``factor`` in the mode it
        will run in (positions only, or with its velocities), or None (see
        :mod:`.shooting_uncertainty`)."""
        from .shooting_uncertainty import calibration_key, stored_calibrations
        if coarse.time is None or coarse.n_frames < 2:
            return None
        mode = "velocities" if self.uses_velocities(coarse) else "positions"
        return stored_calibrations(self.step).get(calibration_key(mode, factor, coarse.dt * FS_PER_PS))

    def uncertainty_hint(self, coarse, factor: int) -> str:
        """Why there is no σ for ``coarse`` and what to run instead (never a hint that leads nowhere)."""
        from .shooting_uncertainty import stored_calibrations
        have = ", ".join(stored_calibrations(self.step)) or "none"
        spacing = "" if coarse.time is None else f" for frames {coarse.dt * FS_PER_PS:g} fs apart"
        mode = "with velocities" if self.uses_velocities(coarse) else "from positions only"
        return (f"this propagator has no shooting uncertainty {mode} at factor {factor}{spacing} (calibrated: "
                f"{have}); fit one on validation trajectories: trajsr calibrate MODEL --validation FILES "
                f"--factors {factor} -o CALIBRATED.keras")

    def interpolate(self, coarse, factor, uncertainty: bool = False, max_uncertainty=None, starts_file: bool = True,
                    stop=None):
        """The fine trajectory (nm, nm/ps, ps), kept frames unchanged; every gap passes the gap guard
        (:mod:`.gapguard`): one that tears a bond is replaced by Hermite (velocities stored) or the spline
        and flagged in ``info["guard_failed"]``; more than a few percent torn is a one-line error.

        With a calibration for this mode, factor and spacing (``trajsr calibrate``), per-gap flags go to
        ``info["gap_flags"]``; ``uncertainty`` adds σ (``Trajectory.uncertainty``, (frames, atoms) nm) and
        ``max_uncertainty`` (nm, or ``"default"``) replaces the gaps above it by the fallback.
        ``starts_file``: ``coarse`` begins at the file's first frame (a streamed chunk after the first does
        not; see :meth:`shoot_positions`). ``stop``: a ``threading.Event`` that, once set, ends the solve
        from positions with :class:`~trajsr.errors.Cancelled` within one batch of paths.
        """
        from .baselines import get_baseline
        from .gapguard import guard
        from .uncertainty import calibration_record, resolve_threshold
        cal = self.calibration_for(coarse, factor)
        if (uncertainty or max_uncertainty is not None) and cal is None:
            raise TrajsrError(f"{coarse.source}: {self.uncertainty_hint(coarse, factor)}")
        threshold = None if cal is None else resolve_threshold(max_uncertainty, cal)
        options = {} if cal is None else dict(calibration=cal, threshold=threshold, uncertainty=bool(uncertainty))
        fine = super().interpolate(coarse, factor, starts_file=starts_file, stop=stop, **options)
        fallback = get_baseline("hermite" if self.uses_velocities(coarse) else "spline")
        fine = guard(fine, coarse, factor, fallback, "shooting")
        if uncertainty:  # recorded in a trajsr .h5's attributes
            fine.info["uncertainty_calibration"] = calibration_record(repr(self), cal, threshold, fine)
        return fine

    # -- the compiled path and its linearisation ------------------------------------------------------
    def working_bytes_per_kept_frame(self, coarse) -> int:
        """From positions, multiple shooting's Jacobians and normal equations, float64: ~90 bytes a gap per
        (3N)² (peak measured with tracemalloc: 82 on uracil, 91 on ethanol), 96 here; with the file's
        velocities, the paths alone (counted with the fine frames)."""
        return 0 if self.uses_velocities(coarse) else 96 * (3 * coarse.n_atoms) ** 2

    def _solver(self, duration_ps: float, frames: int):
        """The compiled ``(path, linearize)`` of the step (:meth:`~trajsr.dynamics.hamiltonian.HamiltonianStep.path`,
        ``.linearize``) for a gap of ``duration_ps`` cut into ``frames``, and ``sub``, the velocity-Verlet
        steps per frame. Both are XLA-compiled ``tf.while_loop``\\ s, cached per (steps, step length).

        The Jacobian only steers the Gauss–Newton steps (the residuals always come from ``path``), so it is
        carried at twice the step (half the learned Hessians, the bulk of a solve's cost): on ethanol
        validation trajectories the converged velocities are the same (see :meth:`shoot_through`).
        """
        sub = self.step.substep_count(duration_ps, frames)
        n_steps, h = frames * sub, duration_ps / (frames * sub)
        key = (n_steps, h)
        with self._solvers_made:
            if key not in self._solvers:
                import tensorflow as tf
                spec = [tf.TensorSpec([None, len(self.masses), 3], tf.float32)] * 2
                coarse = max(1, n_steps // 2)
                self._solvers[key] = (
                    tf.function(lambda x, v: self.step.path(x, v, h, n_steps), input_signature=spec,
                                jit_compile=True),
                    tf.function(lambda x, v: self.step.linearize(x, v, duration_ps / coarse, coarse),
                                input_signature=spec, jit_compile=True))
        return (*self._solvers[key], sub)

    def _batched(self, fn, *arrays, stop=None):
        """``fn`` over the rows of ``arrays`` in batches of at most ``batch``, each padded (its last row
        repeated) to 64 or 128 rows or a multiple of 128, so XLA compiles a few shapes rather than one per
        file or chunk (each compile costs ~0.3-1 s; the first frames' backward solve and path share one).
        Multiples of 128 rather than powers of two above 128: the gaps linearised afresh after the first
        step (two thirds of an ethanol file's at 5 fs) fit in 384 rows, where 512 cost a third more.
        Returns ``fn``'s outputs, concatenated and trimmed, as float64 arrays; raises
        :class:`~trajsr.errors.Cancelled` before a batch once ``stop`` (a ``threading.Event``) is set."""
        import tensorflow as tf
        outputs = []
        for lo in range(0, len(arrays[0]), self.batch):
            if stop is not None and stop.is_set():
                raise Cancelled("shooting stopped on request")
            part = [np.asarray(x[lo:lo + self.batch], np.float32) for x in arrays]
            size = len(part[0])
            padded = max(64, 1 << (size - 1).bit_length()) if size <= 128 else -(-size // 128) * 128
            padded = min(self.batch, padded)
            part = [np.concatenate([x, np.repeat(x[-1:], padded - size, 0)]) for x in part]
            outputs.append([r.numpy()[:size] for r in fn(*(tf.constant(x) for x in part))])
        return [np.concatenate(out).astype(np.float64) for out in zip(*outputs)]

    def shoot_through(self, positions, v_guess, duration_ps: float, frames: int, position_weight: float = 3.0,
                      stop=None):
        """Multiple shooting along a whole coarse trajectory: one velocity per kept frame such that every
        gap's path lands on the next kept frame *and* arrives with the velocity the next gap starts with
        (one trajectory of the learned dynamics through all kept frames, in the least-squares sense).

        Two kept frames alone leave a vibration half a period long undetermined (its end point does not
        depend on its start velocity); the velocity continuity with the neighbouring gaps fixes it.
        Gauss–Newton on all velocities at once: the normal equations are block-tridiagonal
        (:mod:`.multiple_shooting`). Every gap is linearised once (at twice the step, see :meth:`_solver`);
        after that only a gap whose start velocity moved by more than ``refresh`` is linearised again (the
        spline's first guess is off by up to ~10 nm/ps, but after the first step only a few percent of the
        gaps, mostly the file's first, still move that far), the others' Jacobians are corrected by the
        step they took (Broyden) while it is above :data:`BROYDEN_ABOVE`. The earlier solver linearised
        every gap 2–3 times at the full step; on the held-out ethanol trajectories this one is twice as fast
        with the same errors (bench/shooting.py, bench/speed.py).

        Parameters
        ----------
        positions : ndarray, shape (K, N, 3)
            Kept frames (nm), ``duration_ps`` apart.
        v_guess : ndarray, shape (K, N, 3)
            First guess of the velocities at the kept frames (nm/ps).
        position_weight : float
            Weight of a missed kept frame (nm) against a velocity jump × gap length (nm); 3 was chosen on
            validation trajectories (never the test set) for the velocities it gives :meth:`bridge`.
        stop : threading.Event, optional
            Once set, the solve ends with :class:`~trajsr.errors.Cancelled` before its next batch of paths.

        Returns
        -------
        positions, velocities : ndarray, shape (K − 1, frames, N, 3)
            Each gap's path at ``duration_ps · k / frames``, k = 1 … frames (nm, nm/ps).
        velocities_at_kept : ndarray, shape (K, N, 3)
        """
        from .multiple_shooting import ChainNormalEquations, broyden_update
        path, linearize, sub = self._solver(duration_ps, frames)
        k, n = positions.shape[:2]
        n3, gaps = 3 * n, k - 1
        v = np.asarray(v_guess, np.float64).reshape(k, n3).copy()
        x_a, x_b = positions[:-1], positions[1:].reshape(gaps, n3)
        xs, vs = self._batched(path, x_a, v[:-1].reshape(gaps, n, 3), stop=stop)
        moved = np.full(gaps, np.inf)  # how far each gap's start velocity moved in the last step (nm/ps)
        jacobian = step = last_end = None  # the first iteration linearises every gap
        for _ in range(self.iterations):
            end = np.concatenate([xs[:, -1].reshape(gaps, n3), vs[:, -1].reshape(gaps, n3)], -1)
            fresh, corrected = moved > self.refresh, (moved > BROYDEN_ABOVE) & (moved <= self.refresh)
            if corrected.any():  # each gap's Jacobian corrected by the step it just took
                jacobian[corrected] = broyden_update(jacobian[corrected], -step[:-1][corrected],
                                                     (end - last_end)[corrected])
            if fresh.any():
                start = v[:-1].reshape(gaps, n, 3)
                relinearized = self._batched(linearize, x_a[fresh], start[fresh], stop=stop)[1]
                if fresh.all():
                    jacobian = relinearized
                else:
                    jacobian[fresh] = relinearized
            if fresh.any() or corrected.any():
                try:
                    normal = ChainNormalEquations(jacobian[:, :n3], jacobian[:, n3:], position_weight, duration_ps)
                except np.linalg.LinAlgError:  # a degenerate system (torn molecules): the gap guard judges them
                    break
            miss = (end[:, :n3] - x_b) * position_weight
            jump = (end[:, n3:] - v[1:]) * duration_ps
            step = normal.step(miss, jump)
            if not np.isfinite(step).all():  # non-finite paths (torn molecules): keep the last velocities
                break
            v -= step
            moved, last_end = np.abs(step[:-1]).max(-1), end
            xs, vs = self._batched(path, x_a, v[:-1].reshape(gaps, n, 3), stop=stop)
            if np.abs(step).max() < self.tolerance:
                break
        return xs[:, sub - 1::sub], vs[:, sub - 1::sub], v.reshape(k, n, 3)

    def bridge(self, positions, velocities, dt: float, factor: int, signals: bool = False, forward=None):
        """Fill every gap from kept frames that carry velocities: the learned path forward from the left
        frame and backward (time reversed) from the right one, each bent onto the other end's position and
        velocity by a cubic Hermite term, then averaged. The learned dynamics gives the shape of the
        motion inside the gap, the four end conditions pin it, so the result hits both kept frames with
        their velocities exactly.

        Parameters
        ----------
        positions, velocities : ndarray, shape (K, N, 3)
            Kept frames (nm) and their velocities (nm/ps), ``dt`` ps apart.
        factor : int
            Frames each gap is cut into.
        signals : bool
            Also return what the uncertainty is made of (see :mod:`.shooting_uncertainty`).
        forward : pair of ndarray, shape (K − 1, factor, N, 3), optional
            Each gap's learned path from its left end at its fine frames (nm, nm/ps) where it has been run
            already: multiple shooting ends on the paths of the velocities it returns
            (:meth:`shoot_positions`), the same numbers.

        Returns
        -------
        positions, velocities : ndarray, shape ((K − 1) · factor + 1, N, 3)
            The fine trajectory (nm, nm/ps), kept frames included.
        signals : dict, only with ``signals``
            ``disagreement`` (half the distance between the two bent paths) and ``bend`` (RMS of the two
            Hermite terms): (K − 1, factor − 1, N) nm at each gap's dropped frames, per atom.
        """
        path, _, sub = self._solver(dt, factor)

        def run(x, v):  # the path at the fine frames, the start included: (gaps, factor + 1, N, 3)
            xs, vs = self._batched(path, x, v)
            return (np.concatenate([x[:, None], xs[:, sub - 1::sub]], 1),
                    np.concatenate([v[:, None], vs[:, sub - 1::sub]], 1))

        x_a, v_a, x_b, v_b = positions[:-1], velocities[:-1], positions[1:], velocities[1:]
        forward = run(x_a, v_a) if forward is None else (np.concatenate([x_a[:, None], forward[0]], 1),
                                                         np.concatenate([v_a[:, None], forward[1]], 1))
        back_x, back_v = run(x_b, -v_b)
        backward = back_x[:, ::-1], -back_v[:, ::-1]  # in forward time
        fine_x, fine_v, bent, bends = pin_and_average(forward, backward, x_a, v_a, x_b, v_b, dt)
        n = positions.shape[1]
        fine = (np.concatenate([positions[:1], fine_x[:, 1:].reshape(-1, n, 3)]),
                np.concatenate([velocities[:1], fine_v[:, 1:].reshape(-1, n, 3)]))
        if not signals:
            return fine

        def per_atom(a):  # RMS over x, y, z at the dropped frames: (gaps, factor − 1, N)
            return np.sqrt(np.mean(a[:, 1:-1] ** 2, axis=-1))
        return (*fine, {"disagreement": per_atom(0.5 * (bent[0] - bent[1])),
                        "bend": np.sqrt(0.5 * (per_atom(bends[0]) ** 2 + per_atom(bends[1]) ** 2))})

    def fill(self, positions, velocities, dt, factor, calibration=None, threshold=None, uncertainty=False,
             starts_file=True, stop=None):
        """Fill every gap (see :meth:`bridge`); with the file's velocities each gap is decided by its two
        ends, from positions only multiple shooting (:meth:`shoot_positions`) estimates each kept frame's
        velocity first. With a ``calibration`` (:class:`.uncertainty.Calibration` of this mode, factor and
        spacing) also the per-gap flags and, with ``uncertainty``, σ (see
        :func:`.uncertainty.apply_calibration`); ``threshold`` (nm) replaces the gaps above it. ``stop``: see
        :meth:`shoot_through`."""
        if calibration is None:
            forward = None  # from positions only, the paths multiple shooting ended on
            if velocities is None:
                *forward, velocities = self.shoot_positions(positions, dt, factor, starts_file, stop)
            return self.bridge(positions, velocities, dt, factor, forward=forward)
        from .uncertainty import apply_calibration
        (fine_x, fine_v), parts = self.fill_with_parts(positions, velocities, dt, factor, starts_file, stop)
        extra = apply_calibration(fine_x, positions, velocities, dt, factor, parts, calibration, threshold,
                                  uncertainty)
        return fine_x, fine_v, extra

    def fill_with_parts(self, positions, velocities, dt, factor, starts_file=True, stop=None):
        """:meth:`fill` and the uncertainty signals of every gap (:func:`.shooting_uncertainty.gap_parts`):
        ``((positions, velocities), parts)``."""
        from .shooting_uncertainty import gap_parts
        residual, used, forward = None, velocities, None
        if velocities is None:
            paths, arrivals, used = self.shoot_positions(positions, dt, factor, starts_file, stop)
            # what multiple shooting could not reconcile at each kept frame: position miss, velocity jump
            residual = {"miss": np.sqrt(np.mean((paths[:, -1] - positions[1:]) ** 2, axis=-1)),
                        "jump": np.sqrt(np.mean((arrivals[:, -1] - used[1:]) ** 2, axis=-1)) * dt}
            forward = paths, arrivals
        fine_x, fine_v, signals = self.bridge(positions, used, dt, factor, signals=True, forward=forward)
        return (fine_x, fine_v), gap_parts(self.step, positions, used, signals, residual)

    def shoot_positions(self, positions, dt: float, frames: int, starts_file: bool = True, stop=None):
        """:meth:`shoot_through` kept frames ``dt`` ps apart (nm) from positions alone, the cubic spline's
        velocities as the first guess; returns its paths and the velocities at the kept frames.

        The first kept frame's velocity is decided by one gap alone, where a vibration half a period long
        leaves it ill-conditioned, and its error spreads over the next ten gaps or so (up to 30x the
        file's typical error on held-out ethanol); the last one's is the arrival velocity of the last gap,
        well decided. So the first ``3 · context`` kept frames take their velocities from the same problem
        solved backwards in time over the first ``6 · context`` frames, where they are the well-decided end
        (the first gap's error: 32x the median down to about 2x). Only where ``positions`` start the file:
        a streamed chunk's first frames overlap the chunk before, whose gaps are written from the whole solve.

        The two solves run side by side (a thread each; TensorFlow releases the GIL while a compiled path
        runs): the whole solve's factorisations keep one core busy and the other idle, the head's paths fill it
        (ethanol at 5 fs on 2 cores: ~8% fewer seconds a file, the same numbers).
        """
        from scipy.interpolate import CubicSpline
        kept = np.arange(len(positions)) * dt
        guess = CubicSpline(kept, positions, axis=0)(kept, 1)
        head = min(len(positions), 6 * self.context)
        if head < 3 or not starts_file:
            return self.shoot_through(positions, guess, dt, frames, stop=stop)
        path, _, sub = self._solver(dt, frames)  # the head's paths are run again below
        with ThreadPoolExecutor(1) as pool:
            back = pool.submit(self.shoot_through, positions[:head][::-1], -guess[:head][::-1], dt, frames,
                               stop=stop)
            xs, vs, v = self.shoot_through(positions, guess, dt, frames, stop=stop)
            back = back.result()[2]
        keep = min(3 * self.context, head - 1)
        v[:keep] = -back[::-1][:keep]
        head_x, head_v = self._batched(path, positions[:keep], v[:keep])
        xs[:keep], vs[:keep] = head_x[:, sub - 1::sub], head_v[:, sub - 1::sub]
        return xs, vs, v

    def __repr__(self):
        return f"ShootingInterpolator(family={self.step.family!r}, stride={self.step.stride_ps * FS_PER_PS:g} fs)"
