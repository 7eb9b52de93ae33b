"""A toy dynamics family for tests/test_architecture.py: what a new family is, one file's worth of code
(a latent layer and a physical step) and one registry line (the test's fixture adds it)."""
import keras
import tensorflow as tf

from trajsr.dynamics import PropagatorStep


@keras.saving.register_keras_serializable(package="trajsr_test")
class ToyDynamics(keras.layers.Layer):
    """Latent rollout: z_{k+1} = z_k + tanh(W z_k)."""

    def __init__(self, width, family="toy", **kwargs):
        super().__init__(**kwargs)
        self.width, self.family = width, family
        self.dense = keras.layers.Dense(width, activation="tanh")

    state_size = property(lambda self: self.width)

    def build(self, state_shape, steps_shape=None):
        self.dense.build((None, self.width))

    def call(self, state, steps):
        out = []
        for _ in range(steps.shape[1]):
            state = state + self.dense(state)
            out.append(state)
        return tf.stack(out, axis=1)

    def get_config(self):
        return {**super().get_config(), "width": self.width, "family": self.family}


@keras.saving.register_keras_serializable(package="trajsr_test")
class ToyStep(PropagatorStep):
    """Physical step: ballistic motion plus a learned velocity kick."""

    def __init__(self, family="toy", *args, **kwargs):
        super().__init__(family, *args, **kwargs)
        self.net = [keras.layers.Dense(3 * self.n_atoms, name="out")]

    def build_network(self):
        self.net[0].build((None, 6 * self.n_atoms))

    def call(self, positions, velocities):
        x, v, frame = self.to_frame(positions, velocities)
        v = v + self.net[0](tf.concat([x, v], -1)) * self.stats["dv_std"]
        return self.from_frame(x + v * self.stride_ps, v, frame)
