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
from .custom import is_plain_file_name, sha256

NAME = "manifest.json"
UNITS = {"positions": "nm", "velocities": "nm/ps", "time": "ps", "potential_energy": "kJ/mol", "dt_fs": "fs",
         "temperature_K": "K"}
#: recipe keys that must agree between merged folders (seed and temperature may differ)
RECIPE_KEYS = ("kind", "dataset", "geometry_sha256", "pdb_sha256", "forcefield", "water", "box_nm", "charge",
               "multiplicity", "equilibration_fs", "method", "dt_fs", "sampling")


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


def finished(folder, spec: dict, steps: int, temperature: float) -> set:
    """Names of the files in ``folder`` that its manifest lists as made by this recipe with these ``steps``
    and ``temperature`` (K), intact (sha256): what a rerun of an interrupted ``datasets make`` skips."""
    done = set()
    for e in read(folder):
        path = Path(folder) / str(e.get("file"))
        if (e.get("recipe") == spec and e.get("steps") == steps and e.get("temperature_target_K") == temperature
                and path.is_file() and sha256(path) == e.get("sha256")):
            done.add(path.name)
    return done


def entry(path, summary: dict, spec: dict, seconds: float, processes: int) -> dict:
    """A manifest entry for a generated file; ``summary`` holds frames, dt_fs, seed, temperature_K, method;
    ``seconds`` is the wall clock of the whole ``make`` with ``processes`` processes."""
    return dict(name=spec["name"], file=Path(path).name, sha256=sha256(path), **summary, recipe=spec,
                generation_seconds=round(seconds, 1), processes=processes)


def with_request(entry: dict, steps: int, temperature: float) -> dict:
    """``entry`` with what ``datasets make`` was asked for (steps of 0.5 fs, target temperature in K)."""
    return dict(entry, steps=int(steps), temperature_target_K=float(temperature))


def _recipe(entry) -> dict:
    # NVE files record no sampling: the same as NVE every step (older manifests merge with newer ones)
    sampling = entry["recipe"].get("sampling") or {}
    nve = not sampling.get("thermostat") and sampling.get("save_every", 1) == 1
    return {**{k: entry["recipe"].get(k, entry.get(k)) for k in RECIPE_KEYS}, "sampling": None if nve else sampling}


def _listed_file(folder, entry) -> Path:
    """The file a manifest entry names, refused if the name leaves the folder (``../x``, ``/etc/x``)."""
    name = entry.get("file") if isinstance(entry, dict) else None
    if not is_plain_file_name(name):
        raise TrajsrError(f"{Path(folder) / NAME}: entry file {name!r} is not a plain file name in the folder")
    return Path(folder) / name


def _differ(a: dict, b: dict) -> str:
    return ", ".join(k for k in RECIPE_KEYS if a[k] != b[k])


def merge(folders, out_dir, force: bool = False) -> Path:
    """Check and join the manifests (and files) of ``folders`` into ``out_dir``; what an earlier merge put
    there stays listed (it must share the recipe), so parts can be merged as they finish."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise TrajsrError(f"{out_dir}: exists and is not a folder; -o names the folder to merge into")
    merged, first = {}, None
    for folder in map(Path, folders):
        entries = read(folder)
        if not entries:
            raise TrajsrError(f"{folder}: no {NAME} (made with 'trajsr datasets make'?)")
        for e in entries:
            path = _listed_file(folder, e)
            if not path.exists():
                raise TrajsrError(f"{path}: listed in {folder / NAME} but missing")
            if sha256(path) != e["sha256"]:
                raise TrajsrError(f"{path}: sha256 differs from {folder / NAME}: changed or truncated")
            recipe = _recipe(e)
            if first is None:
                first = (path, recipe)
            elif recipe != first[1]:
                raise TrajsrError(f"{path}: made with another recipe than {first[0]} "
                                  f"({_differ(recipe, first[1])} differ)")
            if e["file"] in merged and merged[e["file"]][1]["sha256"] != e["sha256"]:
                raise TrajsrError(f"{path}: another {e['file']} with different content is in "
                                  f"{merged[e['file']][0].parent}")
            merged[e["file"]] = (path, e)
    kept = [e for e in read(out_dir) if _listed_file(out_dir, e).name not in merged]
    for e in kept:
        if _recipe(e) != first[1]:
            raise TrajsrError(f"{out_dir / e['file']}: already in {out_dir} but made with another recipe than "
                              f"{first[0]} ({_differ(_recipe(e), first[1])} differ)")
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, (path, entry) in merged.items():
        target = out_dir / name
        if target.exists():
            if os.path.samefile(target, path) or sha256(target) == entry["sha256"]:
                continue  # already there: merging again adds only what is new
            if not force:
                raise TrajsrError(f"{target}: file exists with other content; use --force to overwrite it")
            target.unlink()  # replace it; writing through a hard link would change the folder it came from
        try:
            os.link(path, target)
        except OSError:
            shutil.copyfile(path, target)
    return write(out_dir, kept + [e for _, e in merged.values()])
