"""Reference datasets: a registry of recipes that make fine-stride trajectories, and the shipped ones.

``RECIPES`` holds what can be made and :func:`shipped` what is shipped in ``datasets/`` (``trajsr
datasets list`` shows both); ``make(name, ...)``
runs the recipe (one process per core for several seeds, each single-threaded) and writes trajsr-h5.
"""
from __future__ import annotations

import dataclasses
import json
import multiprocessing
from pathlib import Path
from typing import Callable

from ..errors import TrajsrError
from ..resources import shipped_folder
from ..units import FS_PER_PS

#: the shipped reference trajectories (a checkout's ``datasets/`` folder)
SHIPPED_DIR = shipped_folder("datasets")
MANIFEST = SHIPPED_DIR / "manifest.json"


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How one dataset is made.

    Attributes
    ----------
    name : str
        Registry key, e.g. ``"ethanol-gfn2"``.
    method : str
        Level of theory / force field, for the listing.
    build : callable
        ``build(seed, steps, temperature, progress, equilibration_fs, **sampling) -> Trajectory``;
        ``sampling`` (thermostat, tau_fs, save_every) only for GFN2-xTB recipes.
    steps : int
        Default number of saved 0.5 fs steps.
    temperature : float
        Default temperature in K.
    """

    name: str
    method: str
    build: Callable
    steps: int = 20000
    temperature: float = 500.0
    dt_fs: float = 0.5


def _xtb_recipe(geometry, method="gfn2", temperature=500.0):
    """The built-in recipe ``GEOMETRY-METHOD`` (e.g. ethanol-gfn1): GFN2-xTB or GFN1-xTB MD of a shipped
    starting geometry."""
    name = f"{geometry}-{method}"

    def build(seed, steps, temperature, progress=True, equilibration_fs=1000.0, **sampling):
        from .molecules import molecule
        from .xtb import run_gfn2_md
        return run_gfn2_md(molecule(geometry), steps=steps, seed=seed, temperature=temperature, method=method,
                           progress=progress, name=name, equilibration_fs=equilibration_fs, **sampling)
    from .xtb import XTB_METHODS
    return Recipe(name, f"{XTB_METHODS[method]} (tblite) via ASE, NVE 0.5 fs after 1 ps Langevin", build,
                  temperature=temperature)


def _openmm_recipe(name, system, method, temperature=300.0):
    def build(seed, steps, temperature, progress=True, equilibration_fs=1000.0):
        from . import openmm_md
        return getattr(openmm_md, system)(seed=seed, steps=steps, temperature=temperature,
                                          progress=progress, equilibration_fs=equilibration_fs)
    return Recipe(name, method, build, temperature=temperature)


RECIPES = {r.name: r for r in [
    *[_xtb_recipe(molecule, method) for method in ("gfn2", "gfn1")  # same molecule, two levels of theory
      for molecule in ("ethanol", "malonaldehyde", "uracil", "aspirin")],
    _openmm_recipe("alanine-dipeptide-amber", "alanine_dipeptide",
                   "OpenMM amber14-all.xml, vacuum, no cutoff, NVE 0.5 fs after 1 ps Langevin"),
    _openmm_recipe("water-tip3p", "water_box",
                   "OpenMM amber14 TIP3P periodic box, PME, NVE 0.5 fs after 1 ps Langevin"),
]}


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise TrajsrError(f"unknown dataset {name!r}; known: {', '.join(RECIPES)}")
    return RECIPES[name]


def shipped() -> list[dict]:
    """The manifest entries of the shipped datasets (file, sha256, method, dt_fs, frames, seed, ...)."""
    if not MANIFEST.exists():
        return []
    return json.loads(MANIFEST.read_text())["datasets"]


def shipped_path(name: str) -> Path:
    """Path of the shipped file of dataset ``name``."""
    for entry in shipped():
        if entry["name"] == name:
            return SHIPPED_DIR / entry["file"]
    raise TrajsrError(f"no shipped dataset {name!r}; shipped: {', '.join(e['name'] for e in shipped())}")


def at_level(name: str, method: str) -> str:
    """The built-in xTB dataset of ``name``'s molecule at another level (``"ethanol-gfn2"``, ``"gfn1"`` ->
    ``"ethanol-gfn1"``); a one-line error for a dataset that is not an xTB recipe."""
    molecule, _, level = get_recipe(name).name.rpartition("-")
    target = f"{molecule}-{method}"
    if level not in ("gfn1", "gfn2") or target not in RECIPES:
        raise TrajsrError(f"datasets make: --method {method} applies to xTB datasets (e.g. ethanol-gfn2), not {name}")
    return target


def builtin_spec(name: str, equilibration_fs: float = 1000.0) -> dict:
    """The spec of a built-in dataset (see :mod:`trajsr.datasets.custom` for your own molecules);
    ``equilibration_fs`` is the Langevin equilibration before the saved run (fs), recorded only when it
    differs from the recipe's 1 ps so that older manifests still merge."""
    recipe = get_recipe(name)
    if not equilibration_fs >= 0:
        raise TrajsrError(f"--equilibration-fs must be >= 0 fs, got {equilibration_fs}")
    spec = dict(kind="builtin", dataset=name, name=name, method=recipe.method, dt_fs=recipe.dt_fs)
    if float(equilibration_fs) != 1000.0:
        spec.update(equilibration_fs=float(equilibration_fs),
                    method=recipe.method.replace("after 1 ps Langevin", f"after {equilibration_fs:g} fs Langevin"))
    return spec


