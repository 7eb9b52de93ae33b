"""sGDML-style npz: ``R`` (frames, atoms, 3), ``z`` atomic numbers, optional ``V``, ``t``, ``E``, ``F``.

Units follow the optional 0-d string arrays ``r_unit`` (default Å), ``v_unit`` (default Å/fs),
``t_unit`` (default fs) and ``e_unit`` (default kcal/mol), as in the sGDML and mbGDML data sets; forces
``F`` are in ``e_unit`` per ``r_unit``. Read with ``allow_pickle=False``; strings are
written as unicode arrays so the files stay pickle-free.
"""
from __future__ import annotations

import zipfile

import numpy as np

from ..errors import TrajsrError
from ..trajectory import Trajectory
from ..units import (ANGSTROM_PER_NM, FS_PER_PS, length_to_nm, time_to_ps,
                     velocity_to_nm_per_ps, KJ_PER_MOL_PER_EV)

_ENERGY_TO_KJ_PER_MOL = {"kcal/mol": 4.184, "kj/mol": 1.0, "ev": KJ_PER_MOL_PER_EV,
                         "hartree": 2625.4996394799}


def _string(data, key, default):
    if key not in data:
        return default
    return str(np.asarray(data[key]).reshape(-1)[0])


def read(path) -> Trajectory:
    """Read an sGDML-style npz; returns positions in nm, velocities in nm/ps, time in ps."""
    from ase.data import chemical_symbols
    try:
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as archive:  # closed on errors too
            data = {key: archive[key] for key in archive.files}
    except ValueError as err:
        if "pickle" not in str(err):
            raise TrajsrError(f"{path}: cannot read npz ({err})") from None
        raise TrajsrError(f"{path}: npz holds pickled objects, which trajsr does not load ({err})") from None
    except (zipfile.BadZipFile, EOFError, OSError) as err:
        raise TrajsrError(f"{path}: not a readable npz archive: truncated or corrupt ({err})") from None
    for key in ("R", "z"):
        if key not in data:
            raise TrajsrError(f"{path}: npz has no {key!r} array (keys: {', '.join(data)})")
    R = np.asarray(data["R"], dtype=np.float64)
    if R.ndim == 2:
        R = R[None]
    positions = R * length_to_nm(_string(data, "r_unit", "Angstrom"))
    velocities = None
    if "V" in data:
        velocities = np.asarray(data["V"], np.float64) * velocity_to_nm_per_ps(
            _string(data, "v_unit", "Angstrom/fs"))
    time = None
    if "t" in data:
        time = np.asarray(data["t"], np.float64).reshape(-1) * time_to_ps(_string(data, "t_unit", "fs"))
    energy = None
    for key in ("E_potential", "E"):
        if key in data and np.size(data[key]) == len(R):
            e_unit = _string(data, "e_unit", "kcal/mol").lower()
            if e_unit in _ENERGY_TO_KJ_PER_MOL:
                energy = np.asarray(data[key], np.float64).reshape(-1) * _ENERGY_TO_KJ_PER_MOL[e_unit]
            break
    forces = None
    if "F" in data:
        e_unit, r_unit = _string(data, "e_unit", "kcal/mol"), _string(data, "r_unit", "Angstrom")
        if e_unit.lower() not in _ENERGY_TO_KJ_PER_MOL:
            raise TrajsrError(f"{path}: forces F in {e_unit!r} per {r_unit!r}: unknown energy unit (e_unit: "
                              f"{', '.join(_ENERGY_TO_KJ_PER_MOL)})")
        forces = np.asarray(data["F"], np.float64) * _ENERGY_TO_KJ_PER_MOL[e_unit.lower()] / length_to_nm(r_unit)
    z = np.asarray(data["z"]).reshape(-1)
    return Trajectory(positions=positions, elements=[chemical_symbols[int(i)] for i in z],
                      velocities=velocities, time=time, potential_energy=energy, forces=forces, source=str(path))


def write(traj: Trajectory, path) -> None:
    """Write ``traj`` as sGDML-style npz in Å, Å/fs, fs (and kJ/mol for ``E_potential``)."""
    arrays = dict(R=traj.positions * ANGSTROM_PER_NM, z=traj.atomic_numbers,
                  r_unit=np.array("Angstrom"))
    if traj.velocities is not None:
        arrays.update(V=traj.velocities * ANGSTROM_PER_NM / FS_PER_PS, v_unit=np.array("Angstrom/fs"))
    if traj.time is not None:
        arrays.update(t=traj.time * FS_PER_PS, t_unit=np.array("fs"))
    if traj.potential_energy is not None:
        arrays.update(E_potential=traj.potential_energy, e_unit=np.array("kJ/mol"))
    if traj.forces is not None:  # kJ/mol per Å, as r_unit
        arrays.update(F=traj.forces / ANGSTROM_PER_NM, e_unit=np.array("kJ/mol"))
    with open(path, "wb") as f:
        np.savez(f, **arrays)
