"""Learned interpolators (the gap layers): one dynamics rolled across the gap, forward and (bidirectional) backward.

``GapInterpolator`` is the Keras layer: it encodes the 2K kept frames into a latent state, rolls the
dynamics over the S − 1 dropped frames, decodes a residual over the baseline (spline, or Hermite with
velocities) at each step, and, when bidirectional, does the same from the time-reversed context and
blends the two with weights falling linearly across the gap (the seed paper's recipe). The
normalisation statistics (training data only) and the metadata (factor, dt, context, atoms, elements,
units) live in the layer, so a ``.keras`` file carries everything needed to use it.
"""
from __future__ import annotations

from ..backend import keras
import numpy as np
from keras import ops

from ..dynamics import make_dynamics
from .names import resolve

STATS = ("structure_mean", "structure_std", "displacement_std", "residual_std")
def _renamed(config: dict) -> dict:
    """A layer config with the network width under ``width`` (files before 0.2 called it ``units``)."""
    config = dict(config)
    if "units" in config:
        config["width"] = config.pop("units")
    return config


class GapModel(keras.layers.Layer):
    """What every learned gap model shares: its metadata, the normalisation statistics (training data
    only, stored as non-trainable weights) and the normalised view of a window.

    The network sees each window as its mean structure plus displacements from it; the baseline is
    seen relative to the same mean structure; outputs are residuals in units of ``residual_std``.
    """

    def __init__(self, n_atoms, factor, context, with_velocities=False, width=128, metadata=None, **kwargs):
        super().__init__(**kwargs)
        self.n_atoms, self.factor, self.context = int(n_atoms), int(factor), int(context)
        self.with_velocities, self.width = bool(with_velocities), int(width)
        self.metadata = dict(metadata or {})
        self.n_features = 3 * self.n_atoms * (2 if self.with_velocities else 1)

    def build_stats(self):
        f, n3 = self.n_features, 3 * self.n_atoms
        self.stats = {name: self.add_weight(shape=(n3 if name == "residual_std" else f,), name=name,
                                            initializer="zeros" if name == "structure_mean" else "ones",
                                            trainable=False) for name in STATS}

    def set_normalization(self, stats: dict) -> None:
        """Store statistics computed from training windows (see :func:`trajsr.windows.normalization_stats`)."""
        for name in STATS:
            self.stats[name].assign(np.asarray(stats[name], np.float32))

    def normalize(self, kept, baseline):
        """Kept frames (B, 2K, F) -> displacements (B, 2K, F) and structure (B, 1, F); baseline (B, G, 3N)
        relative to the structure; all in units of the training spreads."""
        n3, st = 3 * self.n_atoms, self.stats
        structure = ops.mean(kept, axis=1, keepdims=True)
        displacement = (kept - structure) / st["displacement_std"]
        base = (baseline - structure[..., :n3]) / st["displacement_std"][:n3]
        return displacement, (structure - st["structure_mean"]) / st["structure_std"], base

    def parts(self, kept, baseline):
        """The prediction (B, G, 3N) nm and what the uncertainty is made of (see :mod:`.uncertainty`):
        ``disagreement`` (B, G, N) nm, the per-atom RMS difference of the forward and backward estimates
        (zero for one-way models), ``correction`` (B, G, N) nm, the per-atom RMS of the model's change to
        the baseline, and ``energy``, ``structure`` (B,), the RMS of the window's displacements and mean
        structure in units of the training spreads (how far the context is from the training data)."""
        residual, disagreement = self.residuals(kept, baseline)
        return self.parts_of(kept, baseline, baseline + residual, disagreement)

    def parts_of(self, kept, baseline, prediction, disagreement):
        """The :meth:`parts` dict for a ``prediction`` (B, G, 3N) whose estimates differ by ``disagreement``."""
        displacement, structure, _ = self.normalize(kept, baseline)
        return {"prediction": prediction,
                "disagreement": self._per_atom(disagreement), "correction": self._per_atom(prediction - baseline),
                "energy": ops.sqrt(ops.mean(ops.square(displacement), axis=(1, 2))),
                "structure": ops.sqrt(ops.mean(ops.square(structure), axis=(1, 2)))}

    def _per_atom(self, x):
        """(B, G, 3N) -> per-atom RMS over the three components (B, G, N)."""
        return ops.sqrt(ops.mean(ops.square(ops.reshape(x, (ops.shape(x)[0], self.factor - 1, self.n_atoms, 3))),
                                 axis=-1))

    def get_config(self):
        return {**super().get_config(), "n_atoms": self.n_atoms, "factor": self.factor, "context": self.context,
                "with_velocities": self.with_velocities, "width": self.width, "metadata": self.metadata}

    @classmethod
    def from_config(cls, config):
        return cls(**_renamed(config))

    def build_from_config(self, config):
        shapes = config.get("shapes_dict")
        if shapes and "context_shape" in shapes:  # files before 0.2 named the kept frames "context"
            shapes = dict(shapes)
            shapes["kept_shape"] = shapes.pop("context_shape")
            config = dict(config, shapes_dict=shapes)
        super().build_from_config(config)


