"""trajsr: molecular-dynamics trajectory super-resolution and learned propagators.

Units: nm and ps inside (mdtraj's convention); Å and fs at the edges and in reports.

>>> import trajsr
>>> fine = trajsr.load("fine.h5")
>>> coarse = fine.stride(10)
>>> rebuilt = trajsr.get_baseline("spline").interpolate(coarse, 10)
>>> trajsr.reconstruction_errors(fine, rebuilt, 10)["mae_angstrom"]
"""
from .baselines import get_baseline
from .errors import TrajsrError
from .io import load, save
from .metrics import bond_length_distance, reconstruction_errors, vdos, vdos_overlap
from .trajectory import Trajectory

__version__ = "0.1.0"
__all__ = ["Trajectory", "TrajsrError", "load", "save", "get_baseline", "reconstruction_errors", "vdos",
           "vdos_overlap", "bond_length_distance"]
