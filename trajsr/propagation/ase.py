"""ASE integrator: the learned step as an :class:`ase.md.md.MolecularDynamics` subclass.

>>> from trajsr.ase import LearnedDynamics
>>> dyn = LearnedDynamics(atoms, model="models/ethanol-gfn2-prop-f10.keras", trajectory="md.traj")
>>> dyn.attach(observer, interval=10)
>>> dyn.run(1000)          # 1000 learned steps of the model's stride

Works when the atoms have no calculator: the base class would ask for forces, so ``irun`` is
overridden (as FlashMD's ASE adapter does) and ``step()`` is the learned step.
"""
from __future__ import annotations

import numpy as np
from ase import units
from ase.md.md import MolecularDynamics

from ..errors import TrajsrError
from ..trajectory import Trajectory
from .propagator import CHUNK_STRIDES, Propagator
from ..units import ANGSTROM_PER_NM, NM_PER_ANGSTROM, NM_PER_PS_PER_ANGSTROM_PER_FS


class LearnedDynamics(MolecularDynamics):
    """Molecular dynamics with a learned propagator.

    Parameters
    ----------
    atoms : ase.Atoms
        Positions in Å and velocities (momenta) as ASE stores them.
    model : str, Path or Propagator
        A propagator ``.keras`` file or a loaded :class:`~trajsr.propagation.propagator.Propagator`.
    timestep : float, optional
        In ASE time units (``n * ase.units.fs``); must equal the model's stride. Default: the stride.
    **kwargs
        ``trajectory``, ``logfile``, ``loginterval``, ``append_trajectory`` as for any ASE dynamics.
    """

    def __init__(self, atoms, model, timestep: float | None = None, **kwargs):
        self.propagator = model if isinstance(model, Propagator) else Propagator.load(model)
        stride = self.propagator.stride_fs
        if timestep is None:
            timestep = stride * units.fs
        if abs(timestep / units.fs - stride) > 1e-6 * stride:
            raise TrajsrError(f"timestep {timestep / units.fs:g} fs is not the model's step of {stride:g} fs "
                              f"({self.propagator.factor} x {self.propagator.dt_fs:g} fs)")
        from ..atom_order import check_atoms
        check_atoms(Trajectory(positions=atoms.get_positions() * NM_PER_ANGSTROM, elements=atoms.get_chemical_symbols(),
                               source="the atoms"), self.propagator.elements, self.propagator.layer.reference_list,
                    "the propagator")
        super().__init__(atoms, timestep, **kwargs)

    def step(self):
        """One learned step of the model's stride (no forces needed)."""
        self._advance(1)

    def _advance(self, k: int) -> None:
        """``k`` learned strides in one compiled call; the atoms end at the last one."""
        x = self.atoms.get_positions()[None] * NM_PER_ANGSTROM
        v = self.atoms.get_velocities()[None] * units.fs * NM_PER_PS_PER_ANGSTROM_PER_FS
        xs, vs = self.propagator.step(x, v, k)
        if not (np.isfinite(xs).all() and np.isfinite(vs).all()):
            raise TrajsrError(f"learned steps {self.nsteps + 1}-{self.nsteps + k} produced non-finite positions "
                              "or velocities")
        self.atoms.set_positions(xs[-1, 0] * ANGSTROM_PER_NM)
        self.atoms.set_velocities(vs[-1, 0] / NM_PER_PS_PER_ANGSTROM_PER_FS / units.fs)

    def _steps_to_next_observer(self) -> int:
        """Strides until an observer (trajectory writer, logger, user callback) is next due."""
        ahead = []
        for _, interval, _, _ in self.observers:
            if interval > 0:
                ahead.append(interval - self.nsteps % interval)
            elif -interval > self.nsteps:
                ahead.append(-interval - self.nsteps)
        return min(ahead, default=CHUNK_STRIDES)

    def irun(self, steps=50):
        """As :meth:`MolecularDynamics.irun`, without asking the atoms for forces, and advancing as many
        strides per compiled call as the observers allow (up to ``CHUNK_STRIDES``); yields after each."""
        self.max_steps = self.nsteps + steps
        if self.nsteps == 0:
            self.log()
            self.call_observers()
        yield self.nsteps == self.max_steps
        while self.nsteps < self.max_steps:
            k = max(1, min(self._steps_to_next_observer(), self.max_steps - self.nsteps, CHUNK_STRIDES))
            self._advance(k)
            self.nsteps += k
            self.log()
            self.call_observers()
            yield self.nsteps == self.max_steps

    def run(self, steps=50):
        """Run ``steps`` learned steps; returns True when done (as ASE's dynamics do)."""
        for converged in self.irun(steps):
            pass
        return converged
