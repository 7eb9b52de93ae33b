"""Round 3 of the hostile user (issue 26): no wrong answer with exit 0, nothing of the user's lost, one
line instead of a traceback. Each probe goes through the command line where the user would meet it."""
import json
import os

import numpy as np
import pytest

from trajsr import TrajsrError, load, save

from .conftest import ROOT
from .test_bad_inputs import fails, no_leftovers

PROPAGATOR = ROOT / "models" / "ethanol-gfn2-prop-f10.keras"
BILSTM = ROOT / "models" / "ethanol-gfn2-f10.keras"


@pytest.fixture(scope="module")
def coarse(tmp_path_factory, ethanol):
    """Ethanol at 5 fs (factor 10), as h5 (with velocities) and as xyz without time."""
    d = tmp_path_factory.mktemp("round3")
    save(ethanol, d / "fine.h5")
    save(ethanol.stride(10), d / "c10.h5")
    save(ethanol.stride(10).replace(velocities=None, time=None), d / "c10.xyz")
    return d


def test_shooting_refuses_another_molecule(coarse, cli, tmp_path):
    from trajsr.datasets import shipped_path
    mal = load(shipped_path("malonaldehyde-gfn2"))[:201].stride(10)  # 9 atoms, like ethanol
    save(mal, tmp_path / "mal.h5")
    fails(cli("upsample", tmp_path / "mal.h5", "--model", PROPAGATOR, "--factor", 10, "-o", tmp_path / "o.h5",
              check=False), "atom 2 is C", "expects O")
    no_leftovers(tmp_path, "o.h5")
    from trajsr.interpolation.shooting import ShootingInterpolator
    with pytest.raises(TrajsrError, match="atom 2"):
        ShootingInterpolator.load(PROPAGATOR).interpolate(mal, 10)
    with pytest.raises(TrajsrError, match="calibrate MODEL --validation FILES --factors 5"):  # calibrated: 10, 20
        ShootingInterpolator.load(PROPAGATOR).interpolate(load(coarse / "fine.h5").stride(5), 5, uncertainty=True)