@keras.saving.register_keras_serializable(package="trajsr")
class GapInterpolator(GapModel):
    """Predict the dropped frames of a gap (nm) from its context by rolling a dynamics across it.

    Parameters
    ----------
    family : str
        A registered dynamics family (:data:`trajsr.dynamics.FAMILIES`).
    bidirectional : bool
        Blend a forward rollout from the left with a time-reversed one from the right.
    n_atoms, factor, context : int
        Atoms N, upsampling factor S, kept frames K on each side.
    with_velocities : bool
        Context carries velocities; the baseline is then Hermite.
    width : int
        Width of the encoder, dynamics and decoder.
    solver : {"rk4", "dopri5"}
        ODE solver (family ``ode``).
    metadata : dict
        ``elements``, ``dt_fs`` (fine step, fs), ``reference`` (N×3 canonical geometry, nm), units, ...
    """

    def __init__(self, family, bidirectional, n_atoms, factor, context, with_velocities=False, width=128,
                 solver="rk4", metadata=None, **kwargs):
        super().__init__(n_atoms, factor, context, with_velocities, width, metadata, **kwargs)
        self.family, self.bidirectional, self.solver = family, bool(bidirectional), solver
        self.dynamics = make_dynamics(family, self.width, solver=solver)
        self.encoder = [keras.layers.Dense(2 * self.width, activation="gelu", name="encoder1"),
                        keras.layers.Dense(self.dynamics.state_size, name="encoder2")]
        self.decoder = [keras.layers.Dense(2 * self.width, activation="gelu", name="decoder1"),
                        keras.layers.Dense(3 * self.n_atoms, kernel_initializer="zeros", name="decoder2")]

    def build(self, kept_shape, baseline_shape=None):
        f, n3, g = self.n_features, 3 * self.n_atoms, self.factor - 1
        self.build_stats()
        self.encoder[0].build((None, (2 * self.context + 1) * f))
        self.encoder[1].build((None, 2 * self.width))
        self.dynamics.build((None, self.dynamics.state_size), (None, g, n3 + 1))
        self.decoder[0].build((None, self.dynamics.width + n3 + 1))
        self.decoder[1].build((None, 2 * self.width))

    def _rollout(self, kept, baseline):
        """One direction: kept frames (B, 2K, F) raw, baseline (B, G, 3N) raw -> residual (B, G, 3N) nm."""
        g = self.factor - 1
        displacement, structure, base = self.normalize(kept, baseline)
        ctx = ops.concatenate([displacement, structure], axis=1)
        phase = ops.broadcast_to(ops.reshape(ops.arange(1, g + 1, dtype="float32") / self.factor, (1, g, 1)),
                                 (ops.shape(base)[0], g, 1))
        steps = ops.concatenate([base, phase], axis=-1)
        state = self.encoder[1](self.encoder[0](ops.reshape(ctx, (-1, (2 * self.context + 1) * self.n_features))))
        hidden = self.dynamics(state, steps)
        out = self.decoder[1](self.decoder[0](ops.concatenate([hidden, steps], axis=-1)))
        return out * self.stats["residual_std"]

    def residuals(self, kept, baseline):
        """The blended residual over the baseline (B, G, 3N) nm, and forward minus backward (zero one-way)."""
        residual = self._rollout(kept, baseline)
        if not self.bidirectional:
            return residual, ops.zeros_like(residual)
        reversed_kept = ops.flip(kept, axis=1)
        if self.with_velocities:  # time reversal flips velocities
            n3 = 3 * self.n_atoms
            reversed_kept = ops.concatenate([reversed_kept[..., :n3], -reversed_kept[..., n3:]], -1)
        backward = ops.flip(self._rollout(reversed_kept, ops.flip(baseline, axis=1)), axis=1)
        w = ops.reshape(1.0 - ops.arange(1, self.factor, dtype="float32") / self.factor, (1, -1, 1))
        return w * residual + (1.0 - w) * backward, residual - backward

    def call(self, kept, baseline):
        return baseline + self.residuals(kept, baseline)[0]

    def get_config(self):
        return {**super().get_config(), "family": self.family, "bidirectional": self.bidirectional,
                "solver": self.solver}


