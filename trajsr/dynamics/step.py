"""The physical step every family gives the propagator: (x, v) at t -> (x, v) at t + S·dt.

:class:`PropagatorStep` holds what all families share: masses, the canonical reference geometry, the
stride, the normalisation statistics (training data only, non-trainable weights) and the canonical
frame (centre of mass removed, Kabsch-rotated onto the reference, rotation without gradient). Each
family file subclasses it with its network (:meth:`build_network`) and its integrator (:meth:`call`).
Units: nm, nm/ps, ps, masses in Da, energies in kJ/mol.
"""
from __future__ import annotations

from ..backend import keras
import numpy as np
from ..backend import tf

from ..geometry import center_of_mass_tf, kabsch_rotation_tf
from ..units import PS_PER_FS

STEP_STATS = ("x_mean", "x_std", "v_std", "feature_mean", "feature_std", "dx_std", "dv_std")


@keras.saving.register_keras_serializable(package="trajsr")
class PropagatorStep(keras.layers.Layer):
    """Advance a batch of states by one stride of ``factor`` fine steps of ``dt_fs``.

    Build one with :func:`trajsr.dynamics.make_step`; loading a saved ``PropagatorStep`` returns the
    subclass its ``family`` names.

    Parameters
    ----------
    family : str
        Registered family name.
    masses : list of float
        Atomic masses in Da.
    reference : list
        Canonical geometry (N×3, nm, centred).
    factor : int
        Fine steps per stride; the stride is ``factor * dt_fs`` fs.
    dt_fs : float
        Fine time step of the training data, fs.
    width : int
        Width of the network.
    substeps : int
        Integrator steps per stride.
    metadata : dict
        Elements, physical units, training record.
    """

    #: whether the step integrates a learned potential ``potential(q)`` (kJ/mol): what force matching
    #: fits and multiple shooting integrates (a capability, declared by the family's step)
    has_potential = False

    def __init__(self, family, masses, reference, factor, dt_fs, width=128, substeps=10, metadata=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.family, self.factor, self.dt_fs = family, int(factor), float(dt_fs)
        self.width, self.substeps = int(width), int(substeps)
        self.masses_list, self.reference_list = [float(m) for m in masses], np.asarray(reference).tolist()
        self.metadata = dict(metadata or {})
        self.n_atoms = len(self.masses_list)
        self.stride_ps = self.factor * self.dt_fs * PS_PER_FS  # ps per stride
        self.masses = tf.constant(self.masses_list, tf.float32)
        self.reference = tf.constant(self.reference_list, tf.float32)

    @property
    def tau(self) -> float:
        """The earlier name of :attr:`stride_ps` (ps), kept for families written against it."""
        return self.stride_ps

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "units" in config:  # files saved before the width was called width
            config["width"] = config.pop("units")
        if cls is PropagatorStep:  # a file names the base class: build the family's subclass
            from .registry import get_family
            cls = get_family(config["family"]).step
        return cls(**config)

    def build(self, positions_shape, velocities_shape=None):
        n3, n_pairs = 3 * self.n_atoms, self.n_atoms * (self.n_atoms - 1) // 2
        sizes = {"x_mean": n3, "x_std": n3, "v_std": n3, "feature_mean": max(n_pairs, 1),
                 "feature_std": max(n_pairs, 1), "dx_std": n3, "dv_std": n3}
        self.stats = {k: self.add_weight(shape=(sizes[k],), name=k, trainable=False,
                                         initializer="zeros" if k.endswith("mean") else "ones") for k in STEP_STATS}
        self.build_network()

    def build_network(self) -> None:
        """Build the family's layers (called once the statistics exist)."""
        raise NotImplementedError

    def set_normalization(self, stats: dict) -> None:
        """Store statistics from training data (see :func:`trajsr.propagation.train.propagator_stats`)."""
        for k in STEP_STATS:
            if k in stats:
                self.stats[k].assign(np.asarray(stats[k], np.float32).reshape(self.stats[k].shape))

    # -- the canonical frame shared by the families that need one -----------------------------------
    def to_frame(self, positions, velocities):
        """Positions and internal velocities in the canonical frame, flattened to (B, 3N), and the
        ``frame`` (com, rotation, com velocity) that :meth:`from_frame` needs."""
        com = tf.stop_gradient(center_of_mass_tf(positions, self.masses))
        rotation = kabsch_rotation_tf(positions - com, self.reference, self.masses)
        v_com = center_of_mass_tf(velocities, self.masses)
        n3 = 3 * self.n_atoms
        x = tf.reshape(tf.matmul(positions - com, rotation), (-1, n3))
        v = tf.reshape(tf.matmul(velocities - v_com, rotation), (-1, n3))
        return x, v, (com, rotation, v_com)

    def from_frame(self, x, v, frame):
        """Undo :meth:`to_frame` one stride later: the centre of mass moves ballistically."""
        com, rotation, v_com = frame
        shape = (-1, self.n_atoms, 3)
        x_back = tf.matmul(tf.reshape(x, shape), rotation, transpose_b=True) + com + v_com * self.stride_ps
        v_back = tf.matmul(tf.reshape(v, shape), rotation, transpose_b=True) + v_com
        return x_back, v_back

    def call(self, positions, velocities):
        """(B, N, 3) nm and nm/ps at t -> the same at t + stride."""
        raise NotImplementedError

    def get_config(self):
        return {**super().get_config(), "family": self.family, "masses": self.masses_list,
                "reference": self.reference_list, "factor": self.factor, "dt_fs": self.dt_fs,
                "width": self.width, "substeps": self.substeps, "metadata": self.metadata}
