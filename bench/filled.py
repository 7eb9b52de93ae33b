"""A fine trajectory at surrogate speed: the propagator's NVT runs at its stride, each stride filled by the
same learned dynamics (``trajsr propagate --fill``), judged on its spectrum up to 4000 cm⁻¹ against fine
GFN2-xTB NVT.

    python bench/make_data.py 'ethanol-nvt-fine/*'      # 32 Bussi NVT runs at 500 K, 25 ps, every 0.5 fs
    python bench/filled.py --model models/ethanol-gfn2-prop-f10.keras
    python bench/make_data.py 'ethanol-nvt-langevin/*'  # 8 Langevin runs (friction 2/ps), the same otherwise
    python bench/filled.py --thermostat langevin --tau-fs 500 --replicas 16 \
        --reference 'data/ethanol-nvt-langevin/t500/*.h5'

The propagator runs ``--replicas`` times from each reference start, as the reference was made: 1 ps of
Langevin (friction 0.01/fs) in its own dynamics first (a GFN2-xTB state is not equilibrated in the
learned potential), then the reference's thermostat at the same temperature and time constant (Bussi on
the vibrations, the rotation stopped first; or Langevin), as long as the reference. Its stride-sampled
spectrum (what ``propagate`` without ``--fill`` gives) is shown for contrast: nothing above the stride's
Nyquist limit.

Under Bussi's global thermostat a run keeps for many ps the share of energy each mode had at its start,
so a spectrum pooled over a few runs moves by chance between sets of runs (bench/spectral_sampling.py). The
floor is therefore a distribution, the reference's halves against each other over ``--draws`` random
splits; the propagator is judged on the same footing (as many of its runs against a random half of the
reference, as many draws), and all its runs against all the reference's, with the bootstrap interval of
each band. Langevin's friction on every atom reshuffles that share within a ps or two, so its runs
scatter less: the same spectra from fewer runs. Writes bench/results/filled-MODEL[-langevin].{md,json}.
"""
import argparse
import glob
import json
import time
from pathlib import Path

import numpy as np

from trajsr import ShootingInterpolator, load
from trajsr.card import command_line
from trajsr.observables import kinetic_temperature
from trajsr.physics import rigid_body_split
from trajsr.propagation.propagator import Propagator
from trajsr.report import table

from spectral_sampling import (band_shares, bootstrap, cell, floor_draws, model_draws, per_run, pooled,  # bench/
                               spread, summarize)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


#: the X-H bends' region (cm⁻¹), whose centroid shows a shift of the bends between two spectra
BENDS = (1300.0, 1700.0)


def centroid(spec, low, high) -> float:
    """Intensity-weighted mean wavenumber (cm⁻¹) of ``spec`` between ``low`` and ``high``."""
    inside = (spec.wavenumber >= low) & (spec.wavenumber <= high)
    return float(np.average(spec.wavenumber[inside], weights=spec.intensity[inside]))


def propagate(prop, refs, replicas, thermostat, temperature, tau_fs, equilibration_fs, strides):
    """``replicas`` runs of the propagator from each reference start, made as the reference was (Langevin,
    then Bussi on the vibrations with the rotation stopped, or Langevin with friction 1/``tau_fs``)."""
    x0 = np.concatenate([np.stack([r.positions[0] for r in refs])] * replicas)
    v0 = np.concatenate([np.stack([r.velocities[0] for r in refs])] * replicas)
    n_eq = int(round(equilibration_fs / prop.stride_fs))
    if n_eq:
        eq = prop.run(x0, v0, n_eq, thermostat="langevin", temperature_K=temperature, friction_per_fs=0.01, seed=1)
        x0, v0 = np.stack([r.positions[-1] for r in eq]), np.stack([r.velocities[-1] for r in eq])
    if thermostat == "bussi":  # the reference's recipe stops the rotation before Bussi, which keeps it
        v0 = rigid_body_split(x0, v0, prop.masses)[0]
    runs = prop.run(x0, v0, strides, thermostat=thermostat, temperature_K=temperature, thermostat_time_fs=tau_fs,
                    friction_per_fs=1.0 / tau_fs, seed=0)
    stopped = [r.info["guard"] for r in runs if "guard" in r.info]
    if stopped:
        raise SystemExit(f"the propagator's guard stopped a run: {stopped[0]}")
    return runs


