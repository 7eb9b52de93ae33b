"""How far shooting's per-atom uncertainty can be trusted, on trajectories the propagator never saw.

    python bench/shooting_uncertainty.py          # models/ethanol-gfn2-prop-f10.keras, factors 10 and 20
    python bench/shooting_uncertainty.py --model M.keras --factors 10 --test a.h5 b.h5 --other c.h5

The propagator is calibrated (``trajsr calibrate MODEL --validation data/ethanol-calib/*/*.h5 --factors 10
20``: 6 GFN2-xTB ethanol runs at 300, 500 and 700 K, seeds 9301-9702, never trained or tested on). Test
set: the 12 held-out GFN2-xTB runs of bench/shooting.py (300-700 K); other data: GFN1-xTB ethanol (another
level of theory, before any adaptation), 1000 K GFN2-xTB runs (hotter than all training data), GFN2-xTB runs
under a Langevin thermostat (2/ps; kicks no Hamiltonian path follows) and under CSVR (100 fs; which shooting
follows: no warning is wanted there).
Positions only (the velocities the files store are dropped). Per trajectory and factor:

- coverage: the fraction of dropped-frame Cartesian components inside the nominal 90% interval ±1.645σ;
- Spearman: rank correlation of per-gap uncertainty (RMS σ) with per-gap error (RMS component error);
- whether the gap with the largest error is among the 5% of gaps with the highest σ;
- the fraction of gaps flagged out of distribution, the file's difficulty (how much shooting corrected its
  gaps against the calibration files, whose average is 1), and whether ``upsample`` warns (more than 1% of
  gaps out of distribution, or a difficulty 1.5x the largest of any calibration file);
- cost: time of ``interpolate(uncertainty=True)`` over plain shooting's, in the same run.

Then the median and the worst over the test set; each trajectory is labelled by its measured kinetic
temperature. And three hostile inputs through the CLI (frames 10x further apart than ``--dt`` says,
factor 500, another molecule): their exit status and message. Writes bench/results/shooting-uncertainty.{md,json}
(another model than the default: shooting-uncertainty-MODEL.{md,json}).
"""
import argparse
import json
import shlex
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from trajsr import load
from trajsr.card import command_line, update_card
from trajsr.interpolation.gapreport import GapReport
from trajsr.interpolation.shooting import ShootingInterpolator
from trajsr.interpolation.shooting_uncertainty import stored_calibrations
from trajsr.metrics import uncertainty_errors
from trajsr.observables import kinetic_temperature
from trajsr.report import table

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DATA = ROOT / "data"
TEST = ([f"data/ethanol-test/t300/ethanol-gfn2-seed{s}.h5" for s in range(301, 305)]
        + [f"data/ethanol/ethanol-gfn2-seed{s}.h5" for s in range(101, 104)]
        + ["data/ethanol-test/t500/ethanol-gfn2-seed104.h5"]
        + [f"data/ethanol-test/t700/ethanol-gfn2-seed{s}.h5" for s in range(701, 705)])
DEFAULT_MODEL = "models/ethanol-gfn2-prop-f10.keras"
OTHER = ([f"data/ethanol-gfn1/t{t}/ethanol-gfn1-seed{7000 + t + i}.h5" for t in (300, 500, 700) for i in (1, 2)]
         + [f"data/ethanol-test/t1000/ethanol-gfn2-seed{s}.h5" for s in (1001, 1002)]
         + [f"data/ethanol-langevin/t500/ethanol-gfn2-seed{s}.h5" for s in (8501, 8502, 8503)]
         + [f"data/ethanol-csvr/t500/ethanol-gfn2-seed{s}.h5" for s in (8511, 8512, 8513)])
OTHER_MOLECULE = "data/malonaldehyde-test/t500/malonaldehyde-gfn2-seed2501.h5"


