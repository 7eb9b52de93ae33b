"""MAE (Å) of linear, cubic spline and Hermite interpolation at factors 2-40.

On a freshly made ``ethanol-gfn2`` trajectory (10 ps, seed 101; made if missing) and on the mbGDML
6-water MP2 trajectory in ../shared/data. Writes bench/results/baselines.{md,json}.

    python bench/baselines.py [--data data/ethanol] [--seed 101]
"""
import argparse
import json
from pathlib import Path

from trajsr.card import command_line
from trajsr import get_baseline, load, reconstruction_errors
from trajsr.datasets import make
from trajsr.report import table

ROOT = Path(__file__).resolve().parents[1]
FACTORS = [2, 5, 10, 20, 40]
METHODS = ["linear", "spline", "hermite"]


def evaluate(fine, factors=FACTORS):
    rows = {}
    for factor in factors:
        coarse = fine.stride(factor)
        rows[factor] = {m: reconstruction_errors(fine, get_baseline(m).interpolate(coarse, factor), factor)
                        ["mae_angstrom"] for m in METHODS}
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT / "data" / "ethanol"))
    parser.add_argument("--seed", type=int, default=101)
    args = parser.parse_args()
    path = Path(args.data) / f"ethanol-gfn2-seed{args.seed}.h5"
    if not path.exists():
        make("ethanol-gfn2", seeds=[args.seed], md_steps=20000, out_dir=args.data)
    ethanol = load(path)
    water_path = next((ROOT.parent / "shared" / "data" / "mbgdml-water").glob("6h2o*.npz"))
    water = load(water_path, dt_fs=1.0)  # 1 fs spacing (the file stores no time)
    results = {"ethanol-gfn2 (GFN2-xTB, 0.5 fs, %.1f ps, seed %d)" % (ethanol.time[-1] - ethanol.time[0],
                                                                      args.seed): (0.5, evaluate(ethanol)),
               "6 H2O (MP2/def2-TZVP, 1 fs, 0.3 ps)": (1.0, evaluate(water))}
    lines = ["# Baselines: MAE over dropped frames (Å)", "",
             f"Command: `{command_line('bench/baselines.py')}`.", ""]
    for name, (dt, rows) in results.items():
        lines += [f"## {name}", "", table(["factor", "gap (fs)"] + [f"{m} (Å)" for m in METHODS],
                                          [[f, f"{f * dt:g}"] + [f"{rows[f][m]:.2e}" for m in METHODS]
                                           for f in rows]), ""]
    text = "\n".join(lines)
    print(text)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "baselines.md").write_text(text + "\n")
    (out / "baselines.json").write_text(json.dumps({k: v[1] for k, v in results.items()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
