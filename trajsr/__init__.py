"""trajsr: molecular-dynamics trajectory super-resolution and learned propagators.

Units: nm and ps inside (mdtraj's convention); Å and fs at the edges and in reports.

>>> import trajsr
>>> fine = trajsr.load("datasets/ethanol-gfn2-seed0.h5")
>>> coarse = fine.stride(10)
>>> rebuilt = trajsr.LearnedInterpolator("models/ethanol-gfn2-f10.keras").interpolate(coarse)
>>> trajsr.reconstruction_errors(fine, rebuilt, 10)["mae_angstrom"]

TensorFlow is imported only when a learned model is used (``LearnedInterpolator``, ``Propagator``,
``fit``), so the I/O, baselines and metrics stay light. The code is arranged as ARCHITECTURE.md says:
``dynamics/`` below, ``interpolation/`` and ``propagation/`` on top.
"""
from .errors import TrajsrError
from .interpolation.baselines import get_baseline
from .io import load, save
from .metrics import reconstruction_errors
from .observables import bond_angle_distance, bond_length_distance, vdos, vdos_overlap
from .trajectory import Trajectory

__version__ = "0.1.0"

#: public name -> module that defines it (imported on first use, so TensorFlow loads only when needed)
_LAZY = {"LearnedInterpolator": "interpolation.learned", "ShootingInterpolator": "interpolation.shooting",
         "upsample": "interpolation.streaming",
         "upsample_trajectory": "interpolation.streaming", "fit": "interpolation.train",
         "build_model": "interpolation.gap", "gap_layer": "interpolation.gap",
         "training_windows": "interpolation.windows", "normalization_stats": "interpolation.windows",
         "windows_dataset": "interpolation.windows", "concatenate_windows": "interpolation.windows",
         "reference_geometry": "interpolation.windows", "Interpolator": "interpolation.interpolator",
         "Propagator": "propagation.propagator", "fit_propagator": "propagation.train",
         "load_model": "modelfile"}
_RENAMED = {"windows_dataset": "to_dataset", "concatenate_windows": "concatenate"}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), _RENAMED.get(name, name))
    raise AttributeError(f"module 'trajsr' has no attribute {name!r}")


__all__ = ["Trajectory", "TrajsrError", "load", "save", "get_baseline", "reconstruction_errors", "vdos",
           "vdos_overlap", "bond_length_distance", "bond_angle_distance", *_LAZY]
