"""Hostile input through the command line: one line naming the problem, exit status 2, no output or
partial file left, nothing overwritten (issue 8's probes), and the Python API's own checks."""
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

import trajsr
from trajsr import TrajsrError, load, save

from .conftest import ROOT

MODELS = ROOT / "models"


def fails(proc, *words):
    """Exit 2 and exactly one stderr line, starting 'trajsr: error:', containing ``words``."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("trajsr: error:"), proc.stderr
    for w in words:
        assert w in lines[0], lines[0]


def no_leftovers(folder, *outputs):
    for out in outputs:
        assert not (folder / out).exists(), out
    assert not [p.name for p in folder.iterdir() if "trajsr-partial" in p.name]


@pytest.fixture(scope="module")
def files(tmp_path_factory, ethanol):
    d = tmp_path_factory.mktemp("bad")
    save(ethanol, d / "fine.h5")
    save(ethanol.stride(10), d / "c10.h5")
    save(ethanol.stride(10), d / "c10.dcd")
    save(ethanol[:1], d / "top.pdb")
    save(ethanol.stride(5).replace(time=None), d / "notime.npz")  # velocities but no time axis
    return d


def test_wrong_answers_with_exit_0_are_now_errors(files, cli, tmp_path, ethanol):
    d = files
    # 1. a negative batch size wrote zeros
    fails(cli("upsample", d / "c10.h5", "--model", MODELS / "ethanol-gfn2-f10.keras", "-o", tmp_path / "u.h5",
              "--batch-size", -1, check=False), "--batch-size")
    # 2. Hermite on a file without time took the spacing as 1 ps
    fails(cli("baseline", d / "notime.npz", "--factor", 5, "--method", "hermite", "-o", tmp_path / "h.h5",
              check=False), "--dt")
    cli("baseline", d / "notime.npz", "--factor", 5, "--method", "hermite", "--dt", 2.5, "-o", tmp_path / "h.h5")
    e = trajsr.reconstruction_errors(ethanol, load(tmp_path / "h.h5"), 5)
    assert e["mae_angstrom"] < 1e-3  # the right answer once the spacing is known
    # 3. evaluating a factor-10 reconstruction at factor 20
    cli("baseline", d / "c10.dcd", "-t", d / "top.pdb", "--factor", 10, "-o", tmp_path / "r10.dcd")
    fails(cli("evaluate", d / "fine.h5", tmp_path / "r10.dcd", "-t", d / "top.pdb", "--factor", 20, check=False),
          "factor-10")
    # 4. a truncated DCD was read in part
    (tmp_path / "t.dcd").write_bytes((d / "c10.dcd").read_bytes()[:-1000])
    fails(cli("stride", tmp_path / "t.dcd", "-t", d / "top.pdb", "--factor", 2, "-o", tmp_path / "s.h5",
              check=False), "truncated", "101 frames")
    # 5. --dt nan and inf
    for bad in ("nan", "inf", "-5", "0"):
        fails(cli("stride", d / "c10.dcd", "-t", d / "top.pdb", "--dt", bad, "--factor", 2, "-o",
                  tmp_path / "s.h5", check=False), "--dt")
    # 6. propagate with a count of steps that is no count, and temperatures that are none
    for option, value in (("--steps", 0), ("--steps", -1), ("--temperature", 0), ("--temperature", -300),
                          ("--thermostat-every", 0), ("--thermostat-every", 4)):  # 4: no --temperature
        args = {"--steps": 5, option: value}
        fails(cli("propagate", "--model", MODELS / "ethanol-gfn2-prop-f10.keras", "--start", d / "fine.h5",
                  *[x for kv in args.items() for x in kv], "-o", tmp_path / "p.h5", check=False), option)
    # 7. an NVE energy constraint together with a thermostat: contradictory, refused
    fails(cli("propagate", "--model", MODELS / "ethanol-gfn2-prop-f10.keras", "--start", d / "fine.h5", "--steps", 5,
              "--temperature", 300, "--rescale-energy-with", "gfn2", "-o", tmp_path / "p.h5", check=False),
          "--rescale-energy-with")
    no_leftovers(tmp_path, "u.h5", "s.h5", "p.h5")
    # 8. trajsr.upsample stays the function
    import importlib
    import inspect

    from trajsr.interpolation import streaming
    importlib.reload(trajsr)
    assert inspect.isfunction(trajsr.upsample) and trajsr.upsample.__module__ == streaming.__name__


def test_unwritable_outputs_fail_before_any_work(files, cli):
    d, out = files, "/proc/trajsr-cannot-write"
    cases = [("stride", d / "fine.h5", "--factor", 2, "-o", out + ".h5"),
             ("upsample", d / "c10.h5", "--method", "spline", "--factor", 10, "-o", out + ".h5"),
             ("evaluate", d / "fine.h5", d / "fine.h5", "--factor", 2, "--json", out + ".json"),
             ("train", d / "fine.h5", "--factor", 5, "-o", out + ".keras"),
             ("propagate", "--model", MODELS / "ethanol-gfn2-prop-f10.keras", "--start", d / "fine.h5", "--steps", 2,
              "-o", out + ".h5"),
             ("demo", "-o", out + "/demo"),
             ("datasets", "make", "ethanol-gfn2", "-o", out + "/data")]
    for args in cases:  # that no model loaded first: test_missing_files_..._before_tensorflow_loads
        fails(cli(*args, check=False), "/proc/trajsr-cannot-write")


def test_missing_files_and_taken_outputs_are_named_before_tensorflow_loads(tmp_path):
    """A typo in a file name, an output that exists or that is the input, a propagator without --factor:
    each refused with exit 2 before any work, so before the seconds of TensorFlow's import and model loading."""
    coarse, taken = ROOT / "datasets" / "ethanol-gfn2-seed0.h5", tmp_path / "taken.h5"
    taken.write_bytes(b"the user's file")
    bilstm, propagator = MODELS / "ethanol-gfn2-f10.keras", MODELS / "ethanol-gfn2-prop-f10.keras"
    cases = [(["upsample", "nope.h5", "--model", bilstm, "-o", tmp_path / "o.h5"], "nope.h5: no such file"),
             (["upsample", coarse, "--model", "nope.keras", "-o", tmp_path / "o.h5"], "nope.keras: no such model"),
             (["upsample", coarse, "--model", bilstm, "-o", taken], "file exists"),
             (["upsample", coarse, "--model", bilstm, "-t", "nope.pdb", "-o", tmp_path / "o.h5"], "nope.pdb"),
             (["upsample", coarse, "--model", bilstm, "-o", tmp_path / "none" / "o.h5"], "does not exist"),
             (["upsample", coarse, "--model", propagator, "-o", tmp_path / "o.h5"], "--factor"),
             (["upsample", coarse, "--model", bilstm, "--out-dir", tmp_path / "none"], "no such directory"),
             (["upsample", taken, "--method", "spline", "--factor", "2", "-o", taken, "--force"], "is an input"),
             (["propagate", "--model", "nope.keras", "--start", coarse, "--steps", "2", "-o", tmp_path / "o.h5"],
              "nope.keras"),
             (["calibrate", bilstm, "--validation", "nope.h5", "-o", tmp_path / "c.keras"], "nope.h5"),
             (["adapt", "nope.keras", coarse, "-o", tmp_path / "a.keras"], "nope.keras"),
             (["train", coarse, "--task", "propagate", "--initial", "nope.keras", "--factor", "10",
               "-o", tmp_path / "t.keras"], "nope.keras"),
             (["train", coarse, "--factor", "10", "-o", "/proc/trajsr-cannot-write.keras"], "cannot-write"),
             (["propagate", "--model", propagator, "--start", coarse, "--steps", "2", "-o",
               "/proc/trajsr-cannot-write.h5"], "cannot-write")]
    code = ("import sys\nfrom trajsr.cli import main\n"
            f"for argv, words in {[([str(a) for a in argv], words) for argv, words in cases]!r}:\n"
            "    print(main(argv), words)\n"
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    *codes, loaded = proc.stdout.strip().splitlines()
    errors = proc.stderr.strip().splitlines()
    assert [c.split()[0] for c in codes] == ["2"] * len(cases) and len(errors) == len(cases), proc.stderr
    for (_, words), error in zip(cases, errors):
        assert error.startswith("trajsr: error:") and words in error, (words, error)
    assert loaded == "False False"
    assert taken.read_bytes() == b"the user's file"
    no_leftovers(tmp_path, "o.h5", "c.keras", "a.keras", "t.keras")


def test_tracebacks_are_now_one_line(files, cli, tmp_path):
    d = files
    (tmp_path / "t.npz").write_bytes(open(d / "notime.npz", "rb").read()[:3000])
    for command in (("stride", "--factor", 2), ("baseline", "--factor", 2), ("upsample", "--method", "linear",
                                                                            "--factor", 2)):
        fails(cli(command[0], tmp_path / "t.npz", *command[1:], "-o", tmp_path / "o.h5", check=False),
              "t.npz", "truncated or corrupt")
    (tmp_path / "cut.keras").write_bytes(open(MODELS / "ethanol-gfn2-f10.keras", "rb").read()[:5000])
    fails(cli("upsample", d / "c10.h5", "--model", tmp_path / "cut.keras", "-o", tmp_path / "o.h5", check=False),
          "truncated or corrupt")
    fails(cli("upsample", d / "c10.h5", "--model", MODELS / "ethanol-gfn2-prop-f10.keras", "-o", tmp_path / "o.h5",
              check=False), "shooting needs an upsampling factor")  # a propagator fills gaps by shooting
    for option, value in (("--epochs", 0), ("--context", 0), ("--context", -2), ("--width", 0),
                          ("--batch-size", 0)):
        fails(cli("train", d / "fine.h5", "--factor", 5, option, value, "-o", tmp_path / "m.keras", check=False),
              option)
    fails(cli("stride", d / "c10.h5", "--factor", 1000000, "-o", tmp_path / "o.h5", check=False), "at least 2")
    fails(cli("upsample", d / "c10.h5", "--method", "spline", "--factor", 1000000, "-o", tmp_path / "o.h5",
              check=False), "GiB")
    no_leftovers(tmp_path, "o.h5", "m.keras")


def test_messages(files, cli, tmp_path):
    d = files
    # a NaN deep inside a streamed file is reported at its frame in the file, not in the chunk
    save(load(d / "c10.h5"), tmp_path / "nan.h5")
    with h5py.File(tmp_path / "nan.h5", "r+") as f:
        f["positions"][77, 3, 1] = np.nan
    fails(cli("upsample", tmp_path / "nan.h5", "--method", "linear", "--factor", 10, "--chunk", 20,
              "-o", tmp_path / "o.h5", check=False), "frame 77", "atom 3")
    # no silent overwrite, said once and plainly
    save(load(d / "c10.h5"), tmp_path / "exists.h5")
    before = (tmp_path / "exists.h5").read_bytes()
    proc = cli("stride", d / "fine.h5", "--factor", 2, "-o", tmp_path / "exists.h5", check=False)
    fails(proc, "exists", "--force")
    assert "force=True" not in proc.stderr and (tmp_path / "exists.h5").read_bytes() == before
    # the xtc warning names the output, not a temporary file
    proc = cli("stride", d / "fine.h5", "--factor", 2, "-o", tmp_path / "o.xtc")
    assert f"{tmp_path / 'o.xtc'}: xtc keeps" in proc.stderr and "partial" not in proc.stderr
    no_leftovers(tmp_path, "o.h5")


def test_sigterm_leaves_no_partial_file_and_a_stale_one_is_cleaned(files, tmp_path, ethanol):
    from trajsr import Trajectory
    there_and_back = np.concatenate([ethanol.positions[:1000], ethanol.positions[998:0:-1]])  # continuous
    positions = np.tile(there_and_back, (25, 1, 1))
    long = Trajectory(positions=positions, elements=ethanol.elements, time=np.arange(len(positions)) * 0.005)
    save(long, tmp_path / "long.h5")
    stale = tmp_path / "out.trajsr-partial-999999999.h5"  # left by a run that was SIGKILLed
    stale.write_bytes(b"partial")
    proc = subprocess.Popen([sys.executable, "-m", "trajsr.cli", "upsample", str(tmp_path / "long.h5"), "--method",
                             "spline", "--factor", "40", "--chunk", "200", "-o", str(tmp_path / "out.h5")],
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(f"out.trajsr-partial-{proc.pid}.h5")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not stale.exists()  # removed when the new run started
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "terminated" in err
    no_leftovers(tmp_path, "out.h5")


def test_python_api_checks(ethanol, tmp_path):
    from trajsr import Propagator
    trajsr.save(ethanol.stride(10), tmp_path / "coarse.h5")
    before = (tmp_path / "coarse.h5").read_bytes()
    with pytest.raises(TrajsrError, match="is the coarse file"):  # force=True must not replace the input
        trajsr.upsample(tmp_path / "coarse.h5", trajsr.get_baseline("spline"), tmp_path / "coarse.h5", factor=10,
                        force=True)
    assert (tmp_path / "coarse.h5").read_bytes() == before
    from trajsr.propagation.rescale import calculator_from
    prop = Propagator.load(MODELS / "ethanol-gfn2-prop-f10.keras")
    x, v = ethanol.positions[0], ethanol.velocities[0]
    for kwargs, word in ((dict(n_steps=2.5), "n_steps"), (dict(n_steps=3, chunk=0), "chunk"),
                         (dict(n_steps=3, thermostat="bussi", temperature=300.0, thermostat_every=0), "thermostat_every"),
                         (dict(n_steps=0), "n_steps"), (dict(n_steps=2, temperature=-1.0, thermostat="bussi"),
                                                        "temperature")):
        with pytest.raises(TrajsrError, match=word):
            prop.run(x, v, **kwargs)
    with pytest.raises(TrajsrError, match="shape"):
        prop.run(np.zeros((0, 9, 3)), np.zeros((0, 9, 3)), 2)
    assert hasattr(calculator_from("gfn2"), "get_potential_energy")  # the CLI's string works in Python too
    with pytest.raises(TrajsrError, match="gfn2"):
        calculator_from("mp2")
    with pytest.raises(TrajsrError, match="batch size"):
        trajsr.LearnedInterpolator(MODELS / "ethanol-gfn2-f10.keras", batch_size=0)


def test_an_output_format_trajsr_cannot_write_is_refused_before_any_work(files, cli, tmp_path):
    """Formats mdtraj reads but cannot write (binpos, arc, hdf5), writes one file per frame (the Amber restarts
    rst7, ncrst: they left NAME.trajsr-partial-PID.rst7.01 behind) or that no one writes (mol2, h5md): one line
    before the model loads, for every command that writes a trajectory; the compound suffixes .pdb.gz and
    .xyz.gz are written (their partial name kept .gz alone, which no writer knew)."""
    model = MODELS / "ethanol-gfn2-f10.keras"
    for suffix in (".rst7", ".ncrst", ".binpos", ".arc", ".hdf5", ".mol2", ".h5md"):
        out = tmp_path / f"out{suffix}"
        fails(cli("stride", files / "fine.h5", "--factor", 2, "-o", out, check=False), f"out{suffix}", "cannot write")
        fails(cli("upsample", files / "c10.h5", "--model", model, "-o", out, check=False), "cannot write")
        fails(cli("upsample", files / "c10.h5", "--method", "spline", "--factor", 10, "--out-dir", tmp_path,
                  "--suffix", suffix, check=False), f"c10{suffix}", "cannot write")
        fails(cli("propagate", "--model", MODELS / "ethanol-gfn2-prop-f10.keras", "--start", files / "fine.h5",
                  "--steps", 2, "-o", out, check=False), "cannot write")
        no_leftovers(tmp_path, out.name, f"c10{suffix}")
    for suffix in (".pdb.gz", ".xyz.gz"):
        cli("stride", files / "fine.h5", "--factor", 100, "-o", tmp_path / f"kept{suffix}")
        assert load(tmp_path / f"kept{suffix}", top=files / "top.pdb").n_frames == 11


def test_a_lammps_dump_of_a_molecule_without_a_box_is_refused_before_the_rebuild(files, cli, tmp_path):
    """A LAMMPS dump holds a box in every frame: a trajectory without one was refused only when written, after
    the whole rebuild, with mdtraj's "cell_lengths must be numpy array". A periodic water box is written and
    read back, its topology from the trajsr .h5 it came from (mdtraj alone asked for PyTables there)."""
    model = MODELS / "ethanol-gfn2-f10.keras"
    out = tmp_path / "out.lammpstrj"
    fails(cli("stride", files / "fine.h5", "--factor", 2, "-o", out, check=False), "out.lammpstrj", "unit cell",
          "fine.h5 has none")
    fails(cli("upsample", files / "c10.h5", "--model", model, "-o", out, check=False), "unit cell", "c10.h5")
    fails(cli("upsample", files / "c10.dcd", "-t", files / "top.pdb", "--method", "spline", "--factor", 10,
              "-o", out, check=False), "unit cell")
    fails(cli("propagate", "--model", MODELS / "ethanol-gfn2-prop-f10.keras", "--start", files / "fine.h5",
              "--steps", 2, "-o", out, check=False), "unit cell")
    no_leftovers(tmp_path, out.name)
    water = ROOT / "datasets" / "water-tip3p-seed0.h5"
    cli("stride", water, "--factor", 10, "-o", tmp_path / "w.lammpstrj")
    cli("upsample", tmp_path / "w.lammpstrj", "-t", water, "--dt", 5, "--method", "spline", "--factor", 10,
        "-o", tmp_path / "w.h5")
    back, truth = load(tmp_path / "w.h5"), load(water)
    assert back.n_frames == truth.n_frames and back.is_periodic
    np.testing.assert_allclose(back.unitcell_vectors, truth.unitcell_vectors, atol=1e-4)
