"""Make the small reference trajectories shipped in datasets/ and their manifest.json.

Run from the repository root: ``python datasets/make_shipped.py [--force]``. Each file is a trajsr-h5
made by ``trajsr.datasets.make`` (the same recipe as ``trajsr datasets make``), seed 0. Files already
here are kept (the shipped models' cards check against them) unless ``--force``.
"""
import sys
import hashlib
import json
from pathlib import Path

from trajsr.datasets import get_recipe, make
from trajsr.io import load

HERE = Path(__file__).resolve().parent
SHIPPED = [("ethanol-gfn2", 5000), ("alanine-dipeptide-amber", 2000), ("water-tip3p", 200),
           ("malonaldehyde-gfn2", 5000), ("uracil-gfn2", 5000), ("aspirin-gfn2", 5000)]


def main():
    entries = []
    for name, steps in SHIPPED:
        path = HERE / f"{name}-seed0.h5"
        if "--force" in sys.argv or not path.exists():
            make(name, seeds=[0], steps=steps, out_dir=HERE, force=True, processes=1)
        traj = load(path)
        entries.append(dict(name=name, file=path.name, sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                            method=get_recipe(name).method, dt_fs=traj.info["dt_fs"], frames=traj.n_frames,
                            atoms=traj.n_atoms, seed=traj.info["seed"],
                            temperature_K=traj.info["temperature_K"],
                            units=dict(positions="nm", velocities="nm/ps", time="ps",
                                       potential_energy="kJ/mol"),
                            periodic=traj.is_periodic))
    (HERE / "manifest.json").write_text(json.dumps({"datasets": entries}, indent=2) + "\n")


if __name__ == "__main__":
    main()
