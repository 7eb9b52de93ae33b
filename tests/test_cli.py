import json
from pathlib import Path

import numpy as np

from trajsr import load, reconstruction_errors, save
from trajsr.datasets import shipped_path


def test_stride_baseline_evaluate(tmp_path, cli, ethanol):
    save(ethanol, tmp_path / "fine.h5")
    cli("stride", tmp_path / "fine.h5", "-o", tmp_path / "coarse.dcd", "--factor", 10)
    save(ethanol[:1], tmp_path / "top.pdb")
    out = cli("baseline", tmp_path / "coarse.dcd", "-t", tmp_path / "top.pdb", "--dt", 5, "--factor", 10,
              "--method", "spline", "-o", tmp_path / "fine_spline.dcd").stdout
    assert "101 kept -> 1001 frames" in out
    res = cli("evaluate", tmp_path / "fine.h5", tmp_path / "fine_spline.dcd", "-t", tmp_path / "top.pdb",
              "--factor", 10, "--json", tmp_path / "e.json", "--plot", tmp_path / "e.png")
    assert "MAE (Å)" in res.stdout
    e = json.loads((tmp_path / "e.json").read_text())
    assert {"mae_angstrom", "rmse_angstrom", "max_angstrom", "mae_by_element_angstrom"} <= set(e)
    assert 1e-4 < e["mae_angstrom"] < 1e-1
    assert (tmp_path / "e.png").read_bytes()[:4] == b"\x89PNG"


def test_hermite_through_cli(tmp_path, cli, ethanol):
    save(ethanol.stride(5), tmp_path / "coarse.trr")
    save(ethanol[:1], tmp_path / "top.pdb")
    cli("baseline", tmp_path / "coarse.trr", "-t", tmp_path / "top.pdb", "--factor", 5, "--method", "hermite",
        "-o", tmp_path / "h.npz")
    rebuilt = load(tmp_path / "h.npz")
    assert rebuilt.n_frames == ethanol.n_frames and rebuilt.has_velocities


def ethanol_tail(tmp_path, ethanol):
    save(ethanol[500:], tmp_path / "tail.h5")
    return tmp_path / "tail.h5"


def _fails(proc, *words):
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("trajsr: error:"), proc.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_bad_inputs(tmp_path, cli, ethanol):
    fine = tmp_path / "fine.h5"
    save(ethanol, fine)
    save(ethanol[:1], tmp_path / "top.pdb")
    save(ethanol.stride(5), tmp_path / "coarse.dcd")  # a format without velocities
    out = tmp_path / "out.h5"
    _fails(cli("stride", fine, "-o", out, "--factor", 1, check=False), "--factor")
    _fails(cli("baseline", tmp_path / "missing.dcd", "-o", out, "--factor", 5, check=False), "missing.dcd")
    _fails(cli("baseline", tmp_path / "coarse.dcd", "-t", tmp_path / "top.pdb", "-o", out, "--factor", 5,
               "--method", "hermite", check=False), "velocities")
    # atom-count mismatch between topology and trajectory
    alanine_pdb = shipped_path("alanine-dipeptide-amber").parent / "alanine-dipeptide.pdb"
    _fails(cli("baseline", tmp_path / "coarse.dcd", "-t", alanine_pdb, "-o", out, "--factor", 5, check=False),
           "atom count mismatch", "22", "9")
    # uneven time steps
    time = ethanol.time.copy()
    time[40:] += 0.001
    save(ethanol.replace(time=time), tmp_path / "uneven.h5")
    _fails(cli("stride", tmp_path / "uneven.h5", "-o", out, "--factor", 5, check=False), "frame 40")
    # NaN coordinates
    np.savez(tmp_path / "nan.npz", R=np.full((3, 2, 3), np.nan), z=np.array([1, 1]))
    _fails(cli("stride", tmp_path / "nan.npz", "-o", out, "--factor", 2, check=False), "NaN", "frame 0")
    # truncated file
    (tmp_path / "trunc.h5").write_bytes(fine.read_bytes()[:700])
    _fails(cli("stride", tmp_path / "trunc.h5", "-o", out, "--factor", 2, check=False), "trunc.h5")
    # reference and reconstruction that do not correspond
    save(ethanol.stride(5), tmp_path / "c5.h5")
    cli("baseline", tmp_path / "c5.h5", "-o", tmp_path / "r5.h5", "--factor", 5)
    _fails(cli("evaluate", fine, tmp_path / "r5.h5", "--factor", 2, check=False), "kept frame 2")
    _fails(cli("evaluate", ethanol_tail(tmp_path, ethanol), tmp_path / "r5.h5", "--factor", 5, check=False),
           "frames")
    assert not out.exists()
    # no silent overwrite
    before = (tmp_path / "r5.h5").read_bytes()
    _fails(cli("baseline", tmp_path / "c5.h5", "-o", tmp_path / "r5.h5", "--factor", 5, "--method", "linear",
               check=False), "--force")
    assert (tmp_path / "r5.h5").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if "trajsr-partial" in p.name]  # no temporary left behind


def test_help_on_every_command(cli):
    import argparse
    from collections import defaultdict

    from trajsr.options import build_parser
    parser = build_parser(defaultdict(lambda: None))
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert {"spectrum", "temperature", "upsample", "propagate", "calibrate", "train"} <= set(commands)
    for command in commands:
        proc = cli(command, "--help", check=False)  # in this process: argparse exits 0 after printing
        assert proc.returncode == 0 and f"usage: trajsr {command}" in proc.stdout, command


def test_datasets_list(cli):
    out = cli("datasets", "list").stdout
    for name in ("ethanol-gfn2", "alanine-dipeptide-amber", "water-tip3p", "aspirin-gfn2"):
        assert name in out


