"""Shooting reconstruction on the ethanol test set: one propagator's learned dynamics through every kept frame.

    python bench/shooting.py --model models/ethanol-gfn2-prop-f10.keras --factors 10 20 40

For each factor and each of the 12 held-out test trajectories (300/500/700 K, never used to train the
propagator or any interpolator): rebuild the dropped frames from the positions alone with
:class:`trajsr.ShootingInterpolator` (multiple shooting: each gap's learned path lands on the next kept
frame and arrives with the velocity the next gap starts with) and with the cubic spline; report MAE (Å),
their ratio per trajectory, and the median and worst ratio. Writes bench/results/shooting-f{F}.{md,json} (F: the first factor).
"""
import argparse
import glob
import json
import sys
import time
from pathlib import Path

import numpy as np

from trajsr import ShootingInterpolator, get_baseline, load, reconstruction_errors
from trajsr.report import table

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
TESTS = [f"{ROOT}/data/ethanol/ethanol-gfn2-seed{s}.h5" for s in (101, 102, 103)] + \
        [f"{ROOT}/data/ethanol-test/{d}/*.h5" for d in ("t300", "t500", "t700")]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(ROOT / "models" / "ethanol-gfn2-prop-f10.keras"))
    p.add_argument("--factors", type=int, nargs="+", default=[10, 20, 40])
    p.add_argument("--tests", nargs="+", default=TESTS)
    p.add_argument("--name", help="results file stem (default: shooting-f{first factor})")
    args = p.parse_args()
    tests = sorted({f for pattern in args.tests for f in glob.glob(pattern)})
    shooting = ShootingInterpolator.load(args.model)
    results, lines = {}, [f"# Shooting with `{Path(args.model).name}` on {len(tests)} held-out ethanol trajectories", "",
                          f"Command: `python bench/shooting.py {' '.join(sys.argv[1:])}`. Positions only; MAE over dropped frames, Å; the spline is SciPy's "
                          "cubic spline through the same kept frames.", ""]
    for factor in args.factors:
        rows, per = [], []
        for path in tests:
            fine = load(path)
            coarse = fine.stride(factor).replace(velocities=None)
            start = time.perf_counter()
            rebuilt = shooting.interpolate(coarse, factor)
            seconds = time.perf_counter() - start
            model = reconstruction_errors(fine, rebuilt, factor)["mae_angstrom"]
            spline = reconstruction_errors(fine, get_baseline("spline").interpolate(coarse, factor), factor)["mae_angstrom"]
            per.append(dict(file=Path(path).name, temperature_K=fine.info.get("temperature_K"), model_mae_angstrom=model,
                            spline_mae_angstrom=spline, spline_over_model=spline / model, seconds=seconds))
            rows.append([per[-1]["file"], f"{per[-1]['temperature_K']:g}", f"{model:.2e}", f"{spline:.2e}",
                         f"{spline / model:.1f}x", f"{seconds:.0f}"])
            print(factor, per[-1], flush=True)
        ratios = [r["spline_over_model"] for r in per]
        results[factor] = dict(per_trajectory=per, spline_over_model_median=float(np.median(ratios)),
                               spline_over_model_worst=float(np.min(ratios)))
        lines += [f"## factor {factor} ({factor * 0.5:g} fs between kept frames)", "",
                  table(["trajectory", "T (K)", "shooting MAE (Å)", "spline MAE (Å)", "spline/shooting", "seconds"], rows),
                  "", f"Median {np.median(ratios):.1f}x below the spline, worst {np.min(ratios):.1f}x.", ""]
    text = "\n".join(lines)
    print(text)
    name = args.name or f"shooting-f{args.factors[0]}"
    (RESULTS / f"{name}.md").write_text(text + "\n")
    (RESULTS / f"{name}.json").write_text(json.dumps(dict(model=args.model, results=results), indent=1) + "\n")


if __name__ == "__main__":
    main()
