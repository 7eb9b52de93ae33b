"""CP2K's MD trajectory: ``PROJECT-pos-1.xyz`` with the ``PROJECT-vel-1.xyz`` and ``PROJECT-frc-1.xyz``
CP2K writes beside it (``&MOTION &PRINT`` ``TRAJECTORY``, ``VELOCITIES``, ``FORCES``), read as one
trajectory.

Each file is XYZ text, frame after frame, with the comment line `` i = STEP, time = FS, E = HARTREE``;
CP2K's default units: positions in Å, velocities in bohr per atomic unit of time, forces in
hartree/bohr, the potential energy in hartree, time in fs. Read only (write ``.extxyz`` or ``.h5``).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import TrajsrError
from ..trajectory import Trajectory
from ..units import KJ_PER_MOL_PER_HARTREE, NM_PER_ANGSTROM, PS_PER_FS, length_to_nm, velocity_to_nm_per_ps

#: the comment line of every frame CP2K writes in an MD trajectory file
COMMENT = re.compile(r"^\s*i\s*=\s*(-?\d+)\s*,\s*time\s*=\s*([-+0-9.eE]+)\s*,\s*E\s*=\s*([-+0-9.eE]+)")
NAME = re.compile(r"^(?P<project>.+)-pos-(?P<index>\d+)\.xyz$")
#: the files beside the positions, what each holds, and the factor from CP2K's unit to trajsr's
SIBLINGS = {"vel": ("velocities", velocity_to_nm_per_ps("bohr/au")),
            "frc": ("forces", KJ_PER_MOL_PER_HARTREE / length_to_nm("bohr"))}


def is_positions(path) -> bool:
    """Whether ``path`` is a CP2K MD positions file: named ``PROJECT-pos-N.xyz``, its first comment line
    CP2K's ``i = ..., time = ..., E = ...``."""
    if not NAME.match(Path(path).name):
        return False
    try:
        with open(path, errors="replace") as f:
            f.readline()
            return bool(COMMENT.match(f.readline()))
    except OSError:
        return False


def read(path) -> Trajectory:
    """The positions file and, where they lie beside it, its velocities and forces (nm, nm/ps, kJ/mol/nm,
    kJ/mol, ps). A companion file must hold the same steps and atoms as the positions file."""
    path = Path(path)
    steps, time_fs, energy, elements, positions = _frames(path)
    found = NAME.match(path.name)
    extra = {}
    for kind, (name, factor) in SIBLINGS.items():
        sibling = path.with_name(f"{found['project']}-{kind}-{found['index']}.xyz")
        if not sibling.exists():
            continue
        their_steps, _, _, their_elements, values = _frames(sibling)
        if their_elements != elements:
            raise TrajsrError(f"{sibling}: other atoms ({len(their_elements)}) than {path.name} ({len(elements)})")
        if not np.array_equal(their_steps, steps):
            differ = next((i for i, (a, b) in enumerate(zip(their_steps, steps)) if a != b), min(len(steps),
                                                                                                  len(their_steps)))
            raise TrajsrError(f"{sibling}: {len(their_steps)} frames, {path.name} {len(steps)}; they differ from "
                              f"frame {differ} on (CP2K must print both at the same steps)")
        extra[name] = values * factor
    return Trajectory(positions=positions * NM_PER_ANGSTROM, elements=elements, time=time_fs * PS_PER_FS,
                      potential_energy=energy * KJ_PER_MOL_PER_HARTREE, source=str(path), **extra)


def _frames(path):
    """Steps, times (fs), energies (hartree), elements and values (frames, atoms, 3) of one CP2K file."""
    lines = Path(path).read_text(errors="replace").splitlines()
    steps, times, energies, blocks, elements, k = [], [], [], [], None, 0
    while k < len(lines) and lines[k].strip():
        frame = len(steps)
        try:
            n = int(lines[k])
        except ValueError:
            raise TrajsrError(f"{path}: frame {frame}: expected an atom count, found {lines[k][:40]!r}") from None
        comment = COMMENT.match(lines[k + 1]) if k + 1 < len(lines) else None
        body = [line.split() for line in lines[k + 2:k + 2 + n]]
        if comment is None or len(body) < n or any(len(row) < 4 for row in body):
            raise TrajsrError(f"{path}: frame {frame} is incomplete or not CP2K's (truncated file?)")
        symbols = [re.sub(r"(_.*|\d+)$", "", row[0]) for row in body]  # CP2K kinds such as H1, O_w
        if elements is None:
            elements = symbols
        elif symbols != elements:
            raise TrajsrError(f"{path}: frame {frame} has other atoms than frame 0")
        steps.append(int(comment[1]))
        times.append(float(comment[2]))
        energies.append(float(comment[3]))
        blocks.append(np.array([row[1:4] for row in body], float))
        k += 2 + n
    if not steps:
        raise TrajsrError(f"{path}: no frames")
    return np.array(steps), np.array(times), np.array(energies), elements, np.stack(blocks)
