"""Fill README.md's benchmark and model sections from bench/results/*.md and models/*.json.

    python bench/summarize.py

Each ``<!-- name -->`` marker (and whatever an earlier run put after it, up to the next heading or marker) is
replaced, so the README only ever shows numbers that a bench/ or models/ command wrote.
"""
import json
import re
from pathlib import Path

from trajsr.card import read_card
from trajsr.interpolation.card import mean_mae

ROOT = Path(__file__).resolve().parents[1]


def models_table():
    rows = ["| model file | task | data | factor | held-out MAE (Å) | spline (Å) | spline/model | training |",
            "|---|---|---|---|---|---|---|---|"]
    for card_path in sorted((ROOT / "models").glob("*.json")):
        c = read_card(card_path)
        if c.get("task") == "propagate":
            rows.append(propagator_row(c))
            rows += shooting_rows(c)
            continue
        evaluation = c.get("test_set") or c["held_out"]  # a calibrated card's 12-trajectory test set, if any
        per = evaluation["per_trajectory"]
        model, spline = mean_mae(evaluation)
        ratio = f"median {evaluation['spline_over_model']['median']:.1f}x, worst " \
                f"{evaluation['spline_over_model']['worst']:.1f}x"
        tested = f"{len(per)} trajectories at {temperatures(per)}"
        width = f", width {c['width']}" if "width" in c else ""
        trust = ""
        if "uncertainty" in evaluation:
            u = evaluation["uncertainty"]
            trust = (f"; σ covers {u['coverage_90_median']:.0%} (median; furthest {u['coverage_90_furthest']:.0%}), "
                     f"Spearman {u['spearman_gap_median']:.2f}")
        train = c["train_seeds"]
        seeds = (f"seeds {train[0]}-{train[-1]}" if train == list(range(train[0], train[-1] + 1))
                 else f"{len(train)} training trajectories")
        rows.append(f"| `{c['name']}.keras` | upsample ({c['model']}{width}) | {c['dataset']} {seeds}, "
                    f"tested on {tested} | {c['factor']} | "
                    f"{model:.2e} | {spline:.2e} | "
                    f"{ratio}{trust} | {c['training_minutes']:.1f} min |")
    return "\n".join(rows)


def temperatures(rows):
    """'311–750 K (kinetic)': the range of the rows' measured kinetic temperatures."""
    values = sorted(r["temperature_K"] for r in rows)
    return f"{values[0]:.0f}–{values[-1]:.0f} K (kinetic)"


def propagator_row(c):
    """A propagator card's line: spectrum against its floor, temperatures, 1 ns survival, speed."""
    nvt = c.get("nvt", {})
    spectrum = "; ".join(f"{t} K VDOS {o['model_overlap']:.3f} (floor {o['floor']:.3f}), T by element "
                         f"{o['temperature_by_element_error']:.0%}" + (
                             f" ± {o['temperature_by_element_error_standard_error']:.0%}"
                             if "temperature_by_element_error_standard_error" in o else "")
                         for t, o in nvt.items())
    nve = c.get("nve", {})
    survived = (f"{sum(r['failure'] is None for r in nve['per_start'])} of {len(nve['per_start'])} NVE starts ran "
                f"{nve['rollout_ps']:g} ps" if nve else "")
    speed = c.get("wall_clock_100ps", {}).get("speedup", 0)
    judged = (f"{spectrum} | - | {survived}; {speed:.0f}x faster than GFN2-xTB from the command's start" if nve
              else "not judged as an integrator (no bench/propagator.py run) | - | -")
    return (f"| `{c['name']}.keras` | propagate ({c['model']}, {c['stride_fs']:g} fs steps) | {c['dataset']}, "
            f"{len(c.get('train_files', []))} training files | {c['factor']} | {judged} | "
            f"{c.get('training_minutes') or 0:.1f} min |")


def shooting_rows(c):
    """A propagator card's upsampling lines (bench/shooting.py --record, an evaluation per input and factor):
    judged against the spline from positions only, against Hermite with the files' velocities."""
    rows = []
    for mode, by_factor in c.get("shooting", {}).items():
        baseline = "hermite" if mode == "with velocities" else "spline"
        for factor, evaluation in sorted(by_factor.items(), key=lambda kv: int(kv[0])):
            per, ratio = evaluation["per_trajectory"], evaluation[f"{baseline}_over_model"]
            model, base = mean_mae(evaluation, baseline)
            rows.append(f"| `{c['name']}.keras` | upsample (shooting, {mode}) | tested on {len(per)} trajectories "
                        f"at {temperatures(per)} | {factor} | {model:.2e} | "
                        f"{base:.2e} ({baseline}) | median {ratio['median']:.1f}x, worst "
                        f"{ratio['worst']:.1f}x below {baseline} | (the propagator's) |")
    return rows


