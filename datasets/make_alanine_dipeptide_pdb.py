"""Build datasets/alanine-dipeptide.pdb (ACE-ALA-NME, 22 atoms) from standard internal coordinates.

Heavy atoms from bond lengths (Å), angles and torsions (degrees; phi = -80, psi = 150, the C7eq/β
basin), hydrogens added by OpenMM's Modeller with amber14-all.xml, then minimised. Run from the
repository root: ``python datasets/make_alanine_dipeptide_pdb.py``.
"""
import io
import sys

import numpy as np
import openmm
from openmm import app, unit


def place(a, b, c, bond, angle, torsion):
    """Position of atom d with |cd| = bond, angle bcd and torsion abcd (NeRF construction)."""
    angle, torsion = np.radians(angle), np.radians(torsion)
    bc = (c - b) / np.linalg.norm(c - b)
    n = np.cross(b - a, bc)
    n /= np.linalg.norm(n)
    m = np.cross(n, bc)
    d2 = np.array([-bond * np.cos(angle), bond * np.sin(angle) * np.cos(torsion),
                   bond * np.sin(angle) * np.sin(torsion)])
    return c + d2[0] * bc + d2[1] * m + d2[2] * n


def heavy_atoms(phi=-80.0, psi=150.0, cb_torsion=None):
    x = {}
    x["CH3"] = np.zeros(3)
    x["C0"] = np.array([1.52, 0.0, 0.0])
    x["N1"] = x["C0"] + 1.33 * np.array([np.cos(np.radians(64)), np.sin(np.radians(64)), 0.0])
    x["O0"] = place(x["N1"], x["CH3"], x["C0"], 1.23, 121, 180)
    x["CA"] = place(x["CH3"], x["C0"], x["N1"], 1.46, 122, 180)
    x["C1"] = place(x["C0"], x["N1"], x["CA"], 1.52, 111, phi)
    x["CB"] = place(x["C0"], x["N1"], x["CA"], 1.53, 110, phi + (cb_torsion or -120))
    x["O1"] = place(x["N1"], x["CA"], x["C1"], 1.23, 120.5, psi + 180)
    x["N2"] = place(x["N1"], x["CA"], x["C1"], 1.33, 116, psi)
    x["C2"] = place(x["CA"], x["C1"], x["N2"], 1.46, 122, 180)
    return x


def is_l_alanine(x):
    """CORN rule: seen from the alpha hydrogen, CO -> R -> N runs clockwise."""
    ca = x["CA"]
    h = -((x["N1"] - ca) / 1.46 + (x["C1"] - ca) / 1.52 + (x["CB"] - ca) / 1.53)
    return np.dot(np.cross(x["C1"] - ca, x["CB"] - ca), h) < 0


def pdb_text(x):
    rows = [("CH3", "ACE", 1, "CH3", "C"), ("C", "ACE", 1, "C0", "C"), ("O", "ACE", 1, "O0", "O"),
            ("N", "ALA", 2, "N1", "N"), ("CA", "ALA", 2, "CA", "C"), ("CB", "ALA", 2, "CB", "C"),
            ("C", "ALA", 2, "C1", "C"), ("O", "ALA", 2, "O1", "O"),
            ("N", "NME", 3, "N2", "N"), ("C", "NME", 3, "C2", "C")]
    lines = [f"HETATM{i + 1:5d} {name:<4s} {res} A{resid:4d}    {x[key][0]:8.3f}{x[key][1]:8.3f}{x[key][2]:8.3f}"
             f"  1.00  0.00          {el:>2s}" for i, (name, res, resid, key, el) in enumerate(rows)]
    return "\n".join(lines + ["END"]) + "\n"


def main(path="datasets/alanine-dipeptide.pdb"):
    x = heavy_atoms()
    if not is_l_alanine(x):
        x = heavy_atoms(cb_torsion=120)
    assert is_l_alanine(x)
    pdb = app.PDBFile(io.StringIO(pdb_text(x)))
    forcefield = app.ForceField("amber14-all.xml")
    modeller = app.Modeller(pdb.topology, pdb.positions)
    modeller.addHydrogens(forcefield)
    system = forcefield.createSystem(modeller.topology, nonbondedMethod=app.NoCutoff, constraints=None)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(modeller.positions)
    openmm.LocalEnergyMinimizer.minimize(context, 1.0, 2000)
    state = context.getState(getPositions=True, getEnergy=True)
    with open(path, "w") as f:
        app.PDBFile.writeFile(modeller.topology, state.getPositions(), f)
    print(f"{path}: {modeller.topology.getNumAtoms()} atoms, "
          f"E = {state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole):.1f} kJ/mol")


if __name__ == "__main__":
    main(*sys.argv[1:])
