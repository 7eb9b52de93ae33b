"""trajsr's own HDF5 schema (h5py).

Layout (datasets float32 but time and energy, one row per frame)::

    /positions         (frames, atoms, 3)  nm
    /velocities        (frames, atoms, 3)  nm/ps       optional
    /time              (frames,)           ps (float64) optional
    /unitcell_vectors  (frames, 3, 3)      nm          optional
    /potential_energy  (frames,)           kJ/mol (float64) optional
    /forces            (frames, atoms, 3)  kJ/mol/nm   optional
    /uncertainty       (frames, atoms)     nm          optional (a reconstruction's per-atom σ)
    /elements          (atoms,)            UTF-8 symbols
    attrs: schema="trajsr-h5", version, units (JSON), dt_ps, method, temperature_K, seed, ...

A ``.h5`` file without the schema attribute is handed to mdtraj's own HDF5 reader.
"""
from __future__ import annotations

import json

import h5py
import numpy as np

from ..errors import TrajsrError
from ..trajectory import Trajectory

SCHEMA = "trajsr-h5"
VERSION = 1
UNITS = {"positions": "nm", "velocities": "nm/ps", "time": "ps", "unitcell_vectors": "nm",
         "potential_energy": "kJ/mol", "forces": "kJ/mol/nm", "uncertainty": "nm"}


def is_trajsr_h5(path) -> bool:
    """True if ``path`` is an HDF5 file written with trajsr's schema; False for other HDF5 files."""
    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("schema") == SCHEMA
    except OSError as err:
        raise TrajsrError(f"{path}: not a readable HDF5 file (truncated or corrupt? {err})") from None


def read(path) -> Trajectory:
    """Read a trajsr-h5 file (see module docstring for the schema)."""
    with h5py.File(path, "r") as f:
        def get(name, dtype=np.float64):
            return np.asarray(f[name], dtype=dtype) if name in f else None
        info = {k: _from_attr(v) for k, v in f.attrs.items() if k not in ("schema", "version", "units")}
        return Trajectory(positions=get("positions"), elements=_elements(f),
                          velocities=get("velocities"), time=get("time"),
                          unitcell_vectors=get("unitcell_vectors"),
                          potential_energy=get("potential_energy"), forces=get("forces"),
                          uncertainty=get("uncertainty"), info=info,
                          source=str(path))


FRAME_ARRAYS = ("positions", "velocities", "unitcell_vectors", "potential_energy", "forces", "uncertainty", "time")


def write(traj: Trajectory, path) -> None:
    """Write ``traj`` to ``path`` in trajsr's HDF5 schema (gzip-compressed, positions as float32)."""
    with h5py.File(path, "w") as f:
        write_header(f, traj)
        append(f, traj)


def write_header(f: h5py.File, traj: Trajectory, compression: str = "gzip") -> None:
    """Schema attributes, metadata and elements, and empty resizable per-frame datasets (``compression``:
    ``"gzip"``, readable by every HDF5 tool, or ``"lzf"``, h5py's own, about twice as fast to write)."""
    f.attrs["schema"] = SCHEMA
    f.attrs["version"] = VERSION
    f.attrs["units"] = json.dumps(UNITS)
    for key, value in traj.info.items():
        if isinstance(value, (int, float, str, bool, np.integer, np.floating)):
            f.attrs[key] = value
    if traj.time is not None and traj.n_frames > 1:
        f.attrs["dt_ps"] = float(np.mean(np.diff(traj.time)))
    f.create_dataset("elements", data=np.array(traj.elements, dtype=h5py.string_dtype()))
    for name in FRAME_ARRAYS:
        value = getattr(traj, name)
        if value is not None:
            dtype = np.float64 if name in ("time", "potential_energy") else np.float32  # energies ~1e6 kJ/mol
            f.create_dataset(name, shape=(0,) + value.shape[1:], maxshape=(None,) + value.shape[1:],
                             dtype=dtype, chunks=(min(1024, max(1, len(value))),) + value.shape[1:],
                             compression=compression, shuffle=True)


def append(f: h5py.File, traj: Trajectory) -> None:
    """Append the frames of ``traj`` to a file started with :func:`write_header`."""
    for name in FRAME_ARRAYS:
        value = getattr(traj, name)
        if name in f and value is not None:
            ds = f[name]
            n = ds.shape[0]
            ds.resize(n + len(value), axis=0)
            ds[n:] = value


def _from_attr(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _elements(f: h5py.File) -> list:
    return [e.decode() if isinstance(e, bytes) else e for e in f["elements"][()]]


def read_elements(path) -> list:
    """The element symbols of a trajsr ``.h5`` file, without its frames."""
    with h5py.File(path, "r") as f:
        return _elements(f)


def read_chunks(path, chunk: int):
    """Yield consecutive :class:`Trajectory` chunks of ``chunk`` frames (h5py slices; nm, ps)."""
    with h5py.File(path, "r") as f:
        n = f["positions"].shape[0]
        elements = _elements(f)
        for lo in range(0, n, chunk):
            sl = slice(lo, min(n, lo + chunk))
            part = {k: np.asarray(f[k][sl], np.float64) for k in FRAME_ARRAYS if k in f}
            yield Trajectory(elements=elements, source=str(path), first_frame=lo, **part)


class Appender:
    """Append chunks to a new trajsr-h5 file (resizable datasets, LZF-compressed: h5py reads it
    anywhere; other HDF5 tools need the LZF filter plugin)."""

    def __init__(self, path):
        self.path, self.handle = path, None

    def append(self, traj: Trajectory) -> None:
        if self.handle is None:
            self.handle = h5py.File(self.path, "w")
            write_header(self.handle, traj, compression="lzf")  # streamed outputs: speed over size
        append(self.handle, traj)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