def spectra_summary():
    """One table over bench/results/spectra-*.json: per molecule, factor and method, the overlap with the
    truth's spectrum, the X-H band intensities and the kinetic energy, median (worst)."""
    rows = ["| molecule, kept frames | reconstruction | overlap | O–H/N–H stretch (by atom) | C–H stretch (by atom) "
            "| kinetic energy |",
            "|---|---|---|---|---|---|"]
    cell = lambda s, f: f"{s['median']:{f}} ({s['worst']:{f}})"  # noqa: E731
    for path in sorted((ROOT / "bench" / "results").glob("spectra-*.json")):
        molecule = path.stem.split("-", 1)[1]
        for factor, r in json.loads(path.read_text())["results"].items():
            n = len(r["per_trajectory"])
            where = f"{molecule} ({n}), {r['kept_dt_fs']:g} fs"
            for name, s in r["summary"].items():
                rows.append(f"| {where} | {name} | {cell(s['overlap'], '.3f')} "
                            f"| {cell(s['O-H/N-H stretch (by atom)'], '.2f')}x "
                            f"| {cell(s['C-H stretch (by atom)'], '.2f')}x | {cell(s['kinetic_ratio'], '.3f')}x |")
            rows.append(f"| {where} | differences of the coarse positions | – | – | – | "
                        f"{cell(r['coarse_differences_kinetic_ratio'], '.3f')}x |")
    return "\n".join(rows) if len(rows) > 2 else "(not run yet: no bench/results/spectra-*.json)"


def subsection(path):
    """A results file as a README subsection: its title in bold, its headings one level down."""
    titled = re.sub(r"^# (.*)", r"**\1**", path.read_text().strip(), count=1)
    return re.sub(r"^## ", "#### ", titled, flags=re.M)


def section(name):
    if name == "models":
        return models_table()
    if name == "spectra-summary":
        return spectra_summary()
    if name in ("spectra", "filled", "adapt"):  # one file per molecule or model
        parts = sorted((ROOT / "bench" / "results").glob(f"{name}-*.md"))
        return "\n\n".join(map(subsection, parts)) or f"(not run yet: no bench/results/{name}-*.md)"
    if name in ("propagator", "shooting", "shooting-velocities"):  # one file per [dataset and] stride or factor
        pattern = re.compile(rf"{name}-(?!velocities)([\w-]+-)?f(\d+)")
        found = [(m, p) for p in (ROOT / "bench" / "results").glob(f"{name}-*.md") if (m := pattern.fullmatch(p.stem))]
        parts = [p for m, p in sorted(found, key=lambda mp: (mp[0].group(1) or "", int(mp[0].group(2))))]
        return "\n\n".join(map(subsection, parts)) or f"(not run yet: no bench/results/{name}-f*.md)"
    if name == "shooting-uncertainty":  # the default model's, then each other model's (with its title)
        others = sorted((ROOT / "bench" / "results").glob(f"{name}-*.md"))
        text = section_of_file(ROOT / "bench" / "results" / f"{name}.md")
        return "\n\n".join([text] + [subsection(p) for p in others])
    if name in ("langevin-floor", "shooting-anatomy", "potential-anatomy"):  # inside a prose section: a bold title
        path = ROOT / "bench" / "results" / f"{name}.md"
        return subsection(path) if path.exists() else f"(not run yet: `bench/results/{name}.md` is missing)"
    return section_of_file(ROOT / "bench" / "results" / f"{name}.md")


def section_of_file(path):
    """A results file's text without its own title, its headings one level down."""
    name = path.stem
    if not path.exists():
        return f"(not run yet: `bench/results/{name}.md` is missing)"
    text = path.read_text().split("\n", 1)[1].strip()  # drop the file's own title
    return re.sub(r"^## ", "#### ", text, flags=re.M)


def main():
    readme = ROOT / "README.md"
    text = readme.read_text()
    for name in ("models", "baselines", "superres", "shooting", "shooting-velocities", "uncertainty",
                 "shooting-uncertainty", "shooting-anatomy", "propagator", "spectra-summary", "spectra", "filled",
                 "potential-anatomy", "langevin-floor", "adapt", "water", "speed", "scaling"):
        marker = f"<!-- {name} -->"
        pattern = re.compile(re.escape(marker) + r".*?(?=\n## |\n### |\n<!-- |\Z)", re.S)
        text = pattern.sub(lambda m: marker + "\n\n" + section(name) + "\n", text)
    readme.write_text(text)


if __name__ == "__main__":
    main()
