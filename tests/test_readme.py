"""README blocks that only need shipped files, run as written in one folder (issue 26 item 19)."""
import contextlib
import io
import re

from .conftest import ROOT, run_line


def block(marker: str, language: str) -> str:
    found = re.search(rf"<!-- {marker} -->\s*```{language}\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert found, f"README has no ```{language} block after <!-- {marker} -->"
    return found.group(1)


def test_own_model_trust_propagator_and_python_blocks_run_in_order_at_tiny_size(readme_folder):
    """In one folder, in README order: the walk-through's coarse file, "Then your own model" (datasets
    make, train), the trust section's calibrate line on that model, the learned propagator's lines and
    the Python section, with the sizes cut down (fewer MD steps, one epoch)."""
    text = (ROOT / "README.md").read_text()

    def run(line, tiny=()):
        for big, small in tiny:
            line = line.replace(big, small)
        return run_line(line, readme_folder)  # expanded by bash, as a reader's shell would (seed{1..3})

    def lines(marker_or_start):
        found = re.search(marker_or_start, text, re.S)
        assert found, marker_or_start
        return [line.split("  #")[0].strip() for line in found.group(1).replace("\\\n", " ").splitlines()
                if line.startswith("trajsr ")]

    run(lines(r"<!-- walkthrough -->\s*```bash\n(.*?)```")[0])  # coarse.dcd
    own = lines(r"Then your own model[^`]*```bash\n(.*?)```")
    assert [line.split()[1] for line in own] == ["datasets", "datasets", "train"]
    cuts = (("--md-steps 20000", "--md-steps 300 --equilibration-fs 20"),
            ("-o my-model.keras", "--epochs 1 --width 8 -o my-model.keras"))
    assert all(any(big in line for line in own) for big, _ in cuts)  # a renamed option would run at full size
    for line in own:
        run(line, cuts)
    calibrate = [line for line in lines(r"<!-- trust -->\s*```bash\n(.*?)```") if "my-model" in line]
    assert len(calibrate) == 1
    run(calibrate[0])
    # "Learned propagator" (before "Python" in the README): two trainings and a rollout (the four tiny
    # files stand in for eight; the bracketed options are optional)
    propagator = lines(r"## Learned propagator \(surrogate integrator\)\s*```bash\n(.*?)```")
    assert [line.split()[1] for line in propagator] == ["train", "train", "propagate"]
    cuts = (("{1..8}", "{1..4}"), ("--width 256", "--width 8 --epochs 1 --strides 2"),
            ("--force-matching-minutes 12", "--force-matching-minutes 0.05"), ("--steps 20000", "--steps 200"))
    assert all(any(big in line for line in propagator) for big, _ in cuts)
    for line in propagator:
        run(re.sub(r"\s*\[[^]]*\]", "", line), cuts)
    for made in ("prop.keras", "prop-f20.keras", "rollout.h5"):
        assert (readme_folder / made).exists(), made
    code = re.search(r"## Python\s*```python\n(.*?)```", text, re.S).group(1)
    code = code.replace('factor=10, output="api-model.keras")', 'factor=10, output="api-model.keras", epochs=1, width=8)')
    assert "epochs=1" in code and 'architecture="bilstm"' in code  # the API's name for what to train
    namespace = {}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["trusted"].uncertainty is not None and namespace["rebuilt"].n_frames == 5001
    for made in ("my-model.keras", "api-fine.dcd", "api-model.keras", "data/ethanol-gfn2-seed4.h5"):
        assert (readme_folder / made).exists(), made


def test_shooting_calibration_block_runs_at_tiny_size(readme_folder):
    """The shooting-uncertainty block as written, in one folder: make the calibration runs (shortened to
    150 fs each, into the folder's own data/), calibrate the shipped propagator on them, rebuild with σ."""
    import subprocess
    import sys
    (readme_folder / "bench").symlink_to(ROOT / "bench")
    text = (ROOT / "README.md").read_text()
    found = re.search(r"calibrated on six GFN2-xTB runs[^`]*```bash\n(.*?)```", text, re.S)
    assert found
    commands = [line.split("  #")[0].strip() for line in found.group(1).replace("\\\n", " ").splitlines()]
    assert [c.split()[:2] for c in commands] == [["python", "bench/make_data.py"], ["trajsr", "calibrate"],
                                                  ["trajsr", "stride"], ["trajsr", "upsample"]]
    commands[0] += " --data data --md-steps 300 --equilibration-fs 20"  # the recipe's length: minutes of GFN2-xTB
    for command in commands:
        if command.startswith("trajsr "):
            proc = run_line(command, readme_folder)
            continue
        command = command.replace("python ", f"{sys.executable} ", 1)
        proc = subprocess.run(["bash", "-c", command], cwd=readme_folder, capture_output=True, text=True)
        assert proc.returncode == 0, f"{command}\n{proc.stderr[-2000:]}"
    assert len(list((readme_folder / "data" / "ethanol-calib").glob("*/*.h5"))) == 6
    assert "frame uncertainty median" in proc.stdout and "difficulty" in proc.stdout
    from trajsr import load
    assert load(readme_folder / "shot-sigma.h5").uncertainty is not None