def ratio_of_means(mine, theirs):
    """mean(mine) / mean(theirs) and its standard error, from each side's spread over its runs."""
    mine, theirs = np.asarray(mine), np.asarray(theirs)
    ratio = mine.mean() / theirs.mean()
    error = ratio * np.hypot(mine.std(ddof=1) / np.sqrt(len(mine)) / mine.mean(),
                             theirs.std(ddof=1) / np.sqrt(len(theirs)) / theirs.mean())
    return float(ratio), float(error)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(ROOT / "models" / "ethanol-gfn2-prop-f10.keras"))
    p.add_argument("--reference", default=str(ROOT / "data" / "ethanol-nvt-fine" / "t500" / "*.h5"),
                   help="fine GFN2-xTB NVT runs (glob)")
    p.add_argument("--temperature", type=float, default=500.0, help="the references' thermostat target (K)")
    p.add_argument("--thermostat", choices=("bussi", "langevin"), default="bussi", help="the references' thermostat")
    p.add_argument("--tau-fs", type=float, default=100.0,
                   help="the references' Bussi time constant, or 1/friction for Langevin (fs)")
    p.add_argument("--equilibration-fs", type=float, default=1000.0, help="Langevin in the propagator first (fs)")
    p.add_argument("--replicas", type=int, default=4, help="propagator runs from each reference start")
    p.add_argument("--draws", type=int, default=400, help="random sets of runs each distribution is drawn from")
    args = p.parse_args()
    files = sorted(glob.glob(args.reference))
    if len(files) < 4:
        raise SystemExit(f"need at least 4 reference runs in {args.reference}; python bench/make_data.py "
                         "'ethanol-nvt-fine/*' makes them")
    if args.replicas < 1 or args.draws < 1:
        raise SystemExit(f"--replicas and --draws must be at least 1, got {args.replicas} and {args.draws}")
    if not (args.temperature > 0 and args.tau_fs > 0 and args.equilibration_fs >= 0):
        raise SystemExit(f"--temperature (K) and --tau-fs (fs) must be positive and --equilibration-fs (fs) at least "
                         f"0, got {args.temperature:g}, {args.tau_fs:g} and {args.equilibration_fs:g}")
    refs = [load(f) for f in files]
    n = min(r.n_frames for r in refs)
    refs = [r[:n] for r in refs]
    prop = Propagator.load(args.model)
    strides = int(round((n - 1) * refs[0].dt * 1000 / prop.stride_fs))
    start = time.perf_counter()
    runs = propagate(prop, refs, args.replicas, args.thermostat, args.temperature, args.tau_fs, args.equilibration_fs,
                     strides)
    run_seconds = time.perf_counter() - start
    filler, fine, kelvin, fill_seconds, fine_frames = ShootingInterpolator(prop.layer), [], [], 0.0, 0
    for run in runs:  # one filled run at a time: 128 of them at 0.5 fs would hold ~3 GB
        start = time.perf_counter()
        filled = filler.interpolate(run, prop.factor)
        fill_seconds += time.perf_counter() - start
        fine_frames += filled.n_frames
        fine += per_run([filled])
        kelvin.append(kinetic_temperature(filled, "velocities")["vibrational_temperature_K"])
    reference = per_run(refs)
    stride_model, stride_reference = per_run(runs), per_run([r[::prop.factor] for r in refs])
    rng = np.random.default_rng(0)
    floor = summarize(floor_draws(reference, args.draws, rng))
    model = summarize(model_draws(fine, reference, args.draws, rng))
    at_stride = summarize(model_draws(stride_model, stride_reference, args.draws, rng))
    everything = summarize(bootstrap(fine, reference, args.draws, rng))
    shift = centroid(pooled(fine), *BENDS) - centroid(pooled(reference), *BENDS)
    shares = band_shares(pooled(reference))
    run_shares = {"reference": [band_shares(s) for s in reference], "filled": [band_shares(s) for s in fine]}
    mean_share_ratio = {b: ratio_of_means([r[b] for r in run_shares["filled"]], [r[b] for r in run_shares["reference"]])
                        for b in run_shares["reference"][0]}
    ref_kelvin = [kinetic_temperature(r, "velocities")["vibrational_temperature_K"] for r in refs]
    result = dict(
        command=command_line("bench/filled.py"), model=Path(args.model).name,
        reference_runs=[Path(f).name for f in files],
        reference_ps_per_run=float(refs[0].time[-1] - refs[0].time[0]), replicas=args.replicas, draws=args.draws,
        reference_vibrational_temperature_K=float(np.mean(ref_kelvin)),
        filled_vibrational_temperature_K=float(np.mean(kelvin)), floor=floor, filled=model, at_stride=at_stride,
        all_runs=everything, bend_centroid_shift_cm1=shift, reference_share=shares, run_shares=run_shares,
        mean_share_ratio=mean_share_ratio,
        overlap_below_floor=floor["overlap"]["median"] - model["overlap"]["median"],
        propagate_seconds=run_seconds, fill_seconds=fill_seconds, fine_frames=fine_frames)
    report(result, prop, len(refs), len(runs), args)