def one(interp, path, factor):
    """Every figure for one trajectory at one factor (positions only)."""
    reference = load(ROOT / path)
    reference = reference[: (reference.n_frames - 1) // factor * factor + 1]
    coarse = reference.stride(factor).replace(velocities=None)
    start = time.perf_counter()
    interp.interpolate(coarse, factor)
    plain = time.perf_counter() - start
    start = time.perf_counter()
    fine = interp.interpolate(coarse, factor, uncertainty=True)
    seconds = time.perf_counter() - start
    figures, gap_sigma, gap_error = uncertainty_errors(reference, fine, factor, fine.uncertainty)
    report = GapReport(interp.calibration_for(coarse, factor))  # what upsample would tell about this file
    report.add(fine.info["gap_flags"], slice(None), None, factor, fine.info.get("gap_difficulty"))
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        report.warn_if_out_of_distribution(path)
    top = np.argsort(gap_sigma)[::-1][: max(1, len(gap_sigma) // 20)]
    measured = kinetic_temperature(reference, vibrations=False)["temperature_K"]
    return {"file": Path(path).name, "temperature_K": float(measured),
            "coverage_90": figures["coverage_90"], "spearman_gap": figures["spearman_gap"], "gaps": figures["gaps"],
            "worst_gap_in_top_5pc": bool(np.argmax(gap_error) in top),
            "out_of_distribution": float(fine.info["gap_flags"]["out_of_distribution"].mean()),
            "difficulty": report.difficulty, "difficulty_limit": report.difficulty_limit, "warns": bool(warned),
            "median_gap_uncertainty_angstrom": float(np.median(gap_sigma)),
            "median_gap_error_angstrom": float(np.median(gap_error)), "cost": seconds / plain}


def hostile(model):
    """Exit status and last line of three wrong uses through the CLI, positions only: an xyz without time
    whose frames are 10x further apart than ``--dt`` says, kept frames 250 fs apart (factor 500 of the
    0.5 fs run) upsampled by 500, and malonaldehyde (9 atoms, like ethanol)."""
    test = ROOT / TEST[4]
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        xyz, far, other = Path(tmp) / "c50.xyz", Path(tmp) / "c500.h5", Path(tmp) / "other.h5"
        for source, target, factor in ((test, xyz, 100), (test, far, 500), (ROOT / OTHER_MOLECULE, other, 10)):
            subprocess.run(["trajsr", "stride", str(source), "--factor", str(factor), "-o", str(target)], check=True,
                           capture_output=True)
        cases = {"frames 50 fs apart, --dt 5": ["trajsr", "upsample", str(xyz), "--model", model, "--dt", "5",
                                                "--factor", "10", "-o", f"{tmp}/a.h5"],
                 "frames 250 fs apart, factor 500": ["trajsr", "upsample", str(far), "--model", model, "--factor",
                                                     "500", "--positions-only", "-o", f"{tmp}/b.h5"],
                 "another molecule": ["trajsr", "upsample", str(other), "--model", model, "--factor", "10",
                                      "--positions-only", "-o", f"{tmp}/c.h5"]}
        for name, command in cases.items():
            done = subprocess.run(command, capture_output=True, text=True)
            lines = (done.stderr.strip() or done.stdout.strip()).splitlines()
            out[name] = {"exit": done.returncode, "message": lines[-1].replace(tmp, "TMP") if lines else "",
                         "command": shlex.join(c.replace(tmp, "TMP") for c in command)}
    return out


def wrong_input_table(cases):
    return table(["case", "exit", "message"], [[name, str(h["exit"]), h["message"][:200]] for name, h in cases.items()])


def summarize(rows):
    cov = np.array([r["coverage_90"] for r in rows])
    rho = np.array([r["spearman_gap"] for r in rows])
    return {"coverage_90": {"median": float(np.median(cov)), "lowest": float(cov.min()), "highest": float(cov.max())},
            "spearman_gap": {"median": float(np.median(rho)), "worst": float(rho.min())},
            "worst_gap_in_top_5pc": int(sum(r["worst_gap_in_top_5pc"] for r in rows)),
            "cost": {"median": float(np.median([r["cost"] for r in rows])),
                     "worst": float(max(r["cost"] for r in rows))}}


def rows_table(rows):
    return table(["trajectory", "T (K, measured)", "coverage of 90%", "Spearman", "worst gap in top 5% σ",
                  "OOD gaps", "difficulty", "upsample warns", "median gap σ / error (Å)", "time x"],
                 [[r["file"], f"{r['temperature_K']:.0f}", f"{r['coverage_90']:.1%}", f"{r['spearman_gap']:.2f}",
                   "yes" if r["worst_gap_in_top_5pc"] else "no", f"{r['out_of_distribution']:.1%}",
                   "-" if r.get("difficulty") is None else f"{r['difficulty']:.2f}", "yes" if r.get("warns") else "no",
                   f"{r['median_gap_uncertainty_angstrom']:.1e} / {r['median_gap_error_angstrom']:.1e}",
                   f"{r['cost']:.2f}"] for r in rows])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--factors", type=int, nargs="+", default=[10, 20])
    p.add_argument("--test", nargs="+", default=TEST)
    p.add_argument("--other", nargs="+", default=OTHER)
    p.add_argument("--record", action="store_true", help="also write the figures into the model's card (MODEL.json)")
    p.add_argument("--wrong-input-only", action="store_true",
                   help="only re-run the wrong inputs; the figures come from the last results file")
    args = p.parse_args()
    # the default model's figures in shooting-uncertainty.*, another model's in shooting-uncertainty-MODEL.*
    stem = "shooting-uncertainty" + ("" if Path(args.model) == Path(DEFAULT_MODEL) else f"-{Path(args.model).stem}")
    if args.wrong_input_only:
        report = json.loads((RESULTS / f"{stem}.json").read_text())
        report["wrong_input"] = hostile(args.model)
        (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=1))
        text = (RESULTS / f"{stem}.md").read_text().split("\nWrong input")[0].rstrip()
        (RESULTS / f"{stem}.md").write_text(f"{text}\n\nWrong input (`python bench/shooting_uncertainty.py "
                                                         f"--wrong-input-only`):\n\n{wrong_input_table(report['wrong_input'])}\n")
        print(wrong_input_table(report["wrong_input"]))
        return
    missing = [t for t in args.test + args.other + [OTHER_MOLECULE] if not (ROOT / t).exists()]
    if missing:
        raise SystemExit(f"missing trajectories (python bench/make_data.py): {missing[0]} ...")
    interp = ShootingInterpolator.load(ROOT / args.model)
    command = command_line("bench/shooting_uncertainty.py")
    calibrated = sorted({int(key.split(" x")[1].split()[0]) for key in stored_calibrations(interp.step)})
    report = {"model": args.model, "command": command, "factors": {},
              "calibrate_command": f"trajsr calibrate {args.model} --validation data/ethanol-calib/*/*.h5 --factors "
                                   f"{' '.join(map(str, calibrated))} -o {args.model} --force"}
    lines = [f"# Shooting's uncertainty with `{Path(args.model).name}`, positions only", "", f"`{command}`", ""]
    for factor in args.factors:
        rows = [one(interp, path, factor) for path in args.test]
        other = [one(interp, path, factor) for path in args.other]
        for row in rows + other:
            print(json.dumps(row), flush=True)
        s = summarize(rows)
        cal = interp.calibration_for(load(ROOT / args.test[0])[:2 * factor + 1].stride(factor).replace(velocities=None),
                                     factor)
        report["factors"][str(factor)] = {"test": rows, "other": other, "summary": s, "calibration": cal.fitted_on}
        lines += [f"## Factor {factor} ({len(rows)} held-out GFN2-xTB trajectories)", "", rows_table(rows), "",
                  f"Coverage of the nominal 90% interval: median {s['coverage_90']['median']:.1%} (from "
                  f"{s['coverage_90']['lowest']:.1%} to {s['coverage_90']['highest']:.1%}); within-trajectory Spearman "
                  f"of per-gap σ against per-gap error: median {s['spearman_gap']['median']:.2f}, worst "
                  f"{s['spearman_gap']['worst']:.2f}; the largest-error gap among the 5% highest σ in "
                  f"{s['worst_gap_in_top_5pc']} of {len(rows)}; σ costs {s['cost']['median']:.2f}x plain shooting "
                  f"(worst {s['cost']['worst']:.2f}x).", "",
                  "Other level of theory (GFN1-xTB, not adapted), 1000 K, a Langevin thermostat (2/ps) and CSVR "
                  "(100 fs):", "",
                  rows_table(other), "",
                  f"`upsample` warns on {sum(r['warns'] for r in other)} of these {len(other)} runs, and on "
                  f"{sum(r['warns'] for r in rows)} of the {len(rows)} held-out runs above (false alarms).", ""]
    report["wrong_input"] = hostile(args.model)
    lines += ["Wrong input:", "", wrong_input_table(report["wrong_input"]), ""]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=1))
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if args.record:
        record(ROOT / Path(args.model).with_suffix(".json"), report)


def record(card_path, report):
    """The card's ``uncertainty`` entry: what it was calibrated on, and the test figures of the first factor
    (the others under ``by_factor``)."""
    first = next(iter(report["factors"].values()))
    calibration = first["calibration"]
    update_card(card_path, {"uncertainty": {
        "method": "shooting", "command": report["command"],
        "calibrate_command": report["calibrate_command"], "data": "python bench/make_data.py 'ethanol-calib/*'",
        "validation": sorted({Path(f).name for r in report["factors"].values() for f in r["calibration"]["files"]}),
        "training": [Path(f).name for f in calibration.get("training_files", [])],
        "summary": {"coverage_90_median": first["summary"]["coverage_90"]["median"],
                    "spearman_gap_median": first["summary"]["spearman_gap"]["median"],
                    "spearman_gap_worst": first["summary"]["spearman_gap"]["worst"]},
        "test": [{k: r[k] for k in ("file", "temperature_K", "coverage_90", "spearman_gap")} for r in first["test"]],
        "by_factor": {f: r["summary"] for f, r in report["factors"].items()}}})


if __name__ == "__main__":
    main()
