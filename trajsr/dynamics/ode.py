"""Neural ODE dynamics: dz/dt = f(z), integrated by TFP's Dormand–Prince (adjoint gradients) or by
fixed-step RK4 (faster, plain backprop)."""
from __future__ import annotations

import keras
import tensorflow as tf


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

    TFP differentiates through the solve with the adjoint sensitivity method.
    """
    import tensorflow_probability as tfp
    solver = tfp.math.ode.DormandPrince(rtol=rtol, atol=atol)
    result = solver.solve(lambda t, y: f(y), initial_time=0.0, initial_state=y0, solution_times=times)
    return tf.transpose(result.states, [1, 0] + list(range(2, len(y0.shape) + 1)))


@keras.saving.register_keras_serializable(package="trajsr")
class ODEDynamics(keras.layers.Layer):
    """A latent neural ODE: f is a two-layer tanh MLP; the state is read out at each fine step.

    Parameters
    ----------
    units : int
        Latent size.
    solver : {"rk4", "dopri5"}
        Fixed-step RK4 (one step per fine frame) or adaptive Dormand–Prince.
    """

    def __init__(self, units: int, solver: str = "rk4", **kwargs):
        super().__init__(**kwargs)
        self.units, self.solver = int(units), solver
        self.f1 = keras.layers.Dense(self.units, activation="tanh", name="f1")
        self.f2 = keras.layers.Dense(self.units, name="f2", kernel_initializer="zeros")

    @property
    def state_size(self) -> int:
        return self.units

    def build(self, initial_state_shape, step_inputs_shape=None):
        self.f1.build((None, self.units))
        self.f2.build((None, self.units))

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
        return {**super().get_config(), "units": self.units, "solver": self.solver}
