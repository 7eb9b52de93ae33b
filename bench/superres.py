"""All 8 learned interpolators and the 3 baselines on held-out ethanol-gfn2 trajectories.

    python bench/superres.py --factors 10 20 40 --minutes 3

For each factor and model: train on the --train-seeds (validation --valid-seeds) for at most --minutes
of wall-clock on this machine, then rebuild the --test-seeds trajectories, which training never saw.
Reports MAE in Å (all atoms, H, heavy atoms), parameters, training minutes and upsampling speed
(fine frames/s) next to the spline's. Each (model, factor) result is cached in
bench/results/superres/ so an interrupted run continues; --fresh retrains. Writes
bench/results/superres.{md,json} and superres_vdos.png (best model vs reference and spline).
"""
import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from trajsr.card import command_line
from trajsr import LearnedInterpolator, fit, get_baseline, load, reconstruction_errors, vdos_overlap
from trajsr.interpolation.names import model_names
from trajsr.interpolation.shooting import ShootingInterpolator
from trajsr.plots import plot_vdos
from trajsr.report import table

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def seeds(text):
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def score(fine_list, rebuild, factor):
    """Mean MAE (Å) over the test trajectories: all atoms, H, heavy; and fine frames per second."""
    maes, h, heavy, frames, seconds = [], [], [], 0, 0.0
    for fine in fine_list:
        coarse = fine.stride(factor)
        start = time.perf_counter()
        rebuilt = rebuild(coarse)
        seconds += time.perf_counter() - start
        frames += rebuilt.n_frames
        e = reconstruction_errors(fine, rebuilt, factor)
        maes.append(e["mae_angstrom"])
        by = e["mae_by_element_angstrom"]
        h.append(by["H"])
        heavy.append(np.mean([by[k] for k in by if k != "H"]))
    return dict(mae=float(np.mean(maes)), mae_h=float(np.mean(h)), mae_heavy=float(np.mean(heavy)),
                frames_per_second=frames / seconds)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--factors", type=int, nargs="+", default=[10, 20, 40])
    p.add_argument("--models", nargs="+", default=list(model_names()))
    p.add_argument("--minutes", type=float, default=3.0, help="training budget per model")
    p.add_argument("--data", default=str(ROOT / "data" / "ethanol"))
    p.add_argument("--train-seeds", default="1-12")
    p.add_argument("--valid-seeds", default="16")
    p.add_argument("--test-seeds", default="101-103")
    p.add_argument("--window-step", type=int, default=2)
    p.add_argument("--shooting", nargs="*", default=[], metavar="PROPAGATOR",
                   help="propagator .keras files: also rebuild each gap by shooting with its learned dynamics")
    p.add_argument("--fresh", action="store_true")
    args = p.parse_args()
    path = lambda s: Path(args.data) / f"ethanol-gfn2-seed{s}.h5"  # noqa: E731
    tests = [load(path(s)) for s in seeds(args.test_seeds)]
    cache = RESULTS / "superres"
    cache.mkdir(parents=True, exist_ok=True)
    results = {}
    for factor in args.factors:
        rows = {m: score(tests, lambda c, m=m: get_baseline(m).interpolate(c, factor), factor)
                for m in ("linear", "spline", "hermite")}
        for name in args.models:
            record = cache / f"{name}-f{factor}.json"
            if record.exists() and not args.fresh:
                rows[name] = json.loads(record.read_text())
                continue
            model_path = cache / f"{name}-f{factor}.keras"
            start = time.time()
            net, history = fit([path(s) for s in seeds(args.train_seeds)],
                               validation=[path(s) for s in seeds(args.valid_seeds)], model=name, factor=factor,
                               epochs=500, window_step=args.window_step, max_minutes=args.minutes, output=model_path,
                               force=True, work_dir=Path(tempfile.gettempdir()) / f"bench-{name}-{factor}", verbose=0)
            minutes = (time.time() - start) / 60
            interp = LearnedInterpolator(model_path)
            rows[name] = dict(score(tests, interp.interpolate, factor), params=net.count_params(),
                              train_minutes=round(minutes, 2), epochs=len(history.history["loss"]))
            record.write_text(json.dumps(rows[name], indent=1))
            print(factor, name, rows[name], flush=True)
        for prop_path in args.shooting:  # the propagator's dynamics as an interpolator (positions only)
            shooting = ShootingInterpolator.load(prop_path)
            if shooting.step.factor != factor:  # each propagator at the gap of its own stride
                continue
            rows[f"shooting ({Path(prop_path).stem})"] = score(
                tests, lambda c: shooting.interpolate(c.replace(velocities=None), factor), factor)
            print(factor, prop_path, rows[f"shooting ({Path(prop_path).stem})"], flush=True)
        results[factor] = rows
    write_report(results, tests, args, path)


