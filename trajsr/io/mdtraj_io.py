"""Every format mdtraj reads and writes, plus the velocities that trr and Amber NetCDF store. Which
extension has time, velocities or needs a topology is declared once, in :mod:`trajsr.io.formats`."""
from __future__ import annotations

import contextlib
import os
import re
import sys

import numpy as np

from ..errors import TrajsrError
from ..trajectory import Trajectory, topology_from_elements
from . import h5
from .ase_io import check_xyz_complete, complete_before

#: Amber NetCDF stores velocities in Å / (1/20.455 ps)
_AMBER_VELOCITY_SCALE = 20.455


def load_topology(top):
    """An mdtraj topology from a file (PDB, GRO, prmtop, ..., or a trajsr ``.h5``: its elements) or an existing
    Topology/Trajectory."""
    import mdtraj
    if top is None or isinstance(top, mdtraj.Topology):
        return top
    if isinstance(top, mdtraj.Trajectory):
        return top.topology
    if str(top).lower().endswith(".h5") and h5.is_trajsr_h5(top):  # mdtraj would ask for PyTables
        return topology_from_elements(h5.read_elements(top))
    try:
        return mdtraj.load_topology(str(top))
    except Exception as err:
        raise TrajsrError(f"{top}: cannot read topology ({_short(err)})") from None


def read(path, top=None, suffix: str = "", timed: bool = False, needs_topology: bool = False) -> Trajectory:
    """Read any mdtraj format; positions nm, time ps (``None`` unless ``timed``)."""
    import mdtraj
    topology = load_topology(top)
    if topology is None and needs_topology:
        raise _no_topology(path, suffix)
    check_text_complete(path, suffix, topology)
    try:
        with quiet_stdout():
            traj = mdtraj.load(str(path), top=topology) if topology is not None else mdtraj.load(str(path))
    except Exception as err:
        raise _read_error(path, topology, err) from None
    if traj.n_frames == 0:
        raise TrajsrError(f"{path}: no frames")
    check_complete(path, suffix, traj.n_frames)
    elements = [a.element.symbol if a.element is not None else "X" for a in traj.topology.atoms]
    velocities = _velocities(path, suffix, traj.n_frames)
    return Trajectory(positions=traj.xyz, elements=elements, velocities=velocities,
                      time=traj.time if timed else None,
                      unitcell_vectors=traj.unitcell_vectors, topology=traj.topology, source=str(path))


def write(traj: Trajectory, path, suffix: str, appended: bool = False) -> None:
    """Write with mdtraj (float32 nm); ``appended`` formats (dcd, xtc, trr with velocities, nc) through
    :class:`Appender`. xtc warns: it keeps 0.001 nm."""
    if appended:
        appender = Appender(path, suffix)
        appender.append(traj)
        appender.close()
        return
    try:
        traj.to_mdtraj().save(str(path))
    except Exception as err:
        raise TrajsrError(f"cannot write {suffix or 'this'} format ({_short(err)})") from None


def read_chunks(path, top, chunk: int, suffix: str, timed: bool = False):
    """Yield :class:`Trajectory` chunks of ``chunk`` frames through ``mdtraj.iterload`` (nm, ps)."""
    import mdtraj
    topology = load_topology(top)
    if topology is None:  # every streamed format stores coordinates only
        raise _no_topology(path, suffix)
    elements = [a.element.symbol if a.element is not None else "X" for a in topology.atoms]
    if suffix == ".dcd":  # a cut-off file is refused before any chunk is worked on, not when it runs out
        check_complete(path, suffix, dcd_complete_frames(path))
    check_text_complete(path, suffix, topology)
    lo = 0
    try:
        with quiet_stdout():
            parts = iter(mdtraj.iterload(str(path), top=topology, chunk=chunk))
        while True:
            with quiet_stdout():
                part = next(parts, None)
            if part is None:
                break
            yield Trajectory(positions=part.xyz, elements=elements, time=part.time if timed else None,
                             unitcell_vectors=part.unitcell_vectors, topology=topology, source=str(path),
                             first_frame=lo)
            lo += part.n_frames
    except TrajsrError:
        raise
    except Exception as err:
        raise _read_error(path, topology, err) from None
    check_complete(path, suffix, lo)