def test_the_same_elements_in_another_order_are_refused(coarse, cli, tmp_path, ethanol):
    """Ethanol's hydroxyl hydrogen listed where a methyl hydrogen was: the element check passed it, shooting
    wrote twice the spline's error (0.0117 Å) and the Bi-LSTM more than the spline's, with exit 0. Now every
    command that uses a model names the hydrogens that sit on other atoms than in its training geometry;
    one hydrogen on another atom is a proton transfer (malonaldehyde's) and passes. Positions in another
    unit were rebuilt with exit 0 too: now their bond lengths' ratio to the model's is named."""
    order = [0, 1, 2, 6, 4, 5, 3, 7, 8]  # H3 (on O2) and H6 (on C0) swapped
    swapped = ethanol.replace(positions=ethanol.positions[:, order], velocities=ethanol.velocities[:, order])
    save(swapped, tmp_path / "fine.h5")
    save(swapped.stride(10), tmp_path / "c10.h5")
    for model in (BILSTM, PROPAGATOR):
        fails(cli("upsample", tmp_path / "c10.h5", "--model", model, "--factor", 10, "-o", tmp_path / "o.h5",
                  check=False), "c10.h5", "bonded otherwise", "H3 sits on C0 here, on O2 there")
    fails(cli("propagate", "--model", PROPAGATOR, "--start", tmp_path / "fine.h5", "--steps", 2, "-o",
              tmp_path / "o.h5", check=False), "H6 sits on O2 here, on C0 there")
    from trajsr.ase import LearnedDynamics
    with pytest.raises(TrajsrError, match="H3 sits on C0 here"):
        LearnedDynamics(swapped.to_ase(0), PROPAGATOR)
    # training files of one molecule in two orders: refused before training (it trained, then failed its test)
    save(ethanol, tmp_path / "train.h5")
    for task, where in (("bilstm", "--test"), ("hnn", "--validation")):
        fails(cli("train", tmp_path / "train.h5", where, tmp_path / "fine.h5", "--architecture", task, "--task",
                  "interpolate" if task == "bilstm" else "propagate", "--factor", 10, "--epochs", 1, "-o",
                  tmp_path / "m.keras", check=False), "fine.h5", "train.h5 (its first frame)")
    no_leftovers(tmp_path, "m.keras")
    # positions in Å read as nm (or the other way): the Bi-LSTM and shooting wrote frames, exit 0
    for scale, words in ((10.0, "9.8"), (0.1, "0.098")):
        save(ethanol.stride(10).replace(positions=ethanol.positions[::10] * scale, velocities=None),
             tmp_path / "scaled.h5", force=True)
        for model in (BILSTM, PROPAGATOR):
            fails(cli("upsample", tmp_path / "scaled.h5", "--model", model, "--factor", 10, "-o", tmp_path / "o.h5",
                      check=False), f"bonds are {words}", "another unit")
    no_leftovers(tmp_path, "o.h5")
    from trajsr.atom_order import check_atoms
    reference = ethanol.positions[0]
    transfer = ethanol.positions.copy()  # the hydroxyl hydrogen moved onto C1: one hydrogen, passes
    transfer[:, 3] = transfer[:, 1] + (transfer[:, 3] - transfer[:, 2])
    check_atoms(ethanol.replace(positions=transfer), ethanol.elements, reference)
    skeleton = ethanol.positions[:, [1, 0, 2, 3, 4, 5, 6, 7, 8]]  # the carbons swapped: C0-O2 bonded, C1-O2 not
    with pytest.raises(TrajsrError, match="C0-O2 bonded here"):
        check_atoms(ethanol.replace(positions=skeleton), ethanol.elements, reference)


def test_reorder_lists_the_atoms_as_the_model_does(cli, tmp_path):
    """A run whose atoms are listed in another order (as another program writes them) is refused by every
    model; trajsr reorder finds the order from the bonds and positions alone, like a model or like another
    file, and the rebuilt file then matches the truth. Another molecule, a periodic box, an output that is
    an input, and positions in another unit are refused."""
    from trajsr.datasets import shipped_path
    truth = load(shipped_path("ethanol-gfn2"))[:2001]
    shuffled = truth.reorder_atoms([4, 0, 2, 6, 1, 7, 5, 3, 8])
    save(shuffled, tmp_path / "run.extxyz")
    for like in (PROPAGATOR, shipped_path("ethanol-gfn2")):
        out = cli("reorder", tmp_path / "run.extxyz", "--like", like, "-o", tmp_path / "ordered.h5", "--force").stdout
        assert "order 1 4 2 7 0 6 3 5 8" in out and "7 of 9 atoms moved" in out
        back = load(tmp_path / "ordered.h5")
        assert back.elements == truth.elements
        np.testing.assert_allclose(back.positions, truth.positions, atol=1e-6)
        np.testing.assert_allclose(back.velocities, truth.velocities, atol=1e-5)  # per-atom arrays follow
    save(shuffled.stride(10), tmp_path / "c10.h5")
    fails(cli("upsample", tmp_path / "c10.h5", "--model", BILSTM, "-o", tmp_path / "o.h5", check=False),
          "the same atoms in another order", "trajsr reorder --like")
    cli("reorder", tmp_path / "c10.h5", "--like", BILSTM, "-o", tmp_path / "c10-ordered.h5")
    cli("upsample", tmp_path / "c10-ordered.h5", "--model", BILSTM, "-o", tmp_path / "o.h5")
    assert load(tmp_path / "o.h5").n_frames == truth.n_frames
    from trajsr.datasets import shipped_path as shipped
    fails(cli("reorder", shipped("malonaldehyde-gfn2"), "--like", BILSTM, "-o", tmp_path / "m.h5", check=False),
          "C3H4O2", "holds C2H6O", "another molecule")
    fails(cli("reorder", shipped("water-tip3p"), "--like", shipped("water-tip3p"), "-o", tmp_path / "w.h5",
              check=False), "periodic box")
    fails(cli("reorder", tmp_path / "run.extxyz", "--like", BILSTM, "-o", tmp_path / "run.extxyz", "--force",
              check=False), "is an input")
    save(truth[:5].replace(velocities=None), tmp_path / "like.dcd")
    fails(cli("reorder", tmp_path / "run.extxyz", "--like", tmp_path / "like.dcd", "-o", tmp_path / "d.h5",
              check=False), "like.dcd", "--like takes a trajsr model or a file that names its atoms")
    save(shuffled[:10].replace(positions=shuffled.positions[:10] * 10), tmp_path / "angstrom.h5")
    fails(cli("reorder", tmp_path / "angstrom.h5", "--like", BILSTM, "-o", tmp_path / "a.h5", check=False),
          "another unit")
    no_leftovers(tmp_path, "m.h5", "w.h5", "a.h5", "d.h5")
    with pytest.raises(TrajsrError, match="each of its 9 atoms once"):
        truth.reorder_atoms([0, 0, 2, 3, 4, 5, 6, 7, 8])


