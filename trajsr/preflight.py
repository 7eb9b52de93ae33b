"""What every ``trajsr`` command checks before any work: the files it reads exist, its output can be written.

A typo in a file name is named at once, not after seconds of TensorFlow's import and the model's loading;
an output that exists (without ``--force``), lies in a missing folder, or is one of the trajectories the
command reads is refused before anything is read. Each option is named by its ``argparse`` destination.
"""
from __future__ import annotations

from pathlib import Path

from .errors import TrajsrError

#: options that name trajectories, topologies or geometries a command reads
TRAJECTORIES = ("input", "inputs", "reference", "reconstruction", "top", "start", "validation", "training", "test",
                "geometry", "pdb")
#: options that name trained models (``.keras``), or (``reorder --like``) a model or a trajectory
MODELS = ("model", "models", "base", "initial", "like")
#: the option that names the one file a command writes (``-o``; a folder's ``-o`` has the destination out_dir)
OUTPUT = "output"


def _paths(args, dests) -> list[Path]:
    out = []
    for dest in dests:
        value = getattr(args, dest, None)
        out += [Path(v) for v in (value if isinstance(value, list) else [value]) if v is not None]
    return out


def check_files(args) -> None:
    """One clear error, before any work, for a missing or empty input file, a missing model file, or an
    output (``-o``) that exists without ``--force``, cannot be created, or is one of the command's
    trajectories (a model may be written over itself, as ``calibrate M -o M --force`` does)."""
    from .io import check_readable, check_writable
    trajectories = _paths(args, TRAJECTORIES)
    for path in trajectories:
        check_readable(path)
    for path in _paths(args, MODELS):
        if not path.exists():
            raise TrajsrError(f"{path}: no such {'file' if path.suffix != '.keras' else 'model file'}")
    output = getattr(args, OUTPUT, None)
    if output is None:
        return
    if Path(output).resolve() in {p.resolve() for p in trajectories}:
        raise TrajsrError(f"{output}: is an input of this command; write the output elsewhere")
    check_writable(output, getattr(args, "force", False))
