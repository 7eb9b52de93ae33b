"""A learned propagator's physics against GFN2-xTB: spectrum, temperatures, structure, drift, 1 ns.

    python bench/propagator.py --model models/ethanol-gfn2-prop-f10.keras
    python bench/propagator.py --train hnn --factor 20 --initial models/ethanol-gfn2-prop-f10.keras \
        --force-matching-minutes 0 --ship ethanol-gfn2-prop-f20

Optionally trains a propagator first (``--train FAMILY``, on --train-files, validation --valid-files).
Then, in this one process:

* **NVT** at each --temperatures T: the reference is GFN2-xTB with the Bussi thermostat on the
  vibrations (tau 100 fs, rotation stopped: :mod:`trajsr.datasets.vibrational_bussi`), several
  independent runs in ``--nvt DIR/t{T}*/`` (made by ``trajsr datasets make ethanol-gfn2 --thermostat
  bussi --save-every 10 --steps 50000 --temperature T`` with 16 seeds; default DIR data/ethanol-nvt-vib).
  Its floor is the VDOS overlap of one half of the runs with the other. The propagator runs from the same
  starts, after the reference recipe's 1 ps of Langevin (--equilibration-fs) in its own dynamics, with the
  same thermostat and length; its overlap is that of its half against the reference's other half (same
  length as the floor's). Also: vibrational temperature by element, bond-length and angle
  Wasserstein-1 distance, and the mean vibrational temperature under Bussi and Langevin.
* **NVE** from the --starts (frame 0 of trajectories training never saw, 300/500/700 K): --rollout-ps
  each; per start: survival (guard), energy drift (GFN2-xTB energies of every --energy-every-th
  predicted frame), temperature by element and bonds/angles against that start's GFN2-xTB velocity
  Verlet run; and the ensemble's VDOS overlap (first as many frames as the reference has) with its floor.
* **Wall-clock** from the command's start: ``trajsr propagate`` as a user runs it, against GFN2-xTB
  velocity Verlet (0.5 fs) for the same simulated time.

Writes bench/results/propagator-f{F}.{md,json,png}; --ship copies the model to models/ with a card.
``--parts nve nvt`` judges the physics only (its figures do not depend on the machine's load) and keeps
the last timing; ``--parts timing`` re-times on a quiet machine and keeps the physics.
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from trajsr import Propagator, fit_propagator, load
from trajsr.card import command_line, update_card
from trajsr.datasets.xtb import gfn2_calculator
from trajsr.interpolation.card import shipped_check
from trajsr.observables import (compare_sampling, energy_drift, hydrogen_hops_per_ps,
                                temperature_by_element_error_bars, total_energies, vdos_overlap)
from trajsr.physics import vibrational_temperature
from trajsr.plots import plot_propagator

from propagator_report import RESULTS, write  # bench/ beside this script

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
STARTS = [f"{DATA}/ethanol/ethanol-gfn2-seed{s}.h5" for s in (101, 102, 103)] + \
         [f"{DATA}/ethanol-test/{d}/*.h5" for d in ("t300", "t500", "t700")]
TRAIN = [f"{DATA}/ethanol/ethanol-gfn2-seed{s}.h5" for s in range(1, 9)] + \
        [f"{DATA}/ethanol-valid/{d}/*.h5" for d in ("t300", "t300b", "t700")]
VALID = [f"{DATA}/ethanol/ethanol-gfn2-seed16.h5", f"{DATA}/ethanol-valid/t500/*.h5", f"{DATA}/ethanol-valid/t700b/*.h5"]


#: what each part of the bench writes into the results
PARTS = {"nve": ["nve"], "nvt": ["nvt"], "timing": ["gfn2_seconds_per_ps", "wall_clock_100ps"]}


def files(patterns):
    return sorted({f for p in patterns for f in glob.glob(p)})


def summary(values):
    """Median and worst (largest) of per-start figures."""
    v = np.asarray([x for x in values if x == x], float)
    return dict(median=float(np.median(v)), worst=float(v.max())) if len(v) else {}


GFN2_TIMING = """
import sys, time
import numpy as np
from ase import Atoms, units
from ase.md.verlet import VelocityVerlet
from trajsr import load
from trajsr.datasets.xtb import gfn2_calculator
from trajsr.units import ANGSTROM_PER_NM, NM_PER_PS_PER_ANGSTROM_PER_FS
start = load(sys.argv[1])
atoms = Atoms(start.elements, positions=start.positions[0] * ANGSTROM_PER_NM)
atoms.set_velocities(start.velocities[0] / NM_PER_PS_PER_ANGSTROM_PER_FS / units.fs)
atoms.calc = gfn2_calculator()
dyn = VelocityVerlet(atoms, 0.5 * units.fs)
dyn.run(20)
t0 = time.perf_counter()
dyn.run(int(sys.argv[2]))
print((time.perf_counter() - t0) / (int(sys.argv[2]) * 0.5e-3))
"""


def gfn2_seconds_per_ps(start_file, steps=2000):
    """Wall-clock of GFN2-xTB velocity Verlet (0.5 fs, ASE + tblite) per simulated ps from frame 0 of
    ``start_file``, at its best on this machine: a fresh process (no TensorFlow threads beside it), timed
    with one OpenMP thread and with one per core, the faster kept."""
    timings = []
    for threads in sorted({1, os.cpu_count() or 1}):
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
        out = subprocess.run([sys.executable, "-c", GFN2_TIMING, start_file, str(steps)], env=env, check=True,
                             capture_output=True, text=True).stdout
        timings.append(float(out.split()[-1]))
    return min(timings)


def at_stride(traj, stride_fs):
    """``traj`` sampled at the propagator's stride (a multiple of its frame spacing)."""
    k = int(round(stride_fs / (traj.dt * 1000)))
    if k < 1 or abs(k * traj.dt * 1000 - stride_fs) > 1e-6:
        raise SystemExit(f"{traj.source}: frames every {traj.dt * 1000:g} fs cannot be sampled at {stride_fs:g} fs")
    return traj[::k]


