"""Starting geometries of the molecules in the reference datasets (Å, ASE Atoms)."""
from __future__ import annotations

from ..errors import TrajsrError
from ..resources import shipped_folder

GEOMETRY_DIR = shipped_folder("datasets") / "geometries"


def molecule(name: str):
    """An :class:`ase.Atoms` starting geometry: ethanol from ASE's G2 set, the others from
    ``datasets/geometries/NAME.xyz`` (GFN2-xTB-relaxed)."""
    import ase.io
    from ase.build import molecule as g2
    if name == "ethanol":
        return g2("CH3CH2OH")
    path = GEOMETRY_DIR / f"{name}.xyz"
    if not path.exists():
        raise TrajsrError(f"no starting geometry for {name!r} ({path} missing)")
    return ase.io.read(path)
