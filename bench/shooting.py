"""Shooting reconstruction on a held-out test set: one propagator's learned dynamics through every kept frame.

    python bench/shooting.py --model models/ethanol-gfn2-prop-f10.keras --factors 10 20 40
    python bench/shooting.py --model models/ethanol-gfn2-prop-f10.keras --factors 10 20 40 --velocities

For each factor and each held-out test trajectory (ethanol: 12 at 300/500/700 K, never used to train the
propagator or any interpolator), rebuild the dropped frames with :class:`trajsr.ShootingInterpolator`:
- positions only (default): multiple shooting gives each kept frame a velocity, then every gap is bridged
  by the learned path from both ends; judged against SciPy's cubic spline through the same kept frames;
- ``--velocities``: the file's velocities at the kept frames, each gap bridged from both ends; judged
  against cubic Hermite interpolation (positions and velocities at the same kept frames).
Reports MAE (Å), the ratio per trajectory, and the median and worst ratio. Writes
bench/results/{NAME}.{md,json}, one per factor (default NAME: shooting[-velocities]-f{factor}).
"""
import argparse
import glob
import json
from pathlib import Path

import numpy as np

from trajsr import ShootingInterpolator, load
from trajsr.card import command_line, read_card, update_card
from trajsr.interpolation.card import evaluate, evaluation_of
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
    p.add_argument("--velocities", action="store_true", help="use the files' velocities; judge against Hermite")
    p.add_argument("--name", help="results file stem, -fF added per factor when several are given "
                   "(default: shooting[-velocities]-fF)")
    p.add_argument("--about", help="what the test trajectories are, for the title (default: held-out)")
    p.add_argument("--record", action="store_true",
                   help="also write the evaluation (per trajectory, median and worst ratio) into the model's card "
                       "(MODEL.json)")
    args = p.parse_args()
    tests = sorted({f for pattern in args.tests for f in glob.glob(pattern)})
    baseline = "Hermite" if args.velocities else "spline"
    shooting = ShootingInterpolator.load(args.model)
    inputs = ("positions and velocities at the kept frames; the baseline is cubic Hermite through the same"
              if args.velocities else "positions only; the baseline is SciPy's cubic spline through the same")
    command = command_line("bench/shooting.py")
    title = [f"# Shooting with `{Path(args.model).name}` on {len(tests)} {args.about or 'held-out'} trajectories", "",
             f"Command: `{command}`. Input: {inputs} kept frames. MAE over the dropped frames, Å.", ""]
    results = {}
    for factor in args.factors:
        per = []
        for path in tests:  # one at a time: only one fine trajectory in memory
            r = evaluate(shooting, [load(path)], factor, positions_only=not args.velocities)["per_trajectory"][0]
            r["fine_frames_per_second"] = ((r["frames"] - 1) // factor * factor + 1) / r["seconds"]
            per.append(r)
            print(factor, r, flush=True)
        results[factor] = evaluation_of(per)  # the format of every card's evaluation
        key = baseline.lower()
        ratios = [r[f"{key}_over_model"] for r in per]
        rows = [[r["file"], f"{r['temperature_K']:.0f}", f"{r['model_mae_angstrom']:.2e}",
                 f"{r[f'{key}_mae_angstrom']:.2e}", f"{ratio:.1f}x", f"{r['fine_frames_per_second']:,.0f}"]
                for r, ratio in zip(per, ratios)]
        dt_fs = load(tests[0]).dt * 1000 * factor
        text = "\n".join(title + [
            f"## factor {factor} ({dt_fs:g} fs between kept frames)", "",
            table(["trajectory", "T (K)", "shooting MAE (Å)", f"{baseline} MAE (Å)", f"{baseline}/shooting",
                   "fine frames/s"], rows),
            "", f"Median {np.median(ratios):.1f}x below {baseline}, worst {np.min(ratios):.1f}x.", ""])
        print(text)
        # one file per factor: NAME as given for one factor, else NAME-fF (default NAME: shooting[-velocities])
        stem = args.name or f"shooting{'-velocities' if args.velocities else ''}"
        name = stem if args.name and len(args.factors) == 1 else f"{stem}-f{factor}"
        (RESULTS / f"{name}.md").write_text(text + "\n")
        (RESULTS / f"{name}.json").write_text(json.dumps(dict(model=args.model, command=command,
                                                              results={factor: results[factor]}), indent=1) + "\n")
    if args.record:
        record(Path(args.model).with_suffix(".json"), results, args.velocities, command)


def record(card_path, results, velocities, command):
    """Add each factor's evaluation (:func:`trajsr.interpolation.card.evaluate`'s format: per trajectory, and
    the median, worst and best ratio to the spline, and to Hermite with velocities) with its command to the
    propagator's card (the one its training wrote) under ``shooting``; its other sections stay."""
    shooting = read_card(card_path).get("shooting", {}) if card_path.exists() else {}
    entry = shooting.setdefault("with velocities" if velocities else "positions only", {})
    for factor, evaluation in results.items():
        entry[str(factor)] = dict(evaluation, command=command)
    update_card(card_path, {"shooting": shooting})


if __name__ == "__main__":
    main()