def judge_nvt(prop, temperature_k, folder, tau_fs, seed, every_fs, equilibration_fs, sampling=1):
    """Bussi NVT: floor and propagator figures against the GFN2-xTB runs in ``folder/t{T}*``. Like the
    reference recipe, the propagator's production runs follow ``equilibration_fs`` of Langevin (friction
    0.01/fs) in its own dynamics from the reference's starts: a GFN2-xTB state is not an equilibrated state
    of the learned potential, and a global thermostat leaves the excess where it lands for many ps.

    The propagator's runs are ``sampling`` times the reference's length: its VDOS overlap takes their first
    reference-length part (same length as the floor's); temperatures and bond/angle distributions take
    all of it, so that its own sampling noise (cheap to remove) does not add to the reference's. Each
    element's temperature carries a standard error from the spread between independent runs."""
    refs = [at_stride(load(f), prop.stride_fs) for f in files([f"{folder}/t{temperature_k:g}*/*.h5"])]
    if len(refs) < 2:
        print(f"  no NVT reference at {temperature_k:g} K in {folder}; skipped", flush=True)
        return None
    half = len(refs) // 2
    n = min(r.n_frames for r in refs) - 1
    refs = [r[: n + 1] for r in refs]
    x0 = np.stack([r.positions[0] for r in refs])
    v0 = np.stack([r.velocities[0] for r in refs])
    out = {"reference_runs": [os.path.relpath(r.source, ROOT) for r in refs],
           "reference_ps_per_run": float(refs[0].time[-1])}
    start = time.perf_counter()
    every = max(1, round(every_fs / prop.stride_fs))
    n_eq = int(round(equilibration_fs / prop.stride_fs))
    if n_eq:
        eq = prop.run(x0, v0, n_eq, thermostat="langevin", temperature_K=temperature_k, friction_per_fs=0.01,
                      seed=seed + 1000, thermostat_every=every)
        x0, v0 = np.stack([r.positions[-1] for r in eq]), np.stack([r.velocities[-1] for r in eq])
    out["equilibration_fs"] = n_eq * prop.stride_fs
    runs = {kind: prop.run(x0, v0, n * sampling, thermostat=kind, temperature_K=temperature_k, thermostat_time_fs=tau_fs,
                           friction_per_fs=0.01, seed=seed, thermostat_every=every)
            for kind in ("bussi", "langevin")}
    out["seconds"] = time.perf_counter() - start
    bussi = runs["bussi"]
    out["survived"] = all("guard" not in r.info and r.n_frames == n * sampling + 1 for rs in runs.values() for r in rs)
    out["model_ps_per_run"] = float(bussi[0].time[-1])
    out["floor"] = vdos_overlap(refs[:half], refs[half:])
    out["reference_halves"] = compare_sampling(refs[:half], refs[half:])  # how far the reference is from itself
    same = [r[: n + 1] for r in bussi]
    out["model_overlap"] = float(np.mean([vdos_overlap(same[:half], refs[half:]),
                                          vdos_overlap(same[half:], refs[:half])]))
    out.update({k: v for k, v in compare_sampling(refs, bussi).items() if k != "vdos_overlap"})
    out.update(temperature_error_bars(out, refs, bussi, temperature_k))
    out["hydrogen_hops_per_ps"], out["reference_hydrogen_hops_per_ps"] = (hydrogen_hops_per_ps(bussi),
                                                                          hydrogen_hops_per_ps(refs))
    vib_t = lambda r: vibrational_temperature(r.positions, r.velocities, r.masses)  # noqa: E731  rotation aside
    out["mean_temperature"] = {kind: float(np.mean([vib_t(r).mean() for r in rs])) for kind, rs in runs.items()}
    out["reference_mean_temperature"] = float(np.mean([vib_t(r).mean() for r in refs]))
    out["traces"] = (same[0].time, vib_t(same[0]), refs[0].time, vib_t(refs[0]))
    out["spectra"] = (refs, same)
    return out


