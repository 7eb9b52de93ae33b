"""Where shooting's error from positions only comes from, and which signals could rank it within a file.

    python bench/shooting_anatomy.py          # the 12 held-out runs of bench/shooting_uncertainty.py, factors 10, 20
    python bench/shooting_anatomy.py --factors 10 --test a.h5 b.h5
    python bench/shooting_anatomy.py --rewrite   # the text again from the last results

Issue 28 asks for a per-gap σ whose within-trajectory Spearman against the per-gap error reaches 0.6; the
calibrated σ reaches about 0.3 (bench/shooting_uncertainty.py). This measures why, per held-out trajectory
(positions only, ``models/ethanol-gfn2-prop-f10.keras``):

- the per-gap error (RMS component error, Å) with the velocities multiple shooting estimates at the kept
  frames, and with the file's true velocities at the same kept frames (the bridge alone);
- Spearman of the per-gap error against the true velocity error at the gap's two kept frames (what an
  oracle of the velocity error would rank), and the autocorrelation of that velocity error from one kept
  frame to the next (lag 1, 2 and 5): an error forgotten within a few gaps cannot be read off its
  neighbours;
- Spearman of the per-gap error against: the calibrated σ; the disagreement of a second, independently
  trained potential (``models/ethanol-gfn2-prop-f20.keras``, shooting the same gaps: a two-member
  ensemble); and a doubled-gap self-test (each kept frame rebuilt from its neighbours two gaps apart with
  the estimated velocities, its miss spread over the two gaps it bounds).

Median and worst (lowest) over the files; each trajectory labelled by its measured kinetic temperature.
Writes bench/results/shooting-anatomy.{md,json}.
"""
import argparse
import json
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr
from shooting_uncertainty import TEST  # bench/ beside this script

from trajsr import load
from trajsr.card import command_line
from trajsr.interpolation.shooting import ShootingInterpolator
from trajsr.interpolation.uncertainty import gap_error
from trajsr.metrics import uncertainty_errors
from trajsr.observables import kinetic_temperature
from trajsr.report import table
from trajsr.units import ANGSTROM_PER_NM

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def per_gap(fine, truth, factor):
    """RMS component error of each gap's dropped frames (Å)."""
    gaps, n = (len(truth) - 1) // factor, truth.shape[1]
    return gap_error((fine - truth)[:-1].reshape(gaps, factor, n, 3)[:, 1:]) * ANGSTROM_PER_NM


def at_gaps(per_kept):
    """A per-kept-frame quantity (K, ...) as the RMS over each gap's two ends (K − 1,)."""
    squared = np.mean(np.reshape(per_kept, (len(per_kept), -1)) ** 2, axis=1)
    return np.sqrt(0.5 * (squared[:-1] + squared[1:]))


def self_test(interp, positions, velocities, dt, factor):
    """Each interior kept frame rebuilt by bridging its two neighbours (two gaps apart), per kept frame the
    RMS miss (nm); the ends take their neighbour's."""
    k = len(positions)
    miss = np.full(k, np.nan)
    for parity in (0, 1):
        kept = np.arange(parity, k, 2)
        if len(kept) < 2:
            continue
        fine = interp.bridge(positions[kept], velocities[kept], 2 * dt, 2 * factor)[0]
        middles = fine[factor::2 * factor][: len(kept) - 1]
        miss[kept[:-1] + 1] = np.sqrt(np.mean((middles - positions[kept[:-1] + 1]) ** 2, axis=(1, 2)))
    miss[0], miss[-1] = miss[1], miss[-2]
    return miss


