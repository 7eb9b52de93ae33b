"""The trajectory container that flows through trajsr: positions, velocities, time, elements.

mdtraj's :class:`mdtraj.Trajectory` has no velocities, so trajsr carries its own small container and
converts to and from mdtraj at the file boundary. Shapes and finiteness are checked once, here.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .errors import TrajsrError
from .units import FS_PER_PS

#: relative tolerance on frame spacing before a trajectory counts as unevenly spaced
SPACING_RTOL = 1e-3
#: xtc, trr and NetCDF store time in float32, which resolves t only to ~1.2e-7 t: a step between two such
#: times may be off by two of those units (0.5 fs frames at 10 ps: 0.7%; at 1 ns: 70%)
FLOAT32_TIME_RESOLUTION = 2 * float(np.finfo(np.float32).eps)


@dataclasses.dataclass
class Trajectory:
    """A trajectory in mdtraj's units.

    Parameters
    ----------
    positions : ndarray, shape (n_frames, n_atoms, 3)
        Positions in nm.
    elements : list of str
        Element symbol of each atom (``"C"``, ``"H"``, ...).
    velocities : ndarray, shape (n_frames, n_atoms, 3), optional
        Velocities in nm/ps.
    time : ndarray, shape (n_frames,), optional
        Time of each frame in ps. ``None`` when the source file has no time information.
    unitcell_vectors : ndarray, shape (n_frames, 3, 3), optional
        Periodic box vectors in nm; ``None`` for a molecule in vacuum.
    potential_energy : ndarray, shape (n_frames,), optional
        Potential energy of each frame in kJ/mol, where the generator recorded it.
    forces : ndarray, shape (n_frames, n_atoms, 3), optional
        Forces on the atoms of each frame in kJ/mol/nm, where the file stores them (extxyz, npz ``F``,
        trajsr h5, and what ASE reads with forces).
    uncertainty : ndarray, shape (n_frames, n_atoms), optional
        A reconstruction's per-atom uncertainty in nm (σ of each Cartesian component; 0 at kept frames).
    topology : mdtraj.Topology, optional
        Kept when the source has one, so that formats such as PDB can be written back.
    info : dict
        Provenance (method, temperature in K, seed, ...), written by formats that can store it.
    source : str
        Where the data came from; used in error messages.
    first_frame : int
        Index in ``source`` of this trajectory's frame 0 (a streamed chunk's offset), for error messages.
    """

    positions: np.ndarray
    elements: list
    velocities: np.ndarray | None = None
    time: np.ndarray | None = None
    unitcell_vectors: np.ndarray | None = None
    potential_energy: np.ndarray | None = None
    forces: np.ndarray | None = None
    uncertainty: np.ndarray | None = None
    topology: Any = None
    info: dict = dataclasses.field(default_factory=dict)
    source: str = "trajectory"
    first_frame: int = 0

    def __post_init__(self):
        self.positions = np.asarray(self.positions, dtype=np.float64)
        if self.positions.ndim == 2:
            self.positions = self.positions[None]
        if self.positions.ndim != 3 or self.positions.shape[2] != 3:
            raise TrajsrError(f"{self.source}: positions must have shape (frames, atoms, 3), "
                              f"got {self.positions.shape}")
        self.elements = [str(e) for e in self.elements]
        if len(self.elements) != self.n_atoms:
            raise TrajsrError(f"{self.source}: {len(self.elements)} elements for {self.n_atoms} atoms")
        _check_finite(self.positions, "coordinates", self.source, self.first_frame)
        if self.velocities is not None:
            self.velocities = np.asarray(self.velocities, dtype=np.float64).reshape(self.positions.shape) \
                if np.size(self.velocities) == self.positions.size else _bad_shape(self, "velocities")
            _check_finite(self.velocities, "velocities", self.source, self.first_frame)
        if self.forces is not None:
            self.forces = np.asarray(self.forces, dtype=np.float64).reshape(self.positions.shape) \
                if np.size(self.forces) == self.positions.size else _bad_shape(self, "forces")
            _check_finite(self.forces, "forces", self.source, self.first_frame)
        if self.potential_energy is not None:
            self.potential_energy = np.asarray(self.potential_energy, dtype=np.float64).reshape(-1)
            if len(self.potential_energy) != self.n_frames:
                raise TrajsrError(f"{self.source}: {len(self.potential_energy)} energies for {self.n_frames} frames")
        if self.time is not None:
            self.time = np.asarray(self.time, dtype=np.float64).reshape(-1)
            if len(self.time) != self.n_frames:
                raise TrajsrError(f"{self.source}: {len(self.time)} times for {self.n_frames} frames")
        if self.uncertainty is not None:
            self.uncertainty = np.asarray(self.uncertainty, dtype=np.float64)
            if self.uncertainty.shape != self.positions.shape[:2]:
                raise TrajsrError(f"{self.source}: uncertainty has shape {self.uncertainty.shape}, expected "
                                  f"(frames, atoms) = {self.positions.shape[:2]}")
        if self.unitcell_vectors is not None:
            box = np.asarray(self.unitcell_vectors, dtype=np.float64)
            self.unitcell_vectors = np.broadcast_to(box.reshape(-1, 3, 3), (self.n_frames, 3, 3)).copy()

    # -- shape -----------------------------------------------------------------------------------
    @property
    def n_frames(self) -> int:
        return self.positions.shape[0]

    @property
    def n_atoms(self) -> int:
        return self.positions.shape[1]

    def __len__(self) -> int:
        return self.n_frames

    @property
    def has_velocities(self) -> bool:
        return self.velocities is not None

    @property
    def is_periodic(self) -> bool:
        return self.unitcell_vectors is not None

    @property
    def atomic_numbers(self) -> np.ndarray:
        from ase.data import atomic_numbers
        return np.array([atomic_numbers[e] for e in self.elements])

    @property
    def masses(self) -> np.ndarray:
        """Atomic masses in g/mol (= Da)."""
        from ase.data import atomic_masses
        return atomic_masses[self.atomic_numbers]

    # -- time ------------------------------------------------------------------------------------
    @property
    def dt(self) -> float:
        """Frame spacing in ps.

        Raises
        ------
        TrajsrError
            If the trajectory has no time information, or its spacing is uneven (the message names the
            first bad frame).
        """
        if self.time is None:
            raise TrajsrError(f"{self.source}: no time information in this file; give the frame spacing "
                              "with --dt (fs)")
        if self.n_frames < 2:
            raise TrajsrError(f"{self.source}: one frame has no frame spacing")
        steps = np.diff(self.time)
        dt = steps[0]
        if dt <= 0:
            raise TrajsrError(f"{self.source}: time does not increase at frame 1 "
                              f"({self.time[0]:g} ps -> {self.time[1]:g} ps)")
        # each step against the first, allowing the rounding of float32 times at both ends of the two
        rounding = FLOAT32_TIME_RESOLUTION * (np.abs(self.time[1:]) + abs(self.time[1]))
        bad = np.flatnonzero(np.abs(steps - dt) > SPACING_RTOL * abs(dt) + rounding)
        if bad.size:
            i = bad[0] + 1
            raise TrajsrError(f"{self.source}: uneven time step at frame {i}: "
                              f"{steps[i - 1] * FS_PER_PS:g} fs after {dt * FS_PER_PS:g} fs "
                              "(missing or repeated frames?)")
        return float(np.mean(steps))

    def with_dt(self, dt_ps: float) -> "Trajectory":
        """A copy whose time is ``arange(n_frames) * dt_ps`` (ps), starting at the first stored time."""
        t0 = self.time[0] if self.time is not None else 0.0
        return self.replace(time=t0 + np.arange(self.n_frames) * float(dt_ps))

    # -- slicing ---------------------------------------------------------------------------------
    def replace(self, **changes) -> "Trajectory":
        """A shallow copy with some fields replaced (see :func:`dataclasses.replace`)."""
        return dataclasses.replace(self, **changes)

    def __getitem__(self, index) -> "Trajectory":
        """Frames by slice or index array; always returns a Trajectory."""
        if isinstance(index, (int, np.integer)):
            index = slice(index, index + 1 if index != -1 else None)

        def take(a):
            return None if a is None else a[index]
        return self.replace(positions=self.positions[index], velocities=take(self.velocities),
                            time=take(self.time), unitcell_vectors=take(self.unitcell_vectors),
                            potential_energy=take(self.potential_energy), forces=take(self.forces),
                            uncertainty=take(self.uncertainty))

    def reorder_atoms(self, order) -> "Trajectory":
        """The same frames with atom ``k`` the old atom ``order[k]`` (a permutation); per-atom arrays follow,
        the topology (residues, bonds) is dropped: its atoms would no longer match."""
        order = np.asarray(order, int)
        if sorted(order.tolist()) != list(range(self.n_atoms)):
            raise TrajsrError(f"{self.source}: an atom order must list each of its {self.n_atoms} atoms once")

        def take(a):
            return None if a is None else a[:, order]
        return self.replace(positions=self.positions[:, order], elements=[self.elements[i] for i in order],
                            velocities=take(self.velocities), forces=take(self.forces),
                            uncertainty=take(self.uncertainty), topology=None)

    def stride(self, factor: int) -> "Trajectory":
        """Keep every ``factor``-th frame, starting with the first: the coarse trajectory."""
        factor = check_factor(factor)
        out = self[::factor]
        out.info = dict(self.info, stride=factor)
        return out

    def to_ase(self, frame: int = 0):
        """Frame ``frame`` as :class:`ase.Atoms` (Å; velocities, and the box, where stored)."""
        import ase
        from ase import units

        from .units import ANGSTROM_PER_NM, NM_PER_PS_PER_ANGSTROM_PER_FS
        atoms = ase.Atoms(self.elements, positions=self.positions[frame] * ANGSTROM_PER_NM)
        if self.velocities is not None:
            atoms.set_velocities(self.velocities[frame] / NM_PER_PS_PER_ANGSTROM_PER_FS / units.fs)
        if self.unitcell_vectors is not None:
            atoms.cell, atoms.pbc = self.unitcell_vectors[frame] * ANGSTROM_PER_NM, True
        return atoms

    # -- mdtraj ----------------------------------------------------------------------------------
    def to_mdtraj(self):
        """An :class:`mdtraj.Trajectory` (positions, time, box; velocities are dropped)."""
        import mdtraj
        top = self.topology if self.topology is not None else topology_from_elements(self.elements)
        traj = mdtraj.Trajectory(self.positions.astype(np.float32), top,
                                 time=self.time if self.time is not None else np.arange(self.n_frames))
        if self.unitcell_vectors is not None:
            traj.unitcell_vectors = self.unitcell_vectors.astype(np.float32)
        return traj


def concatenate(parts: list) -> Trajectory:
    """Frames of several trajectories of the same atoms, in order; a per-frame array is kept only if
    every part has it. Topology, info and source come from the first part."""
    def cat(name):
        arrays = [getattr(p, name) for p in parts]
        return None if any(a is None for a in arrays) else np.concatenate(arrays)
    return parts[0].replace(positions=cat("positions"), velocities=cat("velocities"), time=cat("time"),
                            unitcell_vectors=cat("unitcell_vectors"), potential_energy=cat("potential_energy"),
                            forces=cat("forces"), uncertainty=cat("uncertainty"))


def topology_from_elements(elements) -> "mdtraj.Topology":  # noqa: F821
    """A one-residue mdtraj topology with one atom per element symbol."""
    import mdtraj
    top = mdtraj.Topology()
    residue = top.add_residue("MOL", top.add_chain())
    for i, symbol in enumerate(elements):
        top.add_atom(f"{symbol}{i + 1}", mdtraj.element.get_by_symbol(symbol), residue)
    return top


def check_factor(factor) -> int:
    """Validate a stride/upsampling factor (an integer ≥ 2)."""
    if int(factor) != factor or factor < 2:
        raise TrajsrError(f"--factor must be an integer >= 2, got {factor}")
    return int(factor)


def _check_finite(array: np.ndarray, what: str, source: str, first_frame: int = 0) -> None:
    bad = ~np.isfinite(array)
    if bad.any():
        frame, atom, _ = np.argwhere(bad)[0]
        raise TrajsrError(f"{source}: non-finite {what} (NaN or inf) at frame {frame + first_frame}, atom {atom}")


def _bad_shape(traj: Trajectory, what: str):
    raise TrajsrError(f"{traj.source}: {what} have {np.size(getattr(traj, what))} values, "
                      f"expected {traj.positions.size} (frames x atoms x 3)")
