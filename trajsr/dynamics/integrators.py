"""Integrators shared by every family: fixed-step RK4, adaptive Dormand–Prince (TFP), leapfrog, and
velocity Verlet on (x, v) with its tangent-linear model (what the propagator rolls and shooting solves).

Each works on any state tensor and stacks the states after each step on axis 1; time runs in whatever
unit ``h`` is given in (kept-frame spacings for the latent rollouts, ps for the physical step).
"""
from __future__ import annotations

from ..backend import tf


def rk4(f, y0, n_steps: int, h: float, substeps: int = 1):
    """Classical Runge–Kutta: the states after each of ``n_steps`` steps of size ``h`` (stacked on axis 1)."""
    out, y, dt = [], y0, h / substeps
    for _ in range(n_steps):
        for _ in range(substeps):
            k1 = f(y)
            k2 = f(y + 0.5 * dt * k1)
            k3 = f(y + 0.5 * dt * k2)
            k4 = f(y + dt * k3)
            y = y + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        out.append(y)
    return tf.stack(out, axis=1)


def dormand_prince(f, y0, times, rtol: float = 1e-5, atol: float = 1e-6):
    """Adaptive Dormand–Prince (``tfp.math.ode.DormandPrince``) from t = 0; states at ``times`` on axis 1.

    TFP differentiates through the solve with the adjoint sensitivity method. TensorFlow Probability
    is imported here only, so nothing else pays for it.
    """
    import tensorflow_probability as tfp
    solver = tfp.math.ode.DormandPrince(rtol=rtol, atol=atol)
    result = solver.solve(lambda t, y: f(y), initial_time=0.0, initial_state=y0, solution_times=times)
    return tf.transpose(result.states, [1, 0] + list(range(2, len(y0.shape) + 1)))


def leapfrog(grad_v, grad_t, q, p, h: float, n_steps: int):
    """Störmer–Verlet (kick–drift–kick) for H = T(p) + V(q); returns stacked q and p after each step.

    ``grad_v(q)`` = ∂V/∂q and ``grad_t(p)`` = ∂T/∂p. Time-reversible: a negative ``h`` runs backwards.
    """
    qs, ps = [], []
    for _ in range(n_steps):
        p = p - 0.5 * h * grad_v(q)
        q = q + h * grad_t(p)
        p = p - 0.5 * h * grad_v(q)
        qs.append(q)
        ps.append(p)
    return tf.stack(qs, axis=1), tf.stack(ps, axis=1)


def leapfrog_final(grad_v, grad_t, q, p, h: float, n_steps: int):
    """As :func:`leapfrog`, returning only the final (q, p): a graph loop rather than ``n_steps`` copies
    of the step, so a compiled rollout is smaller (XLA compiles it several times faster). The force at the
    end of a step is the next step's first kick, carried over: ``n_steps + 1`` evaluations of ``grad_v``,
    not ``2 · n_steps`` (a loop iteration cannot share it the way an unrolled graph's duplicates merge)."""
    def body(i, q, p, g):
        p = p - 0.5 * h * g
        q = q + h * grad_t(p)
        g = grad_v(q)
        return i + 1, q, p - 0.5 * h * g, g
    _, q, p, _ = tf.while_loop(lambda i, q, p, g: i < n_steps, body, (tf.constant(0), q, p, grad_v(q)))
    return q, p


def velocity_verlet(acceleration, x, v, h: float, n_steps):
    """Velocity Verlet: the positions and velocities after each of ``n_steps`` steps of ``h``.

    ``acceleration(x)`` (same shape as ``x``). Returns two tensors of shape (B, n_steps, ...) from a
    ``tf.while_loop`` over a ``TensorArray`` (a graph one step long, so XLA compiles any length at once).
    The same kick–drift–kick as :func:`leapfrog_final`, with each force evaluated once.
    """
    xs = tf.TensorArray(x.dtype, size=n_steps)
    vs = tf.TensorArray(v.dtype, size=n_steps)
    a = acceleration(x)
    for i in tf.range(n_steps):
        v_half = v + 0.5 * h * a
        x = x + h * v_half
        a = acceleration(x)
        v = v_half + 0.5 * h * a
        xs, vs = xs.write(i, x), vs.write(i, v)
    order = [1, 0] + list(range(2, len(x.shape) + 1))
    return tf.transpose(xs.stack(), order), tf.transpose(vs.stack(), order)


def velocity_verlet_tangent(acceleration, acceleration_and_jacobian, x, v, h: float, n_steps):
    """The end of :func:`velocity_verlet` and its Jacobian against the start velocity.

    Carried forward step by step with the tangent equations of the integrator (one Jacobian of the
    acceleration a step): half the work of reverse mode through the whole path, and a graph one step long.

    Parameters
    ----------
    acceleration, acceleration_and_jacobian : callable
        ``q (B, N, 3) -> a (B, N, 3)`` and ``q -> (a, ∂a/∂q (B, 3N, 3N))``.
    x, v : tensor, shape (B, N, 3)
        Start positions and velocities.

    Returns
    -------
    end : tensor, shape (B, 2·3N)
        Final positions then velocities, flattened.
    jacobian : tensor, shape (B, 2·3N, 3N)
        ∂end/∂v₀.
    """
    b, n3 = tf.shape(x)[0], 3 * x.shape[1]
    jx, jv = tf.zeros((b, n3, n3)), tf.eye(n3, batch_shape=[b])  # ∂x/∂v₀, ∂v/∂v₀
    a, ja = acceleration(x), tf.zeros((b, n3, n3))  # ∂a/∂v₀ = ∂a/∂x · ∂x/∂v₀ = 0 at the start
    for _ in tf.range(n_steps):
        v_half, jv_half = v + 0.5 * h * a, jv + 0.5 * h * ja
        x, jx = x + h * v_half, jx + h * jv_half
        a, da = acceleration_and_jacobian(x)
        ja = tf.matmul(da, jx)
        v, jv = v_half + 0.5 * h * a, jv_half + 0.5 * h * ja
    return tf.concat([tf.reshape(x, (b, n3)), tf.reshape(v, (b, n3))], -1), tf.concat([jx, jv], 1)


def gradient(fn, x):
    """∂(Σ fn(x))/∂x through an inner tape, so outer training differentiates through it."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(fn(x))
    return tape.gradient(y, x)
