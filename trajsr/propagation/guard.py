"""The guard: stop a rollout that blows up, say when and why, keep the frames before it.

Checks each new frame for non-finite values, a bond stretched or squashed past ``bond_factor`` × its
start length, and a temperature above 10× the start (or thermostat) temperature + 1000 K. A hydrogen
that has left its start partner while it stays within ``bond_factor`` × the covalent radii of another
heavy atom is chemistry, not a blow-up: a proton transfer, as in malonaldehyde's enol (many times per
10 ps at 700 K in GFN2-xTB, whose proton in flight reaches 1.41 Å from the nearer oxygen in 18 runs of
5-10 ps; a 1.2× covalent-radii limit, 1.16 Å, stopped the propagator on such frames).
"""
from __future__ import annotations

import numpy as np

from ..physics import covalent_radii_of, temperature
from ..trajectory import Trajectory
from ..units import ANGSTROM_PER_NM


class Guard:
    """Watch replicas (B, N, 3) of a molecule with ``elements`` starting at ``positions`` (nm).

    Parameters
    ----------
    elements : list of str
    masses : ndarray
        Da.
    positions : ndarray, shape (N, 3)
        Start geometry (nm): its bonds (covalent radii) and their lengths are the reference.
    start_temperature : float
        K; the runaway limit is 10× this + 1000 K.
    bond_factor : float
        Allowed ratio to the start length, both ways.
    """

    def __init__(self, elements, masses, positions, start_temperature, bond_factor=1.8):
        from ..observables import bonds_of
        self.elements, self.masses, self.bond_factor = list(elements), np.asarray(masses), float(bond_factor)
        self.bonds = bonds_of(Trajectory(positions=positions, elements=self.elements))
        self.lengths = (np.linalg.norm(positions[self.bonds[:, 0]] - positions[self.bonds[:, 1]], axis=-1)
                        if len(self.bonds) else np.zeros(0))
        self.max_temperature = 10 * start_temperature + 1000
        self.radii = covalent_radii_of(self.elements)  # nm
        self.heavy = np.array([e != "H" for e in self.elements])

    def check(self, xs, vs, done, stride_fs):
        """First bad frame of (k, B, N, 3) states after ``done`` strides: (index, message), or (k, None)."""
        for i in range(len(xs)):
            when = f"at step {done + i + 1} (t = {(done + i + 1) * stride_fs:g} fs)"
            if not (np.isfinite(xs[i]).all() and np.isfinite(vs[i]).all()):
                return i, f"rollout stopped {when}: non-finite positions or velocities"
            if len(self.bonds):
                problem = self.describe_bonds(xs[i])
                if problem:
                    return i, f"rollout stopped {when}: {problem}"
            temp = temperature(vs[i], self.masses).max()
            if temp > self.max_temperature:
                return i, f"rollout stopped {when}: temperature ran away to {temp:.0f} K"
        return len(xs), None

    def describe_bonds(self, x, label: str = "start"):
        """The worst bond of replicas (B, N, 3) nm beyond ``bond_factor`` × its start length, both ways, as
        ``"bond C0-O2 at 3.10 Å, start 1.43 Å"``; None when every bond is within it (or a proton moved)."""
        b0, b1 = self.bonds[:, 0], self.bonds[:, 1]
        r = np.linalg.norm(x[:, b0] - x[:, b1], axis=-1) / self.lengths
        stretched = r > self.bond_factor
        for replica, bond in zip(*np.nonzero(stretched)):
            stretched[replica, bond] = not self._hydrogen_moved(x[replica], *self.bonds[bond])
        r = np.where(stretched | (r <= self.bond_factor), r, 1.0)
        if not (stretched.any() or (r < 1 / self.bond_factor).any()):
            return None
        b = np.unravel_index(np.argmax(np.abs(np.log(r))), r.shape)[1]  # the worst bond still counted
        a, c = self.bonds[b]
        length = np.linalg.norm(x[:, a] - x[:, c], axis=-1).max() * ANGSTROM_PER_NM
        return (f"bond {self.elements[a]}{a}-{self.elements[c]}{c} at {length:.2f} Å, "
                f"{label} {self.lengths[b] * ANGSTROM_PER_NM:.2f} Å")

    def _hydrogen_moved(self, x, a, c):
        """Whether bond a–c is stretched because its hydrogen is on its way to, or at, another heavy atom."""
        for h, partner in ((a, c), (c, a)):
            if self.elements[h] != "H":
                continue
            d = np.linalg.norm(x - x[h], axis=-1)
            bonded = self.heavy & (d < self.bond_factor * (self.radii + self.radii[h]))
            bonded[partner] = False
            if bonded.any():
                return True
        return False
