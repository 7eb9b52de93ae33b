"""Your own AIMD run (issue 27): forces and energies read from files, GFN1-xTB reference data, and
``trajsr adapt`` fitting a shipped propagator's potential to the forces a coarse file stores."""
import json
import re
import shlex

import numpy as np
import pytest

from trajsr import TrajsrError, load, save
from trajsr.card import read_card
from trajsr.units import KJ_PER_MOL_PER_EV

from .conftest import ROOT, SHARED
from .test_bad_inputs import fails, no_leftovers

PROPAGATOR = ROOT / "models" / "ethanol-gfn2-prop-f10.keras"


@pytest.fixture(scope="module")
def gfn1(tmp_path_factory):
    """200 fs of GFN1-xTB ethanol (NVE at 0.5 fs, forces stored), made by the CLI, and its 5 fs extxyz."""
    from .conftest import run_cli
    d = tmp_path_factory.mktemp("gfn1")
    run_cli("datasets", "make", "ethanol-gfn2", "--method", "gfn1", "--seed", 1, "--md-steps", 400,
            "--equilibration-fs", 50, "-o", d)
    run_cli("stride", d / "ethanol-gfn1-seed1.h5", "--factor", 10, "-o", d / "run.extxyz")
    return d


def test_gfn1_data_stores_forces_that_velocity_verlet_confirms(gfn1):
    from trajsr.propagation.forces import verlet_forces
    manifest = json.loads((gfn1 / "manifest.json").read_text())["datasets"][0]
    assert manifest["name"] == "ethanol-gfn1" and manifest["method"].startswith("GFN1-xTB")
    fine = load(gfn1 / "ethanol-gfn1-seed1.h5")
    assert fine.info["method"].startswith("GFN1-xTB") and fine.forces.shape == fine.positions.shape
    _, from_motion = verlet_forces(fine, fine.masses)  # independent: read off the positions and velocities
    assert np.abs(from_motion - fine.forces[:-1]).max() < 1e-3 * np.abs(fine.forces).max()


def test_forces_and_energies_survive_every_format_that_keeps_them(gfn1, tmp_path):
    fine = load(gfn1 / "ethanol-gfn1-seed1.h5")[:20]
    for ext in ("extxyz", "traj", "npz", "h5"):
        save(fine, tmp_path / f"f.{ext}")
        back = load(tmp_path / f"f.{ext}")
        np.testing.assert_allclose(back.forces, fine.forces, rtol=1e-5, atol=1e-3, err_msg=ext)  # kJ/mol/nm
        np.testing.assert_allclose(back.potential_energy, fine.potential_energy, rtol=1e-9, atol=1e-6, err_msg=ext)
    assert (tmp_path / "f.traj").read_bytes().startswith(b"- of Ulm")  # ASE's binary trajectory, not xyz text
    # the extxyz in ASE's convention: eV/Å and eV
    import ase.io
    atoms = ase.io.read(tmp_path / "f.extxyz", index=0)
    np.testing.assert_allclose(atoms.get_forces() * KJ_PER_MOL_PER_EV * 10, fine.forces[0], rtol=1e-5, atol=1e-3)


def test_sgdml_npz_forces_in_their_units(tmp_path):
    path = SHARED / "6h2o.temelso.etal.pr.md.gfn2.300k.step10000-ase.md-orca.mp2.def2tzvp.300k.npz"
    if not path.exists():
        pytest.skip("the shared mbGDML water data is not beside this checkout")
    raw = np.load(path)
    traj = load(path, dt_fs=1)
    np.testing.assert_allclose(traj.forces, raw["F"] * 4.184 * 10)  # kcal/mol/Å -> kJ/mol/nm
    np.savez(tmp_path / "bad.npz", R=raw["R"][:3], z=raw["z"], F=raw["F"][:3], e_unit=np.array("furlongs"))
    with pytest.raises(TrajsrError, match="unknown energy unit"):
        load(tmp_path / "bad.npz")


def test_adapt_moves_the_potential_to_the_files_forces(gfn1, cli, tmp_path):
    out = cli("adapt", PROPAGATOR, gfn1 / "run.extxyz", "-o", tmp_path / "mine.keras", "--max-minutes", 0.1).stdout
    card = json.loads((tmp_path / "mine.json").read_text())
    before, after = card["held_back"]["before"], card["held_back"]["after"]
    assert card["adapted"] and after["force_error"] < before["force_error"]  # GFN2 -> GFN1 forces
    assert card["frames_trained"] + card["frames_held_back"] == 41 and "force error" in out
    shot = cli("upsample", gfn1 / "run.extxyz", "--model", tmp_path / "mine.keras", "--factor", 10,
               "--positions-only", "-o", tmp_path / "fine.h5").stdout
    assert "401 frames" in shot


