"""Start-up and throughput, as a user waits for them, side by side on this machine.

    python bench/speed.py [--frames 1000000] [--rollout-ps 100] [--rounds 3] [--shooting-frames 200000]

Every timing that includes start-up runs in a fresh process (wall clock from its start); steady-state
figures are measured in-process after a warm-up. Compiled XLA programs are kept in a folder of this run's own
(``TRAJSR_XLA_CACHE``), empty at its start: a rollout's first run compiles, the same command again loads
what the first kept (both are reported). Writes bench/results/speed.md and speed.json.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PY = sys.executable
MODELS = sorted(p for p in (ROOT / "models").glob("*.keras"))


def wall(args, repeat=1, **kwargs):
    """Median wall-clock (s) and peak RSS (MB) of a fresh process running ``args`` (its own rusage)."""
    times, peak = [], 0.0
    for _ in range(repeat):
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            t0 = time.perf_counter()
            proc = subprocess.Popen(args, stdout=out, stderr=err, **kwargs)
            _, status, usage = os.wait4(proc.pid, 0)
            times.append(time.perf_counter() - t0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            if proc.returncode != 0:
                err.seek(0)
                raise RuntimeError(f"{' '.join(map(str, args))}: {err.read().decode()[-1500:]}")
        peak = max(peak, usage.ru_maxrss / 1024)
    return statistics.median(times), peak


def python(code, repeat=1):
    return wall([PY, "-c", code], repeat)


def trajsr(*args):
    return wall([PY, "-m", "trajsr.cli", *map(str, args)])


def long_coarse(path, frames):
    """A coarse ethanol file (5 fs) of ``frames`` / 10 kept frames: the shipped trajectory forwards, then
    backwards, and so on (continuous: trajsr refuses the jump where a copy would start again)."""
    from trajsr import Trajectory, load, save
    c = load(ROOT / "datasets" / "ethanol-gfn2-seed0.h5").stride(10)
    n = frames // 10 + 1
    there_and_back = np.concatenate([c.positions, c.positions[-2:0:-1]])
    reps = -(-n // len(there_and_back))
    save(Trajectory(positions=np.concatenate([there_and_back] * reps)[:n], elements=c.elements,
                    time=np.arange(n) * c.dt), path, force=True)


def steady_upsampling(model, coarse, repeat=3):
    """Fine frames per second once loaded and warmed up (in-process, in-memory, no file writing)."""
    code = f"""
import time, statistics
from trajsr.cli import import_tensorflow; import_tensorflow()
from trajsr import LearnedInterpolator, get_baseline, load
c = load("{coarse}")[:20001]
interp = get_baseline("spline") if "{model}" == "spline" else LearnedInterpolator("{model}")
interp.interpolate(c[:2000], 10)
ts = []
for _ in range({repeat}):
    t = time.perf_counter(); f = interp.interpolate(c, 10); ts.append(time.perf_counter() - t)
print(f.n_frames / statistics.median(ts))
"""
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def shooting_steady(model, data, repeat=3):
    """Shooting's fine frames per second at factor 10 on a shipped 5 fs-strided trajectory of the model's
    molecule, from positions only and with the file's velocities, once loaded and compiled (in-process,
    in memory)."""
    code = f"""
import time, statistics
from trajsr.cli import import_tensorflow; import_tensorflow()
from trajsr import ShootingInterpolator, load
c = load("{data}").stride(10)
s = ShootingInterpolator.load("{model}")
for coarse in (c.replace(velocities=None), c):
    s.interpolate(coarse, 10)
    ts = []
    for _ in range({repeat}):
        t = time.perf_counter(); f = s.interpolate(coarse, 10); ts.append(time.perf_counter() - t)
    print(f.n_frames / statistics.median(ts))
"""
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True).stdout.split()
    return float(out[-2]), float(out[-1])


def propagator_steady(model, n_steps=8000):
    code = f"""
import time
from trajsr.cli import import_tensorflow; import_tensorflow()
from trajsr import Propagator, load
s = load("{ROOT / 'datasets' / 'ethanol-gfn2-seed0.h5'}")
p = Propagator.load("{model}")
p.run(s.positions[0], s.velocities[0], {n_steps})
t = time.perf_counter(); traj = p.run(s.positions[0], s.velocities[0], {n_steps}); dt = time.perf_counter() - t
print(dt / traj.time[-1])
import ase
from trajsr.ase import LearnedDynamics
for interval in (1, 100):
    atoms = s.to_ase(0)
    dyn = LearnedDynamics(atoms, p)
    dyn.attach(lambda: None, interval=interval)
    dyn.run(200)
    t = time.perf_counter(); dyn.run(1000); print((time.perf_counter() - t) / 1000)
