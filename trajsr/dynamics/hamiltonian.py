"""Hamiltonian dynamics: a learned separable H(q, p) = T(p) + V(q), integrated by symplectic leapfrog,
so the learned energy is conserved (to the integrator's bounded error) by construction."""
from __future__ import annotations

import keras
import tensorflow as tf


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


@keras.saving.register_keras_serializable(package="trajsr")
class HamiltonianDynamics(keras.layers.Layer):
    """Latent Hamiltonian network: state = (q, p), each ``units // 2`` wide.

    V(q) and T(p) are softplus MLPs (``hidden`` wide) with scalar output; their gradients come from an inner
    ``tf.GradientTape``, so training differentiates through the leapfrog steps.
    """

    def __init__(self, units: int, hidden: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units) // 2 * 2
        self.hidden = int(hidden or max(self.units, 32))
        half = self.units // 2
        self.v_net = [keras.layers.Dense(self.hidden, activation="softplus", name="v1"),
                      keras.layers.Dense(1, use_bias=False, name="v2")]
        self.t_net = [keras.layers.Dense(self.hidden, activation="softplus", name="t1"),
                      keras.layers.Dense(1, use_bias=False, name="t2")]
        self.half = half

    @property
    def state_size(self) -> int:
        return self.units

    def build(self, initial_state_shape, step_inputs_shape=None):
        for net in (self.v_net, self.t_net):
            net[0].build((None, self.half))
            net[1].build((None, self.hidden))

    def potential(self, q):
        return self.v_net[1](self.v_net[0](q))

    def kinetic(self, p):
        # the learned T plus a small quadratic keeps the momenta's motion well-posed at the start
        return self.t_net[1](self.t_net[0](p)) + 0.5 * tf.reduce_sum(p * p, axis=-1, keepdims=True)

    def hamiltonian(self, q, p):
        return self.potential(q) + self.kinetic(p)

    def _grad(self, fn, x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(fn(x))
        return tape.gradient(y, x)

    def call(self, initial_state, step_inputs):
        n_steps = step_inputs.shape[1]
        h = 1.0 / (n_steps + 1)
        q, p = initial_state[:, : self.half], initial_state[:, self.half:]
        qs, ps = leapfrog(lambda x: self._grad(self.potential, x), lambda x: self._grad(self.kinetic, x),
                          q, p, h, n_steps)
        return tf.concat([qs, ps], axis=-1)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "hidden": self.hidden}