@keras.saving.register_keras_serializable(package="trajsr")
class SequenceGapInterpolator(GapModel):
    """A plain ``keras.layers.Bidirectional(LSTM)`` sequence model over the whole window.

    The sequence is K kept frames, the S − 1 baseline frames of the gap, K kept frames, in time order;
    two bidirectional LSTM layers read it and a dense head gives the residual at the gap's frames.
    The comparison the seed paper's rollout Bi-LSTM is measured against.
    """

    def __init__(self, n_atoms, factor, context, with_velocities=False, width=128, metadata=None, **kwargs):
        super().__init__(n_atoms, factor, context, with_velocities, width, metadata, **kwargs)
        self.family, self.bidirectional = "sequence", True
        self.layers_ = [keras.layers.Bidirectional(keras.layers.LSTM(self.width, return_sequences=True),
                                                   name=f"bilstm{i + 1}") for i in range(2)]
        self.head = keras.layers.Dense(3 * self.n_atoms, kernel_initializer="zeros", name="head")

    def build(self, kept_shape, baseline_shape=None):
        self.build_stats()
        length, width = 2 * self.context + self.factor - 1, self.n_features + 3 * self.n_atoms + 1
        self.layers_[0].build((None, length, width))
        self.layers_[1].build((None, length, 2 * self.width))
        self.head.build((None, 2 * self.width))

    def call(self, kept, baseline):
        k, g, n3 = self.context, self.factor - 1, 3 * self.n_atoms
        displacement, structure, base = self.normalize(kept, baseline)
        batch = ops.shape(base)[0]
        zeros = lambda n, w: ops.zeros((batch, n, w))  # noqa: E731
        kept = ops.concatenate([displacement, zeros(2 * k, n3 + 1)], axis=-1)
        gap = ops.concatenate([zeros(g, self.n_features), base, ops.ones((batch, g, 1))], axis=-1)
        sequence = ops.concatenate([kept[:, :k], gap, kept[:, k:]], axis=1)
        sequence = sequence + ops.pad(structure, [[0, 0], [0, 0], [0, n3 + 1]])  # the structure on every step
        hidden = self.layers_[1](self.layers_[0](sequence))
        return baseline + self.head(hidden[:, k: k + g]) * self.stats["residual_std"]

    def residuals(self, kept, baseline):
        """The residual over the baseline (B, G, 3N) nm, and zeros: one network, no two estimates."""
        residual = self.call(kept, baseline) - baseline
        return residual, ops.zeros_like(residual)


def build_model(model: str, *, n_atoms: int, factor: int, context: int = 4, with_velocities: bool = False,
                width: int = 128, solver: str = "rk4", metadata=None, learning_rate: float = 1e-3) -> keras.Model:
    """A compiled ``keras.Model`` for one of :func:`model_names` (``"bilstm"``, ``"ode"``, ..., and
    ``"seqbilstm"``, the plain bidirectional-LSTM sequence model).

    Inputs ``kept`` (2K, F) and ``baseline`` (S − 1, 3N), output the dropped frames (S − 1, 3N),
    all in nm in the canonical frame (see :mod:`trajsr.interpolation.windows`). Loss: MAE; optimiser: Adam.
    """
    family, bidirectional = resolve(model)
    n_features = 3 * n_atoms * (2 if with_velocities else 1)
    kept_in = keras.Input((2 * context, n_features), name="kept")
    baseline_in = keras.Input((factor - 1, 3 * n_atoms), name="baseline")
    metadata = dict(metadata or {}, model=model)
    if family == "sequence":
        layer = SequenceGapInterpolator(n_atoms, factor, context, with_velocities, width, metadata,
                                        name="gap_interpolator")
    else:
        layer = GapInterpolator(family, bidirectional, n_atoms, factor, context, with_velocities, width, solver,
                                metadata=metadata, name="gap_interpolator")
    net = keras.Model({"kept": kept_in, "baseline": baseline_in}, layer(kept_in, baseline_in), name=model)
    net.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mae")
    return net


def gap_layer(model: keras.Model) -> GapModel:
    """The :class:`GapInterpolator` (or :class:`SequenceGapInterpolator`) inside a built or loaded model
    (it holds the metadata)."""
    return model.get_layer("gap_interpolator")


def model_inputs(model: keras.Model, inputs: dict) -> dict:
    """``inputs`` keyed as ``model`` names them (files before 0.2 call the kept frames ``context``)."""
    names = set(model.input) if isinstance(model.input, dict) else {t.name for t in model.inputs}
    return {("context" if key == "kept" and "context" in names else key): value for key, value in inputs.items()}
