"""Read and write trajectories chunk by chunk, so memory does not grow with trajectory length.

Streamed reading: trajsr-h5 (h5py slices) and every format ``mdtraj.iterload`` handles; other formats
are read whole and handed out in slices. Streamed writing: trajsr-h5 (resizable datasets), dcd, xtc,
trr and nc (mdtraj file objects); other formats are gathered and written at the end. Writes go to a
temporary file that replaces the target only when everything succeeded.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import h5py
import numpy as np

from ..errors import TrajsrError
from ..trajectory import Trajectory
from ..units import PS_PER_FS
from . import h5, load, mdtraj_io, save, suffix_of
from .atomic import check_writable

STREAMED_WRITES = {".h5", ".dcd", ".xtc", ".trr", ".nc"}


def iter_chunks(path, top=None, dt_fs=None, chunk: int = 5000):
    """Yield consecutive :class:`Trajectory` chunks of ``chunk`` frames (nm, ps) from ``path``."""
    path = Path(path)
    suffix = suffix_of(path)
    if suffix == ".h5" and path.exists() and h5.is_trajsr_h5(path):
        with h5py.File(path, "r") as f:
            n = f["positions"].shape[0]
            elements = [e.decode() if isinstance(e, bytes) else e for e in f["elements"][()]]
            for lo in range(0, n, chunk):
                sl = slice(lo, min(n, lo + chunk))
                part = {k: np.asarray(f[k][sl], np.float64) for k in ("positions", "velocities", "time",
                                                                       "unitcell_vectors") if k in f}
                traj = Trajectory(elements=elements, source=str(path), **part)
                yield _with_dt(traj, dt_fs, lo)
        return
    if suffix in mdtraj_io.NEEDS_TOPOLOGY and suffix not in (".trr", ".xyz") and top is not None:
        import mdtraj
        topology = mdtraj_io.load_topology(top)
        lo = 0
        try:
            for part in mdtraj.iterload(str(path), top=topology, chunk=chunk):
                traj = Trajectory(positions=part.xyz, elements=[a.element.symbol for a in topology.atoms],
                                  time=part.time if suffix in mdtraj_io.TIMED else None,
                                  unitcell_vectors=part.unitcell_vectors, topology=topology, source=str(path))
                yield _with_dt(traj, dt_fs, lo)
                lo += part.n_frames
        except TrajsrError:
            raise
        except Exception as err:
            raise TrajsrError(f"{path}: cannot read trajectory ({mdtraj_io._short(err)})") from None
        return
    whole = load(path, top=top, dt_fs=dt_fs)
    for lo in range(0, whole.n_frames, chunk):
        yield whole[lo: lo + chunk]


def _with_dt(traj, dt_fs, first_index):
    if dt_fs is not None:
        return traj.replace(time=(first_index + np.arange(traj.n_frames)) * dt_fs * PS_PER_FS)
    return traj


class ChunkWriter:
    """Append :class:`Trajectory` chunks to one file; ``close()`` moves it into place.

    Use as a context manager: on an exception the temporary file is removed and the target is untouched.
    """

    def __init__(self, path, force: bool = False):
        self.path = check_writable(path, force)
        self.force = force
        self.suffix = suffix_of(self.path)
        fd, self.tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=self.suffix, dir=self.path.parent)
        os.close(fd)
        os.unlink(self.tmp)
        self.handle, self.gathered, self.n_frames = None, [], 0

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, traj: Trajectory) -> None:
        if traj.n_frames == 0:
            return
        if self.suffix not in STREAMED_WRITES:
            self.gathered.append(traj)
        elif self.suffix == ".h5":
            self._write_h5(traj)
        else:
            self._write_mdtraj(traj)
        self.n_frames += traj.n_frames

    def _write_h5(self, traj):
        if self.handle is None:
            self.handle = h5py.File(self.tmp, "w")
            h5.write_header(self.handle, traj)
        h5.append(self.handle, traj)

    def _write_mdtraj(self, traj):
        import mdtraj
        from mdtraj.utils import in_units_of
        md = traj.to_mdtraj()
        if self.handle is None:
            self.handle = mdtraj.open(self.tmp, "w")
        xyz = in_units_of(md.xyz, "nanometers", self.handle.distance_unit)
        if self.suffix == ".dcd":
            self.handle.write(xyz, md.unitcell_lengths, md.unitcell_angles)
        elif self.suffix == ".nc":
            self.handle.write(xyz, md.time, md.unitcell_lengths, md.unitcell_angles)
        else:  # xtc, trr
            self.handle.write(xyz, time=md.time, step=np.arange(self.n_frames, self.n_frames + md.n_frames),
                              box=md.unitcell_vectors)

    def close(self) -> Path:
        if self.gathered:
            from ..trajectory import concatenate
            whole = concatenate(self.gathered).replace(source=str(self.path))
            save(whole, self.path, force=self.force)
            return self.path
        if self.handle is not None:
            self.handle.close()
        if self.n_frames == 0:
            raise TrajsrError(f"{self.path}: nothing to write")
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        if self.handle is not None:
            self.handle.close()
        if os.path.exists(self.tmp):
            os.unlink(self.tmp)