def test_shooting_never_writes_torn_molecules(coarse, cli, tmp_path):
    """A wrong --dt (10x) tears bonds in many gaps: exit 2, nothing written; the right one passes the
    guard and says which mode ran."""
    fails(cli("upsample", coarse / "c10.xyz", "--dt", 50, "--model", PROPAGATOR, "--factor", 10,
              "-o", tmp_path / "o.h5", check=False), "tears the molecule apart", "--dt")
    no_leftovers(tmp_path, "o.h5")
    out = cli("upsample", coarse / "c10.xyz", "--dt", 5, "--model", PROPAGATOR, "--factor", 10,
              "-o", tmp_path / "ok.h5").stdout
    assert "(from positions only)" in out and "gap guard" not in out
    from trajsr.interpolation.gapguard import torn_gaps
    fine = load(tmp_path / "ok.h5").positions
    assert not torn_gaps(fine, 10, load(coarse / "c10.h5").elements)[0].any()
    stretched = fine.copy()
    stretched[15, 0] += 0.5  # a carbon 5 Å off in gap 1
    failed, worst = torn_gaps(stretched, 10, load(coarse / "c10.h5").elements)
    assert failed.tolist() == [g == 1 for g in range(len(failed))] and "gap 1" in worst


def test_stored_velocities_are_checked_and_can_be_ignored(coarse, cli, tmp_path, ethanol):
    c = ethanol.stride(10)
    for scale, words in ((10.0, "too large"), (0.01, "too small"), (-1.0, "reversed")):
        save(c.replace(velocities=c.velocities * scale), tmp_path / "v.h5", force=True)
        fails(cli("upsample", tmp_path / "v.h5", "--method", "hermite", "--factor", 10, "-o", tmp_path / "h.h5",
                  check=False), "velocities disagree", words, "--positions-only")
        no_leftovers(tmp_path, "h.h5")
    out = cli("upsample", tmp_path / "v.h5", "--model", PROPAGATOR, "--factor", 10, "--positions-only",
              "-o", tmp_path / "p.h5").stdout
    assert "(from positions only)" in out
    out = cli("upsample", coarse / "c10.h5", "--method", "hermite", "--factor", 10, "-o", tmp_path / "h.h5").stdout
    assert "(with the file's velocities)" in out