def write_report(results, tests, args, path):
    lines = ["# Super-resolution on held-out ethanol-gfn2 trajectories", "",
             f"Command: `{command_line('bench/superres.py')}`. Train seeds "
             f"{args.train_seeds}, validation {args.valid_seeds}, test {args.test_seeds} (never seen in training); "
             f"positions only (Hermite uses the reference velocities); training budget {args.minutes:g} min per model "
             f"on {os.cpu_count()} cores; MAE over dropped frames, Å. Shooting: each gap filled by "
             "the path of a Hamiltonian propagator's learned dynamics that joins its two kept frames "
             "(trajsr.interpolation.shooting).", ""]
    best_overall = None
    for factor, rows in results.items():
        spline = rows["spline"]["mae"]
        body = []
        for name, r in rows.items():
            body.append([name, f"{r['mae']:.2e}", f"{r['mae_h']:.2e}", f"{r['mae_heavy']:.2e}",
                         f"{spline / r['mae']:.1f}x", r.get("params", "-"), r.get("train_minutes", "-"),
                         f"{r['frames_per_second']:.0f}"])
        lines += [f"## factor {factor} ({factor * 0.5:g} fs between kept frames)", "",
                  table(["model", "MAE (Å)", "MAE H (Å)", "MAE heavy (Å)", "spline/model", "params",
                         "train (min)", "fine frames/s"], body), ""]
        learned = {n: r for n, r in rows.items() if n in model_names()}
        if learned:
            best = min(learned, key=lambda n: learned[n]["mae"])
            lines.append(f"Best: {best}, {spline / learned[best]['mae']:.1f}x below the spline. "
                         "Bidirectional vs one-directional: " + ", ".join(
                             f"{b} {'beats' if learned[b]['mae'] < learned[u]['mae'] else 'loses to'} {u}"
                             for b, u in (("bilstm", "lstm"), ("birnn", "rnn"), ("biode", "ode"), ("bihnn", "hnn"))
                             if b in learned and u in learned) + ".")
            lines.append("")
            if best_overall is None:
                best_overall = (factor, best)
    if best_overall and (RESULTS / "superres" / f"{best_overall[1]}-f{best_overall[0]}.keras").exists():
        factor, best = best_overall
        test = tests[0]
        rebuilt = LearnedInterpolator(RESULTS / "superres" / f"{best}-f{factor}.keras").interpolate(test.stride(factor))
        spline = get_baseline("spline").interpolate(test.stride(factor), factor)
        ref = test[: rebuilt.n_frames].replace(velocities=None)
        plot_vdos({"reference": ref, f"{best} (factor {factor})": rebuilt, "spline": spline},
                  RESULTS / "superres_vdos.png", force=True, title="ethanol-gfn2, held-out seed: VDOS")
        lines.append(f"VDOS overlap with the reference (factor {factor}, finite-difference velocities): "
                     f"{best} {vdos_overlap(ref, rebuilt):.3f}, spline {vdos_overlap(ref, spline):.3f} "
                     "(superres_vdos.png).")
    text = "\n".join(lines)
    print(text)
    (RESULTS / "superres.md").write_text(text + "\n")
    (RESULTS / "superres.json").write_text(json.dumps({str(k): v for k, v in results.items()}, indent=1) + "\n")


if __name__ == "__main__":
    main()
