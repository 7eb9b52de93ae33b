"""What a reconstruction gives back of what users rebuild frames for: the vibrational spectrum above the
coarse file's Nyquist limit, and the kinetic energy, from positions only.

    python bench/spectra.py                                    # ethanol, 12 held-out trajectories, 5 and 10 fs
    python bench/spectra.py --molecule malonaldehyde --factors 10
    python bench/spectra.py --molecule uracil --factors 10

For every held-out test trajectory (0.5 fs, never used to train any model; ``bench/make_data.py`` makes
them) and factor: keep every factor-th frame's positions, rebuild the rest with the cubic spline, the
Bi-LSTM of that factor (where one is shipped) and shooting with the molecule's propagator. Judged against
the trajectory itself, as ``trajsr spectrum`` and ``trajsr temperature`` judge a file:
- spectra (mass-weighted VDOS) from central differences of positions at 0.5 fs, reference and
  reconstruction alike; overlap over 300-4000 cm⁻¹ and the intensity of the X-H stretch bands relative
  to the truth (:mod:`trajsr.spectra`);
- kinetic energy (temperature over 3N-3) from the velocities each method writes (spline: its derivative;
  Bi-LSTM: the derivative of the spline through its fine path; shooting: its learned paths) against the
  file's own velocities, and from central differences of the coarse positions (what a user has without
  trajsr).
Median and worst over the trajectories; each labelled by its measured kinetic temperature. Writes
bench/results/spectra-MOLECULE.{md,json}.
"""
import argparse
import glob
import json
import time
from pathlib import Path

import numpy as np

from trajsr.card import command_line
from trajsr import ShootingInterpolator, get_baseline, load
from trajsr.interpolation.learned import LearnedInterpolator
from trajsr.observables import kinetic_temperature
from trajsr.report import table
from trajsr.spectra import compare, spectrum
from trajsr.units import INVERSE_CM_PER_THZ

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
#: held-out test trajectories of each molecule (ethanol: 12 at 300/500/700 K)
TESTS = {"ethanol": [f"{ROOT}/data/ethanol/ethanol-gfn2-seed{s}.h5" for s in (101, 102, 103)]
         + [f"{ROOT}/data/ethanol-test/t{t}/*.h5" for t in (300, 500, 700)],
         **{m: [f"{ROOT}/data/{m}-test/t{t}/*.h5" for t in (300, 500, 700)] for m in ("malonaldehyde", "uracil")}}
#: the bands judged for each molecule (names of trajsr.spectra.BANDS): the X-H stretches by atom, the
#: 2000-4000 cm⁻¹ part of the spectrum of the hydrogens on O or N and on C, wherever the molecule puts them,
#: and for comparison the fixed O-H/N-H window (3300-4000 cm⁻¹), which malonaldehyde's hydrogen-bonded O-H
#: stretch, near 2960 cm⁻¹, leaves with a tail
BANDS = {molecule: ["O-H/N-H stretch (by atom)", "C-H stretch (by atom)", "O-H/N-H stretch"]
         for molecule in ("ethanol", "malonaldehyde", "uracil")}


def methods(molecule, factor):
    """(name, interpolator) of every reconstruction judged at ``factor``."""
    out = [("spline", get_baseline("spline"))]
    bilstm = ROOT / "models" / f"{molecule}-gfn2-f{factor}.keras"
    if bilstm.exists():
        out.append((f"Bi-LSTM {bilstm.name}", LearnedInterpolator(bilstm)))
    propagator = ROOT / "models" / f"{molecule}-gfn2-prop-f10.keras"
    out.append((f"shooting {propagator.name}", ShootingInterpolator.load(propagator)))
    return out


def judge(path, factor, judged, bands):
    """Every method on one trajectory at one factor: overlap, band ratios, kinetic-energy ratio, seconds."""
    truth = load(path)
    coarse = truth.stride(factor).replace(velocities=None)
    reference = spectrum(truth, "positions")

    def kinetic_of(traj, source):  # K over 3N − 3 (no rotation fitted to every frame: not needed here)
        return kinetic_temperature(traj, source, vibrations=False)["temperature_K"]
    kinetic = kinetic_of(truth, "velocities")
    row = dict(file=Path(path).name, temperature_K=kinetic, methods={},
               coarse_differences_kinetic_ratio=kinetic_of(coarse, "positions") / kinetic)
    for name, interp in judged:
        start = time.perf_counter()
        rebuilt = interp.interpolate(coarse, factor)
        seconds = time.perf_counter() - start
        c = compare(spectrum(rebuilt, "positions"), reference)
        row["methods"][name] = dict(overlap=c["overlap"], fine_frames_per_second=rebuilt.n_frames / seconds,
                                    **{band: c["bands"][band]["ratio"] for band in bands},
                                    kinetic_ratio=kinetic_of(rebuilt, "velocities") / kinetic)
    # every comparison holds the truth's share of each band: take it from the last one
    row["truth_share"] = {band: c["bands"][band]["reference_share"] for band in bands}
    return row


