"""ASE integrator with a learned propagator (``trajsr.ase.LearnedDynamics``); it lives in
:mod:`trajsr.propagation.ase`, this module keeps the public import path."""
from .propagation.ase import LearnedDynamics

__all__ = ["LearnedDynamics"]
