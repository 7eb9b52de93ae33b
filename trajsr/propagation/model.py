"""The trainable propagator model: a family's physical step (:mod:`trajsr.dynamics`) unrolled over
several strides (:class:`~trajsr.dynamics.unroll.Unroll`), so the loss sees how errors compound. Units: nm, nm/ps."""
from __future__ import annotations

from ..backend import keras

from ..dynamics import FAMILIES, make_step
from ..dynamics.unroll import Unroll, propagator_step  # noqa: F401 (propagator_step: part of this API)


def propagator_families() -> list:
    """Family names that can be trained as propagators (every registered family)."""
    return list(FAMILIES)


def build_propagator(family, *, masses, reference, factor, dt_fs, strides=4, width=128, substeps=10,
                     metadata=None, learning_rate=1e-3) -> keras.Model:
    """A compiled model that unrolls ``family``'s physical step ``strides`` times (loss: MAE, nm)."""
    n = len(masses)
    step = make_step(family, masses=masses, reference=reference, factor=factor, dt_fs=dt_fs, width=width,
                     substeps=substeps, metadata=dict(metadata or {}, model=family, task="propagate"),
                     name="propagator_step")
    x_in, v_in = keras.Input((n, 3), name="positions"), keras.Input((n, 3), name="velocities")
    net = keras.Model({"positions": x_in, "velocities": v_in}, Unroll(step, strides, name="unroll")(x_in, v_in),
                      name=f"{family}_propagator")
    net.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=1.0), loss="mae")
    return net
