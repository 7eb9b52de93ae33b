"""Recurrent dynamics: an LSTM or plain RNN cell advanced once per fine step."""
from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="trajsr")
class RecurrentDynamics(keras.layers.Layer):
    """LSTM (``cell="lstm"``) or SimpleRNN (``cell="rnn"``) rolled over the steps of a gap.

    The initial state (batch, ``state_size``) is split into the cell's states (h, c for the LSTM).
    Each step's input is the step's baseline frame and phase; the output is the hidden sequence.
    """

    def __init__(self, units: int, cell: str = "lstm", **kwargs):
        super().__init__(**kwargs)
        self.units, self.cell = int(units), cell
        layer = keras.layers.LSTM if cell == "lstm" else keras.layers.SimpleRNN
        self.rnn = layer(self.units, return_sequences=True, name=cell)

    @property
    def state_size(self) -> int:
        return 2 * self.units if self.cell == "lstm" else self.units

    def build(self, initial_state_shape, step_inputs_shape=None):
        self.rnn.build(step_inputs_shape)

    def call(self, initial_state, step_inputs):
        if self.cell == "lstm":
            states = [keras.ops.tanh(initial_state[:, : self.units]), initial_state[:, self.units:]]
        else:
            states = [keras.ops.tanh(initial_state)]
        return self.rnn(step_inputs, initial_state=states)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "cell": self.cell}