def test_adapt_without_forces_fits_the_paths_between_kept_frames(gfn1, cli, tmp_path):
    run = load(gfn1 / "run.extxyz")
    save(run.replace(forces=None, potential_energy=None, velocities=None), tmp_path / "positions.h5")
    out = cli("adapt", PROPAGATOR, tmp_path / "positions.h5", "-o", tmp_path / "p.keras", "--max-minutes", 0.05).stdout
    card = json.loads((tmp_path / "p.json").read_text())
    assert card["fitted_to"] == "paths" and card["held_back"]["before"]["force_error"] is None
    assert "to the paths of 33 frames" in out and (tmp_path / "p.keras").exists()
    misses = [card["held_back"][k]["shooting"][0]["position_miss_angstrom"] for k in ("before", "after")]
    assert (misses[1] <= misses[0]) == card["adapted"]  # kept only where the held-back frames say it helped
    save(run[:20], tmp_path / "a.h5")
    fails(cli("adapt", PROPAGATOR, tmp_path / "a.h5", tmp_path / "positions.h5", "-o", tmp_path / "m.keras",
              check=False), "a.h5 stores forces", "positions.h5 does not")


def test_adapt_refuses_what_it_cannot_use(gfn1, cli, tmp_path):
    run = load(gfn1 / "run.extxyz")
    save(run.replace(time=None), tmp_path / "notime.h5")
    fails(cli("adapt", PROPAGATOR, tmp_path / "notime.h5", "-o", tmp_path / "a.keras", check=False),
          "notime.h5", "--dt")
    mal = load(gfn1 / "run.extxyz")
    save(mal.replace(elements=list(reversed(mal.elements))), tmp_path / "other.extxyz")  # another atom order
    fails(cli("adapt", PROPAGATOR, tmp_path / "other.extxyz", "-o", tmp_path / "a.keras", check=False),
          "atom 0")
    fails(cli("adapt", ROOT / "models" / "ethanol-gfn2-f10.keras", gfn1 / "run.extxyz", "-o", tmp_path / "a.keras",
              check=False), "ethanol-gfn2-f10.keras")
    fails(cli("adapt", PROPAGATOR, gfn1 / "run.extxyz", "-o", tmp_path / "a.h5", check=False), ".keras")
    save(run.replace(forces=run.forces / KJ_PER_MOL_PER_EV / 10), tmp_path / "ev.h5")  # eV/Å stored as kJ/mol/nm
    fails(cli("adapt", PROPAGATOR, tmp_path / "ev.h5", "-o", tmp_path / "a.keras", check=False), "another unit")
    (tmp_path / "a.json").write_text("my notes")  # the card's name is taken: nothing is overwritten
    fails(cli("adapt", PROPAGATOR, gfn1 / "run.extxyz", "-o", tmp_path / "a.keras", check=False), "a.json")
    assert (tmp_path / "a.json").read_text() == "my notes"
    no_leftovers(tmp_path, "a.keras")


