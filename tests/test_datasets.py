import hashlib
import json

import numpy as np
import pytest

from trajsr import load
from trajsr.datasets import MANIFEST, SHIPPED_DIR, make


def kinetic_energy(traj):
    """kJ/mol per frame (masses in g/mol, velocities in nm/ps)."""
    return 0.5 * np.einsum("a,fai->f", traj.masses, traj.velocities ** 2)


def test_alanine_dipeptide_nve_conserves_energy(tmp_path, cli):
    cli("datasets", "make", "alanine-dipeptide-amber", "--seed", 3, "--steps", 400, "-o", tmp_path)
    traj = load(tmp_path / "alanine-dipeptide-amber-seed3.h5")
    assert traj.n_frames == 401 and traj.n_atoms == 22 and traj.dt == pytest.approx(0.0005)
    total = traj.potential_energy + kinetic_energy(traj)
    assert np.ptp(total) < 0.02 * np.ptp(traj.potential_energy)  # NVE
    # on-step velocities: velocity Verlet's central difference is exact
    central = (traj.positions[2:] - traj.positions[:-2]) / (2 * traj.dt)
    np.testing.assert_allclose(central, traj.velocities[1:-1], atol=1e-3)


def test_ethanol_gfn2_recipe(tmp_path):
    (path,) = make("ethanol-gfn2", seeds=[5], steps=40, out_dir=tmp_path, progress=False)
    traj = load(path)
    assert traj.elements.count("H") == 6 and traj.info["method"].startswith("GFN2-xTB")
    assert traj.info["seed"] == 5 and traj.info["temperature_K"] == 500.0
    total = traj.potential_energy + kinetic_energy(traj)
    assert np.ptp(total) < 0.05 * np.ptp(traj.potential_energy) + 0.5


def test_manifest_matches_shipped_files():
    entries = json.loads(MANIFEST.read_text())["datasets"]
    assert {e["name"] for e in entries} >= {"ethanol-gfn2", "alanine-dipeptide-amber", "water-tip3p"}
    for e in entries:
        path = SHIPPED_DIR / e["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == e["sha256"], e["file"]
        traj = load(path)
        assert traj.n_frames == e["frames"] and traj.dt * 1000 == pytest.approx(e["dt_fs"])
    water = load(SHIPPED_DIR / "water-tip3p-seed0.h5")
    assert water.is_periodic


@pytest.mark.parametrize("name,formula,n_bonds", [("ethanol", "C2H6O", 8), ("malonaldehyde", "C3H4O2", 8),
                                                  ("uracil", "C4H4N2O2", 12), ("aspirin", "C9H8O4", 21)])
def test_md17_starting_geometries(name, formula, n_bonds):
    from trajsr import Trajectory
    from trajsr.datasets.molecules import molecule
    from trajsr.metrics import bonds_of
    atoms = molecule(name)
    assert atoms.get_chemical_formula() == formula
    assert len(bonds_of(Trajectory(positions=atoms.positions[None] / 10, elements=atoms.get_chemical_symbols()))) \
        == n_bonds
