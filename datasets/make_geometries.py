"""Make datasets/geometries/{malonaldehyde,uracil,aspirin}.xyz: GFN2-xTB-relaxed starting geometries.

Initial guesses (Å): malonaldehyde's enol form (3-hydroxy-2-propenal, with its intramolecular hydrogen
bond, as in MD17) written by hand; uracil and aspirin from RDKit-generated coordinates found in public
xyz collections. Each is relaxed here with GFN2-xTB (tblite, BFGS, fmax 0.01 eV/Å).
Run from the repository root: ``OMP_NUM_THREADS=1 python datasets/make_geometries.py``.
"""
from pathlib import Path

import ase.io
from ase import Atoms
from ase.optimize import BFGS

from trajsr.datasets.xtb import gfn2_calculator

GUESSES = {
    "malonaldehyde": ("CCCOOHHHH", [
        (0.00, 1.00, 0.0), (1.22, 0.32, 0.0), (-1.22, 0.32, 0.0), (1.30, -0.95, 0.0), (-1.25, -1.00, 0.0),
        (-0.25, -1.25, 0.0), (0.00, 2.08, 0.0), (2.16, 0.88, 0.0), (-2.16, 0.88, 0.0)]),
    "uracil": ("CCNCNCOOHHHH", [
        (1.324729, 0.495159, -0.070942), (1.138941, -0.837418, 0.034184), (-0.149433, -1.388021, 0.108549),
        (-1.307296, -0.554684, 0.075074), (-1.12118, 0.846283, -0.035246), (0.189282, 1.421255, -0.111916),
        (-2.423224, -1.055483, 0.141144), (0.239829, 2.636545, -0.204915), (1.974691, -1.549094, 0.066504),
        (-0.263969, -2.373233, 0.185463), (-1.931361, 1.429996, -0.058703), (2.32899, 0.928694, -0.129196)]),
    "aspirin": ("CCOOCCCCCCCOOHHHHHHHH", [
        (-3.270, -1.093, 0.135), (-1.924, -0.874, -0.489), (-1.683, -0.476, -1.595), (-0.933, -1.205, 0.426),
        (0.361, -0.812, 0.140), (1.280, -1.817, -0.159), (2.618, -1.498, -0.392), (3.040, -0.166, -0.334),
        (2.121, 0.837, -0.034), (0.768, 0.537, 0.209), (-0.191, 1.620, 0.564), (-1.373, 1.486, 0.813),
        (0.403, 2.841, 0.600), (-4.046, -1.066, -0.639), (-3.296, -2.043, 0.688), (-3.427, -0.274, 0.854),
        (0.921, -2.846, -0.202), (3.331, -2.293, -0.625), (4.085, 0.090, -0.520), (2.442, 1.876, 0.018),
        (-0.307, 3.465, 0.834)]),
}


def main():
    out = Path(__file__).resolve().parent / "geometries"
    out.mkdir(exist_ok=True)
    for name, (symbols, positions) in GUESSES.items():
        atoms = Atoms(symbols, positions=positions)
        atoms.calc = gfn2_calculator()
        BFGS(atoms, logfile=None).run(fmax=0.01, steps=500)
        atoms.info = {"comment": f"{name}, GFN2-xTB relaxed, E = {atoms.get_potential_energy():.4f} eV"}
        atoms.calc = None
        ase.io.write(out / f"{name}.xyz", atoms, format="xyz", comment=atoms.info["comment"])
        print(name, len(atoms), atoms.info["comment"])


if __name__ == "__main__":
    main()
