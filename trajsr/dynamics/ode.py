"""Neural-ODE family: a learned vector field integrated by RK4 (fixed step) or TFP's Dormand–Prince.

* latent (:class:`ODEDynamics`): dz/dt = f(z), f a two-layer tanh MLP; ``solver="dopri5"`` uses the
  adaptive solver with adjoint gradients, ``"rk4"`` one fixed step per fine frame.
* physical (:class:`ODEStep`): dx/dt = v, dv/dt = a(x, v) with a learned acceleration, in the
  canonical frame, RK4 with ``substeps`` steps per stride; nm, nm/ps, ps.
"""
from __future__ import annotations

from ..backend import keras
from ..backend import tf

from .integrators import dormand_prince, rk4
from .step import PropagatorStep

SOLVERS = ("rk4", "dopri5")


@keras.saving.register_keras_serializable(package="trajsr")
class ODEDynamics(keras.layers.Layer):
    """A latent neural ODE read out at each fine step of a gap (time in kept-frame spacings).

    Parameters
    ----------
    width : int
        Latent size.
    solver : {"rk4", "dopri5"}
        Fixed-step RK4 (one step per fine frame) or adaptive Dormand–Prince.
    """

    def __init__(self, width: int, solver: str = "rk4", family: str = "ode", **kwargs):
        super().__init__(**kwargs)
        if solver not in SOLVERS:
            raise ValueError(f"unknown ODE solver {solver!r}; choose from {', '.join(SOLVERS)}")
        self.width, self.solver, self.family = int(width), solver, family
        self.f1 = keras.layers.Dense(self.width, activation="tanh", name="f1")
        self.f2 = keras.layers.Dense(self.width, name="f2", kernel_initializer="zeros")

    @property
    def state_size(self) -> int:
        return self.width

    def build(self, initial_state_shape, step_inputs_shape=None):
        self.f1.build((None, self.width))
        self.f2.build((None, self.width))

    def derivative(self, z):
        return self.f2(self.f1(z))

    def call(self, initial_state, step_inputs):
        n_steps = step_inputs.shape[1]
        h = 1.0 / (n_steps + 1)
        if self.solver == "dopri5":
            times = tf.range(1, n_steps + 1, dtype=initial_state.dtype) * h
            return dormand_prince(self.derivative, initial_state, times)
        return rk4(self.derivative, initial_state, n_steps, h)

    def get_config(self):
        return {**super().get_config(), "width": self.width, "solver": self.solver, "family": self.family}


@keras.saving.register_keras_serializable(package="trajsr")
class ODEStep(PropagatorStep):
    """dx/dt = v, dv/dt = learned acceleration (normalised by the training spread of Δv per stride)."""

    def __init__(self, family="ode", *args, **kwargs):
        super().__init__(family, *args, **kwargs)
        self.net = [keras.layers.Dense(self.width, activation="gelu", name=f"dense{i + 1}") for i in range(2)]
        self.net.append(keras.layers.Dense(3 * self.n_atoms, name="out", kernel_initializer="zeros"))

    def build_network(self):
        width = 6 * self.n_atoms
        for layer in self.net:
            layer.build((None, width))
            width = self.width

    def call(self, positions, velocities):
        positions, velocities = tf.cast(positions, tf.float32), tf.cast(velocities, tf.float32)
        x, v, frame = self.to_frame(positions, velocities)
        n3, st = 3 * self.n_atoms, self.stats

        def field(state):
            xs, vs = state[:, :n3], state[:, n3:]
            z = tf.concat([(xs - st["x_mean"]) / st["x_std"], vs / st["v_std"]], -1)
            for layer in self.net:
                z = layer(z)
            return tf.concat([vs, z * st["dv_std"] / self.stride_ps], -1)
        state = rk4(field, tf.concat([x, v], -1), 1, self.stride_ps, substeps=self.substeps)[:, 0]
        return self.from_frame(state[:, :n3], state[:, n3:], frame)
