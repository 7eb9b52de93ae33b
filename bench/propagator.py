"""Learned propagators (LSTM, ODE, HNN) against GFN2-xTB velocity Verlet on held-out ethanol starts.

    python bench/propagator.py --minutes 5 --rollout-ps 100

Trains each family on ethanol-gfn2 seeds --train-seeds (cached in bench/results/propagator/), then,
in this one process: times GFN2-xTB velocity Verlet at 0.5 fs (wall-clock per simulated ps), and for
each family rolls out --rollout-ps from frame 0 of each --test-seeds trajectory (never seen in training)
and reports wall-clock per ps and the ratio to GFN2-xTB, time to failure (the guard), energy drift in
meV/atom/ps (GFN2-xTB energies of every --energy-every-th predicted frame), VDOS overlap and bond-length
distribution distance against the reference MD (both at the model's stride), and temperature per
element. The most stable family is shipped as models/ethanol-gfn2-prop-f10.keras with a card.
"""
import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from trajsr import Propagator, bond_length_distance, fit_propagator, load, vdos_overlap
from trajsr.datasets.xtb import gfn2_calculator
from trajsr.metrics import energy_drift, temperature_by_element, total_energies
from trajsr.report import table
from trajsr.units import ANGSTROM_PER_NM, NM_PER_PS_PER_ANGSTROM_PER_FS

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SUBSTEPS = {"hnn": 10, "ode": 5, "lstm": 10}


