"""Your own molecule: recipes from a geometry file (GFN2-xTB) or a PDB (OpenMM), checked before any work.

A recipe is described by a plain ``spec`` dict (picklable, stored in the manifest), so that worker
processes can rebuild it and ``datasets merge`` can tell whether two folders used the same one.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..errors import TrajsrError

#: atoms closer than this (Å) are taken as a broken geometry
MIN_DISTANCE_ANGSTROM = 0.5
#: GFN2-xTB is parametrised for H to Rn
MAX_GFN2_Z = 86


def read_geometry(path):
    """The first frame of ``path`` (xyz, extxyz, pdb, ... through ASE) as :class:`ase.Atoms`, in Å."""
    import ase.io
    path = Path(path)
    if not path.is_file():
        raise TrajsrError(f"{path}: no such geometry file")
    try:
        atoms = ase.io.read(path, index=0)
    except KeyError as err:
        raise TrajsrError(f"{path}: unknown element {err}") from None
    except Exception as err:
        raise TrajsrError(f"{path}: cannot read a geometry ({' '.join(str(err).split())[:200]})") from None
    if len(atoms) == 0:
        raise TrajsrError(f"{path}: no atoms")
    return atoms


def check_geometry(atoms, source, charge: int = 0, multiplicity: int | None = None) -> int:
    """One-line errors for a geometry GFN2-xTB cannot treat; returns the multiplicity to use."""
    z = atoms.get_atomic_numbers()
    positions = atoms.get_positions()
    if not np.isfinite(positions).all():
        i = int(np.flatnonzero(~np.isfinite(positions).all(axis=1))[0])
        raise TrajsrError(f"{source}: atom {i} ({atoms[i].symbol}) has a non-finite coordinate (NaN or inf)")
    if len(atoms) < 2:
        raise TrajsrError(f"{source}: one atom has no vibrations to learn; give a molecule")
    if (z < 1).any() or (z > MAX_GFN2_Z).any():
        i = int(np.flatnonzero((z < 1) | (z > MAX_GFN2_Z))[0])
        raise TrajsrError(f"{source}: atom {i} ({atoms[i].symbol}) is outside GFN2-xTB's elements (H to Rn)")
    if len(atoms) > 1:
        d = atoms.get_all_distances()
        d[np.diag_indices_from(d)] = np.inf
        i, j = np.unravel_index(np.argmin(d), d.shape)
        if d[i, j] < MIN_DISTANCE_ANGSTROM:
            raise TrajsrError(f"{source}: atoms {i} ({atoms[i].symbol}) and {j} ({atoms[j].symbol}) overlap: "
                              f"{d[i, j]:.2f} Å apart (is the file in Å?)")
    electrons = int(z.sum()) - int(charge)
    if electrons < 1:  # tblite crashes the process (bus error) on a molecule without electrons
        raise TrajsrError(f"{source}: charge {charge} leaves {electrons} electrons; GFN2-xTB needs at least one")
    if multiplicity is None:
        if electrons % 2:
            raise TrajsrError(f"{source}: {electrons} electrons (charge {charge}) is odd: give --multiplicity "
                              "(2 for a doublet) or another --charge")
        return 1
    if multiplicity < 1 or (electrons - (multiplicity - 1)) % 2 or multiplicity - 1 > electrons:
        raise TrajsrError(f"{source}: multiplicity {multiplicity} does not fit {electrons} electrons "
                          f"(charge {charge})")
    return int(multiplicity)


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def is_plain_file_name(name) -> bool:
    """Whether ``name`` names a file inside a folder: no ``/``, ``\\``, ``.`` or ``..`` (``../x`` would leave it)."""
    return isinstance(name, str) and name not in ("", ".", "..") and Path(name).name == name and "\\" not in name


def check_name(name: str) -> str:
    """A dataset name is a file-name stem: no folders (``../x`` would write outside the output folder)."""
    if not is_plain_file_name(name) or name.startswith("-"):
        raise TrajsrError(f"dataset name {name!r} must be a plain file name (no '/', '..' or leading '-')")
    return name


def geometry_spec(path, charge: int = 0, multiplicity: int | None = None, name: str | None = None,
                  equilibration_fs: float = 1000.0, method: str = "gfn2") -> dict:
    """Check a geometry file and describe its xTB recipe (``method``: ``"gfn2"`` or ``"gfn1"``, the spec's
    kind)."""
    path = Path(path).resolve()
    atoms = read_geometry(path)
    multiplicity = check_geometry(atoms, path, charge, multiplicity)
    if not equilibration_fs >= 0:
        raise TrajsrError(f"--equilibration-fs must be >= 0 fs, got {equilibration_fs}")
    if method not in ("gfn2", "gfn1"):
        raise TrajsrError(f"unknown xTB method {method!r}; choose gfn2 or gfn1")
    return dict(kind=method, geometry=str(path), geometry_sha256=sha256(path), formula=atoms.get_chemical_formula(),
                charge=int(charge), multiplicity=multiplicity, equilibration_fs=float(equilibration_fs),
                name=check_name(name or f"{path.stem}-{method}"))


def pdb_spec(pdb, forcefield: str = "amber14-all.xml", water: str | None = None, box_nm: float | None = None,
             name: str | None = None, equilibration_fs: float = 1000.0) -> dict:
    """Check a PDB and force field for OpenMM and describe the recipe (vacuum, or a water box)."""
    pdb = Path(pdb).resolve()
    if not pdb.is_file():
        raise TrajsrError(f"{pdb}: no such PDB file")
    if (water is None) != (box_nm is None):
        raise TrajsrError("--water and --box go together (a water model and a cubic box edge in nm)")
    if box_nm is not None and not box_nm > 0:
        raise TrajsrError(f"--box must be a positive edge length in nm, got {box_nm}")
    spec = dict(kind="openmm", pdb=str(pdb), pdb_sha256=sha256(pdb), forcefield=forcefield, water=water,
                box_nm=box_nm, equilibration_fs=float(equilibration_fs),
                name=check_name(name or f"{pdb.stem}-openmm"))
    topology, _, _ = openmm_system(spec)  # fails here, in one line, if the force field cannot describe the molecule
    if water:
        _check_box(pdb, box_nm, topology)
    return spec


def _check_box(pdb, box_nm: float, topology) -> None:
    """A water box must hold the solute and some water (OpenMM adds none to a box smaller than the solute)."""
    from openmm import app, unit
    xyz = app.PDBFile(str(pdb)).getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    extent = float((xyz.max(0) - xyz.min(0)).max())
    waters = sum(1 for r in topology.residues() if r.name in ("HOH", "WAT"))
    if box_nm <= extent or waters == 0:
        raise TrajsrError(f"{pdb}: --box {box_nm:g} nm holds no water around a solute {extent:.2f} nm across "
                          f"({waters} waters added); give a box edge of at least {extent + 1.0:.1f} nm")


def openmm_system(spec: dict):
    """(topology, system, positions) of an ``openmm`` spec; water boxes are solvated and periodic (PME)."""
    import openmm
    from openmm import app, unit
    files = [spec["forcefield"]] + ([f"amber14/{spec['water']}.xml"] if spec["water"] else [])
    try:
        pdb = app.PDBFile(spec["pdb"])
        ff = app.ForceField(*files)
        modeller = app.Modeller(pdb.topology, pdb.positions)
        if spec["water"]:
            edge = spec["box_nm"]
            modeller.addSolvent(ff, model=spec["water"], boxSize=openmm.Vec3(edge, edge, edge) * unit.nanometer)
            system = ff.createSystem(modeller.topology, nonbondedMethod=app.PME,
                                     nonbondedCutoff=min(1.0, 0.45 * edge) * unit.nanometer, rigidWater=True)
        else:
            system = ff.createSystem(modeller.topology, nonbondedMethod=app.NoCutoff, constraints=None)
    except Exception as err:
        raise TrajsrError(f"{spec['pdb']}: OpenMM cannot build the system with {', '.join(files)} "
                          f"({' '.join(str(err).split())[:200]})") from None
    return modeller.topology, system, modeller.positions


def build_from_spec(spec: dict, seed: int, steps: int, temperature: float, progress: bool = True):
    """Run the recipe a spec describes (in a worker process); returns the Trajectory."""
    if spec["kind"] in ("gfn2", "gfn1"):
        from .xtb import run_gfn2_md
        atoms = read_geometry(spec["geometry"])
        return run_gfn2_md(atoms, steps=steps, seed=seed, temperature=temperature, progress=progress,
                           method=spec["kind"],
                           name=spec["name"], charge=spec["charge"], multiplicity=spec["multiplicity"],
                           equilibration_fs=spec["equilibration_fs"], **spec.get("sampling", {}))
    if spec["kind"] == "openmm":
        import openmm
        from .openmm_md import run_openmm_md
        topology, system, positions = openmm_system(spec)
        if spec["water"]:  # relax the solvent's contacts before dynamics
            context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("CPU"))
            context.setPositions(positions)
            openmm.LocalEnergyMinimizer.minimize(context, 10.0, 500)
            positions = context.getState(getPositions=True).getPositions()
        return run_openmm_md(topology, system, positions, steps=steps, seed=seed, temperature=temperature,
                             equilibration_fs=spec["equilibration_fs"], name=spec["name"], progress=progress,
                             method=f"OpenMM {spec['forcefield']}" + (f" + {spec['water']} box {spec['box_nm']} nm, PME"
                                                                      if spec["water"] else ", vacuum, no cutoff")
                             + ", NVE velocity Verlet 0.5 fs")
    raise TrajsrError(f"unknown recipe kind {spec['kind']!r}")
