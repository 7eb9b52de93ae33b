"""Recurrent family: an LSTM (``lstm``) or plain RNN (``rnn``) cell advanced once per (sub)step.

* latent (:class:`RecurrentDynamics`): the cell rolled over the fine steps of a gap, its input the
  step's baseline frame and phase.
* physical (:class:`RecurrentStep`): in the canonical frame, the cell rolled over ``substeps`` phases
  from an encoding of (x, v) predicts the residual over ballistic motion x + v·τ; nm, nm/ps, ps.
"""
from __future__ import annotations

from ..backend import keras
from ..backend import tf

from .step import PropagatorStep

CELLS = {"lstm": keras.layers.LSTM, "rnn": keras.layers.SimpleRNN}


def _initial_states(cell, state, width):
    """Split an encoded state into the cell's states (h, c for the LSTM; h for the RNN)."""
    if cell == "lstm":
        return [keras.ops.tanh(state[:, :width]), state[:, width:]]
    return [keras.ops.tanh(state)]


@keras.saving.register_keras_serializable(package="trajsr")
class RecurrentDynamics(keras.layers.Layer):
    """LSTM (``family="lstm"``) or SimpleRNN (``family="rnn"``) rolled over the steps of a gap.

    The initial state (batch, ``state_size``) is split into the cell's states (h, c for the LSTM).
    """

    def __init__(self, width: int, family: str = "lstm", **kwargs):
        kwargs.pop("cell", None)  # the family names the cell
        super().__init__(**kwargs)
        self.width, self.family = int(width), family
        self.rnn = CELLS[family](self.width, return_sequences=True, name=family)

    @property
    def state_size(self) -> int:
        return 2 * self.width if self.family == "lstm" else self.width

    def build(self, initial_state_shape, step_inputs_shape=None):
        self.rnn.build(step_inputs_shape)

    def call(self, initial_state, step_inputs):
        return self.rnn(step_inputs, initial_state=_initial_states(self.family, initial_state, self.width))

    def get_config(self):
        return {**super().get_config(), "width": self.width, "family": self.family}


@keras.saving.register_keras_serializable(package="trajsr")
class RecurrentStep(PropagatorStep):
    """Residual over ballistic motion from a recurrent cell rolled over the sub-steps of a stride."""

    def __init__(self, family="lstm", *args, **kwargs):
        super().__init__(family, *args, **kwargs)
        n3 = 3 * self.n_atoms
        state = 2 * self.width if family == "lstm" else self.width
        self.encoder = keras.layers.Dense(state, name="encoder")
        self.rnn = CELLS[family](self.width, return_sequences=False, name=family)
        self.net = [keras.layers.Dense(self.width, activation="gelu", name="dense1"),
                    keras.layers.Dense(2 * n3, name="out", kernel_initializer="zeros")]

    def build_network(self):
        for layer in self.net:
            layer.build((None, self.width))
        self.encoder.build((None, 6 * self.n_atoms))
        self.rnn.build((None, self.substeps, 1))

    def call(self, positions, velocities):
        positions, velocities = tf.cast(positions, tf.float32), tf.cast(velocities, tf.float32)
        x, v, frame = self.to_frame(positions, velocities)
        n3, st = 3 * self.n_atoms, self.stats
        z = tf.concat([(x - st["x_mean"]) / st["x_std"], v / st["v_std"]], -1)
        phase = tf.tile(tf.reshape(tf.range(1, self.substeps + 1, dtype=tf.float32) / self.substeps, (1, -1, 1)),
                        [tf.shape(z)[0], 1, 1])
        out = self.rnn(phase, initial_state=_initial_states(self.family, self.encoder(z), self.width))
        for layer in self.net:
            out = layer(out)
        x_new = x + v * self.stride_ps + out[:, :n3] * st["dx_std"]
        v_new = v + out[:, n3:] * st["dv_std"]
        return self.from_frame(x_new, v_new, frame)
