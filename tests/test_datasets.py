import hashlib
import json

import numpy as np
import pytest

from trajsr import load
from trajsr.datasets import MANIFEST, SHIPPED_DIR, make
from trajsr.physics import rigid_body_split


def kinetic_energy(traj):
    """kJ/mol per frame (masses in g/mol, velocities in nm/ps)."""
    return 0.5 * np.einsum("a,fai->f", traj.masses, traj.velocities ** 2)


def test_alanine_dipeptide_nve_conserves_energy(tmp_path, cli):
    cli("datasets", "make", "alanine-dipeptide-amber", "--seed", 3, "--steps", 400, "--equilibration-fs", 200,
        "-o", tmp_path)
    traj = load(tmp_path / "alanine-dipeptide-amber-seed3.h5")
    assert traj.n_frames == 401 and traj.n_atoms == 22 and traj.dt == pytest.approx(0.0005)
    # a built-in recipe honours --equilibration-fs and records it
    assert traj.info["equilibration"].startswith("Langevin 200 fs")
    (entry,) = json.loads((tmp_path / "manifest.json").read_text())["datasets"]
    assert entry["recipe"]["equilibration_fs"] == 200.0 and "after 200 fs Langevin" in entry["recipe"]["method"]
    total = traj.potential_energy + kinetic_energy(traj)
    assert np.ptp(total) < 0.02 * np.ptp(traj.potential_energy)  # NVE
    # on-step velocities: velocity Verlet's central difference is exact
    central = (traj.positions[2:] - traj.positions[:-2]) / (2 * traj.dt)
    np.testing.assert_allclose(central, traj.velocities[1:-1], atol=1e-3)


def test_ethanol_gfn2_recipe(tmp_path):
    (path,) = make("ethanol-gfn2", seeds=[5], md_steps=40, out_dir=tmp_path, progress=False)
    traj = load(path)
    assert traj.elements.count("H") == 6 and traj.info["method"].startswith("GFN2-xTB")
    assert traj.info["seed"] == 5 and traj.info["temperature_K"] == 500.0
    total = traj.potential_energy + kinetic_energy(traj)
    assert np.ptp(total) < 0.05 * np.ptp(traj.potential_energy) + 0.5


def test_gfn2_nvt_reference_with_bussi_thermostat(tmp_path, cli):
    """The converged-reference recipe: Bussi NVT production run, every n-th step kept; other recipes refuse."""
    (path,) = make("ethanol-gfn2", seeds=[6], steps=40, out_dir=tmp_path, progress=False, thermostat="bussi",
                   tau_fs=10.0, save_every=5)
    traj = load(path)
    assert traj.n_frames == 9 and traj.dt * 1000 == pytest.approx(2.5)
    assert "Bussi" in traj.info["method"] and traj.info["md_step_fs"] == 0.5
    # the rotation is stopped and the thermostat leaves it stopped: only the vibrations are rescaled
    vibrational, rigid, _ = rigid_body_split(traj.positions, traj.velocities, traj.masses)
    assert np.abs(rigid).max() < 1e-4 * np.abs(vibrational).max()  # float32 files
    # Langevin, as many AIMD runs are thermostatted (friction 1/tau), recorded in the file and the manifest
    (path,) = make("ethanol-gfn2", seeds=[7], steps=20, out_dir=tmp_path / "lang", progress=False,
                   thermostat="langevin", tau_fs=500.0)
    assert "Langevin, friction 1/(500 fs) = 2/ps" in load(path).info["method"]
    entry = json.loads((tmp_path / "lang" / "manifest.json").read_text())["datasets"][0]
    assert entry["recipe"]["sampling"]["thermostat"] == "langevin"
    proc = cli("datasets", "make", "alanine-dipeptide-amber", "--thermostat", "bussi", "-o", tmp_path, check=False)
    assert proc.returncode == 2 and "xTB recipes only" in proc.stderr
    proc = cli("datasets", "make", "ethanol-gfn2", "--md-steps", "7", "--save-every", "5", "-o", tmp_path, check=False)
    assert proc.returncode == 2 and "multiple of save_every" in proc.stderr


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
    from trajsr.observables import bonds_of
    atoms = molecule(name)
    assert atoms.get_chemical_formula() == formula
    assert len(bonds_of(Trajectory(positions=atoms.positions[None] / 10, elements=atoms.get_chemical_symbols()))) \
        == n_bonds


