"""Unit conventions.

Inside trajsr everything is in mdtraj's units: positions in nm, velocities in nm/ps, time in ps.
Ångström and femtoseconds appear only at the edges (file formats that use them, CLI options such as
``--dt`` in fs) and in reports (errors in Å, time steps in fs).
"""

ANGSTROM_PER_NM = 10.0
NM_PER_ANGSTROM = 0.1
FS_PER_PS = 1000.0
PS_PER_FS = 1e-3
#: velocity: 1 Å/fs = 100 nm/ps
NM_PER_PS_PER_ANGSTROM_PER_FS = 100.0
#: 1 eV in kJ/mol
KJ_PER_MOL_PER_EV = 96.48533212331
#: 1 hartree in kJ/mol
KJ_PER_MOL_PER_HARTREE = 2625.4996394799
#: wavenumber (cm^-1) of a frequency of 1 THz (1/ps)
INVERSE_CM_PER_THZ = 33.35640951981521

_LENGTH_TO_NM = {"nm": 1.0, "angstrom": 0.1, "ang": 0.1, "a": 0.1, "å": 0.1, "bohr": 0.052917721090,
                 "pm": 1e-3}
_TIME_TO_PS = {"ps": 1.0, "fs": 1e-3, "ns": 1e3, "au": 2.4188843265857e-5}


def _key(unit: str) -> str:
    return str(unit).strip().lower().replace("ångström", "angstrom").replace("ångstrom", "angstrom")


def length_to_nm(unit: str) -> float:
    """Factor that converts a length in ``unit`` (e.g. ``"Angstrom"``, ``"nm"``, ``"bohr"``) to nm."""
    key = _key(unit)
    if key not in _LENGTH_TO_NM:
        raise ValueError(f"unknown length unit {unit!r}; known: Angstrom, nm, bohr, pm")
    return _LENGTH_TO_NM[key]


def time_to_ps(unit: str) -> float:
    """Factor that converts a time in ``unit`` (``"fs"``, ``"ps"``, ``"ns"``, ``"au"``) to ps."""
    key = _key(unit)
    if key not in _TIME_TO_PS:
        raise ValueError(f"unknown time unit {unit!r}; known: fs, ps, ns")
    return _TIME_TO_PS[key]


def velocity_to_nm_per_ps(unit: str) -> float:
    """Factor that converts a velocity in ``unit`` (``"Angstrom/fs"``, ``"nm/ps"``, ...) to nm/ps."""
    try:
        length, time = _key(unit).split("/")
    except ValueError:
        raise ValueError(f"velocity unit {unit!r} must look like 'length/time', e.g. 'Angstrom/fs'") from None
    return length_to_nm(length) / time_to_ps(time)

#: Boltzmann's constant in kJ/mol/K
KB_KJ_PER_MOL_PER_K = 0.0083144626
#: 1 kJ/mol in meV
MEV_PER_KJ_PER_MOL = 1000.0 / KJ_PER_MOL_PER_EV
