"""``trajsr demo``: stride the shipped ethanol trajectory, rebuild it, compare (Å), plot."""
from __future__ import annotations

import json
from pathlib import Path

from .interpolation.baselines import BASELINES
from .datasets import shipped_path
from .errors import TrajsrError
from .io import atomic_path, check_writable, load
from .metrics import reconstruction_errors
from .plots import plot_gap_errors
from .report import format_errors
from .units import FS_PER_PS
from .resources import shipped_folder

#: the trained models shipped with trajsr (a checkout's ``models/`` folder)
MODELS_DIR = shipped_folder("models")


def prepare_output(out_dir, force: bool = False):
    """Create ``out_dir`` and check that its two outputs may be written (before any work)."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise TrajsrError(f"{out_dir}: cannot create the output folder ({err.strerror or err})") from None
    png, js = out_dir / "gap_errors.png", out_dir / "errors.json"
    return check_writable(png, force), check_writable(js, force)


def run_demo(out_dir="trajsr-demo", factor: int = 10, force: bool = False, dataset: str = "ethanol-gfn2",
             extra_interpolators: dict | None = None) -> dict:
    """Rebuild every ``factor``-th frame of a shipped trajectory with each baseline, the shipped model for
    that dataset and factor (``models/DATASET-fFACTOR.keras``, if any) and any extra interpolators given
    by name; print the MAE table in Å, write ``gap_errors.png`` and ``errors.json`` into ``out_dir``.
    The shipped trajectory (seed 0) is not among the shipped models' training seeds.
    Returns the errors by method."""
    png, js = prepare_output(out_dir, force)
    fine = load(shipped_path(dataset))
    coarse = fine.stride(factor)
    print(f"{dataset}: {fine.n_frames} frames at {fine.dt * FS_PER_PS:g} fs; kept every {factor}th "
          f"({coarse.dt * FS_PER_PS:g} fs), rebuilding {fine.n_frames - coarse.n_frames} dropped frames")
    interpolators = {name: cls() for name, cls in BASELINES.items()}
    shipped_model = MODELS_DIR / f"{dataset}-f{factor}.keras"
    if shipped_model.exists():
        from .interpolation.learned import LearnedInterpolator
        learned = LearnedInterpolator(shipped_model)
        interpolators[f"{learned.name} (models/{shipped_model.name})"] = learned
    else:
        print(f"(no shipped model {shipped_model.name} for factor {factor}: baselines only)")
    interpolators.update(extra_interpolators or {})
    errors = {name: reconstruction_errors(fine, interp.interpolate(coarse, factor), factor)
              for name, interp in interpolators.items()}
    print(format_errors(errors))
    plot_gap_errors(errors, png, force=force, title=f"{dataset}, factor {factor} "
                    f"({coarse.dt * FS_PER_PS:g} fs between kept frames)")
    with atomic_path(js, force) as tmp, open(tmp, "w") as f:
        json.dump(errors, f, indent=2)
    print(f"wrote {png} and {js}")
    return errors