def temperature_error_bars(out, refs, runs, temperature_k):
    """Standard errors of the worst element's relative T difference (model against reference) and of the
    reference's own largest departure from equipartition (every element at ``temperature_k``)."""
    mine, theirs = out["temperature_by_element"], out["reference_temperature_by_element"]
    se_mine, se_theirs = temperature_by_element_error_bars(runs), temperature_by_element_error_bars(refs)
    worst = max(theirs, key=lambda e: abs(mine[e] / theirs[e] - 1))
    ref_worst = max(theirs, key=lambda e: abs(theirs[e] / temperature_k - 1))
    return dict(temperature_by_element_standard_error=se_mine, reference_temperature_by_element_standard_error=se_theirs,
                temperature_by_element_worst=worst,
                temperature_by_element_error_standard_error=float(
                    mine[worst] / theirs[worst] * np.hypot(se_mine[worst] / mine[worst], se_theirs[worst] / theirs[worst])),
                reference_equipartition_error=float(abs(theirs[ref_worst] / temperature_k - 1)),
                reference_equipartition_worst=ref_worst,
                reference_equipartition_standard_error=float(se_theirs[ref_worst] / temperature_k))


def judge_nve(prop, starts, rollout_ps, energy_every, calc):
    """NVE rollouts of ``rollout_ps`` from frame 0 of each start; per-start and ensemble figures."""
    n_steps = int(round(rollout_ps * 1000 / prop.stride_fs))
    per, rollouts, refs = [], [], []
    # all starts as replicas of one batched rollout; the guard stops a batch at its first failing replica,
    # so then each start runs alone and fails only itself
    t0 = time.perf_counter()
    x0, v0 = np.stack([s.positions[0] for s in starts]), np.stack([s.velocities[0] for s in starts])
    trajs = prop.run(x0, v0, n_steps)
    seconds = (time.perf_counter() - t0) / len(starts)
    if any("guard" in t.info for t in trajs):
        trajs, seconds = [prop.run(s.positions[0], s.velocities[0], n_steps) for s in starts], None
    for test, traj in zip(starts, trajs):
        t, e = total_energies(traj, calc, energy_every)
        ref = at_stride(test, prop.stride_fs)
        fig = compare_sampling(ref, traj)
        fig.pop("vdos_overlap")
        per.append(dict(start=os.path.relpath(test.source, ROOT), temperature_K=test.info.get("temperature_K"),
                        survived_ps=float(traj.time[-1]), failure=traj.info.get("guard"),
                        seconds_per_start_batched=seconds, drift_mev_atom_ps=energy_drift(t, e, traj.n_atoms), **fig))
        print("  NVE", Path(test.source).name, {k: v for k, v in per[-1].items() if k != "start"}, flush=True)
        rollouts.append(traj[: ref.n_frames])
        refs.append(ref)
    half = len(refs) // 2
    ensemble = dict(floor=vdos_overlap(refs[:half], refs[half:]),
                    model_overlap=float(np.mean([vdos_overlap(rollouts[:half], refs[half:]),
                                                 vdos_overlap(rollouts[half:], refs[:half])])))
    return per, ensemble