def worst_ratio(values):
    """The value farthest from 1 (a ratio's worst case, above or below)."""
    return float(max(values, key=lambda v: abs(np.log(v))))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--molecule", choices=sorted(TESTS), default="ethanol")
    p.add_argument("--factors", type=int, nargs="+", default=[10, 20])
    p.add_argument("--tests", nargs="+", help="test trajectories (default: the molecule's held-out set)")
    args = p.parse_args()
    tests = sorted({f for pattern in (args.tests or TESTS[args.molecule]) for f in glob.glob(pattern)})
    if not tests:
        raise SystemExit(f"no test trajectories; make them first: python bench/make_data.py '{args.molecule}-test/*'")
    bands = BANDS[args.molecule]
    command = command_line("bench/spectra.py")
    lines = [f"# Spectra and kinetic energy from positions only: {args.molecule}, {len(tests)} held-out trajectories",
             "", f"Command: `{command}`. Spectra from central differences of positions at 0.5 fs (reconstruction "
             "and truth alike), overlap over 300-4000 cm⁻¹; band intensity (the X-H stretches: the 2000-4000 "
             "cm⁻¹ part of the spectrum of the hydrogens on O/N and on C) relative to the truth; kinetic energy "
             "from the velocities each method writes, relative to the file's own. Median (worst).", ""]
    results = {}
    for factor in args.factors:
        judged = methods(args.molecule, factor)
        per = []
        for path in tests:
            per.append(judge(path, factor, judged, bands))
            print(factor, json.dumps(per[-1]), flush=True)
        summary = {}
        for name, _ in judged:
            values = {key: [r["methods"][name][key] for r in per] for key in ["overlap", *bands, "kinetic_ratio"]}
            summary[name] = {key: dict(median=float(np.median(v)),
                                       worst=float(np.min(v)) if key == "overlap" else worst_ratio(v))
                             for key, v in values.items()}
            summary[name]["fine_frames_per_second"] = float(np.median([r["methods"][name]["fine_frames_per_second"]
                                                                       for r in per]))
        coarse_ke = [r["coarse_differences_kinetic_ratio"] for r in per]
        dt_fs = load(tests[0]).dt * 1000 * factor
        results[factor] = dict(kept_dt_fs=dt_fs, per_trajectory=per, summary=summary,
                               coarse_differences_kinetic_ratio=dict(median=float(np.median(coarse_ke)),
                                                                     worst=worst_ratio(coarse_ke)))
        cell = lambda s, f: f"{s['median']:{f}} ({s['worst']:{f}})"  # noqa: E731
        rows = [[name, cell(s["overlap"], ".3f"), *[cell(s[b], ".2f") + "x" for b in bands],
                 cell(s["kinetic_ratio"], ".3f") + "x"] for name, s in summary.items()]
        rows.append(["central differences of the coarse file", "-", *["-" for _ in bands],
                     cell(results[factor]["coarse_differences_kinetic_ratio"], ".3f") + "x"])
        temps = sorted(r["temperature_K"] for r in per)
        shares = ", ".join(f"{b} {np.median([r['truth_share'][b] for r in per]):.1%}" for b in bands)
        lines += [f"## {dt_fs:g} fs between kept frames (factor {factor}; Nyquist limit "
                  f"{INVERSE_CM_PER_THZ * 1000 / (2 * dt_fs):.0f} cm⁻¹)", "",
                  f"Trajectories at measured kinetic temperatures {temps[0]:.0f}-{temps[-1]:.0f} K. The truth's "
                  f"share of its spectrum (300-4000 cm⁻¹) in each band, median: {shares}.", "",
                  table(["reconstruction", "overlap", *[f"{b} band" for b in bands], "kinetic energy"], rows), ""]
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"spectra-{args.molecule}.md").write_text(text + "\n")
    (RESULTS / f"spectra-{args.molecule}.json").write_text(json.dumps(dict(command=command, results=results),
                                                                      indent=1) + "\n")


if __name__ == "__main__":
    main()
