"""Super-resolution: rebuild the frames dropped between kept frames.

The :class:`Interpolator` interface (coarse trajectory + factor -> fine), the physics-free baselines,
training windows, the learned gap layers (a dynamics family rolled forward, and backward for the
bidirectional models), the loaded-model interpolator, streamed upsampling and training.
TensorFlow is imported only by the learned parts.
"""
from .baselines import BASELINES, get_baseline
from .interpolator import Interpolator

_LAZY = {"LearnedInterpolator": "learned", "upsample": "streaming", "upsample_trajectory": "streaming",
         "UpsampleSummary": "streaming", "fit": "train", "build_model": "gap", "gap_layer": "gap",
         "model_names": "names", "training_windows": "windows", "normalization_stats": "windows",
         "to_dataset": "windows", "concatenate_windows": "windows"}
_RENAMED = {"concatenate_windows": "concatenate"}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, _RENAMED.get(name, name))
    raise AttributeError(f"module 'trajsr.interpolation' has no attribute {name!r}")


__all__ = ["Interpolator", "BASELINES", "get_baseline", *_LAZY]