def wall_clock(model, start_file, rollout_ps, stride_fs):
    """Seconds of ``trajsr propagate`` from the command's start (Python, TensorFlow, model, writing)."""
    steps = int(round(rollout_ps * 1000 / stride_fs))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        subprocess.run(["trajsr", "propagate", "--model", str(model), "--start", start_file, "--steps", str(steps),
                        "-o", f"{tmp}/out.h5"], check=True, capture_output=True)
        return time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="judge this propagator (default: the one --train makes)")
    p.add_argument("--train", metavar="FAMILY", help="train a propagator of this family first (hnn, ode, lstm)")
    p.add_argument("--factor", type=int, default=10)
    p.add_argument("--substeps", type=int, default=10)
    p.add_argument("--minutes", type=float, default=10.0, help="rollout training after force matching")
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--learning-rate", type=float, default=1e-4)
    p.add_argument("--window-step", type=int, default=10)
    p.add_argument("--force-matching-minutes", type=float, default=12.0)
    p.add_argument("--initial", help="start the training from this propagator (e.g. the f10 one for f20)")
    p.add_argument("--train-files", nargs="+", default=TRAIN)
    p.add_argument("--valid-files", nargs="+", default=VALID)
    p.add_argument("--starts", nargs="+", default=STARTS, help="held-out NVE trajectories (frame 0 is the start)")
    p.add_argument("--nvt", default=str(DATA / "ethanol-nvt-vib"), help="folder with t{T}*/ Bussi NVT references")
    p.add_argument("--temperatures", type=float, nargs="+", default=[300.0, 500.0, 700.0])
    p.add_argument("--tau-fs", type=float, default=100.0)
    p.add_argument("--thermostat-every-fs", type=float, default=20.0,
                   help="thermostat updates this far apart (fs, rounded to whole strides)")
    p.add_argument("--equilibration-fs", type=float, default=1000.0,
                   help="NVT: Langevin in the propagator before its production runs, as the reference had (fs)")
    p.add_argument("--sampling", type=int, default=4,
                   help="NVT: the propagator's runs are this many times the reference's length (its overlap "
                        "takes their first reference-length part; temperatures and distributions all of it)")
    p.add_argument("--rollout-ps", type=float, default=1000.0)
    p.add_argument("--energy-every", type=int, default=1000)
    p.add_argument("--parts", nargs="+", choices=list(PARTS), default=list(PARTS),
                   help="judge only these; the others are kept from the last results of this model")
    p.add_argument("--ship", metavar="NAME", help="copy the model to models/NAME.keras with a card")
    p.add_argument("--dataset", default="ethanol-gfn2")
    args = p.parse_args()
    name = f"propagator-f{args.factor}" if args.dataset == "ethanol-gfn2" else f"propagator-{args.dataset}-f{args.factor}"
    if args.sampling < 1:
        raise SystemExit(f"--sampling must be a whole number ≥ 1, got {args.sampling}")
    if set(args.parts) != set(PARTS) and not (RESULTS / f"{name}.json").exists():
        raise SystemExit(f"--parts {' '.join(args.parts)}: no bench/results/{name}.json to keep the other "
                         "parts from; run all parts")
    command_start = time.time()
    RESULTS.mkdir(parents=True, exist_ok=True)
    model, minutes = Path(args.model) if args.model else None, None
    if args.train:
        model = model or RESULTS / "propagator" / f"{args.train}-f{args.factor}.keras"
        model.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        fit_propagator(files(args.train_files), validation=files(args.valid_files), architecture=args.train,
                       factor=args.factor, strides=4, substeps=args.substeps, width=args.width, epochs=1000,
                       window_step=args.window_step, max_minutes=args.minutes, output=model, force=True,
                       learning_rate=args.learning_rate, force_matching_minutes=args.force_matching_minutes,
                       initial=args.initial,
                       work_dir=Path(tempfile.gettempdir()) / f"bench-prop-{args.train}-f{args.factor}", verbose=2)
        minutes = (time.time() - t0) / 60
    elif args.model:
        record = Propagator.load(model).layer.metadata.get("training", {})  # rollout fit + force matching
        minutes = record.get("seconds", 0) / 60 + record.get("force_matching", {}).get("minutes", 0) or None
    if model is None:
        raise SystemExit("give --model PATH or --train FAMILY")
    prop = Propagator.load(model)
    starts = [load(f) for f in files(args.starts)]
    label = args.ship or Path(model).stem  # the shipped name, not a scratch file's
    command = command_line("bench/propagator.py")
    results = dict(model=str(model), label=label, family=prop.family, stride_fs=prop.stride_fs,
                   training_minutes=minutes, nvt={}, thermostat_every_fs=args.thermostat_every_fs,
                   equilibration_fs=args.equilibration_fs, sampling=args.sampling, command=command,
                   part_commands={})
    if set(args.parts) != set(PARTS):  # the other parts' figures stay those of the last run that made them
        previous = json.loads((RESULTS / f"{name}.json").read_text())
        if Path(previous["model"]).name != Path(model).name:
            raise SystemExit(f"{name}.json judged {previous['model']}, not {model}: run all parts")
        results.update({k: previous[k] for part in PARTS if part not in args.parts for k in PARTS[part]})
        results["part_commands"] = {p: previous.get("part_commands", {}).get(p, previous["command"])
                                    for p in PARTS if p not in args.parts}
        if "nvt" not in args.parts:  # the kept NVT figures were made with these settings
            results.update({k: previous.get(k) for k in ("thermostat_every_fs", "equilibration_fs", "sampling")})
    results["part_commands"].update({p: command for p in args.parts})
    plots = {}
    if "nve" in args.parts:
        per, ensemble = judge_nve(prop, starts, args.rollout_ps, args.energy_every, gfn2_calculator())
        results["nve"] = dict(per_start=per, ensemble=ensemble, rollout_ps=args.rollout_ps,
                              all_survived=all(r["failure"] is None for r in per),
                              **{k: summary([r[k] for r in per]) for k in ("drift_mev_atom_ps", "bond_w1_angstrom",
                                                                            "bond_w1_by_element_angstrom", "angle_w1_degrees",
                                                                            "temperature_by_element_error")})
        results["nve"]["abs_drift_mev_atom_ps"] = summary([abs(r["drift_mev_atom_ps"]) for r in per])
    for k, temp in enumerate(args.temperatures if "nvt" in args.parts else []):
        out = judge_nvt(prop, temp, args.nvt, args.tau_fs, seed=k, every_fs=args.thermostat_every_fs,
                        equilibration_fs=args.equilibration_fs, sampling=args.sampling)
        if out is None:
            continue
        traces, spectra = out.pop("traces"), out.pop("spectra")
        if not plots or temp == 500.0:
            plots = dict(temp=temp, traces=traces, spectra=spectra)
        results["nvt"][f"{temp:g}"] = out
        print(f"NVT {temp:g} K:", out, flush=True)
    if "timing" in args.parts:  # run it on a quiet machine: both sides are wall-clock
        gfn2 = gfn2_seconds_per_ps(files(args.starts)[0])
        print(f"GFN2-xTB velocity Verlet: {gfn2:.1f} s per simulated ps", flush=True)
        results["gfn2_seconds_per_ps"] = gfn2
        seconds = wall_clock(model, files(args.starts)[0], 100.0, prop.stride_fs)
        results["wall_clock_100ps"] = dict(seconds=seconds, gfn2_seconds=gfn2 * 100.0, speedup=gfn2 * 100.0 / seconds)
    if plots:
        refs, bussi = plots["spectra"]
        t_p, k_p, t_r, k_r = plots["traces"]
        plot_propagator({f"GFN2-xTB Bussi NVT {plots['temp']:g} K": refs, f"{prop.family} propagator, same": bussi},
                        {"GFN2-xTB": (t_r, k_r), "propagator": (t_p, k_p)}, RESULTS / f"{name}.png", force=True,
                        title=f"{label}: VDOS and temperature, Bussi NVT {plots['temp']:g} K")
    write(results, name)
    print(f"whole bench: {(time.time() - command_start) / 60:.1f} min")
    if args.ship:
        ship(model, results, args, prop)


