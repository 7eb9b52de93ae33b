"""A fine trajectory at surrogate speed: the propagator's NVT run at its stride, each stride filled by the
same learned dynamics (``trajsr propagate --fill``), judged on its spectrum up to 4000 cm⁻¹ against fine
GFN2-xTB NVT.

    python bench/make_data.py 'ethanol-nvt-fine/*'      # 16 Bussi NVT runs at 500 K, 25 ps, every 0.5 fs
    python bench/filled.py --model models/ethanol-gfn2-prop-f10.keras

The reference runs are split into two halves: the overlap of one half's pooled spectrum with the other's
is the *floor* (what the reference agrees with itself to). The propagator runs from the same starts (1 ps
of Langevin in its own dynamics first, as bench/propagator.py: a GFN2-xTB state is not equilibrated in
the learned potential), Bussi at the same temperature and time constant, as long as the reference; each
half of its runs is compared with the other half of the reference. Its stride-sampled spectrum (what
``propagate`` without ``--fill`` gives) is shown for contrast: nothing above the stride's Nyquist limit.
Writes bench/results/filled-MODEL.{md,json}.
"""
import argparse
import glob
import json
import time
from pathlib import Path

import numpy as np

from trajsr.card import command_line
from trajsr import ShootingInterpolator, load
from trajsr.observables import kinetic_temperature
from trajsr.propagation.propagator import Propagator
from trajsr.report import table
from trajsr.spectra import compare, spectrum

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def halves(a, b, figure):
    """``figure(x, y)`` averaged over the two cross pairings of halves (a0 with b1, a1 with b0)."""
    k = len(a) // 2
    return [figure(a[:k], b[k:]), figure(a[k:], b[:k])]


#: the X-H bends' region (cm⁻¹), whose centroid shows a shift of the bends between two spectra
BENDS = (1300.0, 1700.0)


