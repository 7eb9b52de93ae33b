"""One table of file formats: reader, writer, chunked reader, chunked writer, and what each keeps.

The format is chosen by extension, as mdtraj does: trajsr-h5 (``.h5`` with trajsr's schema; other HDF5
goes to mdtraj), sGDML-style ``.npz``, (ext)xyz through ASE, and every other mdtraj format; the outputs of
ab initio codes that ASE recognises by name or content (VASP ``vasprun.xml``/``OUTCAR``, CASTEP ``.md``,
ORCA, FHI-aims, Quantum ESPRESSO, ...) are read through ASE with their forces (read only), and CP2K's
``PROJECT-pos-1.xyz`` together with the velocities and forces it writes beside it (:mod:`.cp2k`).
A format without a chunked reader is read whole and handed out in slices; one without a chunked
writer is gathered and written at the end.
"""
from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path
from typing import Callable

from ..errors import TrajsrError
from . import ase_io, cp2k, h5, mdtraj_io, npz


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
    needs_cell : bool
        The file cannot be written without a unit cell (a LAMMPS dump: its box is part of every frame).
    """

    name: str
    read: Callable
    write: Callable
    read_chunks: Callable | None = None
    open_appender: Callable | None = None
    keeps_velocities: bool = False
    keeps_time: bool = False
    keeps_uncertainty: bool = False
    needs_cell: bool = False

    def check_holds(self, path, periodic: bool, what) -> None:
        """Refuse, before any work, to write ``path`` in this format from a trajectory (named by ``what``)
        it cannot hold: one without a unit cell (``periodic`` False) where the format needs one."""
        if self.needs_cell and not periodic:
            raise TrajsrError(f"{path}: this format ({self.name}) needs a unit cell (periodic box) in every frame, "
                              f"and {what} has none; {WRITE_INSTEAD}")


TRAJSR_H5 = Format("trajsr-h5", lambda path, top: h5.read(path), h5.write,
                   lambda path, top, chunk: h5.read_chunks(path, chunk), h5.Appender, True, True,
                   keeps_uncertainty=True)
NPZ = Format("sGDML npz", lambda path, top: npz.read(path), npz.write, keeps_velocities=True, keeps_time=True)
EXTXYZ = Format("extended xyz (ASE)", lambda path, top: ase_io.read(path), ase_io.write, keeps_velocities=True,
                keeps_time=True)


def mdtraj_format(suffix: str, *, time=False, velocities=False, topology=False, stream_read=False,
                  stream_write=False, writes=True, cell=False) -> Format:
    """An mdtraj format: ``time`` (frame times mdtraj reads, ps), ``velocities`` (read, and for trr
    written), ``topology`` (coordinates only: needs -t/--top), ``stream_read`` (``mdtraj.iterload``),
    ``stream_write`` (appended chunk by chunk through mdtraj's file objects), ``writes`` (False: read only),
    ``cell`` (written only with a unit cell)."""
    write = partial(mdtraj_io.write, suffix=suffix, appended=stream_write) if writes else _read_only
    return Format(f"mdtraj {suffix}", partial(mdtraj_io.read, suffix=suffix, timed=time, needs_topology=topology),
                  write,
                  partial(mdtraj_io.read_chunks, suffix=suffix, timed=time) if stream_read else None,
                  partial(mdtraj_io.Appender, suffix=suffix) if stream_write else None, velocities, time,
                  needs_cell=cell)


def _read_only(traj, path):
    raise TrajsrError(f"{path}: trajsr reads this kind of file but cannot write it; {WRITE_INSTEAD}")


WRITE_INSTEAD = "write .h5 (everything), .trr or .nc (with velocities), .dcd, .xtc, .npz, .extxyz, .traj, .pdb or .gro"
_COORDINATES = dict(topology=True, stream_read=True)  # coordinates-only files mdtraj.iterload streams
#: read only: mdtraj has no writer (binpos, arc, inpcrd, restrt, hdf5), writes one file per frame (the Amber
#: restarts rst7 and ncrst), needs PyTables (lh5) or a unit cell and times for every frame (dtr)
_READS = dict(writes=False)
#: every format by extension, one entry each (an extension not listed is read by mdtraj as it is, and written
#: only if it is one of MDTRAJ_STRUCTURES)
FORMATS = {
    ".h5": TRAJSR_H5, ".npz": NPZ, ".xyz": EXTXYZ, ".extxyz": EXTXYZ, ".traj": EXTXYZ,
    ".dcd": mdtraj_format(".dcd", **_COORDINATES, stream_write=True),
    ".xtc": mdtraj_format(".xtc", time=True, **_COORDINATES, stream_write=True),
    ".trr": mdtraj_format(".trr", time=True, velocities=True, topology=True, stream_write=True),
    ".nc": mdtraj_format(".nc", time=True, velocities=True, **_COORDINATES, stream_write=True),
    **{s: mdtraj_format(s, time=True, velocities=True, **_COORDINATES) for s in (".ncdf", ".netcdf")},
    ".dtr": mdtraj_format(".dtr", time=True, **_COORDINATES, **_READS),
    **{s: mdtraj_format(s, **_COORDINATES) for s in (".mdcrd", ".crd")},
    ".lammpstrj": mdtraj_format(".lammpstrj", **_COORDINATES, cell=True),
    **{s: mdtraj_format(s, **_COORDINATES, **_READS) for s in (".binpos", ".arc", ".inpcrd", ".rst7", ".restrt",
                                                               ".ncrst")},
    ".xyz.gz": mdtraj_format(".xyz.gz", topology=True),
    **{s: mdtraj_format(s, time=True, **_READS) for s in (".hdf5", ".lh5")},  # mdtraj's HDF5
}
#: the extensions not in FORMATS that mdtraj writes: structure files, one model per frame
MDTRAJ_STRUCTURES = {".pdb", ".pdb.gz", ".cif", ".cif.gz", ".pdbx", ".pdbx.gz", ".gro"}
#: what a ``.h5`` without trajsr's schema, or an ``.xyz`` read with a topology, is
MDTRAJ_H5 = mdtraj_format(".h5", time=True)
MDTRAJ_XYZ = mdtraj_format(".xyz", topology=True)


AIMD_OUTPUT = Format("ab initio MD output (ASE)", lambda path, top: ase_io.read(path), _read_only)
#: CP2K's PROJECT-pos-N.xyz, with the velocities and forces CP2K writes beside it (read only)
CP2K_MD = Format("CP2K MD trajectory", lambda path, top: cp2k.read(path), _read_only, keeps_velocities=True,
                 keeps_time=True)
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
        return MDTRAJ_H5
    if suffix == ".xyz" and cp2k.is_positions(path):  # its -vel- and -frc- files beside it
        return CP2K_MD
    if suffix == ".xyz" and top is not None:
        return MDTRAJ_XYZ
    if suffix not in FORMATS and aimd_output(path):  # vasprun.xml before mdtraj's .xml
        return AIMD_OUTPUT
    return FORMATS.get(suffix) or mdtraj_format(suffix)  # pdb, gro, mol2, ...: mdtraj decides


def format_for_writing(path) -> Format:
    """The format a new file is written in, by its extension."""
    suffix = suffix_of(path)
    if not suffix:
        raise TrajsrError(f"{path}: no file extension to choose a format by (e.g. .h5, .dcd, .xtc, .npz)")
    fmt = FORMATS.get(suffix) or (mdtraj_format(suffix) if suffix in MDTRAJ_STRUCTURES else None)
    if fmt is None:
        raise TrajsrError(f"{path}: trajsr cannot write {suffix} files; {WRITE_INSTEAD}")
    if fmt.write is _read_only:  # before any work, not when the result is ready
        fmt.write(None, path)
    return fmt


def warn_if_lossy(path) -> None:
    """Warn (naming the output) when a format rounds positions below reference precision."""
    suffix = suffix_of(path)
    if suffix in (".xtc", ".gro"):
        import warnings
        warnings.warn(f"{path}: {suffix[1:]} keeps positions to 0.001 nm (0.01 Å); use trr, dcd, nc or h5 for "
                      "reference data", stacklevel=3)
