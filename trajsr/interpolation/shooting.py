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

import numpy as np

from ..errors import TrajsrError
from .interpolator import Interpolator


class ShootingInterpolator(Interpolator):
    """Fill each gap with the learned dynamics path that joins its two kept frames.

    Parameters
    ----------
    step : trajsr.dynamics.PropagatorStep
        A Hamiltonian propagator's step (it has a learned ``potential(q)`` in kJ/mol of nm).
    iterations : int
        Gauss–Newton iterations per gap.
    batch : int
        Gaps solved together (memory: one 3N×3N Jacobian per gap).
    """

    name = "shooting"
    #: velocity continuity couples every gap to its neighbours; its pull fades along the chain, and
    #: streaming overlaps this many kept frames each side
    context = 8

    def __init__(self, step, iterations: int = 4, batch: int = 512):
        if not hasattr(step, "potential"):
            raise TrajsrError(f"shooting needs a Hamiltonian propagator (a learned potential); this one is "
                              f"the {step.family!r} family")
        self.step, self.iterations, self.batch = step, int(iterations), int(batch)
        self.masses = np.asarray(step.masses_list)
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
        if coarse.time is None:
            raise TrajsrError(f"{coarse.source}: shooting integrates in time, and this file has no time: "
                              "give the spacing of its frames with --dt (fs)")

    # -- the compiled path and its Newton step ---------------------------------------------------------
    def _solver(self, n_steps: int, h: float):
        """(path, newton) compiled for ``n_steps`` velocity-Verlet steps of ``h`` ps."""
        key = (n_steps, h)
        if key in self._solvers:
            return self._solvers[key]
        import tensorflow as tf

        from ..dynamics.integrators import gradient
        inverse_mass = tf.constant(1.0 / self.masses, tf.float32)[None, :, None]
        acceleration = lambda q: -gradient(self.step.potential, q) * inverse_mass  # noqa: E731

        def path(x, v):
            a, xs, vs = acceleration(x), [], []
            for _ in range(n_steps):
                v_half = v + 0.5 * h * a
                x = x + h * v_half
                a = acceleration(x)
                v = v_half + 0.5 * h * a
                xs.append(x)
                vs.append(v)
            return tf.stack(xs, 1), tf.stack(vs, 1)  # (B, n_steps, N, 3)

        @tf.function(reduce_retracing=True)
        def newton(x_a, x_b, v):
            b, n3 = tf.shape(x_a)[0], 3 * len(self.masses)
            with tf.GradientTape() as tape:
                tape.watch(v)
                end = tf.reshape(path(x_a, v)[0][:, -1], (b, n3))
            jac = tf.reshape(tape.batch_jacobian(end, v), (b, n3, n3))
            miss = end - tf.reshape(x_b, (b, n3))
            normal = tf.linalg.matmul(jac, jac, transpose_a=True)
            damping = 1e-6 * tf.reduce_mean(tf.linalg.diag_part(normal), -1)[:, None, None] * tf.eye(n3)
            dv = tf.linalg.solve(normal + damping, tf.linalg.matvec(jac, miss, transpose_a=True)[..., None])
            return v - tf.reshape(dv, tf.shape(v)), tf.sqrt(tf.reduce_mean(miss * miss, -1))

        @tf.function(reduce_retracing=True)
        def linearize(x_a, v):
            b, n3 = tf.shape(x_a)[0], 3 * len(self.masses)
            with tf.GradientTape() as tape:
                tape.watch(v)
                xs, vs = path(x_a, v)
                end = tf.concat([tf.reshape(xs[:, -1], (b, n3)), tf.reshape(vs[:, -1], (b, n3))], -1)
            return end, tf.reshape(tape.batch_jacobian(end, v), (b, 2 * n3, n3))

        self._solvers[key] = (tf.function(path, reduce_retracing=True), newton, linearize)
        return self._solvers[key]

    def shoot(self, x_a, x_b, v_guess, duration_ps: float, frames: int):
        """Solve the boundary-value problem for a batch of gaps.

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
        import tensorflow as tf
        substep_ps = self.step.tau / self.step.substeps
        sub = max(1, math.ceil(duration_ps / frames / substep_ps - 1e-9))
        path, newton, _ = self._solver(frames * sub, duration_ps / (frames * sub))
        xs, vs, misses = [], [], []
        for lo in range(0, len(x_a), self.batch):
            a = tf.constant(x_a[lo:lo + self.batch], tf.float32)
            b = tf.constant(x_b[lo:lo + self.batch], tf.float32)
            v = tf.constant(v_guess[lo:lo + self.batch], tf.float32)
            for _ in range(self.iterations):
                v, _ = newton(a, b, v)
            px, pv = path(a, v)
            xs.append(px.numpy()[:, sub - 1::sub])
            vs.append(pv.numpy()[:, sub - 1::sub])
            end = xs[-1][:, -1] - x_b[lo:lo + self.batch]
            misses.append(np.sqrt(np.mean(end.reshape(len(end), -1) ** 2, -1)))
        return np.concatenate(xs).astype(np.float64), np.concatenate(vs).astype(np.float64), np.concatenate(misses)

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
        import tensorflow as tf
        substep_ps = self.step.tau / self.step.substeps
        sub = max(1, math.ceil(duration_ps / frames / substep_ps - 1e-9))
        path, _, linearize = self._solver(frames * sub, duration_ps / (frames * sub))
        k, n = positions.shape[:2]
        n3, gaps, tau = 3 * n, k - 1, duration_ps
        v = np.asarray(v_guess, np.float64).reshape(k, n3).copy()
        x_a = tf.constant(positions[:-1], tf.float32)
        # sparsity of the stacked residual (position miss, velocity jump) per gap against the velocities
        g, i, j = np.meshgrid(np.arange(gaps), np.arange(n3), np.arange(n3), indexing="ij")
        rows = np.concatenate([(2 * g * n3 + i).ravel(), ((2 * g + 1) * n3 + i).ravel(),
                               ((2 * np.arange(gaps)[:, None] + 1) * n3 + np.arange(n3)[None]).ravel()])
        cols = np.concatenate([(g * n3 + j).ravel(), (g * n3 + j).ravel(),
                               ((np.arange(gaps)[:, None] + 1) * n3 + np.arange(n3)[None]).ravel()])
        for _ in range(self.iterations):
            ends, jacobians = [], []
            for lo in range(0, gaps, self.batch):
                hi = min(lo + self.batch, gaps)
                end, jac = linearize(x_a[lo:hi], tf.constant(v[lo:hi].reshape(-1, n, 3), tf.float32))
                ends.append(end.numpy())
                jacobians.append(jac.numpy())
            end, jac = np.concatenate(ends).astype(np.float64), np.concatenate(jacobians).astype(np.float64)
            miss = (end[:, :n3] - positions[1:].reshape(gaps, n3)) * position_weight
            jump = (end[:, n3:] - v[1:]) * tau
            residual = np.stack([miss, jump], 1).ravel()
            values = np.concatenate([(jac[:, :n3] * position_weight).ravel(), (jac[:, n3:] * tau).ravel(),
                                     np.full(gaps * n3, -tau)])
            matrix = sparse.csr_matrix((values, (rows, cols)), shape=(2 * gaps * n3, k * n3))
            normal = (matrix.T @ matrix).tocsc()
            damping = 1e-9 * normal.diagonal().mean()
            step = sparse_linalg.spsolve(normal + damping * sparse.identity(k * n3, format="csc"),
                                         matrix.T @ residual)
            v -= step.reshape(k, n3)
        xs, vs = [], []
        for lo in range(0, gaps, self.batch):
            hi = min(lo + self.batch, gaps)
            px, pv = path(x_a[lo:hi], tf.constant(v[lo:hi].reshape(-1, n, 3), tf.float32))
            xs.append(px.numpy()[:, sub - 1::sub])
            vs.append(pv.numpy()[:, sub - 1::sub])
        return (np.concatenate(xs).astype(np.float64), np.concatenate(vs).astype(np.float64), v.reshape(k, n, 3))

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
        import tensorflow as tf
        substep_ps = self.step.tau / self.step.substeps
        sub = max(1, math.ceil(dt / factor / substep_ps - 1e-9))
        path = self._solver(factor * sub, dt / (factor * sub))[0]

        def run(x, v):  # the path at the fine frames, the start included: (gaps, factor + 1, N, 3)
            xs, vs = [], []
            for lo in range(0, len(x), self.batch):
                px, pv = path(tf.constant(x[lo:lo + self.batch], tf.float32),
                              tf.constant(v[lo:lo + self.batch], tf.float32))
                xs.append(px.numpy()[:, sub - 1::sub])
                vs.append(pv.numpy()[:, sub - 1::sub])
            return (np.concatenate([x[:, None], np.concatenate(xs).astype(np.float64)], 1),
                    np.concatenate([v[:, None], np.concatenate(vs).astype(np.float64)], 1))

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
        from scipy.interpolate import CubicSpline
        n_kept = len(positions)
        # positions only: multiple shooting estimates each kept frame's velocity (first guess: the
        # spline's), then the bridge pins every gap to both ends with them
        guess = CubicSpline(np.arange(n_kept) * dt, positions, axis=0)(np.arange(n_kept) * dt, 1)
        _, _, velocities = self.shoot_through(positions, guess, dt, factor)
        return self.bridge(positions, velocities, dt, factor)

    def __repr__(self):
        return f"ShootingInterpolator(family={self.step.family!r}, stride={self.step.tau * 1000:g} fs)"
