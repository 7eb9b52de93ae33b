"""(Extended) XYZ and ASE trajectory files through ASE.

Some published ``.traj`` files are plain multi-frame XYZ text (sometimes with a blank first line);
they are read as XYZ when ASE's binary reader refuses them.
"""
from __future__ import annotations

import io

import numpy as np

from ..errors import TrajsrError
from ..trajectory import Trajectory
from ..units import (ANGSTROM_PER_NM, FS_PER_PS, KJ_PER_MOL_PER_EV, NM_PER_ANGSTROM, NM_PER_PS_PER_ANGSTROM_PER_FS,
                     PS_PER_FS)


def read(path) -> Trajectory:
    """Read every frame of an xyz/extxyz/ASE-traj file; Å in the file, nm in the result."""
    import ase.io
    from ase import units
    check_xyz_complete(path)
    try:
        frames = ase.io.read(path, index=":")
    except Exception as err:
        frames = _read_text_xyz(path, err)
    if not frames:
        raise TrajsrError(f"{path}: no frames")
    n_atoms = len(frames[0])
    for i, atoms in enumerate(frames):
        if len(atoms) != n_atoms:
            raise TrajsrError(f"{path}: frame {i} has {len(atoms)} atoms, frame 0 has {n_atoms}")
    positions = np.stack([a.get_positions() for a in frames]) * NM_PER_ANGSTROM
    velocities = None
    if all("momenta" in a.arrays for a in frames):
        velocities = np.stack([a.get_velocities() * units.fs for a in frames]) * NM_PER_PS_PER_ANGSTROM_PER_FS
    time = None
    if all("time_fs" in a.info for a in frames):
        time = np.array([a.info["time_fs"] for a in frames]) * PS_PER_FS
    box = None
    if all(a.pbc.all() and abs(a.cell.volume) > 0 for a in frames):  # some codes mark pbc with no cell
        box = np.stack([a.cell.array for a in frames]) * NM_PER_ANGSTROM
    forces, energy = [_result(a, "forces") for a in frames], [_result(a, "energy") for a in frames]
    forces = None if any(f is None for f in forces) else np.stack(forces) * KJ_PER_MOL_PER_EV / NM_PER_ANGSTROM
    energy = None if any(e is None for e in energy) else np.array(energy, float) * KJ_PER_MOL_PER_EV
    return Trajectory(positions=positions, elements=frames[0].get_chemical_symbols(), velocities=velocities,
                      time=time, unitcell_vectors=box, forces=forces, potential_energy=energy, source=str(path))


def _result(atoms, name):
    """A frame's stored ``"forces"`` (eV/Å) or ``"energy"`` (eV): its calculator's results (how ASE reads
    extxyz, .traj, VASP and CP2K outputs), else its arrays or info; None if absent."""
    results = getattr(atoms.calc, "results", None) or {}
    if name in results:
        return np.asarray(results[name], float)
    stored = atoms.arrays.get(name) if name == "forces" else atoms.info.get(name)
    return None if stored is None else np.asarray(stored, float)


def complete_before(frame: int) -> str:
    """What a file cut inside ``frame`` still holds, for its message."""
    return f"frames 0-{frame - 1} are complete" if frame else "no frame is complete"


def check_xyz_complete(path) -> None:
    """Refuse an XYZ text file that ends inside a frame (a copy or a run cut short): ASE drops such a
    last frame without a word where the cut falls between lines, and fails without naming it elsewhere.

    Walks the frames by their atom-count lines; a file that is not XYZ text (ASE's binary .traj, a code's
    output) is left to its reader. An atom line cut inside its last number keeps its field count: it is
    seen by the missing end of line and a line shorter than the frame's others.
    """
    with open(path, "rb") as f:
        if f.read(8) == b"- of Ulm":  # ASE's binary trajectory
            return
        f.seek(0)
        try:
            lines = f.read().decode().lstrip("\n\r ").splitlines(keepends=True)
        except UnicodeDecodeError:
            return
    start, frame = 0, 0
    while start < len(lines) and lines[start].strip():
        header = lines[start].split()
        if len(header) != 1 or not header[0].isdigit():
            return  # not an XYZ frame header: the reader says what is wrong
        n_atoms = int(header[0])
        atoms = lines[start + 2: start + 2 + n_atoms]
        cut, hint = None, ""
        if start + 1 >= len(lines) or len(atoms) < n_atoms:
            cut = f"ends after {len(atoms)} of its {n_atoms} atom lines"
        elif start + 2 + n_atoms < len(lines):
            pass  # not the file's last frame: cut only at the end
        elif n_atoms and len(atoms[-1].split()) < len(atoms[0].split()):
            cut = f"ends inside atom line {n_atoms} ({len(atoms[-1].split())} of {len(atoms[0].split())} fields)"
        elif (not atoms[-1].endswith(("\n", "\r"))
              and len(atoms[-1].rstrip()) < min((len(a.rstrip()) for a in atoms[:-1]), default=0)):
            cut = "ends inside its last atom line (shorter than the frame's others, with no end of line)"
            hint = "; if it is complete, end it with a newline"
        if cut:
            raise TrajsrError(f"{path}: frame {frame} {cut}: the file is truncated ({complete_before(frame)}{hint})")
        start, frame = start + 2 + n_atoms, frame + 1


def _read_text_xyz(path, first_error):
    import ase.io
    try:
        with open(path) as f:
            text = f.read().lstrip("\n\r ")
        return ase.io.read(io.StringIO(text), index=":", format="extxyz")
    except Exception as err:
        with open(path, "rb") as f:
            if f.read(8) == b"- of Ulm":  # ASE's binary trajectory: the text reader's error says nothing
                raise TrajsrError(f"{path}: cannot read as an ASE trajectory: truncated or corrupt "
                                  f"({first_error})") from None
        raise TrajsrError(f"{path}: cannot read as XYZ or ASE trajectory ({first_error}; {err})") from None


def write(traj: Trajectory, path) -> None:
    """Write extended XYZ in Å (velocities as momenta, time in ``time_fs``, forces in eV/Å and the energy
    in eV as ASE stores a calculator's results), or ASE's binary trajectory for ``.traj``."""
    import ase
    import ase.io
    from ase import units
    from ase.calculators.singlepoint import SinglePointCalculator
    frames = []
    for i in range(traj.n_frames):
        atoms = ase.Atoms(traj.elements, positions=traj.positions[i] * ANGSTROM_PER_NM)
        if traj.unitcell_vectors is not None:
            atoms.cell = traj.unitcell_vectors[i] * ANGSTROM_PER_NM
            atoms.pbc = True
        if traj.velocities is not None:
            atoms.set_velocities(traj.velocities[i] / NM_PER_PS_PER_ANGSTROM_PER_FS / units.fs)
        if traj.time is not None:
            atoms.info["time_fs"] = float(traj.time[i] * FS_PER_PS)
        results = {}
        if traj.forces is not None:
            results["forces"] = traj.forces[i] * NM_PER_ANGSTROM / KJ_PER_MOL_PER_EV
        if traj.potential_energy is not None:
            results["energy"] = float(traj.potential_energy[i] / KJ_PER_MOL_PER_EV)
        if results:
            atoms.calc = SinglePointCalculator(atoms, **results)
        frames.append(atoms)
    ase.io.write(path, frames, format="traj" if str(path).endswith(".traj") else "extxyz")
