"""How a reconstruction compares with the truth: errors over dropped frames (Å) and calibrated σ.
Spectra, bond and angle distributions and temperatures are in :mod:`trajsr.observables`.

MAE and RMSE are taken over Cartesian components (as the seed paper's loss and the MD17 literature
do); the max error is the largest displacement |Δr| of one atom in one frame. Only dropped frames
count: the kept frames are exact by construction.
"""
from __future__ import annotations

import numpy as np

from .errors import TrajsrError
from .trajectory import Trajectory, check_factor
from .units import ANGSTROM_PER_NM, FS_PER_PS

#: kept frames of the reconstruction may differ from the reference by this much (Å) before the two
#: count as not corresponding (float32 files round to ~1e-6 nm)
KEPT_FRAME_TOLERANCE_ANGSTROM = 1e-3


def check_correspondence(reference: Trajectory, reconstruction: Trajectory, factor: int) -> Trajectory:
    """Check that ``reconstruction`` rebuilds ``reference`` at ``factor``; return the matching reference.

    The reference may run up to ``factor − 1`` frames past the reconstruction (the tail that the coarse
    trajectory could not cover); those frames are dropped. Anything else (atom count, elements,
    frame count, frame spacing, kept frames that moved) raises :class:`TrajsrError`.
    """
    factor = check_factor(factor)
    ref, rec = reference, reconstruction
    if ref.n_atoms != rec.n_atoms:
        raise TrajsrError(f"{rec.source}: {rec.n_atoms} atoms, but the reference {ref.source} has {ref.n_atoms}")
    if ref.elements != rec.elements:
        i = next(i for i, (a, b) in enumerate(zip(ref.elements, rec.elements)) if a != b)
        raise TrajsrError(f"{rec.source}: atom {i} is {rec.elements[i]}, the reference has {ref.elements[i]}")
    expected = (ref.n_frames - 1) // factor * factor + 1
    if rec.n_frames != expected:
        raise TrajsrError(f"{rec.source}: {rec.n_frames} frames, but a factor-{factor} reconstruction of "
                          f"{ref.source} ({ref.n_frames} frames) has {expected}")
    ref = ref[:expected]
    if ref.time is not None and rec.time is not None:
        ref_dt, rec_dt = ref.dt, rec.dt
        if abs(ref_dt - rec_dt) > 1e-3 * ref_dt:
            raise TrajsrError(f"{rec.source}: frame spacing {rec_dt * FS_PER_PS:g} fs, the reference has "
                              f"{ref_dt * FS_PER_PS:g} fs")
    kept_error = np.abs(rec.positions[::factor] - ref.positions[::factor]).max(axis=(1, 2)) * ANGSTROM_PER_NM
    bad = np.flatnonzero(kept_error > KEPT_FRAME_TOLERANCE_ANGSTROM)
    if bad.size:
        raise TrajsrError(f"{rec.source}: kept frame {bad[0] * factor} differs from the reference by "
                          f"{kept_error[bad[0]]:.3g} Å; is the factor right, and is it a reconstruction "
                          f"of {ref.source}?")
    _check_factor_of(ref, rec, factor)
    return ref


#: a frame copied from the reference through a file (float32 included) agrees to this, in Å
COPIED_FRAME_TOLERANCE_ANGSTROM = 1e-5


def _check_factor_of(ref: Trajectory, rec: Trajectory, factor: int) -> None:
    """Refuse a reconstruction made with another factor: its recorded factor, else a finer stride whose
    frames all equal the reference (a factor-10 reconstruction evaluated at --factor 20 would count
    its kept frames as perfectly rebuilt ones)."""
    recorded = rec.info.get("factor")
    if recorded is not None and int(recorded) != factor:
        raise TrajsrError(f"{rec.source}: a factor-{int(recorded)} reconstruction (as the file records), "
                          f"evaluated with --factor {factor}")
    error = np.abs(rec.positions - ref.positions).max(axis=(1, 2)) * ANGSTROM_PER_NM
    copied = error <= COPIED_FRAME_TOLERANCE_ANGSTROM
    if copied.all():  # the reference itself, or a perfect reconstruction: nothing to tell apart
        return
    for stride in range(2, factor):
        if factor % stride == 0 and copied[::stride].all() and len(copied[::stride]) > len(copied[::factor]):
            raise TrajsrError(f"{rec.source}: frames 0, {stride}, {2 * stride}, ... all equal the reference: it "
                              f"keeps the frames of a factor-{stride} stride, not {factor}; evaluate it with "
                              f"--factor {stride}")


