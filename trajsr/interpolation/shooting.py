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

import math
import os

import numpy as np

from ..errors import TrajsrError
from .interpolator import Interpolator, check_elements


class ShootingInterpolator(Interpolator):
    """Fill each gap with the learned dynamics path that joins its two kept frames.

    Parameters
    ----------
    step : trajsr.dynamics.PropagatorStep
        A Hamiltonian propagator's step (it has a learned ``potential(q)`` in kJ/mol of nm).
    iterations : int
        Gauss–Newton iterations.
    jacobians : int
        Iterations that recompute the Jacobian; the rest are chord steps that reuse the last one (a
        path each, ~1/5 of a Jacobian's cost). 3 of 4 matched full Gauss–Newton within 0.5 % MAE on
        ethanol validation trajectories at factors 10 and 40; 1 of 4 was up to 1.5× worse at factor 40.
    batch : int
        Gaps solved together (memory: one 3N×3N Jacobian per gap).
    """

    name = "shooting"
    #: with the file's velocities each gap is bridged from its two ends; without, multiple shooting finds them
    uses_stored_velocities = True
    no_uncertainty = ("shooting reconstructions have no calibrated uncertainty yet (--uncertainty and "
                      "--max-uncertainty are for interpolation models made with trajsr train and trajsr calibrate); "
                      "every gap it rebuilds is checked by the gap guard instead")
    #: velocity continuity couples every gap to its neighbours; its pull fades along the chain, and
    #: streaming overlaps this many kept frames each side
    context = 8

    def __init__(self, step, iterations: int = 4, jacobians: int = 3, batch: int = 512):
        if isinstance(step, (str, os.PathLike)):
            raise TrajsrError(f"{step}: a file; load it with ShootingInterpolator.load(path)")
        if not getattr(step, "has_potential", False):
            raise TrajsrError(f"shooting needs a Hamiltonian propagator (a learned potential); this one is "
                              f"the {getattr(step, 'family', type(step).__name__)!r} family")
        for name, value, least in (("iterations", iterations, 0), ("jacobians", jacobians, 1), ("batch", batch, 1)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
                raise TrajsrError(f"shooting: {name} must be an integer >= {least}, got {value!r}")
        self.step, self.iterations, self.jacobians, self.batch = step, int(iterations), int(jacobians), int(batch)
        self.masses = np.asarray(step.masses_list)
        self.elements = list(step.metadata.get("elements", []))
        self._solvers = {}

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
        check_elements(coarse, self.elements, "the propagator")
        if coarse.time is None:
            raise TrajsrError(f"{coarse.source}: shooting integrates in time, and this file has no time: "
                              "give the spacing of its frames with --dt (fs)")

    def interpolate(self, coarse, factor, uncertainty: bool = False, max_uncertainty=None):
        """The fine trajectory (nm, nm/ps, ps), kept frames unchanged; every gap passes the gap guard
        (:mod:`.gapguard`): one that tears a bond is replaced by Hermite (velocities stored) or the spline
        and flagged in ``info["guard_failed"]``; more than a few percent torn is a one-line error."""
        if uncertainty or max_uncertainty is not None:
            raise TrajsrError(f"shooting: {self.no_uncertainty}")
        from .baselines import get_baseline
        from .gapguard import guard
        fine = super().interpolate(coarse, factor)
        fallback = get_baseline("hermite" if self.uses_velocities(coarse) else "spline")
        return guard(fine, coarse, factor, fallback, "shooting")

    # -- the compiled path and its linearisation ------------------------------------------------------
    def _solver(self, duration_ps: float, frames: int):
        """The compiled ``(path, linearize)`` for a gap of ``duration_ps`` cut into ``frames``, and ``sub``,
        the velocity-Verlet steps per frame (substeps no longer than the model's own).

        ``path(x, v)`` returns the positions and velocities after each step, (B, steps, N, 3).
        ``linearize(x, v)`` returns the end state (B, 2·3N) and its Jacobian against the start velocity
        (B, 2·3N, 3N), carried forward step by step with the tangent equations of velocity Verlet (one
        Hessian of the learned potential a step): half the work of reverse mode through the whole path,
        and a traced graph one step long. Both are XLA-compiled ``tf.while_loop``\\ s.
        """
        substep_ps = self.step.tau / self.step.substeps
        sub = max(1, math.ceil(duration_ps / frames / substep_ps - 1e-9))
        n_steps, h = frames * sub, duration_ps / (frames * sub)
        key = (n_steps, h)
        if key in self._solvers:
            return (*self._solvers[key], sub)
        import tensorflow as tf

        from ..dynamics.integrators import gradient
        n = len(self.masses)
        n3 = 3 * n
        inverse_mass = tf.constant(1.0 / self.masses, tf.float32)[None, :, None]
        spec = [tf.TensorSpec([None, n, 3], tf.float32)] * 2

        def acceleration(q):  # nm/ps²
            return -gradient(self.step.potential, q) * inverse_mass

        def acceleration_and_derivative(q):  # a (B, N, 3) nm/ps² and ∂a/∂q (B, 3N, 3N) 1/ps²
            b = tf.shape(q)[0]
            with tf.GradientTape() as tape:
                tape.watch(q)
                a = acceleration(q)
                flat = tf.reshape(a, (b, n3))
            return a, tf.reshape(tape.batch_jacobian(flat, q), (b, n3, n3))

        @tf.function(input_signature=spec, jit_compile=True)
        def path(x, v):
            xs = tf.TensorArray(tf.float32, size=n_steps)
            vs = tf.TensorArray(tf.float32, size=n_steps)
            a = acceleration(x)
            for i in tf.range(n_steps):
                v_half = v + 0.5 * h * a
                x = x + h * v_half
                a = acceleration(x)
                v = v_half + 0.5 * h * a
                xs, vs = xs.write(i, x), vs.write(i, v)
            return tf.transpose(xs.stack(), [1, 0, 2, 3]), tf.transpose(vs.stack(), [1, 0, 2, 3])

        @tf.function(input_signature=spec, jit_compile=True)
        def linearize(x, v):
            b = tf.shape(x)[0]
            jx, jv = tf.zeros((b, n3, n3)), tf.eye(n3, batch_shape=[b])  # ∂x/∂v₀, ∂v/∂v₀
            a, ja = acceleration(x), tf.zeros((b, n3, n3))  # ∂a/∂v₀ = ∂a/∂x · ∂x/∂v₀ = 0 at the start
            for _ in tf.range(n_steps):
                v_half, jv_half = v + 0.5 * h * a, jv + 0.5 * h * ja
                x, jx = x + h * v_half, jx + h * jv_half
                a, da = acceleration_and_derivative(x)
                ja = tf.matmul(da, jx)
                v, jv = v_half + 0.5 * h * a, jv_half + 0.5 * h * ja
            return tf.concat([tf.reshape(x, (b, n3)), tf.reshape(v, (b, n3))], -1), tf.concat([jx, jv], 1)

        self._solvers[key] = (path, linearize)
        return path, linearize, sub

    def _batched(self, fn, *arrays):
        """``fn`` over the rows of ``arrays`` in batches of at most ``batch``, each padded (its last row
        repeated) to a power of two, so XLA compiles a few shapes rather than one per file or chunk.
        Returns ``fn``'s outputs, concatenated and trimmed, as float64 arrays."""
        import tensorflow as tf
        outputs = []
        for lo in range(0, len(arrays[0]), self.batch):
            part = [np.asarray(x[lo:lo + self.batch], np.float32) for x in arrays]
            size = len(part[0])
            padded = min(self.batch, 1 << (size - 1).bit_length())
            part = [np.concatenate([x, np.repeat(x[-1:], padded - size, 0)]) for x in part]
            outputs.append([r.numpy()[:size] for r in fn(*(tf.constant(x) for x in part))])
        return [np.concatenate(out).astype(np.float64) for out in zip(*outputs)]

    def shoot(self, x_a, x_b, v_guess, duration_ps: float, frames: int):
        """Solve the boundary-value problem of each gap on its own (Gauss–Newton on its end position).

        Parameters
        ----------
        x_a, x_b : ndarray, shape (gaps, N, 3)
            Positions (nm) at the gap's start and at ``duration_ps`` later.
        v_guess : ndarray, shape (gaps, N, 3)
            First guess of the start velocity (nm/ps).
        duration_ps : float
            Length of the gap (ps).
        frames : int
            Frames the gap is cut into (the path is returned at each of them).

        Returns
        -------
        positions, velocities : ndarray, shape (gaps, frames, N, 3)
            The path at ``duration_ps · k / frames``, k = 1 … frames (nm, nm/ps).
        miss : ndarray, shape (gaps,)
            RMS distance (nm, per Cartesian component) between the path's end and ``x_b``.
        """
        path, linearize, sub = self._solver(duration_ps, frames)
        gaps, n3 = len(x_a), 3 * len(self.masses)
        v = np.asarray(v_guess, np.float64).reshape(gaps, n3).copy()
        for _ in range(self.iterations):
            end, jac = self._batched(linearize, x_a, v.reshape(x_a.shape))
            jac = jac[:, :n3]
            miss = end[:, :n3] - x_b.reshape(gaps, n3)
            normal = np.einsum("gij,gik->gjk", jac, jac)
            damping = 1e-6 * np.einsum("gii->g", normal)[:, None, None] / n3 * np.eye(n3)
            v -= np.linalg.solve(normal + damping, np.einsum("gij,gi->gj", jac, miss)[..., None])[..., 0]
        xs, vs = self._batched(path, x_a, v.reshape(x_a.shape))
        xs, vs = xs[:, sub - 1::sub], vs[:, sub - 1::sub]
        miss = (xs[:, -1] - x_b).reshape(gaps, n3)
        return xs, vs, np.sqrt(np.mean(miss ** 2, -1))

    def shoot_through(self, positions, v_guess, duration_ps: float, frames: int, position_weight: float = 3.0):
        """Multiple shooting along a whole coarse trajectory: one velocity per kept frame such that every
        gap's path lands on the next kept frame *and* arrives with the velocity the next gap starts with
        (one trajectory of the learned dynamics through all kept frames, in the least-squares sense).

        Two kept frames alone leave a vibration half a period long undetermined (its end point does not
        depend on its start velocity); the velocity continuity with the neighbouring gaps fixes it.
        Gauss–Newton on all velocities at once: the normal equations are block-tridiagonal (sparse).

        Parameters
        ----------
        positions : ndarray, shape (K, N, 3)
            Kept frames (nm), ``duration_ps`` apart.
        v_guess : ndarray, shape (K, N, 3)
            First guess of the velocities at the kept frames (nm/ps).
        position_weight : float
            Weight of a missed kept frame (nm) against a velocity jump × gap length (nm); 3 was chosen on
            validation trajectories (never the test set) for the velocities it gives :meth:`bridge`.

        Returns
        -------
        positions, velocities : ndarray, shape (K − 1, frames, N, 3)
            Each gap's path at ``duration_ps · k / frames``, k = 1 … frames (nm, nm/ps).
        velocities_at_kept : ndarray, shape (K, N, 3)
        """
        import scipy.sparse as sparse
        import scipy.sparse.linalg as sparse_linalg
        path, linearize, sub = self._solver(duration_ps, frames)
        k, n = positions.shape[:2]
        n3, gaps, tau = 3 * n, k - 1, duration_ps
        v = np.asarray(v_guess, np.float64).reshape(k, n3).copy()
        x_a = positions[:-1]
        # sparsity of the stacked residual (position miss, velocity jump) per gap against the velocities
        g, i, j = np.meshgrid(np.arange(gaps), np.arange(n3), np.arange(n3), indexing="ij")
        rows = np.concatenate([(2 * g * n3 + i).ravel(), ((2 * g + 1) * n3 + i).ravel(),
                               ((2 * np.arange(gaps)[:, None] + 1) * n3 + np.arange(n3)[None]).ravel()])
        cols = np.concatenate([(g * n3 + j).ravel(), (g * n3 + j).ravel(),
                               ((np.arange(gaps)[:, None] + 1) * n3 + np.arange(n3)[None]).ravel()])
        for iteration in range(self.iterations):
            start, fresh = v[:-1].reshape(gaps, n, 3), iteration < self.jacobians
            if fresh:
                end, jac = self._batched(linearize, x_a, start)
            else:  # a chord step: the last Jacobian's factorisation, only the path is new
                xs, vs = self._batched(path, x_a, start)
                end = np.concatenate([xs[:, -1].reshape(gaps, n3), vs[:, -1].reshape(gaps, n3)], -1)
            miss = (end[:, :n3] - positions[1:].reshape(gaps, n3)) * position_weight
            jump = (end[:, n3:] - v[1:]) * tau
            residual = np.stack([miss, jump], 1).ravel()
            if fresh:  # later chord steps keep this factorisation
                values = np.concatenate([(jac[:, :n3] * position_weight).ravel(), (jac[:, n3:] * tau).ravel(),
                                         np.full(gaps * n3, -tau)])
                matrix = sparse.csr_matrix((values, (rows, cols)), shape=(2 * gaps * n3, k * n3))
                transpose = matrix.T.tocsr()
                normal = (transpose @ matrix).tocsc()
                damping = 1e-9 * normal.diagonal().mean()
                solve = sparse_linalg.factorized(normal + damping * sparse.identity(k * n3, format="csc"))
            v -= solve(transpose @ residual).reshape(k, n3)
        xs, vs = self._batched(path, x_a, v[:-1].reshape(gaps, n, 3))
        return xs[:, sub - 1::sub], vs[:, sub - 1::sub], v.reshape(k, n, 3)

    def bridge(self, positions, velocities, dt: float, factor: int):
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

        Returns
        -------
        positions, velocities : ndarray, shape ((K − 1) · factor + 1, N, 3)
            The fine trajectory (nm, nm/ps), kept frames included.
        """
        path, _, sub = self._solver(dt, factor)

        def run(x, v):  # the path at the fine frames, the start included: (gaps, factor + 1, N, 3)
            xs, vs = self._batched(path, x, v)
            return (np.concatenate([x[:, None], xs[:, sub - 1::sub]], 1),
                    np.concatenate([v[:, None], vs[:, sub - 1::sub]], 1))

        x_a, v_a, x_b, v_b = positions[:-1], velocities[:-1], positions[1:], velocities[1:]
        forward = run(x_a, v_a)
        back_x, back_v = run(x_b, -v_b)
        backward = back_x[:, ::-1], -back_v[:, ::-1]  # in forward time
        s = np.linspace(0.0, 1.0, factor + 1)[None, :, None, None]
        # cubic Hermite basis on [0, 1] and its derivatives (per unit s; divide by dt for per ps)
        basis = [2 * s ** 3 - 3 * s ** 2 + 1, s ** 3 - 2 * s ** 2 + s, 3 * s ** 2 - 2 * s ** 3, s ** 3 - s ** 2]
        slopes = [6 * s ** 2 - 6 * s, 3 * s ** 2 - 4 * s + 1, 6 * s - 6 * s ** 2, 3 * s ** 2 - 2 * s]
        fine_x, fine_v = 0.0, 0.0
        for px, pv in (forward, backward):
            misses = [x_a - px[:, 0], dt * (v_a - pv[:, 0]), x_b - px[:, -1], dt * (v_b - pv[:, -1])]
            fine_x = fine_x + 0.5 * (px + sum(h * m[:, None] for h, m in zip(basis, misses)))
            fine_v = fine_v + 0.5 * (pv + sum(h * m[:, None] for h, m in zip(slopes, misses)) / dt)
        n = positions.shape[1]
        return (np.concatenate([positions[:1], fine_x[:, 1:].reshape(-1, n, 3)]),
                np.concatenate([velocities[:1], fine_v[:, 1:].reshape(-1, n, 3)]))

    def fill(self, positions, velocities, dt, factor):
        if velocities is not None:  # the file's own velocities: each gap is decided by its two ends
            return self.bridge(positions, velocities, dt, factor)
        # positions only: multiple shooting estimates each kept frame's velocity, then the bridge pins every
        # gap to both ends with them
        _, _, velocities = self.shoot_positions(positions, dt, factor)
        return self.bridge(positions, velocities, dt, factor)

    def shoot_positions(self, positions, dt: float, frames: int):
        """:meth:`shoot_through` kept frames ``dt`` ps apart (nm) from positions alone, the cubic spline's
        velocities as the first guess; returns its paths and the velocities at the kept frames."""
        from scipy.interpolate import CubicSpline
        kept = np.arange(len(positions)) * dt
        return self.shoot_through(positions, CubicSpline(kept, positions, axis=0)(kept, 1), dt, frames)

    def __repr__(self):
        return f"ShootingInterpolator(family={self.step.family!r}, stride={self.step.tau * 1000:g} fs)"
