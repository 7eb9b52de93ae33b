"""A family's physical step unrolled over several strides: the layer inside every propagator model
(trained by :mod:`trajsr.propagation`, also read by :mod:`trajsr.interpolation.shooting`). Units: nm, nm/ps."""
from __future__ import annotations

from ..backend import keras
from ..backend import tf

from .step import PropagatorStep


@keras.saving.register_keras_serializable(package="trajsr")
class Unroll(keras.layers.Layer):
    """Apply a :class:`~trajsr.dynamics.PropagatorStep` ``strides`` times; outputs (B, strides, 2·3N):
    positions and velocities × stride (both nm), the quantities the multi-step loss compares."""

    def __init__(self, step: PropagatorStep, strides: int, **kwargs):
        super().__init__(**kwargs)
        self.step, self.strides = step, int(strides)

    def build(self, positions_shape, velocities_shape=None):
        if not self.step.built:
            self.step.build(positions_shape, velocities_shape)

    def compute_output_spec(self, positions, velocities=None):
        # the output's shape is known: building a loaded model need not trace every stride's integrator
        return keras.KerasTensor((positions.shape[0], self.strides, 6 * self.step.n_atoms), dtype="float32")

    def call(self, positions, velocities):
        out, x, v = [], positions, velocities
        n3 = 3 * self.step.n_atoms
        for _ in range(self.strides):
            x, v = self.step(x, v)
            out.append(tf.concat([tf.reshape(x, (-1, n3)), tf.reshape(v, (-1, n3)) * self.step.stride_ps], -1))
        return tf.stack(out, axis=1)

    def get_config(self):
        return {**super().get_config(), "step": keras.saving.serialize_keras_object(self.step),
                "strides": self.strides}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["step"] = keras.saving.deserialize_keras_object(config["step"])
        return cls(**config)


def propagator_step(model: keras.Model) -> PropagatorStep:
    """The physical step inside a built or loaded propagator model; ``ValueError`` if there is none."""
    return model.get_layer("unroll").step
