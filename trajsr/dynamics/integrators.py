"""Integrators shared by every family: fixed-step RK4, adaptive Dormand–Prince (TFP), leapfrog.

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
    of the step, so a compiled rollout is smaller (XLA compiles it several times faster)."""
    def body(i, q, p):
        p = p - 0.5 * h * grad_v(q)
        q = q + h * grad_t(p)
        return i + 1, q, p - 0.5 * h * grad_v(q)
    _, q, p = tf.while_loop(lambda i, q, p: i < n_steps, body, (tf.constant(0), q, p))
    return q, p


def gradient(fn, x):
    """∂(Σ fn(x))/∂x through an inner tape, so outer training differentiates through it."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(fn(x))
    return tape.gradient(y, x)
