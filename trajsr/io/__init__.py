"""Trajectory files in and out: every mdtraj format, sGDML npz, (ext)xyz via ASE, trajsr-h5.

``load(path, top=None, dt_fs=None)`` returns a :class:`~trajsr.trajectory.Trajectory` in nm and ps;
``save(traj, path, force=False)`` writes atomically and never overwrites without ``force``.
The format is chosen by file extension, as mdtraj does.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import TrajsrError
from ..trajectory import Trajectory
from ..units import ANGSTROM_PER_NM, FS_PER_PS, PS_PER_FS
from .atomic import atomic_path, check_writable
from .formats import FORMATS, Format, format_for_reading, format_for_writing, suffix_of, warn_if_lossy


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
    path = check_readable(path)
    traj = format_for_reading(path, top).read(path, top)
    return finish_reading(traj, path, top, dt_fs)


def check_readable(path) -> Path:
    """``path`` as a Path, or one clear error if it is missing, a folder or empty."""
    path = Path(path)
    if not path.exists():
        raise TrajsrError(f"{path}: no such file")
    if path.is_dir():
        raise TrajsrError(f"{path}: is a directory, not a trajectory file")
    if path.stat().st_size == 0:
        raise TrajsrError(f"{path}: file is empty")
    return path


def finish_reading(traj: Trajectory, path, top=None, dt_fs=None, first_frame: int = 0, previous=None) -> Trajectory:
    """Attach a topology, apply ``dt_fs`` (fs, counted from ``first_frame``), check the spacing and that the
    frames follow each other (:func:`check_continuous`; ``previous``: the last positions of the chunk before)."""
    from . import mdtraj_io
    if top is not None and traj.topology is None:
        topology = mdtraj_io.load_topology(top)
        if topology.n_atoms != traj.n_atoms:
            raise TrajsrError(f"{path}: atom count mismatch: topology {top} has {topology.n_atoms} atoms, "
                              f"trajectory has {traj.n_atoms}")
        traj.topology = topology
    if dt_fs is not None:
        check_dt(dt_fs)
        if traj.time is not None and traj.n_frames > 1:  # --dt is for files without time: never a silent override
            stored = traj.dt * FS_PER_PS
            if abs(stored - dt_fs) > 1e-3 * stored:
                raise TrajsrError(f"{path}: its frames are {stored:g} fs apart, --dt says {dt_fs:g} fs; --dt is for "
                                  "files without time (leave it out, or fix the file's time)")
        traj = traj.replace(time=(first_frame + np.arange(traj.n_frames)) * dt_fs * PS_PER_FS)
    elif traj.time is not None and traj.n_frames > 1:
        traj.dt  # raises, naming the first bad frame, if the spacing is uneven
    check_continuous(traj, path, first_frame, previous)
    return traj


#: a step whose largest atomic move exceeds this many times the file's typical largest move, and JUMP_NM, is a
#: seam between two runs (in held-out, thermostatted and strided files the largest step is at most 2.5x)
JUMP_RATIO, JUMP_NM = 10.0, 0.05


def check_continuous(traj: Trajectory, path, first_frame: int = 0, previous=None) -> None:
    """One clear error where the frames do not follow each other as MD frames do (``previous``: the positions
    (N, 3) of the frame before ``traj``'s first, from the chunk before): two consecutive frames with the
    same positions (a restarted run appended to the file repeats its last frame), or, in a file without a
    unit cell, a step in which an atom jumps :data:`JUMP_RATIO` times as far as the file's typical largest
    move (two runs joined, or coordinates wrapped into a box the file does not store). Without time in the
    file nothing else shows either; the rebuilt gaps there would be wrong."""
    positions = traj.positions if previous is None else np.concatenate([previous[None], traj.positions])
    shift = first_frame - (previous is not None)
    sums = positions.sum(axis=(1, 2))  # a cheap first look; equal sums are compared in full
    for i in np.flatnonzero(sums[1:] == sums[:-1]):
        if np.array_equal(positions[i], positions[i + 1]):
            raise TrajsrError(f"{path}: frames {shift + i} and {shift + i + 1} hold the same positions (a repeated "
                              "frame, as where a restarted run was appended to the file?): remove one of them")
    if traj.is_periodic or len(positions) < 2:
        return
    largest = np.concatenate([  # each step's largest atomic move (nm), a block of frames at a time: no second
        np.linalg.norm(np.diff(positions[lo: lo + 1001], axis=0), axis=-1).max(axis=1)  # copy of a large file
        for lo in range(0, len(positions) - 1, 1000)])
    typical = float(np.median(largest))
    bad = np.flatnonzero((largest > JUMP_RATIO * typical) & (largest > JUMP_NM))
    if bad.size:
        i = int(bad[0])
        atom = int(np.linalg.norm(positions[i + 1] - positions[i], axis=-1).argmax())
        jump, step = largest[i] * ANGSTROM_PER_NM, typical * ANGSTROM_PER_NM
        raise TrajsrError(f"{path}: atom {atom} ({traj.elements[atom]}) jumps {jump:.2f} Å between frames "
                          f"{shift + i} and {shift + i + 1}, {largest[i] / typical:.0f}x the file's typical largest "
                          f"step of {step:.2f} Å: two runs joined, or coordinates wrapped into a box the file "
                          "does not store? Split the file there")


def check_dt(dt_fs) -> float:
    """A frame spacing in fs: finite and positive, else one clear error."""
    if not np.isfinite(dt_fs) or dt_fs <= 0:
        raise TrajsrError(f"--dt must be a positive, finite frame spacing in fs, got {dt_fs}")
    return float(dt_fs)


def save(traj: Trajectory, path, force: bool = False) -> Path:
    """Write ``traj`` to ``path`` (format by extension); all-or-nothing, no silent overwrite.

    ``.npz`` is written in the sGDML schema (Å, Å/fs, fs), ``.h5`` in trajsr's schema (nm, nm/ps, ps),
    ``.xyz``/``.extxyz`` through ASE, anything else through mdtraj (``.trr`` keeps velocities; ``.xtc``
    warns that it rounds to 0.001 nm).
    """
    path = Path(path)
    fmt = format_for_writing(path)
    fmt.check_holds(path, traj.is_periodic, traj.source or "the trajectory")
    warn_if_lossy(path)
    with atomic_path(path, force) as tmp:
        try:
            fmt.write(traj, tmp)
        except TrajsrError as err:
            raise TrajsrError(f"{path}: {err}") from None
    return path


__all__ = ["load", "save", "check_writable", "check_readable", "atomic_path", "suffix_of", "FORMATS", "Format"]
