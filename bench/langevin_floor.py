"""How well can any Hamiltonian path rebuild a Langevin trajectory? The exact potential's answer.

    python bench/langevin_floor.py [--every 1] [--processes 2] [--record]

A Langevin thermostat kicks every atom at every MD step; no deterministic path follows the kicks made
inside a gap. This asks the reference potential itself (GFN2-xTB, the one the trajectories were made
with) to fill each gap as shooting does with a learned one, given what no positions-only method has:
the exact velocities at both kept frames. The path from each kept frame (velocity Verlet, the data's
0.5 fs step, no thermostat), each pinned to both ends by the cubic Hermite term and averaged
(:func:`trajsr.interpolation.pinned_paths.pin_and_average`, shooting's own bridge). What it misses is what
the thermostat put in the gap: a floor for every method built on a potential's paths, with or without
velocities. An NVE trajectory checks the oracle (there it must be exact up to the integrator's rounding).

Beside it, on the same gaps: the shipped propagator with the file's velocities and from positions only,
and SciPy's cubic spline. MAE over the dropped frames (Å), per trajectory, median and worst.
Writes bench/results/langevin-floor.{md,json}.
"""
import argparse
import glob
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
TESTS = sorted(glob.glob(str(ROOT / "data" / "ethanol-langevin" / "*" / "*.h5")))
CONTROL = str(ROOT / "data" / "ethanol" / "ethanol-gfn2-seed101.h5")  # NVE, same recipe
FACTOR = 10


def exact_paths(path, gaps, factor):
    """GFN2-xTB velocity-Verlet paths (nm, nm/ps) from the left and (time reversed) the right kept frame of
    each gap in ``gaps``, at the data's MD step: two arrays (len(gaps), factor + 1, N, 3) each."""
    from ase import Atoms, units
    from ase.md.verlet import VelocityVerlet
    from trajsr import load
    from trajsr.datasets.xtb import xtb_calculator
    from trajsr.units import ANGSTROM_PER_NM, NM_PER_ANGSTROM, NM_PER_PS_PER_ANGSTROM_PER_FS
    fine = load(path)
    step_fs = fine.info["md_step_fs"]
    atoms = Atoms(fine.elements, positions=fine.positions[0] * ANGSTROM_PER_NM)
    atoms.calc = xtb_calculator(fine.info["method"].split()[0].lower().replace("-xtb", ""))
    per_ps = units.fs * NM_PER_PS_PER_ANGSTROM_PER_FS  # nm/ps per ASE velocity unit (Å per ASE time)
    out = np.empty((2, len(gaps), factor + 1, fine.n_atoms, 2, 3))
    for i, g in enumerate(gaps):
        for side, (frame, sign) in enumerate(((g * factor, 1.0), ((g + 1) * factor, -1.0))):
            atoms.set_positions(fine.positions[frame] * ANGSTROM_PER_NM)
            atoms.set_velocities(sign * fine.velocities[frame] / per_ps)
            dynamics, states = VelocityVerlet(atoms, step_fs * units.fs), []
            dynamics.attach(lambda: states.append((atoms.get_positions() * NM_PER_ANGSTROM,
                                                   sign * atoms.get_velocities() * per_ps)), interval=1)
            dynamics.run(factor)
            out[side, i] = np.stack([np.stack(s, axis=1) for s in (states if sign > 0 else states[::-1])])
    return out