def test_force_rewrite_removes_the_earlier_side_file(coarse, cli, tmp_path):
    out = tmp_path / "out.dcd"
    side = tmp_path / "out.dcd.uncertainty.npz"
    np.savez(side, uncertainty=np.zeros((3, 9)), unit=np.array("nm"))  # an earlier --uncertainty run's
    fails(cli("upsample", coarse / "c10.h5", "--method", "linear", "--factor", 10, "-o", out, check=False),
          "uncertainty.npz", "--force")
    assert not out.exists() and side.exists()
    cli("upsample", coarse / "c10.h5", "--method", "linear", "--factor", 10, "-o", out, "--force")
    assert out.exists() and not side.exists()


def test_learned_model_needs_the_spacing_of_a_file_without_time(coarse, cli, tmp_path):
    fails(cli("upsample", coarse / "c10.xyz", "--model", BILSTM, "-o", tmp_path / "o.xyz", check=False),
          "no time", "--dt")
    no_leftovers(tmp_path, "o.xyz")


def test_overlap_of_training_validation_and_test_is_by_content(coarse, cli, tmp_path, ethanol):
    save(ethanol[:300], tmp_path / "a.h5")
    os.symlink(tmp_path / "a.h5", tmp_path / "link.h5")
    save(ethanol[:300], tmp_path / "copy.npz")
    for args in (("--validation", tmp_path / "a.h5"), ("--validation", tmp_path / "copy.npz"),
                 ("--test", tmp_path / "link.h5")):
        fails(cli("train", tmp_path / "a.h5", *args, "--factor", 5, "-o", tmp_path / "m.keras", check=False),
              "same trajectory")
    no_leftovers(tmp_path, "m.keras")


def test_calibrate_checks_training_and_validation_files(tiny_model, cli, tmp_path, ethanol):
    from trajsr.datasets import shipped_path
    save(ethanol[600:], tmp_path / "valid.h5")
    save(ethanol[:600].stride(10), tmp_path / "strided.h5")
    fails(cli("calibrate", tiny_model, "--validation", tmp_path / "valid.h5", "--training", tmp_path / "strided.h5",
              "-o", tmp_path / "c.keras", check=False), "strided.h5", "fs apart")
    save(load(shipped_path("malonaldehyde-gfn2"))[:400], tmp_path / "mal.h5")
    fails(cli("calibrate", tiny_model, "--validation", tmp_path / "valid.h5", "--training", tmp_path / "mal.h5",
              "-o", tmp_path / "c.keras", check=False), "mal.h5", "atom")
    save(ethanol[:600], tmp_path / "train-copy.h5")  # the tiny model's own training trajectory, renamed
    fails(cli("calibrate", tiny_model, "--validation", tmp_path / "train-copy.h5", "-o", tmp_path / "c.keras",
              check=False), "was trained on this trajectory")
    no_leftovers(tmp_path, "c.keras")


def test_datasets_make_refuses_what_it_would_ignore_or_misplace(cli, tmp_path):
    fails(cli("datasets", "make", "ethanol-gfn2", "--charge", 1, "--multiplicity", 2, "-o", tmp_path, check=False),
          "--charge, --multiplicity", "--geometry")
    fails(cli("datasets", "make", "ethanol-gfn2", "--forcefield", "x.xml", "-o", tmp_path, check=False), "--pdb")
    geometry = ROOT / "datasets" / "geometries" / "malonaldehyde.xyz"
    fails(cli("datasets", "make", "--geometry", geometry, "--name", "../x", "-o", tmp_path, check=False),
          "plain file name")
    fails(cli("datasets", "make", "--geometry", geometry, "--charge", 38, "-o", tmp_path, check=False),
          "leaves 0 electrons")
    (tmp_path / "nan.xyz").write_text("2\n\nH 0 0 0\nH 0 0 nan\n")
    fails(cli("datasets", "make", "--geometry", tmp_path / "nan.xyz", "-o", tmp_path, check=False), "non-finite")
    pdb = ROOT / "datasets" / "alanine-dipeptide.pdb"
    fails(cli("datasets", "make", "--pdb", pdb, "--water", "tip3p", "--box", 0.5, "-o", tmp_path, check=False),
          "no water", "0.5 nm")
    assert not list(tmp_path.glob("*.h5"))