def _make_one(args):
    spec, seed, steps, temperature, path, progress = args
    import time

    import threading

    from tqdm import tqdm

    from threadpoolctl import threadpool_limits

    from .xtb import single_threaded
    single_threaded()
    tqdm.set_lock(threading.RLock())  # not tqdm's default multiprocessing lock: it leaks a semaphore per worker
    from ..io import save
    start = time.perf_counter()
    # one thread also where OpenMP and BLAS started earlier in this process with more (the variables above come
    # too late for them): tblite on two threads beside a busy core spins, 3 ms a GFN2 call becomes 480 ms
    with threadpool_limits(limits=1):
        if spec["kind"] == "builtin":
            traj = get_recipe(spec["dataset"]).build(seed, steps, temperature, progress,
                                                     spec.get("equilibration_fs", 1000.0), **spec.get("sampling", {}))
        else:
            from .custom import build_from_spec
            traj = build_from_spec(spec, seed, steps, temperature, progress)
    traj.info["dataset"] = spec["name"]
    save(traj, path, force=True)
    summary = dict(frames=traj.n_frames, dt_fs=traj.dt * FS_PER_PS, seed=traj.info.get("seed"),
                   temperature_K=traj.info.get("temperature_K"), method=traj.info.get("method"))
    return str(path), summary, time.perf_counter() - start


