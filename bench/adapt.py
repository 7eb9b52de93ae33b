"""Your own AIMD run at another level of theory: the shipped GFN2-xTB propagator as is, and adapted to the
file's own forces (``trajsr adapt``), rebuilding the file's dropped frames.

    python bench/make_data.py 'ethanol-gfn1/*'     # 6 GFN1-xTB ethanol runs, 300/500/700 K, 10 ps at 0.5 fs
    python bench/adapt.py --minutes 2

For each GFN1-xTB trajectory (a level of theory no shipped model saw): keep every ``--factor``-th frame
with its forces (what an AIMD code saves), adapt the propagator on those kept frames alone (its last 20%
held back for the card; the dropped frames are the truth and are never seen), then rebuild the dropped
frames by shooting from positions only (against the cubic spline) and with the file's velocities
(against cubic Hermite). Then the same from a file that keeps positions alone: ``adapt`` fits the
potential so that its paths join the kept frames (multiple shooting), and shooting rebuilds from
positions. MAE over the dropped frames (Å); median and worst of the ratios. Writes
bench/results/adapt-ethanol-gfn1.{md,json}.
"""
import argparse
import glob
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from trajsr.card import command_line
from trajsr import ShootingInterpolator, get_baseline, load, reconstruction_errors
from trajsr.adapt import adapt
from trajsr.observables import kinetic_temperature
from trajsr.report import table

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def mae(truth, interp, coarse, factor):
    return reconstruction_errors(truth, interp.interpolate(coarse, factor), factor)["mae_angstrom"]


def judge(path, base, factor, minutes):
    truth = load(path)
    coarse = truth.stride(factor)
    positions_only = coarse.replace(velocities=None)
    measured = kinetic_temperature(truth, "velocities", vibrations=False)["temperature_K"]
    row = dict(file=Path(path).name, temperature_K=measured)
    row["spline"] = mae(truth, get_baseline("spline"), positions_only, factor)
    row["hermite"] = mae(truth, get_baseline("hermite"), coarse, factor)
    shipped = ShootingInterpolator.load(base)
    row["shipped"], row["shipped_velocities"] = (mae(truth, shipped, positions_only, factor),
                                                 mae(truth, shipped, coarse, factor))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        card = adapt(base, [coarse.replace(velocities=None)], Path(tmp) / "adapted.keras", max_minutes=minutes)
        row["adapt_seconds"] = time.perf_counter() - start
        adapted = ShootingInterpolator.load(Path(tmp) / "adapted.keras")
        row["adapted"], row["adapted_velocities"] = (mae(truth, adapted, positions_only, factor),
                                                     mae(truth, adapted, coarse, factor))
        # a file with positions alone (no forces, no velocities): the potential fitted to join its kept frames
        start = time.perf_counter()
        adapt(base, [positions_only.replace(forces=None, potential_energy=None)], Path(tmp) / "paths.keras",
              max_minutes=minutes)
        row["paths_adapt_seconds"] = time.perf_counter() - start
        row["adapted_paths"] = mae(truth, ShootingInterpolator.load(Path(tmp) / "paths.keras"), positions_only, factor)
    row["force_error"] = [card["held_back"]["before"]["force_error"], card["held_back"]["after"]["force_error"]]
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", default=str(ROOT / "models" / "ethanol-gfn2-prop-f10.keras"))
    p.add_argument("--tests", nargs="+", default=[f"{ROOT}/data/ethanol-gfn1/t*/*.h5"])
    p.add_argument("--factor", type=int, default=10)
    p.add_argument("--minutes", type=float, default=2.0, help="adapt's force-matching budget per file")
    args = p.parse_args()
    tests = sorted({f for pattern in args.tests for f in glob.glob(pattern)})
    if not tests:
        raise SystemExit("no test trajectories; python bench/make_data.py 'ethanol-gfn1/*' makes them")
    rows = []
    for path in tests:
        rows.append(judge(path, args.base, args.factor, args.minutes))
        print(json.dumps(rows[-1]), flush=True)
    ratios = {name: [r[baseline] / r[name] for r in rows] for name, baseline in
              (("shipped", "spline"), ("adapted", "spline"), ("adapted_paths", "spline"),
               ("shipped_velocities", "hermite"), ("adapted_velocities", "hermite"))}
    summary = {name: dict(median=float(np.median(v)), worst=float(np.min(v))) for name, v in ratios.items()}
    command = command_line("bench/adapt.py")
    dt_fs = load(tests[0]).dt * 1000 * args.factor
    head = ["trajectory", "T (K)", "spline (Å)", "shipped (Å)", "adapted (Å)", "paths only (Å)", "Hermite (Å)",
            "shipped + v (Å)", "adapted + v (Å)", "force error before -> after", "adapt (s): forces, paths"]
    keys = ("spline", "shipped", "adapted", "adapted_paths", "hermite", "shipped_velocities", "adapted_velocities")
    body = [[r["file"], f"{r['temperature_K']:.0f}", *[f"{r[k]:.2e}" for k in keys],
             f"{r['force_error'][0]:.3f} -> {r['force_error'][1]:.3f}",
             f"{r['adapt_seconds']:.0f}, {r['paths_adapt_seconds']:.0f}"] for r in rows]
    label = {"shipped": "shipped, positions only, below the spline",
             "adapted": "adapted to the forces, positions only, below the spline",
             "adapted_paths": "adapted to a file without forces or velocities, below the spline",
             "shipped_velocities": "shipped, with velocities, below Hermite",
             "adapted_velocities": "adapted to the forces, with velocities, below Hermite"}
    lines = [f"# Another level of theory: `{Path(args.base).name}` on GFN1-xTB ethanol, as is and adapted", "",
             f"Command: `{command}`. {len(tests)} GFN1-xTB trajectories, kept frames {dt_fs:g} fs apart with their "
             f"forces; `adapt` on the kept frames alone ({args.minutes:g} min budget). MAE over the dropped frames.",
             "", table(head, body), "",
             table(["reconstruction", "median", "worst"],
                   [[label[k], f"{s['median']:.1f}x", f"{s['worst']:.1f}x"] for k, s in summary.items()]), ""]
    text = "\n".join(lines)
    print(text)
    (RESULTS / "adapt-ethanol-gfn1.md").write_text(text + "\n")
    (RESULTS / "adapt-ethanol-gfn1.json").write_text(json.dumps(dict(command=command, per_trajectory=rows,
                                                                    summary=summary), indent=1) + "\n")


if __name__ == "__main__":
    main()