"""
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True).stdout.split()
    return float(out[-3]), float(out[-2]), float(out[-1])


def gfn2_seconds_per_ps(steps=1000, data=ROOT / "datasets" / "ethanol-gfn2-seed0.h5"):
    """GFN2-xTB velocity Verlet at 0.5 fs on one thread (tblite through ASE): seconds per simulated ps."""
    code = f"""
import time
from ase.md.verlet import VelocityVerlet
from ase import units
from trajsr import load
from trajsr.datasets.xtb import gfn2_calculator
atoms = load("{data}").to_ase(0)
atoms.calc = gfn2_calculator()
dyn = VelocityVerlet(atoms, 0.5 * units.fs)
dyn.run(10)
t = time.perf_counter(); dyn.run({steps}); print((time.perf_counter() - t) / ({steps} * 0.5e-3))
"""
    # one thread whatever the caller's environment says (set after it, so it wins)
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1"))
    return float(out.stdout.split()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=1_000_000, help="fine frames of the upsampling test file")
    p.add_argument("--rollout-ps", type=float, default=100.0)
    p.add_argument("--shooting-frames", type=int, default=200_000,
                   help="fine frames of the file shooting rebuilds from positions through the CLI")
    p.add_argument("--rounds", type=int, default=3, help="turns of each ratio's two sides (medians reported)")
    args = p.parse_args()
    if args.rounds < 1:
        p.error(f"--rounds must be at least 1, got {args.rounds}")
    if args.shooting_frames < 20:
        p.error(f"--shooting-frames must be at least 20 (two gaps of factor 10), got {args.shooting_frames}")
    kept = tempfile.TemporaryDirectory()  # this run's XLA cache: the first rollout of each kind compiles
    os.environ["TRAJSR_XLA_CACHE"] = kept.name
    r = {}
    r["tensorflow_import_s"], _ = python("import tensorflow", repeat=3)
    r["trajsr_help_s"], _ = trajsr("--help")
    r["load_s"] = {}
    for m in MODELS:
        kind = "Propagator.load" if "-prop-" in m.name else "LearnedInterpolator"
        code = (f"from trajsr.cli import import_tensorflow; import_tensorflow()\n"
                f"from trajsr import {kind.split('.')[0]}\n{kind}('{m}')")
        r["load_s"][m.name], _ = python(code, repeat=3)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        small = tmp / "small.h5"
        from trajsr import load, save
        save(load(ROOT / "datasets" / "ethanol-gfn2-seed0.h5").stride(10), small)
        r["first_upsample_s"], _ = trajsr("upsample", small, "--model", ROOT / "models" / "ethanol-gfn2-f10.keras",
                                          "-o", tmp / "u.h5")
        r["propagate_2_steps_s"], _ = trajsr("propagate", "--model", ROOT / "models" / "ethanol-gfn2-prop-f10.keras",
                                             "--start", ROOT / "datasets" / "ethanol-gfn2-seed0.h5", "--steps", 2,
                                             "-o", tmp / "p2.h5")
        coarse = tmp / "coarse.h5"
        long_coarse(coarse, args.frames)
        r["upsample_file"] = {}
        runs = [("spline", ["--method", "spline", "--factor", 10])] + [
            (m.name, ["--model", m]) for m in sorted((ROOT / "models").glob("ethanol-gfn2-f10*.keras"))]
        for i, (name, opts) in enumerate(runs):
            seconds, peak = trajsr("upsample", coarse, *opts, "-o", tmp / f"out{i}.h5")
            r["upsample_file"][name] = dict(seconds=seconds, peak_mb=peak)
        r["steady_fine_frames_per_s"] = {"spline": steady_upsampling("spline", coarse)}
        for model in sorted((ROOT / "models").glob("ethanol-gfn2-f10*.keras")):  # the shipped f10 models
            r["steady_fine_frames_per_s"][model.name] = steady_upsampling(model, coarse)
        steps = int(round(args.rollout_ps / 0.005))
        rollout = ["propagate", "--model", ROOT / "models" / "ethanol-gfn2-prop-f10.keras",
                   "--start", ROOT / "datasets" / "ethanol-gfn2-seed0.h5", "--steps", steps, "-o", tmp / "p.h5"]
        r["propagate_end_to_end_s"], _ = trajsr(*rollout)  # compiles (and keeps) its XLA program
        r["propagate_again_end_to_end_s"], _ = trajsr(*rollout, "--force")  # loads it
        r["propagate_nvt_end_to_end_s"] = {}  # the thermostat inside the compiled chunk, as NVE
        for kind in ("bussi", "langevin"):
            r["propagate_nvt_end_to_end_s"][kind], _ = trajsr(
                "propagate", "--model", ROOT / "models" / "ethanol-gfn2-prop-f10.keras", "--start",
                ROOT / "datasets" / "ethanol-gfn2-seed0.h5", "--steps", steps, "--temperature", 500,
                "--thermostat", kind, "-o", tmp / f"p-{kind}.h5")
        r["propagate_filled_end_to_end_s"], _ = trajsr(
            "propagate", "--model", ROOT / "models" / "ethanol-gfn2-prop-f10.keras", "--start",
            ROOT / "datasets" / "ethanol-gfn2-seed0.h5", "--steps", steps, "--temperature", 500, "--fill",
            "-o", tmp / "p-filled.h5")
        # what a user of a long AIMD file waits for: streamed in chunks of 5,000 kept frames, two at once
        long = tmp / "long.h5"
        long_coarse(long, args.shooting_frames)
        seconds, peak = trajsr("upsample", long, "--model", ROOT / "models" / "ethanol-gfn2-prop-f10.keras",
                               "--factor", 10, "--positions-only", "-o", tmp / "long-fine.h5")
        r["shooting_file"] = dict(frames=args.shooting_frames // 10 * 10 + 1, seconds=seconds, peak_mb=peak,
                                  gfn2_step_s=gfn2_seconds_per_ps(200) * 0.0005)  # timed right after it
    # The two sides of each ratio are timed in turns, --rounds times, each round within a minute: this machine's
    # speed drifts by up to 2x over minutes (one GFN2-xTB step of ethanol read 2.0 ms in one run, 3.8 ms in
    # another), so a side timed minutes after the other could move a ratio by as much. Each figure is the
    # median of its rounds, each ratio the median of the rounds' ratios.
    prop = ROOT / "models" / "ethanol-gfn2-prop-f10.keras"
    steady, gfn2, ase1, ase100 = [], [], [], []
    for _ in range(args.rounds):
        for out, value in zip((steady, ase1, ase100), propagator_steady(prop)):
            out.append(value)
        gfn2.append(gfn2_seconds_per_ps())
    r["propagator_steady_s_per_ps"], r["gfn2_s_per_ps"] = statistics.median(steady), statistics.median(gfn2)
    r["ase_s_per_step_interval1"], r["ase_s_per_step_interval100"] = statistics.median(ase1), statistics.median(ase100)
    r["propagator_speedup_rounds"] = [g / p for g, p in zip(gfn2, steady)]
    r["shooting_fine_frames_per_s"] = {}  # each shipped f10 propagator on its molecule's shipped trajectory
    for model in sorted((ROOT / "models").glob("*-gfn2-prop-f10.keras")):
        data = ROOT / "datasets" / f"{model.name.split('-prop-')[0]}-seed0.h5"
        rounds = []
        for _ in range(args.rounds):
            positions, velocities = shooting_steady(model, data)
            rounds.append((positions, velocities, gfn2_seconds_per_ps(200, data) * 0.0005))
        positions, velocities, step = zip(*rounds)
        r["shooting_fine_frames_per_s"][model.name] = dict(
            positions=statistics.median(positions), velocities=statistics.median(velocities),
            gfn2_step_s=statistics.median(step),
            cheaper_rounds={"positions": [f * s for f, s in zip(positions, step)],
                            "velocities": [f * s for f, s in zip(velocities, step)]})
    r["rounds"] = args.rounds
    r["rollout_ps"] = args.rollout_ps
    report(r, args)


def median_rounds(ratios):
    """A ratio as reported: the median of its rounds' ratios and, over several rounds, their range
    ("131x (118-140x)")."""
    median = f"{statistics.median(ratios):.0f}x"
    return f"{median} ({min(ratios):.0f}-{max(ratios):.0f}x)" if len(ratios) > 1 else median


def shooting_file_row(f):
    """The report's line for the long file shooting rebuilt through the CLI."""
    fps = f["frames"] / f["seconds"]
    return (f"| `trajsr upsample` {f['frames']:,} frames by shooting with `ethanol-gfn2-prop-f10.keras`, positions "
            f"only, end to end (peak {f['peak_mb']:.0f} MB) | {f['seconds']:.1f} | {fps:,.0f} fine frames/s from the "
            f"command's start: {fps * f['gfn2_step_s']:.0f}x cheaper per fine frame than a GFN2-xTB step "
            f"({f['gfn2_step_s'] * 1e3:.1f} ms, timed right after) |")