def make(name: str | None = None, seeds=(0,), md_steps: int | None = None, temperature_K: float | None = None,
         out_dir=".", processes: int | None = None, progress: bool = True, force: bool = False,
         spec: dict | None = None, thermostat: str | None = None, tau_fs: float = 100.0,
         save_every: int = 1, *, steps: int | None = None, temperature: float | None = None) -> list:
    """Make dataset ``name`` (or the recipe ``spec`` of your own molecule, see
    :func:`trajsr.datasets.custom.geometry_spec` and :func:`~trajsr.datasets.custom.pdb_spec`) for each
    seed, one process per core; returns the written paths and records them in ``out_dir/manifest.json``.

    Files are named ``{name}-seed{seed}.h5`` in ``out_dir``. ``md_steps`` counts the reference MD's
    0.5 fs steps, ``temperature_K`` is in K (default: the recipe's, 500 K for GFN2-xTB molecules);
    ``steps`` and ``temperature`` are their earlier spellings. GFN2-xTB recipes
    take ``thermostat="bussi"`` or ``"langevin"`` (NVT production run, time constant ``tau_fs`` in fs, for
    Langevin the inverse friction, instead of NVE) and
    ``save_every`` (keep every n-th step; ``steps`` a multiple of it).
    """
    import time

    from ..io.atomic import check_writable
    from ..spelling import renamed
    from . import manifest
    steps = renamed("md_steps", md_steps, "steps", steps)
    temperature = renamed("temperature_K", temperature_K, "temperature", temperature)
    if spec is None:
        if not name:
            raise TrajsrError("datasets make needs a dataset NAME, --geometry FILE or --pdb FILE")
        spec = builtin_spec(name)
    recipe = RECIPES.get(spec.get("dataset")) or Recipe(spec["name"], spec["kind"], None)
    steps = recipe.steps if steps is None else int(steps)
    temperature = recipe.temperature if temperature is None else float(temperature)
    if steps < 1 or not (temperature > 0 and temperature < float("inf")):
        raise TrajsrError(f"datasets make: md_steps (--md-steps, 0.5 fs MD steps) must be >= 1 and temperature_K "
                          f"(--temperature) positive (K); got {steps}, {temperature}")
    if thermostat is not None or save_every != 1:
        if not (spec["kind"] in ("gfn2", "gfn1") or spec["kind"] == "builtin" and "xTB" in spec["method"]):
            raise TrajsrError(f"datasets make: --thermostat and --save-every apply to xTB recipes only, "
                              f"not {spec['name']}")
        if thermostat not in (None, "bussi", "langevin") or not tau_fs > 0 or save_every < 1 or steps % save_every:
            raise TrajsrError(f"datasets make: thermostat must be 'bussi' or 'langevin', tau positive (fs) and steps "
                              f"({steps}) a multiple of save_every ({save_every})")
        spec = dict(spec, sampling=dict(thermostat=thermostat, tau_fs=float(tau_fs), save_every=int(save_every)))
    seeds = list(seeds)
    if len(set(seeds)) != len(seeds) or any(int(s) != s or s < 0 for s in seeds):
        raise TrajsrError(f"datasets make: seeds must be distinct non-negative integers, got {seeds}")
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise TrajsrError(f"{out_dir}: cannot create the output folder ({err.strerror or err})") from None
    from .custom import check_name
    check_name(spec["name"])
    jobs, finished = [], manifest.finished(out_dir, spec, steps, temperature)
    for seed in seeds:
        path = out_dir / f"{spec['name']}-seed{seed}.h5"
        if not force and path.name in finished:
            continue  # made by an earlier (maybe interrupted) run of the same recipe: a rerun goes on from there
        check_writable(path, force)
        jobs.append((spec, int(seed), steps, temperature, path, progress))
    paths = [out_dir / f"{spec['name']}-seed{seed}.h5" for seed in seeds]
    if not jobs:
        return [str(p) for p in paths]
    processes = min(len(jobs), processes or multiprocessing.cpu_count())
    start = time.perf_counter()
    done = []

    def record(result):  # each file enters the manifest as it completes: an interrupted run keeps what it made
        done.append(result)
        path, summary, _ = result
        manifest.record(out_dir, [manifest.with_request(manifest.entry(path, summary, spec, time.perf_counter() - start,
                                                                       processes), steps, temperature)])

    if processes <= 1:
        for job in jobs:
            record(_make_one(job))
    else:
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            for result in pool.imap_unordered(_make_one, jobs):
                record(result)
    seconds = time.perf_counter() - start  # the whole make's wall clock, recorded in every entry it made
    manifest.record(out_dir, [manifest.with_request(manifest.entry(path, summary, spec, seconds, processes), steps,
                                                    temperature) for path, summary, _ in done])
    return [str(p) for p in paths]