def test_own_molecule_walkthrough_at_tiny_size(tmp_path):
    """The README's methanol lines, with the sizes cut down: make, train (card), stride, upsample, evaluate."""
    import json
    import re

    from .conftest import ROOT, run_line
    block = re.search(r"<!-- own-molecule -->\s*```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    tiny = {"--md-steps 40000": "--md-steps 400 --equilibration-fs 20",
            "--max-minutes 20": "--epochs 1 --width 8 --context 2"}
    assert all(big in block for big in tiny)  # each cut is made (a renamed option would run at full size)
    (tmp_path / "datasets").symlink_to(ROOT / "datasets")
    for line in block.strip().splitlines():
        for big, small in tiny.items():
            line = line.replace(big, small)
        proc = run_line(line, tmp_path)
    manifest = json.loads((tmp_path / "methanol" / "manifest.json").read_text())["datasets"]
    assert len(manifest) == 4 and manifest[0]["recipe"]["formula"] == "CH4O" and manifest[0]["processes"] >= 1
    card = json.loads((tmp_path / "methanol-f10.json").read_text())
    row = card["evaluation"]["per_trajectory"][0]
    assert row["file"] == "methanol-gfn2-seed4.h5"
    # labelled by the kinetic temperature the test file holds, its recipe's target beside it
    from trajsr.observables import kinetic_temperature
    held_out = load(tmp_path / "methanol" / "methanol-gfn2-seed4.h5")
    assert row["temperature_K"] == pytest.approx(kinetic_temperature(held_out)["temperature_K"])
    assert row["target_temperature_K"] == held_out.info["temperature_K"] != row["temperature_K"]
    assert row["seconds"] > 0
    assert {"median", "worst"} <= set(card["evaluation"]["spline_over_model"])
    assert "hermite_over_model" in card["evaluation"]
    assert proc.stdout.count("MAE") >= 1


def test_bad_geometries_fail_before_any_work(tmp_path, cli):
    (tmp_path / "overlap.xyz").write_text("2\n\nC 0 0 0\nH 0 0 0.2\n")
    (tmp_path / "radical.xyz").write_text("2\n\nC 0 0 0\nH 0 0 1.1\n")
    (tmp_path / "unknown.xyz").write_text("2\n\nXx 0 0 0\nH 0 0 1.1\n")
    for name, word in (("overlap", "overlap"), ("radical", "--multiplicity"), ("unknown", "unknown element")):
        proc = cli("datasets", "make", "--geometry", tmp_path / f"{name}.xyz", "-o", tmp_path / "out", check=False)
        assert proc.returncode == 2 and word in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_merge_checks_recipes_and_checksums(tmp_path, cli):
    from trajsr.datasets.custom import geometry_spec
    from .conftest import ROOT
    spec = geometry_spec(ROOT / "datasets" / "examples" / "methanol.xyz", equilibration_fs=10)
    for seed in (1, 2):
        make(spec=spec, seeds=[seed], steps=20, out_dir=tmp_path / f"part{seed}", progress=False)
    cli("datasets", "merge", tmp_path / "part1", tmp_path / "part2", "-o", tmp_path / "all")
    import json
    assert len(json.loads((tmp_path / "all" / "manifest.json").read_text())["datasets"]) == 2
    # merging again into the same folder (its files are hard links of the parts') adds nothing and fails nothing
    for extra in ((), ("--force",)):
        cli("datasets", "merge", tmp_path / "part1", tmp_path / "part2", "-o", tmp_path / "all", *extra)
    assert len(json.loads((tmp_path / "all" / "manifest.json").read_text())["datasets"]) == 2
    # parts merged one at a time as they finish: the folder lists both
    for part in ("part1", "part2"):
        cli("datasets", "merge", tmp_path / part, "-o", tmp_path / "one-by-one")
    assert len(json.loads((tmp_path / "one-by-one" / "manifest.json").read_text())["datasets"]) == 2
    other = dict(spec, charge=1, multiplicity=2)
    make(spec=other, seeds=[3], steps=20, out_dir=tmp_path / "part3", progress=False)
    proc = cli("datasets", "merge", tmp_path / "part1", tmp_path / "part3", "-o", tmp_path / "bad", check=False)
    assert proc.returncode == 2 and "another recipe" in proc.stderr and "charge" in proc.stderr
    proc = cli("datasets", "merge", tmp_path / "part3", "-o", tmp_path / "all", check=False)  # into a folder of another
    assert proc.returncode == 2 and "already in" in proc.stderr and "charge" in proc.stderr
    with open(tmp_path / "part2" / "methanol-gfn2-seed2.h5", "ab") as f:
        f.write(b"tampered")
    proc = cli("datasets", "merge", tmp_path / "part1", tmp_path / "part2", "-o", tmp_path / "bad2", check=False)
    assert proc.returncode == 2 and "sha256" in proc.stderr


