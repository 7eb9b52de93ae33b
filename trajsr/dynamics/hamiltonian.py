"""Hamiltonian family: a learned separable H = T + V integrated by symplectic leapfrog, so the learned
energy is conserved (to the integrator's bounded error) by construction.

* latent (:class:`HamiltonianDynamics`): state = (q, p); V(q) and T(p) are softplus MLPs.
* physical (:class:`HamiltonianStep`): V on inverse interatomic distances (invariant to rotation and
  translation) plus the exact kinetic energy Σ ½ m v²; kJ/mol, nm, nm/ps.
"""
from __future__ import annotations

from ..backend import keras
import numpy as np
from ..backend import tf

from .integrators import gradient, leapfrog, leapfrog_final, velocity_verlet, velocity_verlet_tangent
from .step import PropagatorStep

#: scale (kJ/mol) of the learned potential's output, so that unit-sized weights give molecular energies
ENERGY_SCALE = 100.0


@keras.saving.register_keras_serializable(package="trajsr")
class HamiltonianDynamics(keras.layers.Layer):
    """Latent Hamiltonian network: state = (q, p), each ``width // 2`` wide.

    V(q) and T(p) are softplus MLPs (``hidden`` wide) with scalar output; their gradients come from an
    inner tape, so training differentiates through the leapfrog steps.
    """

    def __init__(self, width: int, hidden: int | None = None, family: str = "hnn", **kwargs):
        super().__init__(**kwargs)
        self.width, self.family = int(width) // 2 * 2, family
        self.hidden = int(hidden or max(self.width, 32))
        self.half = self.width // 2
        self.v_net = [keras.layers.Dense(self.hidden, activation="softplus", name="v1"),
                      keras.layers.Dense(1, use_bias=False, name="v2")]
        self.t_net = [keras.layers.Dense(self.hidden, activation="softplus", name="t1"),
                      keras.layers.Dense(1, use_bias=False, name="t2")]

    @property
    def state_size(self) -> int:
        return self.width

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

    def call(self, initial_state, step_inputs):
        n_steps = step_inputs.shape[1]
        h = 1.0 / (n_steps + 1)
        q, p = initial_state[:, : self.half], initial_state[:, self.half:]
        qs, ps = leapfrog(lambda x: gradient(self.potential, x), lambda x: gradient(self.kinetic, x),
                          q, p, h, n_steps)
        return tf.concat([qs, ps], axis=-1)

    def get_config(self):
        return {**super().get_config(), "width": self.width, "hidden": self.hidden, "family": self.family}