def dcd_complete_frames(path) -> int | None:
    """The whole frames a DCD file's size holds, from its header (atom count, whether frames carry a unit
    cell); None where the header is not the plain little-endian layout this reads (fixed atoms, 4D, ...)."""
    with open(path, "rb") as f:
        head = f.read(4096)

    def word(at):  # a little-endian int32 of the header
        return int(np.frombuffer(head[at:at + 4], "<i4")[0]) if len(head) >= at + 4 else None

    if word(0) != 84 or head[4:8] != b"CORD" or word(40) or word(52):  # fixed atoms, 4D
        return None
    title_bytes = word(92)  # the title record's length
    if title_bytes is None or title_bytes < 4 or word(100 + title_bytes) != 4:  # the atom count's own record
        return None
    n_atoms, start = word(104 + title_bytes), 112 + title_bytes
    if not n_atoms or n_atoms < 0:
        return None
    frame_bytes = 3 * (4 * n_atoms + 8) + (56 if word(48) else 0)  # x, y, z records; the unit cell's
    return max(0, (os.path.getsize(path) - start) // frame_bytes)


def check_text_complete(path, suffix, topology) -> None:
    """Refuse a text file cut inside a frame, before mdtraj reads it: it drops such a last frame without a
    word, or fails without naming it. XYZ (read with a topology), the Amber ASCII trajectory and GRO are
    walked by their layout."""
    if suffix == ".xyz":
        check_xyz_complete(path)
    elif suffix in (".mdcrd", ".crd") and topology is not None:
        check_mdcrd_complete(path, topology.n_atoms)
    elif suffix == ".gro":
        check_gro_complete(path)


def check_gro_complete(path) -> None:
    """Refuse a GROMACS .gro file (per frame: a title, the atom count, one fixed-width line per atom, a box
    line of 3 or 9 numbers) that ends inside a frame: mdtraj fails there without naming the frame ("object
    of type 'NoneType' has no len()", or the line it did not expect). Only the file's end is judged; a
    file that does not follow the layout is left to mdtraj."""
    with open(path, "rb") as f:
        data = f.read()
    lines = data.rstrip(b"\r\n").splitlines()
    whole = data.endswith(b"\n")
    at, frame = 0, 0
    while at < len(lines):
        if at + 1 >= len(lines):
            raise TrajsrError(f"{path}: frame {frame} ends after its title line: the file is truncated "
                              f"({complete_before(frame)})")
        try:
            n = int(lines[at + 1])
        except ValueError:
            return  # not the layout this walks: mdtraj decides
        atoms = lines[at + 2: at + 2 + n]
        cut_atom = bool(atoms) and at + 2 + len(atoms) == len(lines) and not whole and len(atoms[-1]) < len(atoms[0])
        if len(atoms) < n or cut_atom:
            where = (f"inside atom line {len(atoms)} of its {n}" if cut_atom
                     else f"after {len(atoms)} of its {n} atom lines")
            raise TrajsrError(f"{path}: frame {frame} ends {where}: the file is truncated ({complete_before(frame)})")
        if at + 2 + n >= len(lines):
            raise TrajsrError(f"{path}: frame {frame} ends before its box line: the file is truncated "
                              f"({complete_before(frame)})")
        box, last = lines[at + 2 + n].split(), at + 2 + n == len(lines) - 1
        if last and (len(box) not in (3, 9) or not whole and len(box[-1]) < len(box[0])):
            raise TrajsrError(f"{path}: frame {frame} ends inside its box line: the file is truncated "
                              f"({complete_before(frame)})")
        at += n + 3
        frame += 1


def check_mdcrd_complete(path, n_atoms: int) -> None:
    """Refuse an Amber ASCII trajectory (.mdcrd, .crd: a title, then each frame's 3N coordinates in fields of
    8 characters, ten a line, and an optional box line of three) that ends inside a frame or a number:
    mdtraj stops at the last whole frame without a word and reads a number cut short as it stands. Only
    the file's end is judged; a file that does not follow the layout is left to mdtraj."""
    per_line = [min(10, 3 * n_atoms - i) for i in range(0, 3 * n_atoms, 10)]
    with open(path, "rb") as f:
        f.readline()  # the title
        data = f.read()
    lines = data.rstrip(b"\r\n").splitlines()
    at, frame = 0, 0
    while at < len(lines):
        start = at
        for count in per_line:
            if at == len(lines):
                raise TrajsrError(f"{path}: frame {frame} ends after {at - start} of its {len(per_line)} lines: the "
                                  f"file is truncated ({complete_before(frame)})")
            width = len(lines[at].rstrip())
            if width != 8 * count:
                if at == len(lines) - 1:
                    raise TrajsrError(f"{path}: frame {frame} ends inside a number (its last line holds {width} of "
                                      f"{8 * count} characters): the file is truncated ({complete_before(frame)})")
                return  # not the layout this walks: mdtraj decides
            at += 1
        if at < len(lines) and len(lines[at].split()) == 3 and per_line[0] != 3:  # the frame's box
            box = lines[at].split()
            if at == len(lines) - 1 and not data.endswith(b"\n") and len(box[2]) < len(box[0]):
                raise TrajsrError(f"{path}: frame {frame} ends inside its box line: the file is truncated "
                                  f"({complete_before(frame)})")
            at += 1
        frame += 1


def check_complete(path, suffix, n_read: int | None) -> None:
    """A DCD header counts its frames: fewer read (or whole in the file) means the file was cut short."""
    if suffix != ".dcd" or n_read is None:
        return
    with open(path, "rb") as f:
        header = f.read(12)
    if len(header) == 12 and header[4:8] == b"CORD":
        declared = int(np.frombuffer(header[8:12], "<i4")[0])
        if declared > n_read:
            raise TrajsrError(f"{path}: truncated: its header declares {declared} frames, only {n_read} are "
                              "complete")


@contextlib.contextmanager
def quiet_stdout():
    """Silence the C-level stdout of mdtraj's molfile plugins ("dcdplugin) detected ...") for a block."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "wb") as null:
        os.dup2(null.fileno(), 1)
        try:
            yield
        finally:
            os.dup2(saved, 1)
            os.close(saved)


def _no_topology(path, suffix):
    return TrajsrError(f"{path}: {suffix} files hold no atoms; give a topology with -t/--top")


class Appender:
    """Append chunks to a new dcd, xtc, trr (with velocities) or nc file through mdtraj's file objects."""

    def __init__(self, path, suffix):
        self.path, self.suffix, self.handle, self.n_frames = path, suffix, None, 0

    def append(self, traj: Trajectory) -> None:
        import mdtraj
        from mdtraj.utils import in_units_of
        md = traj.to_mdtraj()
        if self.handle is None:
            self.handle = mdtraj.open(str(self.path), "w")
        xyz = in_units_of(md.xyz, "nanometers", self.handle.distance_unit)
        steps = np.arange(self.n_frames, self.n_frames + md.n_frames)
        if self.suffix == ".dcd":
            self.handle.write(xyz, md.unitcell_lengths, md.unitcell_angles)
        elif self.suffix == ".nc":
            self.handle.write(xyz, md.time, md.unitcell_lengths, md.unitcell_angles)
        elif self.suffix == ".trr" and traj.velocities is not None:
            from .trr import write_with_velocities
            write_with_velocities(self.handle, xyz, md.time, steps, md.unitcell_vectors, traj.velocities)
        else:  # xtc, trr
            self.handle.write(xyz, time=md.time, step=steps, box=md.unitcell_vectors)
        self.n_frames += md.n_frames

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def _velocities(path, suffix, n_frames):
    if suffix == ".trr":
        from .trr import read_velocities
        return read_velocities(path, n_frames)
    if suffix in (".nc", ".ncdf", ".netcdf"):
        from scipy.io import netcdf_file
        with netcdf_file(str(path), "r", mmap=False) as f:
            if "velocities" not in f.variables:
                return None
            var = f.variables["velocities"]
            scale = getattr(var, "scale_factor", _AMBER_VELOCITY_SCALE)
            return np.asarray(var[:], np.float64) * scale * 0.1  # Å/ps after scaling -> nm/ps
    return None


def _atoms_in_file(path):
    """Atom count stored in a coordinate file, or None if mdtraj cannot tell."""
    import mdtraj
    try:
        with mdtraj.open(str(path)) as f:
            return np.shape(f.read(n_frames=1)[0])[1]
    except Exception:
        return None


def _read_error(path, topology, err):
    message = _short(err)
    if topology is not None:
        n_file = _atoms_in_file(path)
        if n_file is not None and n_file != topology.n_atoms:
            return TrajsrError(f"{path}: atom count mismatch: topology has {topology.n_atoms} atoms, "
                               f"trajectory has {n_file}")
    match = re.search(r"shape \(Any, (\d+), 3\).*?\(\d+, (\d+), 3\)", message)
    if match:
        return TrajsrError(f"{path}: atom count mismatch: topology has {match.group(1)} atoms, "
                           f"trajectory has {match.group(2)}")
    if topology is not None and "atoms" in message and ("match" in message or "number" in message):
        return TrajsrError(f"{path}: atom count mismatch with topology ({topology.n_atoms} atoms): {message}")
    if "read error" in message.lower() or "not divideable" in message:
        return TrajsrError(f"{path}: cannot read trajectory: truncated or corrupt ({message})")
    if "double" in message.lower() and str(path).endswith(".trr"):
        return TrajsrError(f"{path}: double-precision TRR is not supported by mdtraj; convert it to single "
                           "precision first (gmx trjconv -f IN.trr -o OUT.trr with a single-precision gmx)")
    return TrajsrError(f"{path}: cannot read trajectory ({message})")


def _short(err) -> str:
    return " ".join(str(err).split())[:300] or type(err).__name__
