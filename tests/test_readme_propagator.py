"""The README's propagator Python block, run as written (its own file: pytest-xdist gives each file one worker,
and test_readme.py's blocks are the suite's longest file)."""
import contextlib
import io

from .test_readme import block


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
