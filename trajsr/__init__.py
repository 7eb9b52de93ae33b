"""trajsr: molecular-dynamics trajectory super-resolution and learned propagators.

Units: nm and ps inside (mdtraj's convention); Å and fs at the edges and in reports.

>>> import trajsr
>>> fine = trajsr.load("datasets/ethanol-gfn2-seed0.h5")
>>> coarse = fine.stride(10)
>>> rebuilt = trajsr.LearnedInterpolator("models/ethanol-gfn2-f10.keras").interpolate(coarse)
>>> trajsr.reconstruction_errors(fine, rebuilt, 10)["mae_angstrom"]

TensorFlow is imported only when a learned model is used (``LearnedInterpolator``, ``Propagator``,
``fit``, ``upsample``), so the I/O, baselines and metrics stay light.
"""
from .baselines import get_baseline
from .errors import TrajsrError
from .io import load, save
from .metrics import bond_length_distance, reconstruction_errors, vdos, vdos_overlap
from .trajectory import Trajectory

__version__ = "0.1.0"

_LAZY = {"LearnedInterpolator": "learned", "Propagator": "propagate", "fit": "train",
         "fit_propagator": "train_propagator", "upsample": "upsample", "upsample_trajectory": "upsample",
         "build_model": "interpolate", "load_model": "learned"}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'trajsr' has no attribute {name!r}")


__all__ = ["Trajectory", "TrajsrError", "load", "save", "get_baseline", "reconstruction_errors", "vdos",
           "vdos_overlap", "bond_length_distance", *_LAZY]
