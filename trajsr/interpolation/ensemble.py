"""A small ensemble of gap models in one ``.keras`` file: its weighted mean is the prediction, the spread
of its members the main ingredient of the uncertainty (see :mod:`.uncertainty`).

Members are trained apart (different seeds or widths) on the same molecule, factor, context and reference
geometry; :func:`combine` checks that and copies them into one model with the weights it is given
(:func:`inverse_mse_weights` of the members' validation errors, in :func:`.calibrate.calibrate_model`).
"""
from __future__ import annotations

from ..backend import keras
import numpy as np
from keras import ops

from ..errors import TrajsrError


@keras.saving.register_keras_serializable(package="trajsr")
class EnsembleGapInterpolator(keras.layers.Layer):
    """Gap models (:class:`.gap.GapInterpolator` or :class:`.gap.SequenceGapInterpolator`) run side by side.

    Parameters
    ----------
    members : list of layer configs (serialised) or layers
        The gap models; their metadata, factor, context and atoms must agree.
    weights : list of float, optional
        Weight of each member in the prediction (normalised to sum 1; default equal).
    metadata : dict, optional
        Shared metadata (default: the first member's, with the members' names).
    """

    def __init__(self, members, weights=None, metadata=None, **kwargs):
        super().__init__(**kwargs)
        self.members = [m if isinstance(m, keras.layers.Layer) else keras.saving.deserialize_keras_object(m)
                        for m in members]
        first = self.members[0]
        self.n_atoms, self.factor, self.context = first.n_atoms, first.factor, first.context
        self.with_velocities, self.width, self.family = first.with_velocities, first.width, "ensemble"
        self.bidirectional = all(getattr(m, "bidirectional", True) for m in self.members)
        w = np.ones(len(self.members)) if weights is None else np.asarray(weights, np.float64)
        self.member_weights = (w / w.sum()).tolist()
        self.metadata = dict(metadata or first.metadata)

    def build(self, kept_shape, baseline_shape=None):
        for m in self.members:
            if not m.built:
                m.build(kept_shape, baseline_shape)

    def _member_predictions(self, kept, baseline):
        return [m(kept, baseline) for m in self.members]

    def call(self, kept, baseline):
        return sum(w * p for w, p in zip(self.member_weights, self._member_predictions(kept, baseline)))

    def parts(self, kept, baseline):
        """As :meth:`.gap.GapModel.parts`; ``disagreement`` is the members' weighted spread (per atom, nm)."""
        predictions = self._member_predictions(kept, baseline)
        mean = sum(w * p for w, p in zip(self.member_weights, predictions))
        spread = ops.sqrt(sum(w * ops.square(p - mean) for w, p in zip(self.member_weights, predictions)))
        return self.members[0].parts_of(kept, baseline, mean, spread)

    def get_config(self):
        return {**super().get_config(), "members": [keras.saving.serialize_keras_object(m) for m in self.members],
                "weights": self.member_weights, "metadata": self.metadata}


def combine(models, weights=None, name: str = "ensemble", labels=None) -> keras.Model:
    """One ``keras.Model`` (inputs ``kept``, ``baseline``) averaging trained super-resolution models.

    Parameters
    ----------
    models : list of keras.Model or path
        Trained models of the same molecule, factor, context, inputs and reference geometry.
    weights : list of float, optional
        Prediction weights (e.g. from :func:`inverse_mse_weights`); default equal.
    labels : list of str, optional
        How errors name each model (default: its path).
    """
    from ..modelfile import load_model
    from .gap import gap_layer
    nets = [load_model(m, expect="interpolate") if not isinstance(m, keras.Model) else m for m in models]
    if len(nets) < 2:
        raise TrajsrError("an ensemble needs at least two models")
    layers = [gap_layer(n) for n in nets]
    first = layers[0]
    labels = [m if not isinstance(m, keras.Model) else f"model {i + 1}" for i, m in enumerate(labels or models)]
    for path, layer in zip(labels[1:], layers[1:]):
        for key in ("n_atoms", "factor", "context", "with_velocities"):
            if getattr(layer, key) != getattr(first, key):
                raise TrajsrError(f"{path}: {key} {getattr(layer, key)} differs from the first model's "
                                  f"{getattr(first, key)}; ensemble members must agree")
        if not np.allclose(layer.metadata["reference"], first.metadata["reference"], atol=1e-6):
            raise TrajsrError(f"{path}: another reference geometry than the first model's (its windows would "
                              "be rotated differently); train the members on the same first trajectory")
    members = []
    for i, layer in enumerate(layers):  # fresh copies with unique names, so each member's weights save apart
        config = dict(layer.get_config(), name=f"member{i}")
        copy = type(layer).from_config(config)
        copy.build((None, 2 * first.context, first.n_features), (None, first.factor - 1, 3 * first.n_atoms))
        copy.set_weights(layer.get_weights())
        members.append(copy)
    metadata = dict(first.metadata, model=name,
                    members=[layer.metadata.get("model", "?") + f" (width {layer.width})" for layer in layers])
    metadata.pop("uncertainty", None)  # a member's calibration does not hold for the ensemble
    ensemble = EnsembleGapInterpolator(members, weights, metadata, name="gap_interpolator")
    kept = keras.Input((2 * first.context, first.n_features), name="kept")
    baseline = keras.Input((first.factor - 1, 3 * first.n_atoms), name="baseline")
    return keras.Model({"kept": kept, "baseline": baseline}, ensemble(kept, baseline), name=name)


def inverse_mse_weights(mse) -> list:
    """Weights ∝ 1 / MSE (each member's validation mean squared error): the better member counts more."""
    mse = np.asarray(mse, np.float64)
    return (1.0 / mse / np.sum(1.0 / mse)).tolist()