def dropped_mask(n_frames: int, factor: int) -> np.ndarray:
    """Boolean mask of the frames a stride-``factor`` trajectory drops."""
    mask = np.ones(n_frames, bool)
    mask[::factor] = False
    return mask


def reconstruction_errors(reference: Trajectory, reconstruction: Trajectory, factor: int) -> dict:
    """Errors of ``reconstruction`` against ``reference`` over the dropped frames, in Å.

    Returns
    -------
    dict
        ``mae_angstrom``, ``rmse_angstrom`` (over Cartesian components), ``max_angstrom`` (largest
        atom displacement), ``mae_by_element_angstrom`` ({element: MAE}), ``mae_by_gap_position_angstrom``
        (list, one entry per dropped frame of a gap), ``gap_time_fs`` (time of those frames after the
        left kept frame, when known), ``n_dropped_frames``, ``factor``.
    """
    reference = check_correspondence(reference, reconstruction, factor)
    mask = dropped_mask(reference.n_frames, factor)
    if not mask.any():
        raise TrajsrError(f"{reconstruction.source}: no dropped frames to compare")
    diff = (reconstruction.positions - reference.positions)[mask] * ANGSTROM_PER_NM
    abs_diff = np.abs(diff)
    elements = np.array(reference.elements)
    n_gaps = (reference.n_frames - 1) // factor
    per_gap = np.abs(reconstruction.positions - reference.positions)[:-1].reshape(
        n_gaps, factor, reference.n_atoms, 3)[:, 1:] * ANGSTROM_PER_NM
    result = {
        "factor": factor,
        "n_dropped_frames": int(mask.sum()),
        "mae_angstrom": float(abs_diff.mean()),
        "rmse_angstrom": float(np.sqrt(np.mean(diff ** 2))),
        "max_angstrom": float(np.linalg.norm(diff, axis=-1).max()),
        "mae_by_element_angstrom": {str(e): float(abs_diff[:, elements == e].mean())
                                    for e in dict.fromkeys(reference.elements)},
        "mae_by_gap_position_angstrom": per_gap.mean(axis=(0, 2, 3)).tolist(),
    }
    if reference.time is not None:
        result["gap_time_fs"] = (np.arange(1, factor) * reference.dt * FS_PER_PS).tolist()
    return result


#: two-sided 90% quantile of the standard normal: the nominal 90% interval of a component is ±Z90 σ
Z90 = 1.6448536269514722


def uncertainty_errors(reference: Trajectory, reconstruction: Trajectory, factor: int, uncertainty) -> tuple:
    """How well a reconstruction's uncertainty (``(frames, atoms)`` nm, σ of each Cartesian component)
    predicts its errors against ``reference``.

    Returns
    -------
    figures : dict
        ``coverage_90`` (fraction of dropped-frame components inside ±1.645σ; 0.90 if calibrated),
        ``spearman_gap`` (rank correlation of per-gap uncertainty with per-gap error), ``gaps``.
    gap_uncertainty, gap_error : ndarray, shape (gaps,)
        Per gap, the RMS of σ over its dropped frames and atoms, and the RMS component error (Å).
    """
    from scipy.stats import spearmanr
    reference = check_correspondence(reference, reconstruction, factor)
    uncertainty = np.asarray(uncertainty, np.float64)
    if uncertainty.shape != reconstruction.positions.shape[:2]:
        raise TrajsrError(f"{reconstruction.source}: uncertainty of shape {uncertainty.shape} for "
                          f"{reconstruction.n_frames} frames of {reconstruction.n_atoms} atoms")
    n_gaps, n = (reference.n_frames - 1) // factor, reference.n_atoms
    error = (reconstruction.positions - reference.positions)[:-1].reshape(n_gaps, factor, n, 3)[:, 1:]
    sigma = uncertainty[:-1].reshape(n_gaps, factor, n)[:, 1:]
    gap_sigma = np.sqrt(np.mean(sigma ** 2, axis=(1, 2))) * ANGSTROM_PER_NM
    gap_error = np.sqrt(np.mean(error ** 2, axis=(1, 2, 3))) * ANGSTROM_PER_NM
    rho = spearmanr(gap_sigma, gap_error).statistic if n_gaps > 2 else float("nan")
    figures = {"coverage_90": float(np.mean(np.abs(error) <= Z90 * sigma[..., None])),
               "spearman_gap": float(rho), "gaps": int(n_gaps)}
    return figures, gap_sigma, gap_error