def seeds(text):
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def gfn2_seconds_per_ps(start, steps=1000):
    """Wall-clock of GFN2-xTB velocity Verlet (0.5 fs) per simulated ps, from ``start`` (nm, nm/ps)."""
    from ase import Atoms, units
    from ase.md.verlet import VelocityVerlet
    atoms = Atoms(start.elements, positions=start.positions[0] * ANGSTROM_PER_NM)
    atoms.set_velocities(start.velocities[0] / NM_PER_PS_PER_ANGSTROM_PER_FS / units.fs)
    atoms.calc = gfn2_calculator()
    dyn = VelocityVerlet(atoms, 0.5 * units.fs)
    t0 = time.perf_counter()
    dyn.run(steps)
    return (time.perf_counter() - t0) / (steps * 0.5e-3)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--families", nargs="+", default=["lstm", "ode", "hnn"])
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--factor", type=int, default=10)
    p.add_argument("--rollout-ps", type=float, default=100.0)
    p.add_argument("--energy-every", type=int, default=200)
    p.add_argument("--data", default=str(ROOT / "data" / "ethanol"))
    p.add_argument("--train-seeds", default="1-8")
    p.add_argument("--valid-seeds", default="16")
    p.add_argument("--test-seeds", default="101-103")
    p.add_argument("--fresh", action="store_true")
    args = p.parse_args()
    path = lambda s: Path(args.data) / f"ethanol-gfn2-seed{s}.h5"  # noqa: E731
    cache = RESULTS / "propagator"
    cache.mkdir(parents=True, exist_ok=True)
    models = {}
    for family in args.families:
        models[family] = cache / f"{family}-f{args.factor}.keras"
        if models[family].exists() and not args.fresh:
            continue
        t0 = time.time()
        fit_propagator([path(s) for s in seeds(args.train_seeds)], validation=[path(s) for s in seeds(args.valid_seeds)],
                       model=family, factor=args.factor, strides=4, substeps=SUBSTEPS[family], epochs=500,
                       window_step=2, max_minutes=args.minutes, output=models[family], force=True,
                       work_dir=Path("/tmp") / f"bench-prop-{family}", verbose=2)
        (cache / f"{family}-f{args.factor}.minutes").write_text(f"{(time.time() - t0) / 60:.2f}\n")
    tests = [load(path(s)) for s in seeds(args.test_seeds)]
    gfn2 = gfn2_seconds_per_ps(tests[0])
    print(f"GFN2-xTB velocity Verlet: {gfn2:.1f} s per simulated ps", flush=True)
    n_steps = int(round(args.rollout_ps / (args.factor * tests[0].dt)))
    rows, results = [], {"gfn2_seconds_per_ps": gfn2, "families": {}}
    calc = gfn2_calculator()
    for family, model in models.items():
        prop = Propagator.load(model)
        prop.run(tests[0].positions[0], tests[0].velocities[0], 5)  # trace the graph once
        per = []
        for test in tests:
            t0 = time.perf_counter()
            traj = prop.run(test.positions[0], test.velocities[0], n_steps)
            seconds = time.perf_counter() - t0
            simulated = traj.time[-1]
            t, e = total_energies(traj, calc, args.energy_every)
            drift = energy_drift(t, e, traj.n_atoms)
            ref = test[:: args.factor]
            n = min(ref.n_frames, traj.n_frames)
            per.append(dict(seconds_per_ps=seconds / max(simulated, 1e-9), survived_ps=float(simulated),
                            failure=traj.info.get("guard"), drift_mev_atom_ps=float(drift),
                            vdos_overlap=vdos_overlap(ref[:n], traj[:n]) if n > 50 else float("nan"),
                            bond_distance_angstrom=bond_length_distance(ref[:n], traj[:n]) if n > 2 else float("nan"),
                            temperature_by_element=temperature_by_element(traj),
                            reference_temperature_by_element=temperature_by_element(ref)))
            print(family, test.source, per[-1], flush=True)
        mean = lambda k: float(np.nanmean([r[k] for r in per]))  # noqa: E731
        summary = dict(per_start=per, seconds_per_ps=mean("seconds_per_ps"), speedup=gfn2 / mean("seconds_per_ps"),
                       survived_ps=mean("survived_ps"), all_survived=all(r["failure"] is None for r in per),
                       drift_mev_atom_ps=mean("drift_mev_atom_ps"), vdos_overlap=mean("vdos_overlap"),
                       bond_distance_angstrom=mean("bond_distance_angstrom"))
        results["families"][family] = summary
        temps = per[0]["temperature_by_element"]
        rows.append([family, f"{summary['seconds_per_ps']:.3f}", f"{summary['speedup']:.0f}x",
                     f"{summary['survived_ps']:.1f} / {args.rollout_ps:g}", f"{summary['drift_mev_atom_ps']:.2f}",
                     f"{summary['vdos_overlap']:.3f}", f"{summary['bond_distance_angstrom']:.4f}",
                     " ".join(f"{k} {v:.0f}" for k, v in temps.items())])
    ref_t = temperature_by_element(tests[0])
    rows.append(["GFN2-xTB VV 0.5 fs", f"{gfn2:.1f}", "1x", "reference", "-", "1", "0",
                 " ".join(f"{k} {v:.0f}" for k, v in ref_t.items())])
    text = "\n".join([
        "# Learned propagators on held-out ethanol-gfn2 starts", "",
        f"Factor {args.factor} ({args.factor * 0.5:g} fs per learned step), trained on seeds {args.train_seeds} for at most "
        f"{args.minutes:g} min each; rollouts of {args.rollout_ps:g} ps from frame 0 of seeds {args.test_seeds}; means over "
        "the starts. Drift: slope of GFN2-xTB E_pot + E_kin of the predicted frames. Temperatures: first start.", "",
        table(["propagator", "s per ps", "vs GFN2-xTB", "survived (ps)", "drift (meV/atom/ps)", "VDOS overlap",
               "bond W1 (Å)", "T by element (K)"], rows), ""])
    print(text)
    (RESULTS / "propagator.md").write_text(text + "\n")
    (RESULTS / "propagator.json").write_text(json.dumps(results, indent=1) + "\n")
    ship(results, models, args)


def ship(results, models, args):
    """Copy the family that survived longest (then best VDOS) to models/ with a card."""
    fams = results["families"]
    best = max(fams, key=lambda f: (fams[f]["survived_ps"], fams[f]["vdos_overlap"]))
    target = ROOT / "models" / f"ethanol-gfn2-prop-f{args.factor}.keras"
    shutil.copy(models[best], target)
    minutes_file = models[best].with_suffix(".minutes")
    card = dict(name=target.stem, task="propagate", model=best, dataset="ethanol-gfn2", factor=args.factor,
                stride_fs=args.factor * 0.5, train_seeds=seeds(args.train_seeds), validation_seeds=seeds(args.valid_seeds),
                test_seeds=seeds(args.test_seeds), substeps=SUBSTEPS[best], strides_per_example=4,
                training_minutes=float(minutes_file.read_text()) if minutes_file.exists() else None,
                held_out=fams[best], gfn2_seconds_per_ps=results["gfn2_seconds_per_ps"],
                command="python bench/propagator.py " + " ".join(sys.argv[1:]))
    (ROOT / "models" / f"{target.stem}.json").write_text(json.dumps(card, indent=2) + "\n")
    print(f"shipped {best} as {target}")


if __name__ == "__main__":
    main()