def ship(model, results, args, prop):
    target = ROOT / "models" / f"{args.ship}.keras"
    record = prop.layer.metadata.get("training", {})
    if Path(model).resolve() != target.resolve():
        shutil.copy(model, target)
    card_path = ROOT / "models" / f"{args.ship}.json"
    card = dict(name=args.ship, task="propagate", model=results["family"], dataset=args.dataset, factor=args.factor,
                stride_fs=results["stride_fs"], training_minutes=results["training_minutes"],
                train_files=[os.path.basename(f) for f in record.get("files", [])],
                validation_files=[os.path.basename(f) for f in record.get("validation", [])],
                test_files=[os.path.basename(f) for f in files(args.starts)], nvt=results["nvt"], nve=results["nve"],
                wall_clock_100ps=results["wall_clock_100ps"], gfn2_seconds_per_ps=results["gfn2_seconds_per_ps"],
                command=results["command"], part_commands=results["part_commands"])
    if record.get("command"):  # the model file's own record of the command that trained it
        card["training_command"] = record["command"]
    if args.train:  # the same training through the CLI
        card["training_command"] = " ".join(
            ["trajsr train", *map(os.path.relpath, files(args.train_files)), "--validation",
             *map(os.path.relpath, files(args.valid_files)), f"--task propagate --architecture {args.train} --factor",
             f"{args.factor} --strides 4 --substeps {args.substeps} --width {args.width} --force-matching-minutes",
             f"{args.force_matching_minutes:g} --max-minutes {args.minutes:g} --learning-rate {args.learning_rate:g}",
             f"--window-step {args.window_step} --epochs 1000", *(["--initial", args.initial] if args.initial else []),
             f"-o models/{args.ship}.keras"])
    update_card(card_path, card)  # the card's other sections (e.g. its shooting figures) stay
    shipped_check(card_path)  # the figure the tests re-check on a fresh install
    print(f"shipped {target}")


if __name__ == "__main__":
    main()
