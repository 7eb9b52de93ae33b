"""Energy rescaling (FlashMD's approach): after each learned stride, scale the internal momenta so that
E_pot (a reference ASE calculator) + E_kin stays at its start value. kJ/mol, nm, nm/ps, Da."""
from __future__ import annotations

import numpy as np

from ..errors import TrajsrError
from ..physics import internal_velocities, kinetic_energy


def calculator_from(name_or_calc):
    """An ASE calculator: one given as is, or ``"gfn2"`` (GFN2-xTB through tblite)."""
    if isinstance(name_or_calc, str):
        if name_or_calc.lower() != "gfn2":
            raise TrajsrError(f"energy rescaling with {name_or_calc!r}: only 'gfn2' is built in; pass an ASE "
                              "calculator object for others")
        import os
        import sys
        if "tblite" not in sys.modules:  # its OpenMP runtime reads this once, when tblite loads
            # beside TensorFlow's thread pools, OpenMP threads contend for the cores: one GFN2-xTB call of
            # ethanol was measured at 484 ms instead of 3 ms pinned to one thread (set it to override)
            os.environ.setdefault("OMP_NUM_THREADS", "1")
        from ..datasets.xtb import gfn2_calculator
        return gfn2_calculator()
    if not hasattr(name_or_calc, "get_potential_energy"):
        raise TrajsrError(f"rescale_energy_with needs an ASE calculator or 'gfn2', got {type(name_or_calc).__name__}")
    return name_or_calc


def rescale_to_kinetic(v, masses, kinetic_target) -> np.ndarray:
    """Velocities (B, N, 3) whose total kinetic energy is ``kinetic_target`` (kJ/mol), by scaling the
    internal part only; unchanged where that is impossible."""
    internal, com = internal_velocities(v, masses)
    k_com = kinetic_energy(np.broadcast_to(com, v.shape), masses)
    k_int = kinetic_energy(internal, masses)
    want = kinetic_target - k_com
    scale = np.where((want > 0) & (k_int > 0), np.sqrt(np.maximum(want, 0) / np.maximum(k_int, 1e-12)), 1.0)
    return internal * scale[:, None, None] + com
