"""Learned propagators: a family's physical step rolled forward as a surrogate integrator.

The trainable unrolled model, the runner (:class:`Propagator`: replicas, exact centre-of-mass motion,
compiled rollouts), thermostats, the guard, energy rescaling, training, and the ASE adapter
(:mod:`trajsr.ase`). TensorFlow is imported only when a model is built or loaded.
"""
_LAZY = {"Propagator": "propagator", "fit_propagator": "train", "build_propagator": "model",
         "propagator_step": "model", "LearnedDynamics": "ase"}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'trajsr.propagation' has no attribute {name!r}")


__all__ = list(_LAZY)