def test_readme_own_aimd_block_runs_at_tiny_size(tmp_path, cli):
    """The README's "From my AIMD run" block, in order in one folder, with fewer steps and minutes."""
    from .test_cli import _run_in
    block = re.search(r"<!-- own-aimd -->\s*```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    (tmp_path / "models").symlink_to(ROOT / "models")
    lines = [line.split("  #")[0].strip() for line in block.replace("\\\n", " ").splitlines()
             if line.startswith("trajsr ")]
    assert len(lines) == 5
    tiny = {"--md-steps 2000": "--md-steps 400", "--equilibration-fs 200": "--equilibration-fs 50",
            "--max-minutes 1": "--max-minutes 0.1"}
    assert all(big in block for big in tiny)  # each cut is made (a renamed option would run at full size)
    for line in lines:
        for big, small in tiny.items():
            line = line.replace(big, small)
        proc = _run_in(tmp_path, shlex.split(line)[1:])
        assert proc.returncode == 0, f"{line}\n{proc.stderr}"
    assert "MAE" in proc.stdout and (tmp_path / "mine.json").exists()


def test_train_a_propagator_from_stored_forces_without_velocities(gfn1, cli, tmp_path):
    """A file of positions and forces (VASP, CP2K pos + frc, ...) is enough for a Hamiltonian propagator:
    its potential is fitted to the forces and shoots the file's gaps; what it cannot learn from is refused."""
    from trajsr.interpolation.shooting import ShootingInterpolator
    from trajsr.propagation.forces import predicted_forces

    from .test_cli import _run_in
    run = load(gfn1 / "run.extxyz").replace(velocities=None)
    save(run, tmp_path / "forces.extxyz")
    # the README's lines as written, in one folder, with a shorter time limit and a narrower network
    block = re.search(r"<!-- forces-only -->\s*```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    lines = [line for line in block.splitlines() if line.startswith("trajsr ")]
    # a bounded number of epochs, not a time limit: a few seconds of training on a busy machine fit nothing
    tiny = {"--max-minutes 10": "--epochs 200 --width 32"}
    assert len(lines) == 2 and all(big in lines[0] for big in tiny)  # each cut is made
    outs = []
    for line in lines:
        for big, small in tiny.items():
            line = line.replace(big, small)
        proc = _run_in(tmp_path, shlex.split(line)[1:])
        assert proc.returncode == 0, f"{line}\n{proc.stderr}"
        outs.append(proc.stdout)
    assert "potential fitted to the stored forces" in outs[0] and "no rollout fit" in outs[0]
    step = ShootingInterpolator.load(tmp_path / "scratch.keras").step
    assert step.metadata["training"]["rollout"].startswith("none")
    assert read_card(tmp_path / "scratch.keras")["evaluation"]["figure"].startswith("force error")
    error = np.abs(predicted_forces(step, run.positions) - run.forces).mean() / np.abs(run.forces).mean()
    assert error < 0.5  # an untrained potential (zero output layer) is 1.0
    assert "from positions only" in outs[1] and "401 frames" in outs[1]
    assert load(tmp_path / "forces-fine.h5").n_frames == 401
    fails(cli("train", "--task", "propagate", tmp_path / "forces.extxyz", "--model", "lstm", "--factor", 2,
              "-o", tmp_path / "l.keras", check=False), "forces.extxyz", "no velocities", "--architecture hnn")
    save(run.replace(forces=None, potential_energy=None), tmp_path / "bare.h5")
    fails(cli("train", "--task", "propagate", tmp_path / "bare.h5", "--model", "hnn", "--factor", 2,
              "-o", tmp_path / "b.keras", check=False), "bare.h5", "neither velocities nor forces")
    no_leftovers(tmp_path, "l.keras", "b.keras")


def write_cp2k(traj, folder, project="run"):
    """CP2K's three MD files as CP2K writes them (Å; bohr per atomic time unit; hartree/bohr; hartree; fs),
    converted with ASE's constants (independent of trajsr's)."""
    from ase import units
    aut_ps = units._aut * 1e12
    values = {"pos": traj.positions * 10, "vel": traj.velocities * 10 / units.Bohr * aut_ps,
              "frc": traj.forces / KJ_PER_MOL_PER_EV / 10 / units.Hartree * units.Bohr}
    energy = traj.potential_energy / KJ_PER_MOL_PER_EV / units.Hartree
    for kind, array in values.items():
        with open(folder / f"{project}-{kind}-1.xyz", "w") as f:
            for i, frame in enumerate(array):
                f.write(f"{traj.n_atoms:8d}\n i = {10 * i:8d}, time = {traj.time[i] * 1000:12.3f}, E = "
                        f"{energy[i]:20.10f}\n")
                f.writelines(f" {e:2s} {x:20.10f} {y:20.10f} {z:20.10f}\n" for e, (x, y, z) in zip(traj.elements, frame))
    return folder / f"{project}-pos-1.xyz"


def test_cp2k_positions_velocities_and_forces_read_as_one_trajectory(gfn1, cli, tmp_path):
    run = load(gfn1 / "run.extxyz")
    pos = write_cp2k(run, tmp_path)
    back = load(pos)
    np.testing.assert_allclose(back.positions, run.positions, atol=1e-10)
    np.testing.assert_allclose(back.velocities, run.velocities, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(back.forces, run.forces, rtol=1e-6, atol=1e-3)
    np.testing.assert_allclose(back.potential_energy, run.potential_energy, rtol=1e-7)  # CODATA versions
    np.testing.assert_allclose(back.time, run.time, atol=1e-6)
    shot = cli("upsample", pos, "--model", PROPAGATOR, "--factor", 10, "-o", tmp_path / "fine.h5").stdout
    assert "with the file's velocities" in shot and "401 frames" in shot
    (tmp_path / "run-vel-1.xyz").unlink()  # positions and forces only: still one trajectory
    assert load(pos).velocities is None and load(pos).forces is not None
    lines = (tmp_path / "run-frc-1.xyz").read_text().splitlines()
    (tmp_path / "run-frc-1.xyz").write_text("\n".join(lines[:-2 * (run.n_atoms + 2)]) + "\n")  # two frames short
    fails(cli("temperature", pos, check=False), "run-frc-1.xyz", "39 frames", "41")
    (tmp_path / "run-frc-1.xyz").unlink()
    text = pos.read_text().splitlines()
    pos.write_text("\n".join(text[:-3]) + "\n")  # cut inside the last frame
    fails(cli("upsample", pos, "--model", PROPAGATOR, "--factor", 10, "-o", tmp_path / "cut.h5", check=False),
          "run-pos-1.xyz", "frame 40", "incomplete")
    no_leftovers(tmp_path, "cut.h5")
