"""How far the per-atom uncertainty of the shipped ethanol models can be trusted, on trajectories they never saw.

    python bench/uncertainty.py          # models/ethanol-gfn2-f{10,20}.keras and their -ensemble.keras
    python bench/uncertainty.py --models models/ethanol-gfn2-f10.keras --test a.h5 b.h5 --hot c.h5

Test set (made with ``trajsr datasets make ethanol-gfn2 --temperature T --seed ...``, none used in
training, validation or calibration): 300 K seeds 301-304, 500 K seeds 101-104, 700 K seeds 701-704, each
10 ps; hot (out of distribution): 1000 K seeds 1001-1002. Per test trajectory and model:

- coverage: the fraction of dropped-frame Cartesian components inside the nominal 90% interval ±1.645σ;
- Spearman: rank correlation of per-gap uncertainty (RMS σ) with per-gap error (RMS component error), per
  trajectory and over the gaps of all test trajectories pooled;
- with the default fallback (``--max-uncertainty``): how many gaps were replaced, the MAE before and after,
  and the largest per-gap MAE of model, model with fallback and spline (over the gaps the model fills: the
  K − 1 at each end of a file have no full context and use a local spline in every case);
- the fraction of gaps flagged out of distribution (``upsample`` warns above 1%);
- cost: time of ``interpolate(uncertainty=True)`` over the same model's plain prediction, one run.

Then the median and the worst over the test set. Writes bench/results/uncertainty.{md,json} and
uncertainty.png (predicted against actual error per gap, first model, first 700 K trajectory).
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from trajsr.card import command_line
from trajsr import get_baseline, load, reconstruction_errors
from trajsr.interpolation.learned import LearnedInterpolator
from trajsr.metrics import uncertainty_errors
from trajsr.observables import kinetic_temperature
from trajsr.plots import plot_uncertainty
from trajsr.report import table

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DATA = ROOT / "data" / "ethanol-test"
TEST = ([DATA / f"t300/ethanol-gfn2-seed{s}.h5" for s in range(301, 305)]
        + [ROOT / f"data/ethanol/ethanol-gfn2-seed{s}.h5" for s in range(101, 104)]
        + [DATA / "t500/ethanol-gfn2-seed104.h5"]
        + [DATA / f"t700/ethanol-gfn2-seed{s}.h5" for s in range(701, 705)])
HOT = [DATA / f"t1000/ethanol-gfn2-seed{s}.h5" for s in (1001, 1002)]


def gap_mae(reference, fine, factor, context):
    """Per-gap MAE (Å, over the gap's dropped frames, atoms and components) of the gaps the model fills
    (the K − 1 at each end, too close to the file's ends for a context, use a local spline)."""
    n = (reference.n_frames - 1) // factor
    diff = np.abs(fine.positions - reference.positions)[:-1].reshape(n, factor, reference.n_atoms, 3)[:, 1:]
    return diff.mean(axis=(1, 2, 3))[context - 1: n - context + 1] * 10


def one(interp, plain, path, factor):
    """Every figure for one trajectory."""
    reference = load(path)
    reference = reference[: (reference.n_frames - 1) // factor * factor + 1]
    coarse = reference.stride(factor)
    start = time.perf_counter()
    plain.interpolate(coarse)
    plain_seconds = time.perf_counter() - start
    start = time.perf_counter()
    fine = interp.interpolate(coarse, uncertainty=True)
    seconds = time.perf_counter() - start
    safe = interp.interpolate(coarse, uncertainty=True, max_uncertainty="default")
    spline = get_baseline("spline").interpolate(coarse, factor)
    figures, gap_sigma, gap_error = uncertainty_errors(reference, fine, factor, fine.uncertainty)
    model_gap, safe_gap, spline_gap = (gap_mae(reference, x, factor, interp.context) for x in (fine, safe, spline))
    flags = fine.info["gap_flags"]
    return {"file": Path(path).name, "temperature_K": kinetic_temperature(reference, vibrations=False)["temperature_K"],
            "target_temperature_K": reference.info.get("temperature_K"),
            "coverage_90": figures["coverage_90"], "spearman_gap": figures["spearman_gap"],
            "gaps": figures["gaps"], "replaced": int(safe.info["gap_flags"]["replaced"].sum()),
            "out_of_distribution": float(flags["out_of_distribution"].mean()),
            "mae_angstrom": reconstruction_errors(reference, fine, factor)["mae_angstrom"],
            "mae_fallback_angstrom": reconstruction_errors(reference, safe, factor)["mae_angstrom"],
            "mae_spline_angstrom": reconstruction_errors(reference, spline, factor)["mae_angstrom"],
            "max_gap_mae_angstrom": float(model_gap.max()), "max_gap_mae_fallback_angstrom": float(safe_gap.max()),
            "max_gap_mae_spline_angstrom": float(spline_gap.max()),
            "uncertainty_cost": seconds / plain_seconds,
            "median_frame_uncertainty_angstrom": float(np.median(fine.uncertainty[np.arange(fine.n_frames) % factor
                                                                                   != 0]) * 10)}, (gap_sigma, gap_error)


def without_calibration(interp):
    """The same model, predicting only (the time an uncertainty is measured against)."""
    plain = LearnedInterpolator(interp.model, interp.batch_size)
    plain.meta = {k: v for k, v in interp.meta.items() if k != "uncertainty"}
    return plain


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=[str(ROOT / "models" / f"ethanol-gfn2-f{f}{kind}.keras")
                                                   for f in (10, 20) for kind in ("", "-ensemble")])
    p.add_argument("--test", nargs="+", default=[str(t) for t in TEST])
    p.add_argument("--hot", nargs="+", default=[str(t) for t in HOT])
    args = p.parse_args()
    missing = [t for t in args.test + args.hot if not Path(t).exists()]
    if missing:
        raise SystemExit(f"missing test trajectories (make them with trajsr datasets make): {missing[0]} ...")
    report, plotted = {}, False
    lines = ["# Uncertainty on held-out ethanol trajectories", "",
             f"Command: `{command_line('bench/uncertainty.py')}`.", ""]
    for model in args.models:
        interp = LearnedInterpolator(model)
        plain = without_calibration(interp)
        interp.interpolate(load(args.test[0])[:2001].stride(interp.factor))  # compile both before timing
        plain.interpolate(load(args.test[0])[:2001].stride(interp.factor))
        rows, hot, pooled = [], [], []
        for path in args.test:
            row, (gap_sigma, gap_error) = one(interp, plain, path, interp.factor)
            rows.append(row)
            pooled.append((gap_sigma, gap_error))
            if not plotted and row["target_temperature_K"] == 700.0:
                plot_uncertainty(gap_sigma, gap_error, RESULTS / "uncertainty.png", force=True,
                                 title=f"{Path(model).stem}, {row['file']} ({row['temperature_K']:.0f} K)")
                plotted = True
            print(json.dumps(row))
        for path in args.hot:
            hot.append(one(interp, plain, path, interp.factor)[0])
            print(json.dumps(hot[-1]))
        summary = summarize(rows)
        summary["spearman_gap_pooled"] = float(spearmanr(np.concatenate([a for a, _ in pooled]),
                                                         np.concatenate([b for _, b in pooled])).statistic)
        report[Path(model).stem] = {"calibration": interp.calibration.fitted_on, "test": rows, "hot": hot,
                                    "summary": summary}
        lines += section(Path(model).stem, interp, rows, hot, summary)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "uncertainty.json").write_text(json.dumps(report, indent=1))
    (RESULTS / "uncertainty.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def summarize(rows):
    """Median and worst over the test set of each figure (worst: the direction that hurts)."""
    def pick(key, worst):
        values = np.array([r[key] for r in rows], float)
        return {"median": float(np.median(values)), "worst": float(worst(values))}
    cov = np.array([r["coverage_90"] for r in rows])
    return {"coverage_90": {"median": float(np.median(cov)), "worst": float(cov[np.argmax(np.abs(cov - 0.9))])},
            "spearman_gap": pick("spearman_gap", np.min),
            "mae_increase": pick("mae_increase", np.max) if "mae_increase" in rows[0] else
            {"median": float(np.median([r["mae_fallback_angstrom"] / r["mae_angstrom"] - 1 for r in rows])),
             "worst": float(np.max([r["mae_fallback_angstrom"] / r["mae_angstrom"] - 1 for r in rows]))},
            "max_gap_not_above_spline": all(r["max_gap_mae_fallback_angstrom"] <= r["max_gap_mae_spline_angstrom"]
                                            for r in rows),
            "uncertainty_cost": pick("uncertainty_cost", np.max)}


def section(name, interp, rows, hot, s):
    cal = interp.calibration
    out = [f"## {name} (factor {interp.factor})", "",
           f"Calibrated on {', '.join(Path(f).name for f in cal.fitted_on.get('files', []))} "
           f"({cal.fitted_on.get('windows')} windows); default --max-uncertainty {cal.max_uncertainty * 10:.2e} Å.",
           "", table(["trajectory", "T (K, kinetic)", "coverage of 90%", "Spearman", "OOD gaps", "replaced",
                      "MAE (Å)", "with fallback", "spline", "largest gap MAE: model / fallback / spline (Å)",
                      "time x"],
                     [[r["file"], f"{r['temperature_K']:.0f}", f"{r['coverage_90']:.1%}", f"{r['spearman_gap']:.2f}",
                       f"{r['out_of_distribution']:.1%}", f"{r['replaced']}/{r['gaps']}", f"{r['mae_angstrom']:.2e}",
                       f"{r['mae_fallback_angstrom']:.2e}", f"{r['mae_spline_angstrom']:.2e}",
                       f"{r['max_gap_mae_angstrom']:.3f} / {r['max_gap_mae_fallback_angstrom']:.3f} / "
                       f"{r['max_gap_mae_spline_angstrom']:.3f}", f"{r['uncertainty_cost']:.2f}"]
                      for r in rows + hot]),
           "", f"Over the {len(rows)} test trajectories (the {len(hot)} hot ones apart): coverage median "
           f"{s['coverage_90']['median']:.1%}, furthest from 90% {s['coverage_90']['worst']:.1%}; Spearman median "
           f"{s['spearman_gap']['median']:.2f}, worst {s['spearman_gap']['worst']:.2f}, over all their gaps pooled "
           f"{s['spearman_gap_pooled']:.2f}; the default fallback raises "
           f"the MAE by {s['mae_increase']['median']:.1%} (median), {s['mae_increase']['worst']:.1%} (worst); "
           f"largest gap error never above the spline's: {s['max_gap_not_above_spline']}; uncertainty costs "
           f"{s['uncertainty_cost']['median']:.2f}x the plain prediction's time (worst {s['uncertainty_cost']['worst']:.2f}x).",
           f"Hot (1000 K) trajectories: {', '.join(format(h['out_of_distribution'], '.0%') for h in hot)} of gaps out of "
           "distribution (upsample warns above 1%).", ""]
    return out


if __name__ == "__main__":
    main()