def _folder(path, name, recipe):
    path.mkdir()
    (path / name).write_bytes(os.urandom(64))
    from trajsr.datasets.custom import sha256
    entry = dict(name="w", file=name, sha256=sha256(path / name), frames=3, dt_fs=0.5, recipe=recipe)
    (path / "manifest.json").write_text(json.dumps({"datasets": [entry]}))
    return path


def test_merge_compares_sampling_and_stays_inside_the_folder(cli, tmp_path):
    nve = dict(kind="builtin", dataset="ethanol-gfn2", name="ethanol-gfn2", method="m", dt_fs=0.5)
    nvt = dict(nve, sampling=dict(thermostat="bussi", tau_fs=100.0, save_every=1))
    a, b = _folder(tmp_path / "a", "a.h5", nve), _folder(tmp_path / "b", "b.h5", nvt)
    fails(cli("datasets", "merge", a, b, "-o", tmp_path / "all", check=False), "another recipe", "sampling")
    evil = _folder(tmp_path / "evil", "x.h5", nve)
    manifest = json.loads((evil / "manifest.json").read_text())
    manifest["datasets"][0]["file"] = "../victim.txt"
    (evil / "manifest.json").write_text(json.dumps(manifest))
    (tmp_path / "victim.txt").write_text("mine")
    fails(cli("datasets", "merge", evil, "-o", tmp_path / "all", "--force", check=False), "plain file name")
    assert (tmp_path / "victim.txt").read_text() == "mine"
    (tmp_path / "file").write_text("x")
    fails(cli("datasets", "merge", a, "-o", tmp_path / "file", check=False), "not a folder")


def test_an_interrupted_make_goes_on_where_it_stopped(tmp_path):
    """Each file enters the manifest as it completes; a rerun skips the intact ones of the same recipe."""
    from trajsr import datasets
    first = datasets.make("ethanol-gfn2", seeds=[0], steps=4, out_dir=tmp_path, processes=1, progress=False,
                          spec=datasets.builtin_spec("ethanol-gfn2", 0.0))
    made = os.stat(first[0]).st_mtime_ns
    both = datasets.make("ethanol-gfn2", seeds=[0, 1], steps=4, out_dir=tmp_path, processes=1, progress=False,
                         spec=datasets.builtin_spec("ethanol-gfn2", 0.0))
    assert os.stat(both[0]).st_mtime_ns == made  # not made again
    listed = {e["file"] for e in json.loads((tmp_path / "manifest.json").read_text())["datasets"]}
    assert listed == {"ethanol-gfn2-seed0.h5", "ethanol-gfn2-seed1.h5"}
    with pytest.raises(TrajsrError, match="file exists"):  # another recipe (steps) never reuses them
        datasets.make("ethanol-gfn2", seeds=[0], steps=6, out_dir=tmp_path, processes=1, progress=False,
                      spec=datasets.builtin_spec("ethanol-gfn2", 0.0))


def test_evaluate_outputs_must_differ_and_plots_follow_the_extension(coarse, cli, tmp_path):
    cli("upsample", coarse / "c10.h5", "--method", "spline", "--factor", 10, "-o", tmp_path / "s.h5")
    fails(cli("evaluate", coarse / "fine.h5", tmp_path / "s.h5", "--factor", 10, "--json", tmp_path / "x",
              "--plot", tmp_path / "x", check=False), "different files")
    fails(cli("evaluate", coarse / "fine.h5", tmp_path / "s.h5", "--factor", 10, "--plot", tmp_path / "p.txt",
              check=False), "p.txt")
    cli("evaluate", coarse / "fine.h5", tmp_path / "s.h5", "--factor", 10, "--plot", tmp_path / "p.pdf",
        "--json", tmp_path / "e.json")
    assert (tmp_path / "p.pdf").read_bytes()[:4] == b"%PDF"
    assert "NaN" not in (tmp_path / "e.json").read_text()