@keras.saving.register_keras_serializable(package="trajsr")
class HamiltonianStep(PropagatorStep):
    """Kick–drift–kick on a learned potential V(q) with the exact kinetic energy, ``substeps`` per stride."""

    has_potential = True

    def __init__(self, family="hnn", *args, **kwargs):
        super().__init__(family, *args, **kwargs)
        pairs = np.triu_indices(self.n_atoms, 1)
        self.pair_i, self.pair_j = tf.constant(pairs[0]), tf.constant(pairs[1])
        incidence = np.zeros((len(pairs[0]), self.n_atoms), np.float32)  # +1 at a pair's i, −1 at its j
        incidence[np.arange(len(pairs[0])), pairs[0]], incidence[np.arange(len(pairs[0])), pairs[1]] = 1.0, -1.0
        self.incidence = tf.constant(incidence)
        self.net = [keras.layers.Dense(self.width, activation="softplus", name=f"dense{i + 1}") for i in range(2)]
        self.net.append(keras.layers.Dense(1, name="out", kernel_initializer="zeros", use_bias=False))

    def build_network(self):
        width = max(self.n_atoms * (self.n_atoms - 1) // 2, 1)
        for layer in self.net:
            layer.build((None, width))
            width = self.width

    def pair_vectors(self, q):
        """Each atom pair's difference vector d (B, pairs, 3) nm and inverse distance 1/|d| (B, pairs) 1/nm
        (softened by 1e-6 nm² so that coinciding atoms stay finite)."""
        d = tf.gather(q, self.pair_i, axis=1) - tf.gather(q, self.pair_j, axis=1)
        return d, 1.0 / tf.sqrt(tf.reduce_sum(d * d, axis=-1) + 1e-6)

    def features(self, q):
        """Inverse interatomic distances (1/nm), normalised: invariant to rotation and translation."""
        return (self.pair_vectors(q)[1] - self.stats["feature_mean"]) / self.stats["feature_std"]

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

    def acceleration(self, q):
        """−∇V/m (nm/ps²) at positions q (B, N, 3) nm."""
        inverse_mass = tf.constant(1.0 / np.asarray(self.masses_list), tf.float32)[None, :, None]
        return -gradient(self.potential, q) * inverse_mass

    def acceleration_and_jacobian(self, q):
        """The acceleration (B, N, 3) nm/ps² and its Jacobian ∂a/∂q (B, 3N, 3N) 1/ps² (the learned Hessian
        over the masses): what shooting linearises the path with.

        Exact, by the chain rule written out: the features' Jacobian carried forward through the softplus
        layers, the curvature of each layer and of the inverse distances added on the way back. On ethanol
        about 1.5× faster than 3N reverse passes through everything (``tape.batch_jacobian``), which
        tests/test_propagator.py checks it against. It relies on the network :meth:`__init__` builds
        (softplus layers, then a linear output without bias).
        """
        n, n3 = self.n_atoms, 3 * self.n_atoms
        b = tf.shape(q)[0]
        d, inv = self.pair_vectors(q)
        std = self.stats["feature_std"]
        # ∂feature/∂q: (B, pairs, 3N), nonzero at the pair's two atoms
        d_feature = -d * (inv ** 3 / std)[..., None]
        jacobian = tf.reshape(tf.einsum("ka,bkx->bkax", self.incidence, d_feature), (b, -1, n3))
        h, pre, tangents = (inv - self.stats["feature_mean"]) / std, [], []
        for layer in self.net[:-1]:  # softplus layers: z = h W + c, h' = softplus(z)
            z = tf.matmul(h, layer.kernel) + layer.bias
            tangent = tf.einsum("bki,kw->biw", jacobian, layer.kernel)  # ∂z/∂q (B, 3N, width)
            pre.append(z)
            tangents.append(tangent)
            h, jacobian = tf.nn.softplus(z), tf.transpose(tangent * tf.sigmoid(z)[:, None, :], [0, 2, 1])
        adjoint = tf.broadcast_to(self.net[-1].kernel[:, 0] * ENERGY_SCALE, tf.shape(h))  # ∂V/∂h, kJ/mol
        hessian = tf.zeros((b, n3, n3))
        for layer, z, tangent in zip(self.net[-2::-1], pre[::-1], tangents[::-1]):
            slope = tf.sigmoid(z)  # softplus' ; softplus'' = slope (1 − slope)
            hessian += tf.einsum("biw,bw,bjw->bij", tangent, slope * (1.0 - slope) * adjoint, tangent)
            adjoint = tf.matmul(adjoint * slope, layer.kernel, transpose_b=True)
        dv_feature = adjoint / std  # ∂V/∂(1/r) per pair
        gradient_q = tf.reshape(tf.einsum("bk,ka,bkx->bax", dv_feature * -(inv ** 3), self.incidence, d), (b, n3))
        # curvature of 1/r: (3 d dᵀ / r² − I) / r³, on the pair's (i, i), (j, j), (i, j), (j, i) blocks
        block = (3.0 * d[..., :, None] * d[..., None, :] * (inv ** 2)[..., None, None] - tf.eye(3)) \
            * (dv_feature * inv ** 3)[..., None, None]
        hessian += tf.reshape(tf.einsum("ka,kc,bkxy->baxcy", self.incidence, self.incidence, block), (b, n3, n3))
        inverse_mass = tf.constant(np.repeat(1.0 / np.asarray(self.masses_list), 3), tf.float32)
        return (tf.reshape(-gradient_q * inverse_mass, (b, n, 3)), -hessian * inverse_mass[None, :, None])

    def substep_count(self, duration_ps: float, frames: int) -> int:
        """Velocity-Verlet steps per frame for ``frames`` frames over ``duration_ps``: steps no longer than
        the model's own substep (``stride_ps / substeps``), so one propagator fills any spacing."""
        substep_ps = self.stride_ps / self.substeps
        return max(1, int(np.ceil(duration_ps / frames / substep_ps - 1e-9)))

    def path(self, x, v, h: float, n_steps):
        """``n_steps`` velocity-Verlet steps of ``h`` ps from (x, v) (B, N, 3) nm, nm/ps: positions and
        velocities after each step, (B, n_steps, N, 3). The motion :meth:`call` makes, every step kept."""
        return velocity_verlet(self.acceleration, x, v, h, n_steps)

    def linearize(self, x, v, h: float, n_steps):
        """The end of :meth:`path` (B, 2·3N) and its Jacobian against the start velocity (B, 2·3N, 3N)
        (see :func:`~.integrators.velocity_verlet_tangent`)."""
        return velocity_verlet_tangent(self.acceleration, self.acceleration_and_jacobian, x, v, h, n_steps)

    def call(self, positions, velocities):
        """One stride: ``substeps`` velocity-Verlet steps on :meth:`acceleration` (the motion of :meth:`path`,
        only the end kept)."""
        positions, velocities = tf.cast(positions, tf.float32), tf.cast(velocities, tf.float32)
        return leapfrog_final(lambda q: -self.acceleration(q), lambda v: v, positions, velocities,
                              self.stride_ps / self.substeps, self.substeps)

