"""The Markdown table and JSON of a ``bench/propagator.py`` run: ``bench/results/NAME.{md,json}``."""
import json
from pathlib import Path

from trajsr.report import table

RESULTS = Path(__file__).resolve().parent / "results"


def by_element(w1):
    """The bond W1 blind to bond labels, or '-' where the run that made the figures predates it."""
    return "-" if w1 is None else f"{w1:.4f}"


def hops_line(nvt):
    """A line on proton transfers in NVT (hydrogen hops between heavy atoms), where either side has any."""
    parts = []
    for t, o in nvt.items():
        mine, theirs = o.get("hydrogen_hops_per_ps"), o.get("reference_hydrogen_hops_per_ps")
        if mine or theirs:
            runs = len(o["reference_runs"])
            parts.append(f"{t} K {mine:.3f} ({mine * o['model_ps_per_run'] * runs:.0f} hops) / {theirs:.3f} "
                         f"({theirs * o['reference_ps_per_run'] * runs:.0f})")
    return ["Hydrogen hops between heavy atoms (proton transfers, committed within 1.1 Å) per ps in NVT, "
            "propagator / GFN2-xTB: " + "; ".join(parts) + ".", ""] if parts else []


def write(results, name):
    rows = []
    for temp, o in results["nvt"].items():
        rows.append([f"NVT {temp} K", f"{o['floor']:.3f}", f"{o['model_overlap']:.3f}",
                     f"{o['temperature_by_element_error'] * 100:.1f}% ± "
                     f"{o.get('temperature_by_element_error_standard_error', float('nan')) * 100:.1f}% "
                     f"({o.get('temperature_by_element_worst', '?')})", f"{o['bond_w1_angstrom']:.4f}",
                     by_element(o.get("bond_w1_by_element_angstrom")),
                     f"{o['angle_w1_degrees']:.2f}",
                     f"{o['mean_temperature']['bussi']:.0f} / {o['mean_temperature']['langevin']:.0f}",
                     "yes" if o["survived"] else "NO"])
    nve = results["nve"]
    rows.append([f"NVE, {len(nve['per_start'])} starts", f"{nve['ensemble']['floor']:.3f}",
                 f"{nve['ensemble']['model_overlap']:.3f}",
                 f"{nve['temperature_by_element_error']['median'] * 100:.1f}% / "
                 f"{nve['temperature_by_element_error']['worst'] * 100:.1f}%",
                 f"{nve['bond_w1_angstrom']['median']:.4f} / {nve['bond_w1_angstrom']['worst']:.4f}",
                 by_element(nve.get("bond_w1_by_element_angstrom", {}).get("median")) + " / " +
                 by_element(nve.get("bond_w1_by_element_angstrom", {}).get("worst")),
                 f"{nve['angle_w1_degrees']['median']:.2f} / {nve['angle_w1_degrees']['worst']:.2f}", "-",
                 f"{sum(r['failure'] is None for r in nve['per_start'])} of {len(nve['per_start'])}"])
    w = results["wall_clock_100ps"]
    text = "\n".join([
        f"# {results['label']}: {results['family']}, {results['stride_fs']:g} fs per learned step", "",
        "Command" + ("s" if len(set(results["part_commands"].values())) > 1 else "") + ": " + "; ".join(
            f"`{c}`" + (f" ({', '.join(p for p, x in results['part_commands'].items() if x == c)})"
                        if len(set(results["part_commands"].values())) > 1 else "")
            for c in dict.fromkeys(results["part_commands"].values())), "",
        "VDOS overlap above 300 cm⁻¹ (67 cm⁻¹ bins, centre of mass removed, at the model's stride). Floor: one "
        "half of the GFN2-xTB runs against the other; model: the propagator's half against the reference's other "
        "half (same length). NVT: Bussi on the vibrations (rigid rotation kept), tau 100 fs, "
        f"updated every {results['thermostat_every_fs']:g} fs, from the reference runs' starts after "
        f"{results['equilibration_fs']:g} fs of Langevin in the propagator (as the reference had), "
        f"{results.get('sampling', 1)}× the reference's length (the overlap takes the first reference-length part, "
        "the rest all of it); temperatures are "
        "vibrational (rigid-body motion removed, 3N − 6 degrees of freedom); T error: largest relative difference "
        "of an element's mean temperature (that element), ± one standard error from the spread between "
        "independent runs of both; W1: mean Wasserstein-1 distance over bonds (Å) and angles (degrees); W1 by "
        "element: over each element pair's k shortest distances (its k bonds), sorted, so that a proton transfer "
        "between equivalent sites (malonaldehyde's enols) does not count; NVE: per start against its own "
        "GFN2-xTB run, median / worst, "
        f"{nve['rollout_ps']:g} ps each.", "",
        table(["run", "VDOS floor", "model overlap", "T by element", "bond W1 (Å)", "by element (Å)", "angle W1 (°)",
               "mean T Bussi / Langevin (K)", "survived"], rows), "",
        "The reference against equipartition (every element at the target T), worst element: " + "; ".join(
            f"{t} K {o['reference_equipartition_error'] * 100:.1f}% ± {o['reference_equipartition_standard_error'] * 100:.1f}%"
            f" ({o['reference_equipartition_worst']})" for t, o in results["nvt"].items()
            if "reference_equipartition_error" in o) + ".", "",
        *hops_line(results["nvt"]),
        f"Energy drift (NVE, GFN2-xTB energies of predicted frames): |median| "
        f"{nve['abs_drift_mev_atom_ps']['median']:.3f}, worst {nve['abs_drift_mev_atom_ps']['worst']:.3f} meV/atom/ps.", "",
        f"Wall-clock for 100 ps from the command's start (`trajsr propagate`): {w['seconds']:.1f} s; GFN2-xTB velocity "
        f"Verlet {w['gfn2_seconds']:.0f} s: {w['speedup']:.0f}× faster.", ""])
    print(text)
    (RESULTS / f"{name}.md").write_text(text + "\n")
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=1, default=float) + "\n")
