"""``manifest.json`` beside generated trajectories: one entry per file (sha256, recipe, seed, T, frames,
units, how long it took with how many processes); ``merge`` joins folders made apart (a SLURM job
array, several machines) after checking that their recipes agree and every file is intact."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..errors import TrajsrError
from ..io.atomic import atomic_path
from .custom import sha256

NAME = "manifest.json"
UNITS = {"positions": "nm", "velocities": "nm/ps", "time": "ps", "potential_energy": "kJ/mol", "dt_fs": "fs",
         "temperature_K": "K"}
#: recipe keys that must agree between merged folders (seed and temperature may differ)
RECIPE_KEYS = ("kind", "dataset", "geometry_sha256", "pdb_sha256", "forcefield", "water", "box_nm", "charge",
               "multiplicity", "equilibration_fs", "method", "dt_fs")


def read(folder) -> list:
    path = Path(folder) / NAME
    if not path.exists():
        return []
    try:
        return json.loads(path.read_text())["datasets"]
    except (ValueError, KeyError) as err:
        raise TrajsrError(f"{path}: not a trajsr manifest ({err})") from None


def write(folder, entries: list) -> Path:
    path = Path(folder) / NAME
    with atomic_path(path, force=True) as tmp, open(tmp, "w") as f:
        json.dump({"units": UNITS, "datasets": sorted(entries, key=lambda e: e["file"])}, f, indent=1)
    return path


def record(folder, new_entries: list) -> Path:
    """Add or replace (by file name) entries in ``folder``'s manifest."""
    names = {e["file"] for e in new_entries}
    return write(folder, [e for e in read(folder) if e["file"] not in names] + list(new_entries))


def entry(path, summary: dict, spec: dict, seconds: float, processes: int) -> dict:
    """A manifest entry for a generated file; ``summary`` holds frames, dt_fs, seed, temperature_K, method;
    ``seconds`` is the wall clock of the whole ``make`` with ``processes`` processes."""
    return dict(name=spec["name"], file=Path(path).name, sha256=sha256(path), **summary, recipe=spec,
                generation_seconds=round(seconds, 1), processes=processes)


def merge(folders, out_dir, force: bool = False) -> Path:
    """Check and join the manifests (and files) of ``folders`` into ``out_dir``."""
    out_dir = Path(out_dir)
    merged, first = {}, None
    for folder in map(Path, folders):
        entries = read(folder)
        if not entries:
            raise TrajsrError(f"{folder}: no {NAME} (made with 'trajsr datasets make'?)")
        for e in entries:
            path = folder / e["file"]
            if not path.exists():
                raise TrajsrError(f"{path}: listed in {folder / NAME} but missing")
            if sha256(path) != e["sha256"]:
                raise TrajsrError(f"{path}: sha256 differs from {folder / NAME}: changed or truncated")
            recipe = {k: e["recipe"].get(k, e.get(k)) for k in RECIPE_KEYS}
            if first is None:
                first = (path, recipe)
            elif recipe != first[1]:
                diff = [k for k in RECIPE_KEYS if recipe[k] != first[1][k]]
                raise TrajsrError(f"{path}: made with another recipe than {first[0]} ({', '.join(diff)} differ)")
            if e["file"] in merged and merged[e["file"]][1]["sha256"] != e["sha256"]:
                raise TrajsrError(f"{path}: another {e['file']} with different content is in "
                                  f"{merged[e['file']][0].parent}")
            merged[e["file"]] = (path, e)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, (path, _) in merged.items():
        target = out_dir / name
        if target.resolve() == path.resolve():
            continue
        if target.exists() and not force:
            raise TrajsrError(f"{target}: file exists; use --force to overwrite it")
        try:
            os.link(path, target) if not target.exists() else shutil.copyfile(path, target)
        except OSError:
            shutil.copyfile(path, target)
    return write(out_dir, [e for _, e in merged.values()])