def centroid(spec, low, high) -> float:
    """Intensity-weighted mean wavenumber (cm⁻¹) of ``spec`` between ``low`` and ``high``."""
    inside = (spec.wavenumber >= low) & (spec.wavenumber <= high)
    return float(np.average(spec.wavenumber[inside], weights=spec.intensity[inside]))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(ROOT / "models" / "ethanol-gfn2-prop-f10.keras"))
    p.add_argument("--reference", default=str(ROOT / "data" / "ethanol-nvt-fine" / "t500" / "*.h5"),
                   help="fine GFN2-xTB NVT runs (glob)")
    p.add_argument("--temperature", type=float, default=500.0, help="the references' thermostat target (K)")
    p.add_argument("--tau-fs", type=float, default=100.0, help="the references' Bussi time constant (fs)")
    p.add_argument("--equilibration-fs", type=float, default=1000.0, help="Langevin in the propagator first (fs)")
    args = p.parse_args()
    files = sorted(glob.glob(args.reference))
    if len(files) < 4:
        raise SystemExit(f"need at least 4 reference runs in {args.reference}; python bench/make_data.py "
                         "'ethanol-nvt-fine/*' makes them")
    refs = [load(f) for f in files]
    n = min(r.n_frames for r in refs)
    refs = [r[:n] for r in refs]
    prop = Propagator.load(args.model)
    strides = int(round((n - 1) * refs[0].dt * 1000 / prop.stride_fs))
    x0, v0 = np.stack([r.positions[0] for r in refs]), np.stack([r.velocities[0] for r in refs])
    start = time.perf_counter()
    n_eq = int(round(args.equilibration_fs / prop.stride_fs))
    if n_eq:
        eq = prop.run(x0, v0, n_eq, thermostat="langevin", temperature_K=args.temperature, friction_per_fs=0.01, seed=1)
        x0, v0 = np.stack([r.positions[-1] for r in eq]), np.stack([r.velocities[-1] for r in eq])
    runs = prop.run(x0, v0, strides, thermostat="bussi", temperature_K=args.temperature,
                    thermostat_time_fs=args.tau_fs, seed=0)
    run_seconds = time.perf_counter() - start
    if any("guard" in r.info for r in runs):
        stopped = next(r.info["guard"] for r in runs if "guard" in r.info)
        raise SystemExit(f"the propagator's guard stopped a run: {stopped}")
    start = time.perf_counter()
    filler = ShootingInterpolator(prop.layer)
    filled = [filler.interpolate(r, prop.factor) for r in runs]
    fill_seconds = time.perf_counter() - start

    def figures(mine, theirs):
        spec, ref = spectrum(mine, "velocities"), spectrum(theirs, "velocities")
        c = compare(spec, ref)
        return dict(overlap=c["overlap"], range_cm1=c["range_cm1"],
                    bands={b: v["ratio"] for b, v in c["bands"].items()},
                    reference_share={b: v.get("reference_share") for b, v in c["bands"].items()},
                    bend_centroid_cm1=[centroid(spec, *BENDS), centroid(ref, *BENDS)])

    floor = halves(refs, refs, figures)
    model = halves(filled, refs, figures)
    strided_refs = [r[::prop.factor] for r in refs]
    at_stride = halves(runs, strided_refs, figures)
    kelvin = lambda trajs: float(np.mean([  # noqa: E731
        kinetic_temperature(t, "velocities")["vibrational_temperature_K"] for t in trajs]))
    mean = lambda pair, key: float(np.mean([f[key] for f in pair]))  # noqa: E731
    band_names = [b for b in floor[0]["bands"] if floor[0]["bands"][b] is not None]
    shares = ", ".join(f"{b} {np.mean([f['reference_share'][b] for f in floor]):.1%}" for b in band_names)
    shift = np.mean([f["bend_centroid_cm1"][0] - f["bend_centroid_cm1"][1] for f in model])
    band = lambda pair, b: [f["bands"][b] for f in pair]  # noqa: E731
    result = dict(
        command=command_line("bench/filled.py"), model=Path(args.model).name,
        reference_runs=[Path(f).name for f in files], reference_ps_per_run=float(refs[0].time[-1] - refs[0].time[0]),
        reference_vibrational_temperature_K=kelvin(refs), filled_vibrational_temperature_K=kelvin(filled),
        floor=floor, filled=model, at_stride=at_stride, propagate_seconds=run_seconds, fill_seconds=fill_seconds,
        fine_frames=int(sum(f.n_frames for f in filled)))
    rows = [["GFN2-xTB half against the other half (floor)", f"{mean(floor, 'overlap'):.3f}",
             *[" / ".join(f"{x:.2f}" for x in band(floor, b)) for b in band_names]],
            [f"propagated + filled ({prop.dt_fs:g} fs) against the other half", f"{mean(model, 'overlap'):.3f}",
             *[" / ".join(f"{x:.2f}" for x in band(model, b)) for b in band_names]],
            [f"propagated, at its {prop.stride_fs:g} fs stride (to {at_stride[0]['range_cm1'][1]:.0f} cm⁻¹)",
             f"{mean(at_stride, 'overlap'):.3f}",
             *[" / ".join("-" if x is None else f"{x:.2f}" for x in band(at_stride, b)) for b in band_names]]]
    lines = [f"# Propagated and filled: `{Path(args.model).name}`, Bussi NVT {args.temperature:g} K", "",
             f"Command: `{result['command']}`. {len(refs)} GFN2-xTB Bussi runs of "
             f"{result['reference_ps_per_run']:g} ps at 0.5 fs (vibrational temperature "
             f"{result['reference_vibrational_temperature_K']:.0f} K measured), split in halves; the propagator's runs "
             f"from the same starts, filled to 0.5 fs by the same dynamics (vibrational temperature "
             f"{result['filled_vibrational_temperature_K']:.0f} K). Overlap of the pooled VDOS (from velocities) over "
             "300-4000 cm⁻¹, mean of the two cross pairings; band intensities relative to the reference, each pairing.",
             "", table(["spectrum", "overlap", *[f"{b} band" for b in band_names]], rows), "",
             f"The reference's share of its spectrum in each band: {shares}. The centroid of the filled runs' "
             f"spectrum over {BENDS[0]:g}-{BENDS[1]:g} cm⁻¹ (the X-H bends) lies {shift:+.1f} cm⁻¹ from the "
             "reference's (mean of the two pairings): a band edge inside that peak turns a small shift into a "
             "large ratio.", "",
             f"The propagator's {len(runs)} runs took {run_seconds:.0f} s and filling them {fill_seconds:.0f} s "
             f"({result['fine_frames'] / fill_seconds:,.0f} fine frames/s) on this machine."]
    text = "\n".join(lines)
    print(text)
    name = f"filled-{Path(args.model).stem}"
    (RESULTS / f"{name}.md").write_text(text + "\n")
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
