"""Trajectory files in and out: every mdtraj format, sGDML npz, (ext)xyz via ASE, trajsr-h5.

``load(path, top=None, dt_fs=None)`` returns a :class:`~trajsr.trajectory.Trajectory` in nm and ps;
``save(traj, path, force=False)`` writes atomically and never overwrites without ``force``.
The format is chosen by file extension, as mdtraj does.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import TrajsrError
from ..trajectory import Trajectory
from ..units import PS_PER_FS
from . import ase_io, h5, mdtraj_io, npz
from .atomic import atomic_path, check_writable

ASE_SUFFIXES = {".xyz", ".extxyz", ".traj"}


def suffix_of(path) -> str:
    """The format key of ``path``: its extension, with ``.gz`` kept (``.pdb.gz``)."""
    suffixes = Path(path).suffixes
    if len(suffixes) >= 2 and suffixes[-1] == ".gz":
        return "".join(suffixes[-2:]).lower()
    return Path(path).suffix.lower()


def load(path, top=None, dt_fs: float | None = None) -> Trajectory:
    """Read a trajectory file.

    Parameters
    ----------
    path : str or Path
        Any mdtraj format, ``.npz`` (sGDML schema), ``.xyz``/``.extxyz``/``.traj`` (ASE) or ``.h5``
        (trajsr-h5, else mdtraj's HDF5).
    top : str, Path or mdtraj.Topology, optional
        Topology for formats that store coordinates only (dcd, xtc, trr, nc, ...).
    dt_fs : float, optional
        Frame spacing in fs, for files without time information; overrides the file's own time.

    Returns
    -------
    Trajectory
        Positions in nm, velocities in nm/ps where stored, time in ps (``None`` if unknown).
    """
    path = Path(path)
    if not path.exists():
        raise TrajsrError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise TrajsrError(f"{path}: file is empty")
    suffix = suffix_of(path)
    if suffix == ".npz":
        traj = npz.read(path)
    elif suffix == ".h5" and h5.is_trajsr_h5(path):
        traj = h5.read(path)
    elif suffix in ASE_SUFFIXES and (suffix != ".xyz" or top is None):
        traj = ase_io.read(path)
    else:
        traj = mdtraj_io.read(path, top=top, suffix=suffix)
    if top is not None and traj.topology is None:
        topology = mdtraj_io.load_topology(top)
        if topology.n_atoms != traj.n_atoms:
            raise TrajsrError(f"{path}: atom count mismatch: topology {top} has {topology.n_atoms} atoms, "
                              f"trajectory has {traj.n_atoms}")
        traj.topology = topology
    if dt_fs is not None:
        if dt_fs <= 0:
            raise TrajsrError(f"--dt must be positive (fs), got {dt_fs}")
        traj = traj.with_dt(dt_fs * PS_PER_FS)
    elif traj.time is not None and traj.n_frames > 1:
        traj.dt  # raises, naming the first bad frame, if the spacing is uneven
    return traj


def save(traj: Trajectory, path, force: bool = False) -> Path:
    """Write ``traj`` to ``path`` (format by extension); all-or-nothing, no silent overwrite.

    ``.npz`` is written in the sGDML schema (Å, Å/fs, fs), ``.h5`` in trajsr's schema (nm, nm/ps, ps),
    ``.xyz``/``.extxyz`` through ASE, anything else through mdtraj (``.trr`` keeps velocities; ``.xtc``
    warns that it rounds to 0.001 nm).
    """
    path = Path(path)
    suffix = suffix_of(path)
    with atomic_path(path, force) as tmp:
        if suffix == ".npz":
            npz.write(traj, tmp)
        elif suffix == ".h5":
            h5.write(traj, tmp)
        elif suffix in (".xyz", ".extxyz"):
            ase_io.write(traj, tmp)
        else:
            try:
                mdtraj_io.write(traj, tmp, suffix)
            except TrajsrError:
                raise
            except Exception as err:
                raise TrajsrError(f"{path}: cannot write {suffix or 'this'} format "
                                  f"({mdtraj_io._short(err)})") from None
    return path


__all__ = ["load", "save", "check_writable", "atomic_path", "suffix_of"]