def report(result, prop, n_refs, n_runs, args):
    """bench/results/filled-MODEL.{md,json}, and the same text on stdout."""
    floor, model, at_stride, everything = (result[k] for k in ("floor", "filled", "at_stride", "all_runs"))
    names = list(floor["bands"])
    k = n_refs // 2
    rows = [[f"GFN2-xTB: {k} runs against the other {k} (floor)", cell(floor["overlap"], 3),
             *[cell(floor["bands"][b]) for b in names]],
            [f"propagated + filled ({prop.dt_fs:g} fs): {k} runs against {k} of GFN2-xTB", cell(model["overlap"], 3),
             *[cell(model["bands"][b]) for b in names]],
            [f"propagated, at its {prop.stride_fs:g} fs stride (to its Nyquist limit)", cell(at_stride["overlap"], 3),
             *[cell(at_stride["bands"][b]) if b in at_stride["bands"] else "-" for b in names]],
            [f"propagated + filled: all {n_runs} runs against all {n_refs} (bootstrap)", cell(everything["overlap"], 3),
             *[cell(everything["bands"][b]) for b in names]]]
    shares = ", ".join(f"{b} {share:.1%}" for b, share in result["reference_share"].items())
    per_run_rows = [[b, *[cell({k: 100 * v for k, v in spread([r[b] for r in result["run_shares"][side]]).items()}, 1)
                          for side in ("reference", "filled")],
                     "{:.2f} ± {:.2f}".format(*result["mean_share_ratio"][b])] for b in names]
    bussi = args.thermostat == "bussi"
    kind = "Bussi" if bussi else f"Langevin (friction {1000 / args.tau_fs:g}/ps)"
    stopped = " and with the rotation stopped" if bussi else ""
    chance = ("A global thermostat leaves each run the share of energy its modes started with for many ps, so a "
              f"spectrum pooled over {k} runs moves by chance from one set of runs to another." if bussi else
              "Langevin's friction on every atom reshuffles the modes' energy within a ps or two, so runs scatter "
              f"less than under a global thermostat; still, a spectrum pooled over {k} runs moves by chance from "
              "one set of runs to another.")
    lines = [f"# Propagated and filled: `{result['model']}`, {kind} NVT {args.temperature:g} K", "",
             f"Command: `{result['command']}`. {n_refs} GFN2-xTB {kind} runs of {result['reference_ps_per_run']:g} ps "
             f"at 0.5 fs (vibrational temperature {result['reference_vibrational_temperature_K']:.0f} K measured); "
             f"the propagator's {n_runs} runs ({args.replicas} from each reference start, each after "
             f"{args.equilibration_fs:g} fs of Langevin in its own dynamics{stopped}, as the "
             f"reference's recipe), as long, filled to {prop.dt_fs:g} fs by the same dynamics (vibrational "
             f"temperature {result['filled_vibrational_temperature_K']:.0f} K). Pooled VDOS (from velocities), "
             "300-4000 cm⁻¹: overlap and each band's intensity relative to the reference's.", "",
             f"{chance} Each cell is the "
             f"median [5th-95th percentile] over {args.draws} random draws: the reference split into two random "
             f"halves (its floor), {k} of the propagator's runs against a random half of the reference (the same "
             "sizes, so the same chance), and all runs of both sides resampled with replacement.", "",
             table(["spectrum", "overlap", *[f"{b} band" for b in names]], rows), "",
             f"The propagator's median overlap lies {abs(result['overlap_below_floor']):.3f} "
             f"{'below' if result['overlap_below_floor'] >= 0 else 'above'} the floor's median. "
             f"The reference's share of its spectrum in each band: {shares}. The centroid of the filled runs' "
             f"spectrum over {BENDS[0]:g}-{BENDS[1]:g} cm⁻¹ (the X-H bends) lies "
             f"{result['bend_centroid_shift_cm1']:+.1f} cm⁻¹ from the reference's (all runs).", "",
             "Each run's own share of its spectrum (%) in each band, median [5th-95th percentile] over the runs "
             "(how far one run's modes stay from the ensemble's sharing), and the propagator's mean share over the "
             "reference's ± one standard error (from both sides' run-to-run spread):", "",
             table(["band", f"GFN2-xTB ({n_refs} runs)", f"propagated + filled ({n_runs} runs)", "ratio of the means"],
                   per_run_rows), "",
             f"The propagator's {n_runs} runs took {result['propagate_seconds']:.0f} s and filling them "
             f"{result['fill_seconds']:.0f} s ({result['fine_frames'] / result['fill_seconds']:,.0f} fine frames/s) on "
             "this machine."]
    text = "\n".join(lines)
    print(text)
    name = f"filled-{Path(args.model).stem}" + ("" if bussi else f"-{args.thermostat}")
    (RESULTS / f"{name}.md").write_text(text + "\n")
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
