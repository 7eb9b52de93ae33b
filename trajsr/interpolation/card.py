"""How a model does against the spline (and Hermite, where the files store velocities) on each held-out
trajectory, with the median and the worst ratio over them — never only the best — and the shipped-file
check every shipped card carries; the card format itself is :mod:`trajsr.card`."""
from __future__ import annotations

import statistics
from pathlib import Path

from ..card import card_path, read_card, update_card
from ..metrics import reconstruction_errors, uncertainty_errors
from .baselines import get_baseline


def evaluate(interpolator, trajectories, factor: int, positions_only: bool = False) -> dict:
    """MAE (Å) of ``interpolator`` and the baselines on each fine trajectory strided by ``factor``;
    ratios baseline/model per trajectory, and their median and worst (smallest) over the set. For a
    calibrated model also the uncertainty's coverage of the nominal 90% interval and its Spearman
    correlation with the per-gap error.

    Each row is labelled by the trajectory's measured kinetic temperature (``temperature_K``, K, over
    3N − 3; from its velocities, else its positions), never only its recipe's target
    (``target_temperature_K``, where the file records one), and holds the seconds the reconstruction took
    (``seconds``, wall clock, in memory). ``positions_only``: the kept frames are given without their
    velocities (the Hermite baseline then needs them too, so only the spline is compared).
    """
    import time
    calibrated = getattr(interpolator, "calibration", None) is not None
    rows = []
    for traj in trajectories:
        coarse = traj.stride(factor)
        if positions_only:
            coarse = coarse.replace(velocities=None)
        start = time.perf_counter()
        fine = interpolator.interpolate(coarse, factor, uncertainty=True) if calibrated else \
            interpolator.interpolate(coarse, factor)
        seconds = time.perf_counter() - start
        row = dict(file=Path(traj.source).name, temperature_K=_kinetic_temperature(traj), frames=traj.n_frames,
                   model_mae_angstrom=_mae(traj, fine, factor),
                   spline_mae_angstrom=_mae(traj, get_baseline("spline").interpolate(coarse, factor), factor),
                   seconds=seconds)
        if traj.info.get("temperature_K") is not None:
            row["target_temperature_K"] = float(traj.info["temperature_K"])
        if calibrated:
            row["uncertainty"] = uncertainty_errors(traj, fine, factor, fine.uncertainty)[0]
        row["spline_over_model"] = row["spline_mae_angstrom"] / row["model_mae_angstrom"]
        if coarse.velocities is not None and coarse.time is not None:
            row["hermite_mae_angstrom"] = _mae(traj, get_baseline("hermite").interpolate(coarse, factor), factor)
            row["hermite_over_model"] = row["hermite_mae_angstrom"] / row["model_mae_angstrom"]
        rows.append(row)
    return evaluation_of(rows)


def evaluation_of(rows: list) -> dict:
    """An evaluation (:func:`evaluate`'s format) from its per-trajectory rows, e.g. rows evaluated one file at a
    time to hold one fine trajectory in memory: the rows, and the median, worst and best of each ratio (and
    the uncertainty's coverage and Spearman, where every row has them) over them."""
    summary = {}
    for key in ("spline_over_model", "hermite_over_model"):
        values = [r[key] for r in rows if key in r]
        if values:
            summary[key] = dict(median=statistics.median(values), worst=min(values), best=max(values),
                                trajectories=len(values))
    if rows and all("uncertainty" in r for r in rows):
        coverage = [r["uncertainty"]["coverage_90"] for r in rows]
        rho = [r["uncertainty"]["spearman_gap"] for r in rows]
        summary["uncertainty"] = dict(coverage_90_median=statistics.median(coverage),
                                      coverage_90_furthest=max(coverage, key=lambda c: abs(c - 0.9)),
                                      spearman_gap_median=statistics.median(rho), spearman_gap_worst=min(rho))
    return dict(per_trajectory=rows, **summary)


def mean_mae(evaluation: dict, baseline: str = "spline") -> tuple[float, float]:
    """The model's and the ``baseline``'s (``"spline"``, or ``"hermite"`` where the files store velocities)
    MAE (Å), each averaged over the trajectories of an :func:`evaluate`."""
    rows = evaluation["per_trajectory"]
    return (statistics.mean(r["model_mae_angstrom"] for r in rows),
            statistics.mean(r[f"{baseline}_mae_angstrom"] for r in rows))


def _mae(reference, rebuilt, factor) -> float:
    return reconstruction_errors(reference, rebuilt, factor)["mae_angstrom"]


def _kinetic_temperature(traj) -> float | None:
    """The kinetic temperature (K) the reference trajectory holds (its velocities, else its positions), or
    None when it has neither velocities nor time."""
    from ..observables import kinetic_temperature
    if traj.velocities is None and (traj.time is None or traj.n_frames < 3):
        return None
    return kinetic_temperature(traj, vibrations=False)["temperature_K"]


def shipped_check(card) -> dict | None:
    """Re-evaluate a model on the shipped reference trajectory of its card's dataset and record it there.

    The figure a fresh install can check without ``data/`` (the tests do, for every shipped card): MAE (Å)
    of the model and of the cubic spline over the dropped frames of ``datasets/DATASET-seed0.h5`` strided
    by the card's factor (never a training file). A super-resolution model reads the kept frames as they
    are; a propagator fills them by shooting from positions only (its README use).

    Parameters
    ----------
    card : path
        The card ``NAME.json`` beside ``NAME.keras``; its ``dataset`` and ``factor`` are read, and
        ``shipped_check`` is written into it.

    Returns
    -------
    dict or None
        ``file``, ``frames``, ``input``, ``model_mae_angstrom``, ``spline_mae_angstrom``; None (and the card
        left as it is) when no trajectory of the card's dataset is shipped.
    """
    from ..datasets import shipped, shipped_path
    from ..io import load
    from ..modelfile import is_propagator
    from .streaming import as_interpolator
    card = card_path(card)
    info = read_card(card)
    if info["dataset"] not in {entry["name"] for entry in shipped()}:
        return None
    model, factor = card.with_suffix(".keras"), info["factor"]
    fine = load(shipped_path(info["dataset"]))
    coarse = fine.stride(factor)
    propagator = is_propagator(model)
    if propagator:
        coarse = coarse.replace(velocities=None)
    rebuilt = as_interpolator(model).interpolate(coarse, factor)
    check = dict(file=Path(shipped_path(info["dataset"])).name, frames=fine.n_frames,
                 input="positions only (shooting)" if propagator else "the kept frames as stored",
                 model_mae_angstrom=_mae(fine, rebuilt, factor),
                 spline_mae_angstrom=_mae(fine, get_baseline("spline").interpolate(coarse, factor), factor))
    # whoever asks for it (a recipe, calibrate, bench/propagator.py), this re-makes the figure alone
    update_card(card, {"shipped_check": check}, command=f"python models/recipe.py --name {card.stem} --check-shipped")
    return check