def report(r, args):
    tf = r["tensorflow_import_s"]
    up = r["upsample_file"]
    gfn2_total = r["gfn2_s_per_ps"] * r["rollout_ps"]
    from trajsr.card import command_line
    command = command_line("bench/speed.py")
    lines = ["# Speed (bench/speed.py)", "", f"Command: `{command}`. {args.frames:,} fine frames for upsampling, "
             f"{r['rollout_ps']:g} ps rollouts; {os.cpu_count()}-core machine; every start-up figure from a fresh "
             f"process; each steady ratio to GFN2-xTB the median of {r['rounds']} rounds of its two sides "
             "timed in turns (their range in brackets).", "",
             "| what | seconds | ratio |", "|---|---|---|",
             f"| bare `import tensorflow` | {tf:.2f} | 1.0x |",
             f"| `trajsr --help` | {r['trajsr_help_s']:.2f} | {r['trajsr_help_s'] / tf:.2f}x of the TF import |"]
    for name, s in r["load_s"].items():
        lines.append(f"| import + load `{name}` | {s:.2f} | {s / tf:.2f}x of the TF import |")
    lines += [f"| `trajsr upsample` 5,001 frames, f10 model, end to end | {r['first_upsample_s']:.2f} | "
              f"{r['first_upsample_s'] / tf:.2f}x of the TF import |",
              f"| `trajsr propagate --steps 2` end to end | {r['propagate_2_steps_s']:.2f} | "
              f"{r['propagate_2_steps_s'] / tf:.2f}x of the TF import |"]
    for name, u in up.items():
        lines.append(f"| `trajsr upsample` {args.frames:,} frames, {name} (peak {u['peak_mb']:.0f} MB) | "
                     f"{u['seconds']:.1f} | {u['seconds'] / up['spline']['seconds']:.1f}x of the spline |")
    for name, fps in r["steady_fine_frames_per_s"].items():
        lines.append(f"| steady upsampling, {name} (fine frames/s, in memory) | {fps:,.0f} /s | |")
    prop_total = r["propagate_end_to_end_s"]
    lines += [f"| GFN2-xTB velocity Verlet 0.5 fs (s per simulated ps) | {r['gfn2_s_per_ps']:.2f} | 1x |",
              f"| learned propagator, steady (s per ps) | {r['propagator_steady_s_per_ps']:.3f} | "
              f"{median_rounds(r['propagator_speedup_rounds'])} faster |",
              f"| `trajsr propagate` {r['rollout_ps']:g} ps end to end, first run (compiles) | {prop_total:.1f} | "
              f"{gfn2_total / prop_total:.0f}x faster than GFN2-xTB's {gfn2_total:.0f} s |",
              f"| the same command again (the compiled program kept) | {r['propagate_again_end_to_end_s']:.1f} | "
              f"{gfn2_total / r['propagate_again_end_to_end_s']:.0f}x faster than GFN2-xTB's {gfn2_total:.0f} s |",
              *[f"| `trajsr propagate --temperature 500 --thermostat {kind}` {r['rollout_ps']:g} ps end to end | "
                f"{s:.1f} | {gfn2_total / s:.0f}x faster than GFN2-xTB's {gfn2_total:.0f} s |"
                for kind, s in r["propagate_nvt_end_to_end_s"].items()],
              f"| `trajsr propagate --temperature 500 --fill` {r['rollout_ps']:g} ps end to end (0.5 fs frames) | "
              f"{r['propagate_filled_end_to_end_s']:.1f} | {gfn2_total / r['propagate_filled_end_to_end_s']:.0f}x "
              f"faster than GFN2-xTB's {gfn2_total:.0f} s |",
              *[f"| shooting with `{name}`, factor 10, {mode} (fine frames/s, in memory) | {fps[key]:,.0f} /s | "
                f"{median_rounds(fps['cheaper_rounds'][key])} cheaper per "
                f"fine frame than a GFN2-xTB step of the same molecule ({fps['gfn2_step_s'] * 1e3:.1f} ms) |"
                for name, fps in r["shooting_fine_frames_per_s"].items()
                for mode, key in (("positions only", "positions"), ("with the file's velocities", "velocities"))],
              *([] if "shooting_file" not in r else [shooting_file_row(r["shooting_file"])]),
              f"| `LearnedDynamics`, observer every step (s per step) | {r['ase_s_per_step_interval1'] * 1e3:.2f} ms | |",
              f"| `LearnedDynamics`, observer every 100 steps (s per step) | "
              f"{r['ase_s_per_step_interval100'] * 1e3:.2f} ms | |", ""]
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "speed.md").write_text(text + "\n")
    (RESULTS / "speed.json").write_text(json.dumps(r, indent=1) + "\n")


if __name__ == "__main__":
    main()