def test_openmm_from_a_pdb(tmp_path, cli):
    from .conftest import ROOT
    cli("datasets", "make", "--pdb", ROOT / "datasets" / "alanine-dipeptide.pdb", "--md-steps", 20,
        "--equilibration-fs", 5, "-o", tmp_path)
    traj = load(tmp_path / "alanine-dipeptide-openmm-seed0.h5")
    assert traj.n_atoms == 22 and traj.n_frames == 21 and traj.has_velocities
    proc = cli("datasets", "make", "--pdb", ROOT / "datasets" / "alanine-dipeptide.pdb", "--forcefield",
               "nonsense.xml", "-o", tmp_path / "x", check=False)
    assert proc.returncode == 2 and "OpenMM cannot build" in proc.stderr


def test_make_runs_the_md_on_one_thread_where_openmp_and_blas_started_with_more(tmp_path, monkeypatch):
    """OMP_NUM_THREADS set in a process whose OpenMP (tblite's) and BLAS (numpy's) already started comes too
    late: make ran tblite on every core, and beside a busy core (a second test worker, another make) its
    threads spin. Its MD runs under threadpoolctl's limit of one thread, whatever started before."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from trajsr.datasets import builtin_spec, make, xtb
    seen, run = [], xtb.run_gfn2_md

    def watched(*args, **kwargs):
        seen.append({i["user_api"]: i["num_threads"] for i in threadpool_info()})
        return run(*args, **kwargs)
    monkeypatch.setattr(xtb, "run_gfn2_md", watched)
    with threadpool_limits(limits=2):  # as an earlier use in this process leaves them on a 2-core machine
        make(spec=builtin_spec("ethanol-gfn2", equilibration_fs=5), seeds=[5], md_steps=10, out_dir=tmp_path,
             processes=1, progress=False)
    assert seen and all(threads == 1 for threads in seen[0].values()), seen


def test_a_ctrl_c_that_lands_in_a_library_callback_still_stops_the_md():
    """tblite frees its objects through cffi callbacks, where Python cannot raise: a Ctrl-C landing in one was
    printed as "Exception ignored ..." with a traceback, and the run went on to its end with exit 0. While a
    command runs (``stops_kept``, as the CLI's main) it is kept, silently, and the MD raises it at its next
    step; nothing kept outlives the command."""
    import contextlib
    import io
    import sys

    from trajsr.datasets.molecules import molecule
    from trajsr.datasets.xtb import run_gfn2_md
    from trajsr.errors import raise_if_stopped, stops_kept

    class FreedByACallback:
        def __del__(self):
            raise KeyboardInterrupt

    hook, err = sys.unraisablehook, io.StringIO()
    with contextlib.redirect_stderr(err), stops_kept():
        FreedByACallback()  # freed at once: its KeyboardInterrupt cannot be raised, only reported
        assert err.getvalue() == ""
        with pytest.raises(KeyboardInterrupt):
            raise_if_stopped()
        raise_if_stopped()  # raised once
        FreedByACallback()
        with pytest.raises(KeyboardInterrupt):
            run_gfn2_md(molecule("ethanol"), steps=50, seed=0, equilibration_fs=0, progress=False)
        FreedByACallback()  # the command ends before its next step
    assert sys.unraisablehook is hook
    raise_if_stopped()  # nothing left for the next command


def test_interrupted_make_keeps_what_it_finished_and_a_rerun_goes_on(tmp_path):
    """Ctrl-C during the second seed: the first is in the manifest, nothing half-written is left, and the
    same command again makes only the second (issue 26, item 13)."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time
    out = tmp_path / "data"
    command = [sys.executable, "-m", "trajsr.cli", "datasets", "make", "ethanol-gfn2", "--seed", "1", "2",
               "--steps", "2000", "--equilibration-fs", "5", "--processes", "1", "-o", str(out)]
    env = dict(os.environ, OMP_NUM_THREADS="1", TF_CPP_MIN_LOG_LEVEL="3")
    # Ctrl-C's default in the child: a shell's background job (a CI runner's, say) ignores SIGINT, and the
    # child would inherit that and run to its end
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    manifest = out / "manifest.json"
    deadline = time.monotonic() + 120
    while not (manifest.exists() and "seed1" in manifest.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "Traceback" not in err, err
    files = [e["file"] for e in json.loads(manifest.read_text())["datasets"]]
    assert files == ["ethanol-gfn2-seed1.h5"]
    assert sorted(p.name for p in out.iterdir()) == ["ethanol-gfn2-seed1.h5", "manifest.json"]
    first = (out / "ethanol-gfn2-seed1.h5").stat().st_mtime_ns
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    files = [e["file"] for e in json.loads(manifest.read_text())["datasets"]]
    assert sorted(files) == ["ethanol-gfn2-seed1.h5", "ethanol-gfn2-seed2.h5"]
    assert (out / "ethanol-gfn2-seed1.h5").stat().st_mtime_ns == first  # not made again


def test_readme_slurm_array_lines_make_and_merge(tmp_path):
    """The README's job-array template as written, for tasks 1 and 2 at tiny size (mol.xyz: the methanol
    example): each task makes its seed into parts/TASK, the merge lists both in data/manifest.json."""
    import re

    from .conftest import ROOT, run_line
    block = re.search(r"<!-- slurm-array -->\s*```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    lines = [line for line in block.splitlines() if line.startswith("trajsr ")]
    assert [line.split()[1:3] for line in lines] == [["datasets", "make"], ["datasets", "merge"]]
    methanol = ROOT / "datasets" / "examples" / "methanol.xyz"
    tiny = {"--md-steps 40000": "--md-steps 100 --equilibration-fs 10", "mol.xyz": str(methanol)}
    assert all(big in lines[0] for big in tiny)  # each cut is made
    for task in (1, 2):
        line = lines[0]
        for big, small in tiny.items():
            line = line.replace(big, small)
        run_line(line, tmp_path, env=dict(SLURM_ARRAY_TASK_ID=str(task)))
    run_line(lines[1], tmp_path)
    manifest = json.loads((tmp_path / "data" / "manifest.json").read_text())["datasets"]
    assert sorted(entry["seed"] for entry in manifest) == [1, 2]
    assert sorted(p.name for p in (tmp_path / "data").glob("*.h5")) == ["methanol-gfn2-seed1.h5",
                                                                       "methanol-gfn2-seed2.h5"]