def test_demo(tmp_path, cli):
    out = cli("demo", "-o", tmp_path).stdout
    assert "spline" in out and "hermite" in out and "MAE (Å)" in out
    assert "bilstm (models/ethanol-gfn2-f10.keras)" in out
    assert (tmp_path / "gap_errors.png").exists()


def test_readme_walkthrough_runs_as_written(tmp_path, cli):
    """The README's first command-line walk-through, line by line, on the shipped files."""
    import re
    import shlex

    from .conftest import ROOT
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- walkthrough -->\s*```bash\n(.*?)```", text, re.S).group(1)
    for name in ("datasets", "models"):
        (tmp_path / name).symlink_to(ROOT / name)
    lines = [line.split("  #")[0].strip() for line in block.splitlines() if line.startswith("trajsr ")]
    assert len(lines) >= 4
    for line in lines:
        proc = _run_in(tmp_path, shlex.split(line)[1:])
        assert proc.returncode == 0, f"{line}\n{proc.stderr}"
    # then the uncertainty section's lines that need no training of one's own, in the same folder
    trust = re.search(r"<!-- trust -->\s*```bash\n(.*?)```", text, re.S).group(1).replace("\\\n", " ")
    trust_lines = [line.split("  #")[0].strip() for line in trust.splitlines()
                   if line.startswith("trajsr ") and "my-model" not in line]
    assert len(trust_lines) == 3
    for line in trust_lines:
        proc = _run_in(tmp_path, shlex.split(line)[1:])
        assert proc.returncode == 0, f"{line}\n{proc.stderr}"
    assert (tmp_path / "safe.dcd.uncertainty.npz").exists() and (tmp_path / "sigma.png").exists()
    shot = reconstruction_errors(load(ROOT / "datasets" / "ethanol-gfn2-seed0.h5"), load(tmp_path / "shot.h5"), 10)
    errors = json.loads((tmp_path / "errors.json").read_text())
    assert shot["mae_angstrom"] < errors["mae_angstrom"]  # the propagator's shooting beats the Bi-LSTM
    assert errors["mae_angstrom"] < 2e-3 and (tmp_path / "gaps.png").exists()
    assert 0.5 < errors["uncertainty"]["coverage_90"] <= 1.0 and (tmp_path / "trust.png").exists()
    assert (tmp_path / "fine.dcd.uncertainty.npz").exists()
    # then the spectra section's lines, in the same folder
    spectra = re.search(r"<!-- spectra-walkthrough -->\s*```bash\n(.*?)```", text, re.S).group(1)
    outputs = {}
    for line in [line.split("  #")[0].strip() for line in spectra.splitlines() if line.startswith("trajsr ")]:
        proc = outputs[line.split()[1] + str(len(outputs))] = _run_in(tmp_path, shlex.split(line)[1:])
        assert proc.returncode == 0, f"{line}\n{proc.stderr}"
    assert len(outputs) == 3 and (tmp_path / "spectra.png").exists()
    shot, spline = json.loads((tmp_path / "spectra.json").read_text())["comparisons"]
    assert shot["overlap"] > spline["overlap"]  # shooting's spectrum is the closer to the truth's
    stretch = [abs(np.log(c["bands"]["O-H/N-H stretch"]["ratio"])) for c in (shot, spline)]
    assert stretch[0] < stretch[1]
    true_kelvin, shot_kelvin = [float(line.split(": ")[1].split(" K")[0])
                                for line in outputs["temperature1"].stdout.splitlines()]
    assert abs(shot_kelvin / true_kelvin - 1) < 0.01  # the velocities shooting wrote
    coarse = outputs["temperature2"].stdout  # differences of 5 fs frames: a lower bound, said so
    assert ": at least " in coarse and "a lower bound, not the temperature" in coarse
    assert float(coarse.split("at least ")[1].split(" K")[0]) < 0.6 * true_kelvin


def _run_in(folder, args):
    """``trajsr ARGS`` in ``folder`` (in this process, as every CLI call of the tests: conftest.run_cli)."""
    import contextlib

    from .conftest import run_cli
    with contextlib.chdir(folder):
        return run_cli(*args, check=False)


def test_regular_install_runs_the_demo(tmp_path):
    """A non-editable 'pip install .' (into a venv that borrows the installed dependencies) finds the
    shipped data and models."""
    import os
    import shutil
    import subprocess
    import sys

    from .conftest import ROOT
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__",
                                                                 "*.work", "data", "trajsr-demo", ".venv"))
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", tmp_path / "venv"], check=True)
    python = tmp_path / "venv" / "bin" / "python"
    # a venv made from inside the README's venv borrows the *base* Python's packages, not that venv's: point
    # it at the running environment too (its dependencies, and the wheel package setuptools needs)
    import sysconfig
    inner = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                           capture_output=True, text=True, check=True).stdout.strip()
    outer = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(inner) / "trajsr-test-outer.pth").write_text("\n".join(sorted(outer)) + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    install = subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", source],
                             capture_output=True, text=True, env=env)
    assert install.returncode == 0, install.stderr[-2000:]
    shutil.rmtree(source)  # nothing may come from the checkout any more
    where = subprocess.run([python, "-c", "import trajsr; print(trajsr.__file__)"], cwd=tmp_path,
                           capture_output=True, text=True, env=env).stdout
    assert str(tmp_path / "venv") in where
    demo = subprocess.run([tmp_path / "venv" / "bin" / "trajsr", "demo", "-o", tmp_path / "demo"], cwd=tmp_path,
                          capture_output=True, text=True, env=env)
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert "bilstm" in demo.stdout and (tmp_path / "demo" / "gap_errors.png").exists()