def one(interp, second, path, factor):
    traj = load(ROOT / path)
    traj = traj[: (traj.n_frames - 1) // factor * factor + 1]
    truth, dt = traj.positions, traj.dt * factor
    kept, true_v = truth[::factor], traj.velocities[::factor]
    # shooting from positions only, with σ: per gap σ and error (Å); the kept frames' velocities it found
    fine = interp.interpolate(traj.stride(factor).replace(velocities=None), factor, uncertainty=True)
    sigma, error = uncertainty_errors(traj, fine, factor, fine.uncertainty)[1:]
    estimated = fine.velocities[::factor]
    error_true_v = per_gap(interp.bridge(kept, true_v, dt, factor)[0], truth, factor)
    velocity_error = (estimated - true_v).reshape(len(kept), -1)  # nm/ps
    centred = velocity_error - velocity_error.mean(0)
    norm = np.mean(np.sum(centred ** 2, 1))
    lag = {f"lag{n}": float(np.mean(np.sum(centred[:-n] * centred[n:], 1)) / norm) for n in (1, 2, 5)}
    disagreement = per_gap(fine.positions, second.fill(kept, None, dt, factor)[0], factor)
    miss = self_test(interp, kept, estimated, dt, factor)

    def rho(signal):
        return float(spearmanr(signal, error).statistic)
    measured = kinetic_temperature(traj, vibrations=False)["temperature_K"]
    return {"file": Path(path).name, "temperature_K": float(measured),
            "gaps": len(error), "median_error_angstrom": float(np.median(error)),
            "median_error_true_velocities_angstrom": float(np.median(error_true_v)),
            "velocity_error_nm_per_ps": float(np.sqrt(np.mean(velocity_error ** 2))),
            "velocity_error_autocorrelation": lag,
            "spearman": {"oracle_velocity_error": rho(at_gaps(velocity_error)), "sigma": rho(sigma),
                         "second_potential": rho(disagreement), "self_test": rho(at_gaps(miss))}}


SIGNALS = {"oracle_velocity_error": "true velocity error (oracle)", "sigma": "calibrated σ",
           "second_potential": "second potential", "self_test": "doubled-gap self-test"}


def summarize(rows) -> dict:
    """Median and worst over the files."""
    ratio = [r["median_error_angstrom"] / r["median_error_true_velocities_angstrom"] for r in rows]
    return {"rows": rows,
            "spearman": {name: {"median": float(np.median([r["spearman"][name] for r in rows])),
                                "worst": float(min(r["spearman"][name] for r in rows))} for name in SIGNALS},
            "autocorrelation_median": {n: float(np.median([r["velocity_error_autocorrelation"][n] for r in rows]))
                                       for n in ("lag1", "lag2", "lag5")},
            "error_over_true_velocity_error": {"median": float(np.median(ratio)), "lowest": float(min(ratio))}}


def write(report) -> str:
    """bench/results/shooting-anatomy.{md,json}; returns the text."""
    lines = [f"# Where shooting's error comes from: `{Path(report['model']).name}`, positions only", "",
             f"`{report['command']}`", ""]
    for factor, s in report["factors"].items():
        rows, lags, ratio = s["rows"], s["autocorrelation_median"], s["error_over_true_velocity_error"]
        lines += [f"## Factor {factor} ({len(rows)} held-out trajectories)", "",
                  table(["trajectory", "T (K, measured)", "median gap error (Å)", "with true velocities (Å)",
                         "velocity error (nm/ps)", "its autocorrelation lag 1 / 2 / 5", *SIGNALS.values()],
                        [[r["file"], f"{r['temperature_K']:.0f}", f"{r['median_error_angstrom']:.1e}",
                          f"{r['median_error_true_velocities_angstrom']:.1e}", f"{r['velocity_error_nm_per_ps']:.3f}",
                          "{lag1:.2f} / {lag2:.2f} / {lag5:.2f}".format(**r["velocity_error_autocorrelation"]),
                          *(f"{r['spearman'][name]:.2f}" for name in SIGNALS)] for r in rows]), "",
                  f"With the true velocities at the kept frames the gaps' median error is {ratio['median']:.1f}x "
                  f"smaller (at least {ratio['lowest']:.1f}x): the velocities multiple shooting estimates carry most "
                  f"of the error. That error is correlated over two kept frames (autocorrelation median "
                  f"{lags['lag1']:.2f} at lag 1, {lags['lag2']:.2f} at lag 2: vibrations with a period near two "
                  f"gaps, which the kept positions barely decide) and forgotten a few kept frames later "
                  f"({lags['lag5']:.2f} at lag 5). Within-trajectory Spearman against the per-gap error, median / "
                  "worst: " + "; ".join(f"{label} {s['spearman'][name]['median']:.2f} / "
                                        f"{s['spearman'][name]['worst']:.2f}" for name, label in SIGNALS.items())
                  + ".", ""]
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "shooting-anatomy.json").write_text(json.dumps(report, indent=1))
    (RESULTS / "shooting-anatomy.md").write_text(text)
    return text


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="models/ethanol-gfn2-prop-f10.keras")
    p.add_argument("--second", default="models/ethanol-gfn2-prop-f20.keras",
                   help="an independently trained propagator of the same molecule (the ensemble's other member)")
    p.add_argument("--factors", type=int, nargs="+", default=[10, 20])
    p.add_argument("--test", nargs="+", default=TEST)
    p.add_argument("--rewrite", action="store_true",
                   help="only write the text again from bench/results/shooting-anatomy.json (no shooting)")
    args = p.parse_args()
    if args.rewrite:
        print(write(json.loads((RESULTS / "shooting-anatomy.json").read_text())))
        return
    missing = [t for t in args.test if not (ROOT / t).exists()]
    if missing:
        raise SystemExit(f"missing trajectories (python bench/make_data.py): {missing[0]} ...")
    interp, second = ShootingInterpolator.load(ROOT / args.model), ShootingInterpolator.load(ROOT / args.second)
    report = {"model": args.model, "second": args.second, "command": command_line("bench/shooting_anatomy.py"),
              "factors": {}}
    for factor in args.factors:
        rows = []
        for path in args.test:
            rows.append(one(interp, second, path, factor))
            print(json.dumps(rows[-1]), flush=True)
        report["factors"][str(factor)] = summarize(rows)
    print(write(report))


if __name__ == "__main__":
    main()
