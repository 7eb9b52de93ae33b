"""Third-party ab initio data: a propagator learned from one short MP2 water trajectory's own forces,
judged by shooting on the part of it it never saw.

    python bench/water.py                    # ../shared/data/mbgdml-water/6h2o...npz, 3 folds, ~15 min on 2 cores
    python bench/water.py --minutes 1        # quicker, less trained
    python bench/water.py --base data/w6-gfn2-prop.keras   # also: a GFN2-xTB model of the cluster, adapted per fold

The ``--base`` model (GFN2-xTB pre-training of the same cluster, ~12 min on 2 cores) is made from the file's
first frame::

    python -c "import trajsr; t = trajsr.load('../shared/data/mbgdml-water/6h2o...npz', dt_fs=1); \
               trajsr.save(t[:1].replace(velocities=None, forces=None, potential_energy=None), 'data/w6.xyz')"
    trajsr datasets make --geometry data/w6.xyz --seed 1 2 --steps 10000 --temperature 300 -o data/w6-gfn2
    trajsr train data/w6-gfn2/w6-gfn2-seed1.h5 --validation data/w6-gfn2/w6-gfn2-seed2.h5 --task propagate \
           --model hnn --factor 10 --substeps 10 --width 128 --force-matching-minutes 6 --max-minutes 4 \
           --epochs 1000 -o data/w6-gfn2-prop.keras

The file (keithgroup/mbGDML test data, MIT): 6 water molecules, NVE velocity Verlet with MP2/def2-TZVP
forces (ORCA through ASE), 301 frames 1 fs apart (0.3 ps), forces and velocities stored. No time is
stored: the spacing (1 fs) is given. Three folds: each 100 fs third of the file is the test segment once,
the other two thirds (as two trajectories) train a Hamiltonian propagator (``hnn``, stride 5 fs) by
force matching on their stored forces, then a short rollout fit. The test segment is kept every 5th
frame (5 fs) and rebuilt by shooting from positions only (against SciPy's cubic spline) and with its
velocities (against cubic Hermite): MAE over the dropped frames (Å), median and worst over the folds.

What 0.3 ps limits: 200 training frames of one cluster at one temperature; 20 test gaps per fold; no
separate validation (fixed minutes instead of early stopping), and no out-of-sample temperature.
Writes bench/results/water.{md,json}.
"""
import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from trajsr.card import command_line
from trajsr import get_baseline, load, reconstruction_errors
from trajsr.observables import kinetic_temperature
from trajsr.report import table

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SHARED = Path(os.environ.get("TRAJSR_SHARED_DATA", ROOT.parent / "shared" / "data")) / "mbgdml-water"
FILE = "6h2o.temelso.etal.pr.md.gfn2.300k.step10000-ase.md-orca.mp2.def2tzvp.300k.npz"


def fold(traj, k, minutes, width, seed, work, base=None, adapted=True):
    """Train on the two thirds other than ``k`` (from scratch, or ``base`` adapted to their forces; or
    ``base`` as is), shoot the third ``k``; returns one result row."""
    from trajsr.adapt import adapt
    from trajsr.interpolation.shooting import ShootingInterpolator
    from trajsr.propagation.train import fit_propagator
    test = traj[100 * k: 100 * k + 101]
    train = [traj[a:b] for a, b in ((0, 100 * k + 1), (100 * k + 100, traj.n_frames)) if b - a > 40]
    output = Path(work) / f"water-fold{k}.keras"
    start = time.perf_counter()
    if base is None:
        fit_propagator(train, architecture="hnn", factor=5, strides=4, substeps=5, width=width, output=output, force=True,
                       force_matching_minutes=minutes, max_minutes=minutes, epochs=1000, seed=seed, verbose=0,
                       work_dir=Path(work) / f"fold{k}")
    elif adapted:
        adapt(base, train, output, max_minutes=2 * minutes, seed=seed, force=True)
    else:
        output = base
    seconds = time.perf_counter() - start
    shooting = ShootingInterpolator.load(output)
    coarse = test.stride(5)
    row = {"fold": k, "test_fs": [100 * k, 100 * k + 100], "train_frames": int(sum(t.n_frames for t in train)),
           "temperature_K": float(kinetic_temperature(test, vibrations=False)["temperature_K"]),
           "training_seconds": seconds,
           "model": "from the file's forces alone" if base is None else
           f"{Path(base).name}{' adapted to the forces' if adapted else ' as is'}"}
    for mode, data, baseline in (("positions only", coarse.replace(velocities=None), "spline"),
                                 ("with velocities", coarse, "hermite")):
        shot = shooting.interpolate(data, 5)
        base_fine = get_baseline(baseline).interpolate(data, 5)
        row[mode] = {"shooting_mae_angstrom": reconstruction_errors(test, shot, 5)["mae_angstrom"],
                     f"{baseline}_mae_angstrom": reconstruction_errors(test, base_fine, 5)["mae_angstrom"],
                     "baseline": baseline}
        row[mode]["ratio"] = row[mode][f"{baseline}_mae_angstrom"] / row[mode]["shooting_mae_angstrom"]
    print(json.dumps(row), flush=True)
    return row


