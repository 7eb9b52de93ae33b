"""README blocks that only need shipped files, run as written in one folder (issue 26 item 19)."""
import contextlib
import io
import os
import re

import pytest

from .conftest import ROOT


def block(marker: str, language: str) -> str:
    found = re.search(rf"<!-- {marker} -->\s*```{language}\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert found, f"README has no ```{language} block after <!-- {marker} -->"
    return found.group(1)


@pytest.fixture
def readme_folder(tmp_path):
    """A folder laid out like the repository root for what the blocks read (datasets/, models/)."""
    for name in ("datasets", "models"):
        (tmp_path / name).symlink_to(ROOT / name)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    yield tmp_path
    os.chdir(cwd)


def test_propagator_python_block_runs_as_written(readme_folder):
    """Propagator.run (NVE, Bussi, GFN2-xTB energy rescaling), the ASE integrator and shooting."""
    out = io.StringIO()
    namespace = {}
    with contextlib.redirect_stdout(out):
        exec(compile(block("propagator-python", "python"), "README.md", "exec"), namespace)
    rebuilt, start = namespace["rebuilt"], namespace["start"]
    assert rebuilt.n_frames == (start.stride(10).n_frames - 1) * 10 + 1 and rebuilt.velocities is not None
    assert (readme_folder / "md.traj").exists()  # LearnedDynamics' trajectory
    times = [float(line) for line in out.getvalue().split()]
    assert len(times) == 11 and times[-1] > times[0]  # the observer every 10 of 100 steps (ASE time units)
