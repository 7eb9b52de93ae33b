"""The learned propagator step: (positions, velocities) at t -> the same at t + S·dt, as a Keras layer.

Three families share the interface:

* ``hnn``: a learned potential V(q) on inverse interatomic distances (so invariant to rotation and
  translation) with the exact kinetic energy Σ ½ m v²; integrated by leapfrog in ``substeps`` steps.
  The total energy of the learned Hamiltonian is conserved by construction.
* ``ode``: dx/dt = v, dv/dt = a(x, v) with a learned acceleration, integrated by RK4.
* ``lstm``: an LSTM rolled over ``substeps`` sub-steps predicts the residual over ballistic motion.

``ode`` and ``lstm`` work in a canonical frame: centre of mass removed and the molecule rotated onto a
reference geometry (Kabsch; the rotation carries no gradient), then rotated back.
Units: nm, nm/ps, ps, masses in Da, energies in kJ/mol.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from .dynamics import leapfrog, rk4

#: scale (kJ/mol) of the learned potential's output, so that unit-sized weights give molecular energies
ENERGY_SCALE = 100.0
STEP_STATS = ("x_mean", "x_std", "v_std", "feature_mean", "feature_std", "dx_std", "dv_std")


@keras.saving.register_keras_serializable(package="trajsr")
class PropagatorStep(keras.layers.Layer):
    """Advance a batch of states by one stride of ``factor`` fine steps of ``dt_fs``.

    Parameters
    ----------
    family : {"hnn", "ode", "lstm"}
    masses : list of float
        Atomic masses in Da.
    reference : list
        Canonical geometry (N×3, nm, centred) for ``ode``/``lstm``.
    factor : int
        Fine steps per stride; the stride is ``factor * dt_fs`` fs.
    substeps : int
        Integrator steps per stride.
    metadata : dict
        Elements, units, training record.
    """

    def __init__(self, family, masses, reference, factor, dt_fs, units=128, substeps=10, metadata=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.family, self.factor, self.dt_fs = family, int(factor), float(dt_fs)
        self.units, self.substeps = int(units), int(substeps)
        self.masses_list, self.reference_list = [float(m) for m in masses], np.asarray(reference).tolist()
        self.metadata = dict(metadata or {})
        self.n_atoms = len(self.masses_list)
        self.tau = self.factor * self.dt_fs * 1e-3  # ps per stride
        self.masses = tf.constant(self.masses_list, tf.float32)
        self.reference = tf.constant(self.reference_list, tf.float32)
        n, n3 = self.n_atoms, 3 * self.n_atoms
        pairs = np.triu_indices(n, 1)
        self.pair_i, self.pair_j = tf.constant(pairs[0]), tf.constant(pairs[1])
        act = "softplus" if family == "hnn" else "gelu"
        out = {"hnn": 1, "ode": n3, "lstm": 2 * n3}[family]
        hidden = 1 if family == "lstm" else 2  # the LSTM is the lstm family's first layer
        self.net = [keras.layers.Dense(self.units, activation=act, name=f"dense{i + 1}") for i in range(hidden)]
        self.net.append(keras.layers.Dense(out, name="out", kernel_initializer="zeros", use_bias=family != "hnn"))
        if family == "lstm":
            self.encoder = keras.layers.Dense(2 * self.units, name="encoder")
            self.rnn = keras.layers.LSTM(self.units, return_sequences=False, name="lstm")
        elif family not in ("hnn", "ode"):
            raise ValueError(f"unknown propagator family {family!r}; choose hnn, ode or lstm")

    def build(self, positions_shape, velocities_shape=None):
        n3, n_pairs = 3 * self.n_atoms, self.n_atoms * (self.n_atoms - 1) // 2
        sizes = {"x_mean": n3, "x_std": n3, "v_std": n3, "feature_mean": max(n_pairs, 1),
                 "feature_std": max(n_pairs, 1), "dx_std": n3, "dv_std": n3}
        self.stats = {k: self.add_weight(shape=(sizes[k],), name=k, trainable=False,
                                         initializer="zeros" if k.endswith("mean") else "ones") for k in STEP_STATS}
        width = {"hnn": n_pairs, "ode": 2 * n3, "lstm": self.units}[self.family]
        for layer in self.net:
            layer.build((None, width))
            width = self.units
        if self.family == "lstm":
            self.encoder.build((None, 2 * n3))
            self.rnn.build((None, self.substeps, 1))

    def set_normalization(self, stats: dict) -> None:
        for k in STEP_STATS:
            if k in stats:
                self.stats[k].assign(np.asarray(stats[k], np.float32).reshape(self.stats[k].shape))

    # -- the learned Hamiltonian -----------------------------------------------------------------
    def features(self, q):
        """Inverse interatomic distances (1/nm), normalised: invariant to rotation and translation."""
        d = tf.gather(q, self.pair_i, axis=1) - tf.gather(q, self.pair_j, axis=1)
        inv = 1.0 / tf.sqrt(tf.reduce_sum(d * d, axis=-1) + 1e-6)
        return (inv - self.stats["feature_mean"]) / self.stats["feature_std"]

    def potential(self, q):
        """Learned potential energy (kJ/mol) of positions q (B, N, 3) nm; shape (B,)."""
        h = self.features(q)
        for layer in self.net:
            h = layer(h)
        return h[:, 0] * ENERGY_SCALE

    def kinetic(self, v):
        """Σ ½ m v² in kJ/mol for velocities (B, N, 3) nm/ps."""
        return 0.5 * tf.reduce_sum(self.masses[None, :, None] * v * v, axis=[1, 2])

    def energy(self, q, v):
        """Total energy of the learned Hamiltonian (kJ/mol)."""
        return self.potential(q) + self.kinetic(v)

    def _acceleration_hnn(self, q):
        with tf.GradientTape() as tape:
            tape.watch(q)
            v = tf.reduce_sum(self.potential(q))
        return -tape.gradient(v, q) / self.masses[None, :, None]

    # -- canonical frame ---------------------------------------------------------------------------
    def _frame(self, x):
        w = self.masses / tf.reduce_sum(self.masses)
        com = tf.einsum("bai,a->bi", x, w)[:, None, :]
        h = tf.einsum("bai,a,aj->bij", x - com, self.masses, self.reference)
        s, u, v = tf.linalg.svd(h)
        d = tf.sign(tf.linalg.det(tf.matmul(u, v, transpose_b=True)))
        fix = tf.stack([tf.ones_like(d), tf.ones_like(d), d], axis=-1)[:, None, :]
        rotation = tf.stop_gradient(tf.matmul(u * fix, v, transpose_b=True))
        return tf.stop_gradient(com), rotation

    def call(self, positions, velocities):
        positions = tf.cast(positions, tf.float32)
        velocities = tf.cast(velocities, tf.float32)
        h = self.tau / self.substeps
        if self.family == "hnn":
            # kick-drift-kick on the learned V with the exact kinetic energy
            qs, vs = leapfrog(lambda q: -self._acceleration_hnn(q), lambda v: v, positions, velocities, h,
                              self.substeps)
            return qs[:, -1], vs[:, -1]
        com, rot = self._frame(positions)
        x = tf.matmul(positions - com, rot)
        v = tf.matmul(velocities - self._com_velocity(velocities), rot)
        n3 = 3 * self.n_atoms
        flat = lambda a: tf.reshape(a, (-1, n3))  # noqa: E731
        if self.family == "ode":
            def f(state):
                xs, vs = state[:, :n3], state[:, n3:]
                z = tf.concat([(xs - self.stats["x_mean"]) / self.stats["x_std"], vs / self.stats["v_std"]], -1)
                for layer in self.net:
                    z = layer(z)
                return tf.concat([vs, z * self.stats["dv_std"] / self.tau], -1)
            state = rk4(f, tf.concat([flat(x), flat(v)], -1), 1, self.tau, substeps=self.substeps)[:, 0]
            x_new, v_new = state[:, :n3], state[:, n3:]
        else:
            z = tf.concat([(flat(x) - self.stats["x_mean"]) / self.stats["x_std"], flat(v) / self.stats["v_std"]], -1)
            hc = self.encoder(z)
            phase = tf.tile(tf.reshape(tf.range(1, self.substeps + 1, dtype=tf.float32) / self.substeps,
                                       (1, -1, 1)), [tf.shape(z)[0], 1, 1])
            out = self.rnn(phase, initial_state=[tf.tanh(hc[:, : self.units]), hc[:, self.units:]])
            for layer in self.net:
                out = layer(out)
            x_new = flat(x) + flat(v) * self.tau + out[:, :n3] * self.stats["dx_std"]
            v_new = flat(v) + out[:, n3:] * self.stats["dv_std"]
        shape = (-1, self.n_atoms, 3)
        v_com = self._com_velocity(velocities)
        x_back = tf.matmul(tf.reshape(x_new, shape), rot, transpose_b=True) + com + v_com * self.tau
        v_back = tf.matmul(tf.reshape(v_new, shape), rot, transpose_b=True) + v_com
        return x_back, v_back

    def _com_velocity(self, v):
        w = self.masses / tf.reduce_sum(self.masses)
        return tf.einsum("bai,a->bi", v, w)[:, None, :]

    def get_config(self):
        return {**super().get_config(), "family": self.family, "masses": self.masses_list,
                "reference": self.reference_list, "factor": self.factor, "dt_fs": self.dt_fs,
                "units": self.units, "substeps": self.substeps, "metadata": self.metadata}


@keras.saving.register_keras_serializable(package="trajsr")
class Unroll(keras.layers.Layer):
    """Apply a :class:`PropagatorStep` ``strides`` times; outputs (B, strides, 2·3N): positions and
    velocities × stride (both nm), the quantities the multi-step loss compares."""

    def __init__(self, step: PropagatorStep, strides: int, **kwargs):
        super().__init__(**kwargs)
        self.step, self.strides = step, int(strides)

    def build(self, positions_shape, velocities_shape=None):
        if not self.step.built:
            self.step.build(positions_shape, velocities_shape)

    def call(self, positions, velocities):
        out, x, v = [], positions, velocities
        n3 = 3 * self.step.n_atoms
        for _ in range(self.strides):
            x, v = self.step(x, v)
            out.append(tf.concat([tf.reshape(x, (-1, n3)), tf.reshape(v, (-1, n3)) * self.step.tau], -1))
        return tf.stack(out, axis=1)

    def get_config(self):
        return {**super().get_config(), "step": keras.saving.serialize_keras_object(self.step),
                "strides": self.strides}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["step"] = keras.saving.deserialize_keras_object(config["step"])
        return cls(**config)