def judge(path, every, processes):
    """The oracle, the propagator with and without velocities and the spline on every ``every``-th gap."""
    from trajsr import ShootingInterpolator, get_baseline, load
    from trajsr.interpolation.pinned_paths import pin_and_average
    from trajsr.observables import kinetic_temperature
    from trajsr.units import ANGSTROM_PER_NM
    fine = load(path)
    coarse = fine.stride(FACTOR)
    gaps = np.arange(0, coarse.n_frames - 1, every)
    start = time.perf_counter()
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        parts = list(pool.map(exact_paths, [path] * processes, np.array_split(gaps, processes),
                              [FACTOR] * processes))
    paths = np.concatenate(parts, axis=1)  # (2, gaps, factor + 1, N, 2, 3)
    seconds = time.perf_counter() - start
    kept_x, kept_v = coarse.positions, coarse.velocities
    forward = paths[0, ..., 0, :], paths[0, ..., 1, :]
    backward = paths[1, ..., 0, :], paths[1, ..., 1, :]
    oracle = pin_and_average(forward, backward, kept_x[gaps], kept_v[gaps], kept_x[gaps + 1], kept_v[gaps + 1],
                             coarse.dt)[0]

    def on_gaps(positions):  # a fine trajectory's dropped frames of the chosen gaps (gaps, factor − 1, N, 3)
        return positions[:-1].reshape(coarse.n_frames - 1, FACTOR, fine.n_atoms, 3)[gaps, 1:]

    truth = on_gaps(fine.positions)
    shooting = ShootingInterpolator.load(ROOT / "models" / "ethanol-gfn2-prop-f10.keras")
    positions_only = coarse.replace(velocities=None)
    dropped = {"exact potential, velocities": oracle[:, 1:-1],
               "propagator, velocities": on_gaps(shooting.interpolate(coarse, FACTOR).positions),
               "propagator, positions only": on_gaps(shooting.interpolate(positions_only, FACTOR).positions),
               "cubic spline": on_gaps(get_baseline("spline").interpolate(positions_only, FACTOR).positions)}
    return dict(file=Path(path).name, method=fine.info.get("method", ""), gaps=int(len(gaps)),
                temperature_K=kinetic_temperature(fine, "velocities", vibrations=False)["temperature_K"],
                mae_angstrom={k: float(np.abs(x - truth).mean() * ANGSTROM_PER_NM) for k, x in dropped.items()},
                oracle_seconds=seconds)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tests", nargs="+", default=TESTS, help="Langevin trajectories (every MD step saved)")
    p.add_argument("--control", default=CONTROL, help="an NVE trajectory of the same recipe (oracle check)")
    p.add_argument("--every", type=int, default=1, help="use every n-th gap (default: all)")
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--record", action="store_true", help="write bench/results/langevin-floor.{md,json}")
    args = p.parse_args()
    if not args.tests:
        sys.exit("no Langevin trajectories: python bench/make_data.py 'ethanol-langevin/*'")
    from trajsr.datasets.xtb import single_threaded
    single_threaded()  # one tblite process per core (inherited by the pool's processes)
    from trajsr.cli import import_tensorflow
    import_tensorflow()
    rows = []
    for path in [*args.tests, args.control]:
        row = judge(path, args.every, args.processes)
        rows.append(row)
        print(json.dumps(row), flush=True)
    from trajsr.report import table
    methods = list(rows[0]["mae_angstrom"])
    spline = "cubic spline"
    gaps = "all gaps" if args.every == 1 else f"every {args.every}th gap"
    from trajsr.card import command_line
    lines = ["# What a Hamiltonian path can rebuild of a Langevin trajectory: the exact potential's floor", "",
             f"Command: `{command_line('bench/langevin_floor.py')}`. GFN2-xTB ethanol, "
             f"factor {FACTOR} (5 fs between kept frames), {gaps}. MAE over the dropped frames "
             "(Å); in brackets how many times below the cubic spline. \"Exact potential, velocities\": GFN2-xTB "
             "paths from both kept frames with their exact velocities, pinned to both ends and averaged "
             "(shooting's bridge). Given both kept frames' positions and velocities the dropped frames depend on "
             "nothing else in the file (the dynamics is Markovian), so no reconstruction from positions alone "
             "can expect to beat it. The last row is an NVE run (oracle check: there it must be exact).",
             ""]
    header = ["trajectory", "ensemble", "T (K)", *methods]
    body = [[r["file"], "Langevin" if "Langevin" in r["method"] else "NVE", f"{r['temperature_K']:.0f}",
             *(f"{r['mae_angstrom'][m]:.2e}" + (f" ({r['mae_angstrom'][spline] / r['mae_angstrom'][m]:.1f}x)"
                                                 if m != spline else "") for m in methods)] for r in rows]
    lines += [table(header, body), ""]
    for m in methods[:-1]:
        ratios = [r["mae_angstrom"][spline] / r["mae_angstrom"][m] for r in rows[:-1]]  # the Langevin runs
        lines.append(f"- {m}: median {np.median(ratios):.1f}x below the spline, worst {min(ratios):.1f}x "
                     f"(Langevin runs)")
    print("\n".join(lines))
    if args.record:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "langevin-floor.md").write_text("\n".join(lines) + "\n")
        (RESULTS / "langevin-floor.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