def section(title, rows):
    summary = {mode: {"median": float(np.median([r[mode]["ratio"] for r in rows])),
                      "worst": float(min(r[mode]["ratio"] for r in rows))} for mode in ("positions only", "with velocities")}
    lines = [f"## {title}", "",
             table(["test segment (fs)", "T (K, measured)", "shooting MAE, positions only (Å)", "spline (Å)",
                    "spline/shooting", "shooting MAE, with velocities (Å)", "Hermite (Å)", "Hermite/shooting",
                    "training (s)"],
                   [[f"{r['test_fs'][0]}-{r['test_fs'][1]}", f"{r['temperature_K']:.0f}",
                     f"{r['positions only']['shooting_mae_angstrom']:.2e}",
                     f"{r['positions only']['spline_mae_angstrom']:.2e}", f"{r['positions only']['ratio']:.2f}x",
                     f"{r['with velocities']['shooting_mae_angstrom']:.2e}",
                     f"{r['with velocities']['hermite_mae_angstrom']:.2e}", f"{r['with velocities']['ratio']:.2f}x",
                     f"{r['training_seconds']:.0f}"] for r in rows]), "",
             f"Positions only: median {summary['positions only']['median']:.2f}x below the spline, worst "
             f"{summary['positions only']['worst']:.2f}x; with the file's velocities: median "
             f"{summary['with velocities']['median']:.2f}x below Hermite, worst {summary['with velocities']['worst']:.2f}x.",
             ""]
    return lines, summary


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--file", default=str(SHARED / FILE))
    p.add_argument("--minutes", type=float, default=2.0, help="force matching, then rollout fit, each at most (min)")
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--base", help="also: this propagator of the same cluster (GFN2-xTB pre-training) adapted "
                                  "to each fold's forces")
    args = p.parse_args()
    if not Path(args.file).exists():
        raise SystemExit(f"{args.file}: not found (the shared third-party data; set TRAJSR_SHARED_DATA)")
    traj = load(args.file, dt_fs=1.0)
    command = command_line("bench/water.py")
    report = {"command": command, "file": Path(args.file).name}
    lines = ["# Six MP2 waters (mbGDML, 1 fs, 0.3 ps): propagators from the file's own forces", "", f"`{command}`", "",
             "Kept frames 5 fs apart; each fold's model saw only the other 200 fs of this one file (200 frames of "
             "one cluster at one temperature), 20 test gaps per fold, no validation set: read these as what one "
             "short AIMD file gives, not as a transferable water model.", ""]
    with tempfile.TemporaryDirectory() as work:
        for name, base, adapted in (("from the file's forces alone", None, True),
                                    ("GFN2-xTB pre-training as is", args.base, False),
                                    ("GFN2-xTB pre-training, adapted to the file's forces", args.base, True)):
            if name != "from the file's forces alone" and base is None:
                continue
            rows = [fold(traj, k, args.minutes, args.width, args.seed, work, base, adapted) for k in range(3)]
            more, summary = section(name, rows)
            lines += more
            report[name] = {"folds": rows, "summary": summary, "base": base}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "water.json").write_text(json.dumps(report, indent=1))
    (RESULTS / "water.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
