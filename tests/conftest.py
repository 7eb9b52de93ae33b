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
    """Run ``trajsr ARGS`` as a user would: in a subprocess, or (``check=False``: a call expected to fail,
    almost always before any work) in this process, which saves the ~2.5 s start of a fresh interpreter."""
    if not check:
        return run_cli_in_process(*args)
    proc = subprocess.run([sys.executable, "-m", "trajsr.cli", *map(str, args)], capture_output=True,
                          text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    if check and proc.returncode != 0:
        raise AssertionError(f"trajsr {' '.join(map(str, args))} failed:\n{proc.stderr}")
    return proc


def run_cli_in_process(*args):
    """``trajsr.cli.main(ARGS)`` with its exit status and output, as subprocess.run would return them. An
    exception that escapes main() is a traceback the user would see: it becomes exit 1 with it on stderr."""
    import contextlib
    import io
    import traceback
    import warnings

    from trajsr.cli import main
    out, err = io.StringIO(), io.StringIO()
    format_warning = warnings.formatwarning
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