def test_propagate_refuses_a_start_in_the_wrong_units(cli, tmp_path, ethanol):
    start = ethanol[:1]
    save(start.replace(positions=start.positions * 10), tmp_path / "angstrom.h5")
    fails(cli("propagate", "--model", PROPAGATOR, "--start", tmp_path / "angstrom.h5", "--steps", 5,
              "-o", tmp_path / "r.h5", check=False), "bond", "training geometry")
    save(start.replace(velocities=start.velocities * 100), tmp_path / "fast.h5")
    fails(cli("propagate", "--model", PROPAGATOR, "--start", tmp_path / "fast.h5", "--steps", 5,
              "-o", tmp_path / "r.h5", check=False), "start temperature")
    no_leftovers(tmp_path, "r.h5")


def test_propagator_api_refuses_bad_settings(ethanol):
    from trajsr.propagation.propagator import Propagator
    prop = Propagator.load(PROPAGATOR)
    x, v = ethanol.positions[0], ethanol.velocities[0]
    for kwargs, words in ((dict(thermostat="bussi", temperature_K=300, thermostat_time_fs=0), "thermostat_time_fs"),
                          (dict(thermostat="langevin", temperature_K=300, friction_per_fs=-1), "friction_per_fs"),
                          (dict(thermostat="bussi", temperature_K="300"), "temperature_K"),
                          (dict(thermostat="bussi", temperature="300"), "temperature_K"),
                          (dict(temperature_K=300, temperature=500), "temperature_K=300 and temperature=500"),
                          (dict(seed=-1), "seed")):
        with pytest.raises(TrajsrError, match=words):
            prop.run(x, v, 2, **kwargs)
    # the earlier spelling is the same argument: the same thermostat, the same run
    runs = [prop.run(x, v, 2, seed=3, **{name: 400.0}) for name in ("temperature_K", "temperature")]
    assert runs[0].info["ensemble"] == runs[1].info["ensemble"] == "NVT, bussi at 400 K"
    np.testing.assert_array_equal(runs[0].velocities, runs[1].velocities)


def test_datasets_make_takes_one_spelling_of_each_argument(tmp_path):
    from trajsr import datasets
    for kwargs in (dict(md_steps=4, steps=6), dict(temperature_K=300, temperature=400)):
        with pytest.raises(TrajsrError, match="earlier spelling"):
            datasets.make("ethanol-gfn2", seeds=[0], out_dir=tmp_path, progress=False, **kwargs)
    assert not any(tmp_path.iterdir())


def test_train_refuses_options_of_the_other_task_and_help_shows_defaults(cli, tmp_path, ethanol):
    save(ethanol[:300], tmp_path / "a.h5")
    fails(cli("train", tmp_path / "a.h5", "--factor", 5, "--initial", PROPAGATOR,
              "-o", tmp_path / "m.keras", check=False), "--initial", "--task propagate")
    fails(cli("train", tmp_path / "a.h5", "--task", "propagate", "--factor", 5, "--context", 3,
              "-o", tmp_path / "m.keras", check=False), "--context", "--task interpolate")
    # an option's earlier spelling beside its current one: argparse alone would keep the last
    fails(cli("train", tmp_path / "a.h5", "--factor", 5, "--architecture", "lstm", "--model", "rnn",
              "-o", tmp_path / "m.keras", check=False), "--architecture and --model are the same option")
    fails(cli("datasets", "make", "ethanol-gfn2", "--md-steps", 10, "--steps", 20, "-o", tmp_path / "d",
              check=False), "--md-steps and --steps")
    text = " ".join(cli("train", "--help", check=False).stdout.split())
    assert "(default: 100)" in text and "(default: 0)" in text
