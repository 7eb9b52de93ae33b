import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from trajsr import Trajectory

ROOT = Path(__file__).resolve().parents[1]
#: third-party files (not shipped: read by path beside the checkout, or from $TRAJSR_SHARED_DATA)
SHARED = Path(os.environ.get("TRAJSR_SHARED_DATA", ROOT.parent / "shared" / "data")) / "mbgdml-water"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def run_cli(*args, check=True):
    """Run ``trajsr ARGS``: ``trajsr.cli.main(ARGS)`` in this process (the console entry point's own call,
    without the ~7 s TensorFlow start of a fresh interpreter, paid ~90 times over the suite), or, with
    ``TRAJSR_TEST_SUBPROCESS=1``, in a fresh interpreter as a user's shell would. The tests that need a
    fresh process (console noise, signals, installs) start one themselves."""
    if os.environ.get("TRAJSR_TEST_SUBPROCESS") == "1":
        proc = subprocess.run([sys.executable, "-m", "trajsr.cli", *map(str, args)], capture_output=True,
                              text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    else:
        proc = run_cli_in_process(*args)
    if check and proc.returncode != 0:
        raise AssertionError(f"trajsr {' '.join(map(str, args))} failed:\n{proc.stderr}")
    return proc


def run_line(line, cwd=None, env=None, check=True):
    """A README line ``trajsr ARGS`` as a reader's shell runs it: bash expands it (quotes, braces such as
    ``seed{1..3}``, variables from ``env``) into the argument list, which :func:`run_cli` runs in ``cwd``."""
    import contextlib
    assert line.startswith("trajsr "), line
    environment = dict(os.environ, **(env or {}))
    expanded = subprocess.run(["bash", "-c", "printf '%s\\0' " + line.removeprefix("trajsr ")], cwd=cwd,
                              env=environment, capture_output=True, text=True, check=True).stdout
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        with contextlib.chdir(cwd or os.getcwd()):
            return run_cli(*expanded.split("\0")[:-1], check=check)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_cli_in_process(*args):
    """``trajsr.cli.main(ARGS)`` with its exit status and output, as subprocess.run would return them. An
    exception that escapes main() is a traceback the user would see: it becomes exit 1 with it on stderr."""
    import contextlib
    import io
    import signal
    import traceback
    import warnings

    from trajsr.cli import main
    out, err = io.StringIO(), io.StringIO()
    format_warning, on_sigterm = warnings.formatwarning, signal.getsignal(signal.SIGTERM)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter("default")  # Python's own defaults, as in a fresh interpreter
        for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.simplefilter("ignore", category)
        warnings.showwarning = lambda message, category, *a, **k: print(  # printed as the CLI prints them
            warnings.formatwarning(message, category, *a, **k), end="", file=sys.stderr)
        try:
            code = main([str(a) for a in args])
        except SystemExit as exit_:  # argparse errors
            code = exit_.code if isinstance(exit_.code, int) else 1
        except Exception:
            traceback.print_exc()
            code = 1
        finally:
            warnings.formatwarning = format_warning
            signal.signal(signal.SIGTERM, on_sigterm)  # main() installs its own
    return subprocess.CompletedProcess(["trajsr", *map(str, args)], code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli():
    return run_cli


def make_wiggle(n_frames=41, n_atoms=5, dt_ps=0.0005, seed=0):
    """A smooth synthetic 'molecule': atoms oscillating with a few frequencies (nm, ps)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_frames) * dt_ps
    base = rng.normal(scale=0.15, size=(n_atoms, 3))
    amp = rng.normal(scale=0.005, size=(3, n_atoms, 3))
    omega = np.array([20.0, 55.0, 110.0])  # rad/ps
    phase = rng.uniform(0, 2 * np.pi, size=(3, n_atoms, 3))
    pos = base + np.einsum("kai,tkai->tai", amp, np.sin(omega[None, :, None, None] * t[:, None, None, None] + phase))
    vel = np.einsum("kai,tkai->tai", amp * omega[:, None, None],
                    np.cos(omega[None, :, None, None] * t[:, None, None, None] + phase))
    elements = (["C", "O", "H", "H", "N"] * n_atoms)[:n_atoms]
    return Trajectory(positions=pos, velocities=vel, time=t, elements=elements, source="wiggle")


@pytest.fixture
def wiggle():
    return make_wiggle()


@pytest.fixture(scope="session")
def ethanol():
    """The first 0.5 ps of the shipped GFN2-xTB ethanol trajectory."""
    from trajsr.datasets import shipped_path
    from trajsr.io import load
    return load(shipped_path("ethanol-gfn2"))[:1001]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, ethanol):
    """A tiny Bi-LSTM (factor 5, context 2, width 8), trained for 2 epochs and calibrated on validation."""
    from trajsr.interpolation.train import fit
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    fit([ethanol[:600]], validation=[ethanol[600:]], model="bilstm", factor=5, context=2, width=8, epochs=2,
        window_step=4, verbose=0, output=path)
    return path


@pytest.fixture
def readme_folder(tmp_path):
    """A folder laid out like the repository root for what the blocks read (datasets/, models/)."""
    for name in ("datasets", "models"):
        (tmp_path / name).symlink_to(ROOT / name)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    yield tmp_path
    os.chdir(cwd)
