"""Plain-text tables for the terminal and the README, always with units."""
from __future__ import annotations


def format_errors(errors: dict) -> str:
    """A table of MAE / RMSE / max (Å) and per-element MAE (Å), one row per method."""
    elements = list(dict.fromkeys(e for err in errors.values() for e in err["mae_by_element_angstrom"]))
    head = ["method", "MAE (Å)", "RMSE (Å)", "max (Å)"] + [f"MAE {e} (Å)" for e in elements]
    rows = [[name, f"{e['mae_angstrom']:.3e}", f"{e['rmse_angstrom']:.3e}", f"{e['max_angstrom']:.3e}"]
            + [f"{e['mae_by_element_angstrom'].get(el, float('nan')):.3e}" for el in elements]
            for name, e in errors.items()]
    return table(head, rows)


def table(head, rows) -> str:
    """A Markdown table with aligned columns."""
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
                     + [line(r) for r in rows])


def format_datasets(recipes: dict, shipped: list) -> str:
    """What can be made (recipes) and what is shipped (manifest)."""
    out = ["Shipped in datasets/:"]
    if shipped:
        out.append(table(["name", "file", "frames", "dt (fs)", "T (K)", "seed", "method"],
                         [[s["name"], s["file"], s["frames"], s["dt_fs"], s["temperature_K"], s["seed"],
                           s["method"]] for s in shipped]))
    else:
        out.append("  (none)")
    out.append("\nCan be made with 'trajsr datasets make NAME':")
    out.append(table(["name", "default T (K)", "dt (fs)", "default steps", "method"],
                     [[r.name, r.temperature, r.dt_fs, r.steps, r.method] for r in recipes.values()]))
    return "\n".join(out)
