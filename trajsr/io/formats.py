"""One table of file formats: reader, writer, chunked reader, chunked writer, and what each keeps.

The format is chosen by extension, as mdtraj does: trajsr-h5 (``.h5`` with trajsr's schema; other HDF5
goes to mdtraj), sGDML-style ``.npz``, (ext)xyz through ASE, and every other mdtraj format; the outputs of
ab initio codes that ASE recognises by name or content (VASP ``vasprun.xml``/``OUTCAR``, CASTEP ``.md``,
ORCA, FHI-aims, Quantum ESPRESSO, ...) are read through ASE with their forces (read only).
A format without a chunked reader is read whole and handed out in slices; one without a chunked
writer is gathered and written at the end.
"""
from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path
from typing import Callable

from ..errors import TrajsrError
from . import ase_io, h5, mdtraj_io, npz


@dataclasses.dataclass(frozen=True)
class Format:
    """How trajsr reads and writes one kind of file.

    Attributes
    ----------
    name : str
    read : callable ``(path, top) -> Trajectory``
    write : callable ``(traj, path) -> None``
    read_chunks : callable ``(path, top, chunk) -> iterator of Trajectory``, or None
    open_appender : callable ``(path) -> appender`` with ``append(traj)`` and ``close()``, or None
    keeps_velocities, keeps_time, keeps_uncertainty : bool
        Whether the file stores velocities (nm/ps), frame times (ps) and a reconstruction's per-atom
        uncertainty (nm); where it cannot, ``upsample --uncertainty`` writes a side file.
    """

    name: str
    read: Callable
    write: Callable
    read_chunks: Callable | None = None
    open_appender: Callable | None = None
    keeps_velocities: bool = False
    keeps_time: bool = False
    keeps_uncertainty: bool = False


TRAJSR_H5 = Format("trajsr-h5", lambda path, top: h5.read(path), h5.write,
                   lambda path, top, chunk: h5.read_chunks(path, chunk), h5.Appender, True, True,
                   keeps_uncertainty=True)
NPZ = Format("sGDML npz", lambda path, top: npz.read(path), npz.write, keeps_velocities=True, keeps_time=True)
EXTXYZ = Format("extended xyz (ASE)", lambda path, top: ase_io.read(path), ase_io.write, keeps_velocities=True,
                keeps_time=True)
#: formats by extension; anything else is an mdtraj format (see :func:`mdtraj_format`)
FORMATS = {".h5": TRAJSR_H5, ".npz": NPZ, ".xyz": EXTXYZ, ".extxyz": EXTXYZ, ".traj": EXTXYZ}


def _read_only(traj, path):
    raise TrajsrError(f"{path}: trajsr reads this kind of file (an ab initio code's output, through ASE) but does "
                      "not write it; write .h5, .extxyz or .traj instead")


AIMD_OUTPUT = Format("ab initio MD output (ASE)", lambda path, top: ase_io.read(path), _read_only)
#: the outputs of ab initio codes that ASE reads with their forces and energies, by ASE's own name of the
#: format (recognised by file name or content: ``vasprun.xml``, ``OUTCAR``, CASTEP ``.md``, ...)
AIMD_OUTPUTS = {"vasp-xml", "vasp-out", "vasp-xdatcar", "castep-md", "orca-output", "aims-output", "espresso-out",
                "gaussian-out", "gpaw-out", "cp2k-restart"}


def aimd_output(path) -> bool:
    """Whether ASE recognises ``path`` as one of :data:`AIMD_OUTPUTS` (by its name or first bytes)."""
    from ase.io.formats import UnknownFileTypeError, filetype
    try:
        return filetype(str(path), guess=False) in AIMD_OUTPUTS
    except (UnknownFileTypeError, OSError, ValueError):
        return False


def mdtraj_format(suffix: str) -> Format:
    """An mdtraj format: streamed reads where ``mdtraj.iterload`` applies, streamed writes for
    dcd, xtc, trr and nc; velocities in trr (and read from Amber nc)."""
    chunks = partial(mdtraj_io.read_chunks, suffix=suffix) if suffix in mdtraj_io.ITERLOADED else None
    appender = partial(mdtraj_io.Appender, suffix=suffix) if suffix in mdtraj_io.APPENDED else None
    return Format(f"mdtraj {suffix}", partial(mdtraj_io.read, suffix=suffix), partial(mdtraj_io.write, suffix=suffix),
                  chunks, appender, suffix in mdtraj_io.WITH_VELOCITIES, suffix in mdtraj_io.TIMED)


def suffix_of(path) -> str:
    """The format key of ``path``: its extension, with ``.gz`` kept (``.pdb.gz``)."""
    suffixes = Path(path).suffixes
    if len(suffixes) >= 2 and suffixes[-1] == ".gz":
        return "".join(suffixes[-2:]).lower()
    return Path(path).suffix.lower()


def format_for_reading(path, top=None) -> Format:
    """The format of an existing file (``.h5`` without trajsr's schema and ``.xyz`` with a topology go
    to mdtraj)."""
    suffix = suffix_of(path)
    if suffix == ".h5" and not h5.is_trajsr_h5(path):
        return mdtraj_format(suffix)
    if suffix == ".xyz" and top is not None:
        return mdtraj_format(suffix)
    if suffix not in FORMATS and aimd_output(path):  # vasprun.xml before mdtraj's .xml
        return AIMD_OUTPUT
    return FORMATS.get(suffix) or mdtraj_format(suffix)


def format_for_writing(path) -> Format:
    """The format a new file is written in, by its extension."""
    suffix = suffix_of(path)
    if not suffix:
        raise TrajsrError(f"{path}: no file extension to choose a format by (e.g. .h5, .dcd, .xtc, .npz)")
    return FORMATS.get(suffix) or mdtraj_format(suffix)


def warn_if_lossy(path) -> None:
    """Warn (naming the output) when a format rounds positions below reference precision."""
    if suffix_of(path) == ".xtc":
        import warnings
        warnings.warn(f"{path}: xtc keeps positions to 0.001 nm (0.01 Å); use trr, dcd, nc or h5 for "
                      "reference data", stacklevel=3)
