"""Path matching: fit a Hamiltonian propagator's learned potential so that its velocity-Verlet path from
each kept frame (x_a, v_a) arrives at the next one (x_b, v_b) a gap later.

For a file with positions only, the velocities at the kept frames come from multiple shooting with the
current potential (:mod:`trajsr.interpolation.shooting`); the potential then moves to shrink what is left
of the shooting residual (position miss, velocity jump), and the two alternate (:mod:`trajsr.adapt`).
Units: nm, ps, kJ/mol.
"""
from __future__ import annotations

import numpy as np

from ..backend import keras


class PathEnd(keras.layers.Layer):
    """The end (x, v) of ``n_steps`` velocity-Verlet steps of ``h`` ps on ``step``'s learned potential, as
    one (B, 2, N, 3) tensor scaled for the loss: positions by ``position_weight``/``scale`` (nm -> 1),
    velocities by the gap length/``scale``."""

    def __init__(self, step, n_steps: int, h: float, scale: float, position_weight: float = 3.0, **kwargs):
        super().__init__(**kwargs)
        self.step, self.n_steps, self.h = step, int(n_steps), float(h)
        self.scale, self.position_weight = float(scale), float(position_weight)

    def call(self, x, v):
        a = self.step.acceleration(x)
        for _ in range(self.n_steps):  # a few steps: unrolled, so the outer tape differentiates the whole path
            v = v + 0.5 * self.h * a
            x = x + self.h * v
            a = self.step.acceleration(x)
            v = v + 0.5 * self.h * a
        return self.targets(x, v)

    def targets(self, x, v):
        import tensorflow as tf
        duration = self.n_steps * self.h
        return tf.stack([x * (self.position_weight / self.scale), v * (duration / self.scale)], axis=1)


def fit_paths(step, starts, ends, duration_ps: float, *, epochs: int = 50, batch_size: int = 64,
              learning_rate: float = 3e-4, max_minutes=None, seed: int = 0, verbose: int = 0):
    """Train ``step``'s potential (in place) so that the path from each start state lands on its end state.

    Parameters
    ----------
    starts, ends : tuple of ndarray (positions nm, velocities nm/ps), each (gaps, N, 3)
    duration_ps : float
        The gap (ps); integrated in steps no longer than the model's own substep.

    Returns
    -------
    keras.callbacks.History
        Loss: mean squared miss, positions and velocity × gap length, over the RMS displacement in a gap.
    """
    import tensorflow as tf

    from ..training import standard_callbacks
    n_steps = step.substep_count(duration_ps, 1)
    (xa, va), (xb, vb) = starts, ends
    scale = float(np.sqrt(np.mean((xb - xa) ** 2))) or 1.0
    layer = PathEnd(step, n_steps, duration_ps / n_steps, scale, name="path_end")
    x_in, v_in = keras.Input(xa.shape[1:], name="x"), keras.Input(va.shape[1:], name="v")
    net = keras.Model([x_in, v_in], layer(x_in, v_in))
    net.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=1.0), loss="mse", jit_compile=True)
    target = layer.targets(tf.constant(xb, tf.float32), tf.constant(vb, tf.float32)).numpy()
    data = tf.data.Dataset.from_tensor_slices(((xa.astype(np.float32), va.astype(np.float32)), target))
    data = data.shuffle(len(xa), seed=seed).batch(batch_size)
    return net.fit(data, epochs=epochs, verbose=verbose, shuffle=False,
                   callbacks=standard_callbacks("loss", 4, max_minutes))
