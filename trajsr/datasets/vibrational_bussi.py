"""ASE's Bussi thermostat acting on a molecule's vibrations alone: the GFN2-xTB NVT reference recipe.

A global velocity rescaling conserves the direction of an isolated molecule's angular momentum and only
scales it, so it cannot thermalise the rotation; counting the rotation's 3 degrees of freedom then lets
each run's rotational energy set its vibrational temperature. This integrator keeps the centre-of-mass
velocity and the rigid rotation as they are and rescales the rest with 3N − 6 degrees of freedom
(3N − 5 linear): the same thermostat as :func:`trajsr.propagation.thermostats.bussi`.
"""
from __future__ import annotations

from ase.md.bussi import Bussi

from ..physics import kinetic_energy, rigid_body_split


class VibrationalBussi(Bussi):
    """:class:`ase.md.bussi.Bussi` on the vibrations (arguments as there: ASE units)."""

    def __init__(self, atoms, *args, **kwargs):
        super().__init__(atoms, *args, **kwargs)
        shares = rigid_body_split(atoms.get_positions(), atoms.get_velocities(), atoms.get_masses())[2]
        self.ndof = int(round(shares.sum()))
        self.target_kinetic_energy = 0.5 * self.temp * self.ndof

    def scale_velocities(self):
        """Rescale the vibrational velocities (Bussi et al. 2007, eq. A7); rigid-body motion kept."""
        masses = self.atoms.get_masses()
        vibrational, rigid, _ = rigid_body_split(self.atoms.get_positions(), self.atoms.get_velocities(), masses)
        kinetic = float(kinetic_energy(vibrational, masses))
        alpha = self.calculate_alpha(kinetic)
        self.atoms.set_velocities(rigid + alpha * vibrational)
        self.transferred_energy += (alpha ** 2 - 1.0) * kinetic
