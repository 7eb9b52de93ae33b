"""How far off is each rebuilt frame? A calibrated per-atom uncertainty, fitted on validation trajectories.

The model hands out, with every gap it fills (see :meth:`.gap.GapModel.parts`):

- the **disagreement** of its estimates (the members of an ensemble; forward from the left and backward
  from the right for a single bidirectional model), per atom and frame;
- its **correction**: how far it moved the baseline, per atom and frame;
- how far the window's context lies from the training data: the RMS of its displacements (**energy**) and of
  its mean structure (**structure**; a new conformer), in units of the training spreads.

One more signal is read over a whole trajectory (a streamed chunk: 5000 kept frames by default): its
**difficulty** D, the RMS correction over all its gaps relative to that over the training data. A single
gap's error is hard to foresee, but a hotter trajectory's errors are larger throughout, and D sees that
(the model corrects the spline more where the spline does worse). The standard deviation of each
Cartesian component of an atom's error (isotropic, nm) is modelled as ::

    sigma^2 = scale^2 * [ (base[g, a] * D^q * energy^p * excess^2)^2 + (c_d[g] * disagreement)^2
                          + (c_r[g] * correction)^2 ]

with g the frame in the gap, a the atom, and excess = max(1, structure / structure_limit). ``base``, ``c_d``,
``c_r``, ``p`` and ``q`` (at least 1: errors grow at least in proportion to the difficulty) maximise the
Gaussian likelihood of the validation errors; ``scale`` then puts 90% of validation components inside
±1.645σ, so the nominal 90% interval means what it says. The calibration is stored in the model's
metadata (the ``.keras`` file) with the limits beyond which a context counts as out of distribution (the
99.9th percentile over training windows, or validation windows where training data is not given, of a
window's energy, structure and RMS correction) and the default ``max_uncertainty`` (Å in reports, nm here):
the spline's (Hermite's, with velocities) RMS error per gap on validation. A gap whose uncertainty
exceeds it is one where the model expects to do no better than the baseline typically does. It also
records the largest D of any validation file: a file whose D exceeds that by ``DIFFICULTY_MARGIN`` is unlike
every calibration file as a whole (a thermostat's kicks, another level of theory), even where no single
gap passes the limits, and ``upsample`` says so (:mod:`.gapreport`).
"""
from __future__ import annotations

import dataclasses

import numpy as np
from scipy.optimize import minimize

from ..card import recorded_paths
from ..errors import TrajsrError
from ..metrics import Z90
from ..units import ANGSTROM_PER_NM

#: nominal coverage the scale is calibrated to (the interval ±Z90 σ)
COVERAGE = 0.90
#: range of the energy exponent p
ENERGY_POWER_BOUNDS = (0.0, 4.0)
#: out-of-distribution limits: this quantile of the training windows' energy, structure and correction
OOD_QUANTILE = 0.999
#: a file whose difficulty exceeds the largest of the validation files' by this factor is unlike all of them
DIFFICULTY_MARGIN = 1.5


@dataclasses.dataclass
class Calibration:
    """A fitted uncertainty model (see the module docstring); all lengths in nm.

    Attributes
    ----------
    base : (G, N)   error scale of frame g of a gap, atom a, at the training difficulty
    disagreement, correction : (G,)   weights of the two per-atom signals
    energy_power, difficulty_power : float   how the base grows with the window's energy and the
        trajectory's difficulty
    difficulty_reference : float   RMS correction over the training (or validation) windows (nm): D = 1
    scale : float   coverage calibration (nominal 90% interval = ±1.645σ)
    energy_limit, structure_limit, correction_limit : float   out-of-distribution limits of a window's
        energy and structure scores and RMS correction (nm)
    spline_sigma : (G, N)   the baseline's RMS error per frame and atom on validation (where it fills a gap)
    max_uncertainty : float   default fallback threshold on a gap's RMS uncertainty (nm)
    fitted_on : dict   validation files, windows, and the validation figures
    """

    base: np.ndarray
    disagreement: np.ndarray
    correction: np.ndarray
    energy_power: float
    difficulty_power: float
    difficulty_reference: float
    scale: float
    energy_limit: float
    structure_limit: float
    correction_limit: float
    spline_sigma: np.ndarray
    max_uncertainty: float
    fitted_on: dict = dataclasses.field(default_factory=dict)

    @property
    def difficulty_largest(self) -> float | None:
        """The largest difficulty D of a validation file (None for calibrations fitted before it was recorded)."""
        largest = self.fitted_on.get("difficulty_largest")
        return None if largest is None else float(largest)

    @property
    def difficulty_limit(self) -> float | None:
        """The difficulty D above which a whole file is unlike every calibration file: DIFFICULTY_MARGIN times
        :attr:`difficulty_largest`."""
        largest = self.difficulty_largest
        return None if largest is None else DIFFICULTY_MARGIN * largest

    def difficulty(self, parts: dict) -> float:
        """D of a trajectory (or chunk) from the ``parts`` of all its gaps: RMS correction / reference."""
        return float(np.sqrt(np.mean(np.square(parts["correction"]))) / self.difficulty_reference)

    def sigma(self, parts: dict, difficulty: float | np.ndarray) -> np.ndarray:
        """Per-atom uncertainty (W, G, N) nm of windows with model ``parts``, in a trajectory of
        ``difficulty`` D (a number, or one per window)."""
        energy = np.maximum(np.asarray(parts["energy"], np.float64), 1e-6)[:, None, None]
        level = np.broadcast_to(np.asarray(difficulty, np.float64), energy.shape[:1])[:, None, None]
        excess = np.maximum(1.0, np.asarray(parts["structure"], np.float64) / self.structure_limit)[:, None, None]
        variance = ((self.base * level ** self.difficulty_power * energy ** self.energy_power * excess ** 2) ** 2
                    + (self.disagreement[:, None] * parts["disagreement"]) ** 2
                    + (self.correction[:, None] * parts["correction"]) ** 2)
        return self.scale * np.sqrt(variance)

    def out_of_distribution(self, parts: dict) -> np.ndarray:
        """(W,) True where a window's context lies outside what the model was trained on."""
        return ((np.asarray(parts["energy"]) > self.energy_limit)
                | (np.asarray(parts["structure"]) > self.structure_limit)
                | (window_correction(parts) > self.correction_limit))

    def to_config(self) -> dict:
        """JSON-ready (stored in the model layer's metadata under ``"uncertainty"``)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in out.items()} | {"units": "nm"}

    @classmethod
    def from_config(cls, config: dict) -> "Calibration":
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in config.items() if k in names}
        for k in ("base", "disagreement", "correction", "spline_sigma"):
            values[k] = np.asarray(values[k], np.float64)
        return cls(**values)


def window_correction(parts: dict) -> np.ndarray:
    """(W,) RMS of each window's correction over its frames and atoms (nm)."""
    return np.sqrt(np.mean(np.square(parts["correction"]), axis=(1, 2)))


def gap_uncertainty(sigma: np.ndarray) -> np.ndarray:
    """Per-gap uncertainty: the RMS of σ over a gap's frames and atoms, (W, G, N) -> (W,) nm."""
    return np.sqrt(np.mean(np.square(sigma), axis=(1, 2)))


def gap_error(errors: np.ndarray) -> np.ndarray:
    """Per-gap error on the same footing: RMS Cartesian component error, (W, G, N, 3) -> (W,) nm."""
    return np.sqrt(np.mean(np.square(errors), axis=(1, 2, 3)))


def resolve_threshold(max_uncertainty, cal: Calibration):
    """The fallback threshold (nm) that ``max_uncertainty`` asks for: None (none), ``"default"`` (the
    calibration's) or a positive length; a one-line error otherwise."""
    if max_uncertainty is None:
        return None
    threshold = cal.max_uncertainty if max_uncertainty == "default" else float(max_uncertainty)
    if not threshold > 0:
        raise TrajsrError(f"--max-uncertainty must be a positive length, got {max_uncertainty}")
    return threshold


def calibration_record(model: str, cal: Calibration, threshold, fine) -> str:
    """What a trajsr ``.h5`` records about the σ it holds (JSON): the model, the validation figures, the
    threshold (Å) and how many of ``fine``'s gaps were replaced."""
    import json
    return json.dumps({"model": model, "sigma": "per atom, of each Cartesian component (nm)",
                       "validation": cal.fitted_on,
                       "threshold_angstrom": None if threshold is None else threshold * ANGSTROM_PER_NM,
                       "replaced_gaps": int(fine.info["gap_flags"]["replaced"].sum())})


def apply_calibration(fine, positions, velocities, dt: float, factor: int, parts: dict, cal: Calibration,
                      threshold=None, want_sigma: bool = False, gaps=None) -> dict:
    """σ, per-gap flags and the fallback for a rebuilt fine path, the same for every calibrated method.

    Parameters
    ----------
    fine : ndarray, shape ((K − 1) · factor + 1, N, 3)
        The fine path (nm); gaps above ``threshold`` are replaced in place.
    positions, velocities : ndarray, shape (K, N, 3)
        Kept frames (nm) and the velocities the fallback may use (nm/ps; None: the spline).
    parts : dict
        The signals of the gaps ``gaps`` (all by default); the others were filled by the baseline and get
        its σ (``spline_sigma``).
    threshold : float, optional
        Replace gaps whose uncertainty exceeds it (nm); without it, gaps are only flagged against the
        calibration's default.

    Returns
    -------
    dict
        ``gap_flags`` (``out_of_distribution``, ``above_threshold``, ``replaced``: (K − 1,) bool),
        ``gap_difficulty`` ((K − 1,): the chunk's difficulty D at each gap the model filled, NaN elsewhere) and, with
        ``want_sigma``, ``uncertainty`` (frames, N) nm: σ of each Cartesian component, 0 at kept frames.
    """
    from .baselines import get_baseline
    n, n_atoms = len(positions), positions.shape[1]
    gaps = np.arange(n - 1) if gaps is None else np.asarray(gaps)
    gap_sigma = np.zeros((n - 1, factor - 1, n_atoms))
    gap_sigma[:] = cal.spline_sigma  # the baseline's typical error where the baseline filled the gap
    flags = {name: np.zeros(n - 1, bool) for name in ("out_of_distribution", "above_threshold", "replaced")}
    difficulty = np.full(n - 1, np.nan)  # the chunk's D at each gap the model filled
    if len(gaps):  # the difficulty is read over all the chunk's gaps, then each gap's σ
        difficulty[gaps] = cal.difficulty(parts)
        gap_sigma[gaps] = cal.sigma(parts, difficulty[gaps[0]])
        flags["out_of_distribution"][gaps] = cal.out_of_distribution(parts)
        flags["above_threshold"][gaps] = gap_uncertainty(gap_sigma[gaps]) > (
            cal.max_uncertainty if threshold is None else threshold)
    if threshold is not None and flags["above_threshold"].any():
        replaced = flags["replaced"] = flags["above_threshold"].copy()
        fallback = get_baseline("hermite" if velocities is not None else "spline")
        baseline = fallback.fill(positions, velocities, dt, factor)[0]
        fine[:-1].reshape(n - 1, factor, n_atoms, 3)[replaced, 1:] = \
            baseline[:-1].reshape(n - 1, factor, n_atoms, 3)[replaced, 1:]
        gap_sigma[replaced] = np.maximum(gap_sigma[replaced], cal.spline_sigma)
    extra = {"gap_flags": flags, "gap_difficulty": difficulty}
    if want_sigma:
        sigma = np.zeros((len(fine), n_atoms))
        sigma[:-1].reshape(n - 1, factor, n_atoms)[:, 1:] = gap_sigma
        extra["uncertainty"] = sigma
    return extra


def fit_calibration(parts: dict, errors: np.ndarray, spline_errors: np.ndarray, groups: np.ndarray,
                    training_parts: dict | None = None, fitted_on=None) -> Calibration:
    """Fit the uncertainty model to validation windows.

    Parameters
    ----------
    parts : dict
        :meth:`.gap.GapModel.parts` of W validation windows (``disagreement``, ``correction`` (W, G, N) nm,
        ``energy``, ``structure`` (W,)).
    errors, spline_errors : ndarray, shape (W, G, N, 3)
        The model's and the baseline's errors at the windows' dropped frames (nm).
    groups : ndarray, shape (W,)
        Which validation trajectory each window comes from (the difficulty is a trajectory's).
    training_parts : dict, optional
        ``parts`` of training windows: the out-of-distribution limits and D = 1 (default: validation).
    """
    errors = np.asarray(errors, np.float64)
    w, g, n, _ = errors.shape
    if w < 10:
        raise TrajsrError(f"calibration needs validation windows; got {w}")
    reference = training_parts or parts
    cal = Calibration(base=np.ones((g, n)), disagreement=np.ones(g), correction=np.ones(g), energy_power=0.0,
                      difficulty_power=1.0, difficulty_reference=float(np.sqrt(np.mean(reference["correction"] ** 2))),
                      scale=1.0, energy_limit=float(np.quantile(reference["energy"], OOD_QUANTILE)),
                      structure_limit=float(np.quantile(reference["structure"], OOD_QUANTILE)),
                      correction_limit=float(np.quantile(window_correction(reference), OOD_QUANTILE)),
                      spline_sigma=np.sqrt(np.mean(np.sum(np.asarray(spline_errors) ** 2, -1), 0) / 3),
                      max_uncertainty=np.inf, fitted_on=dict(fitted_on or {}, windows=int(w)))
    level = np.empty(w)
    for group in np.unique(groups):
        mine = groups == group
        level[mine] = cal.difficulty({"correction": parts["correction"][mine]})
    squared = np.sum(errors ** 2, axis=-1)  # (W, G, N): three components of one isotropic σ
    d2 = np.asarray(parts["disagreement"], np.float64) ** 2
    r2 = np.asarray(parts["correction"], np.float64) ** 2
    log_e = np.log(np.maximum(np.asarray(parts["energy"], np.float64), 1e-6))[:, None, None]
    log_d = np.log(level)[:, None, None]
    excess = np.maximum(1.0, np.asarray(parts["structure"], np.float64) / cal.structure_limit)[:, None, None]
    log_x = 2 * np.log(excess)

    def unpack(theta):
        b = theta[: g * n].reshape(g, n)
        return b, theta[g * n: g * n + g], theta[g * n + g: g * n + 2 * g], theta[-2], theta[-1]

    def nll(theta):
        b, cd, cr, p, q = unpack(theta)
        term_b = np.exp(2 * (b + p * log_e + q * log_d + log_x))
        term_d, term_r = np.exp(2 * cd)[:, None] * d2, np.exp(2 * cr)[:, None] * r2
        var = term_b + term_d + term_r + 1e-30
        value = np.mean(1.5 * np.log(var) + 0.5 * squared / var)
        dvar = (1.5 / var - 0.5 * squared / var ** 2) / (w * g * n)
        grad = np.concatenate([(2 * dvar * term_b).sum(0).ravel(), (2 * dvar * term_d).sum((0, 2)),
                               (2 * dvar * term_r).sum((0, 2)), [(2 * dvar * term_b * log_e).sum()],
                               [(2 * dvar * term_b * log_d).sum()]])
        return value, grad

    typical = np.sqrt(np.mean(squared, axis=0) / 3)  # (G, N) start values
    theta0 = np.concatenate([np.log(typical + 1e-12).ravel(), np.full(g, -1.0), np.full(g, -1.0), [0.0, 1.0]])
    # q >= 1: a trajectory on which the model corrects the spline more is never trusted more
    bounds = [(None, None)] * (len(theta0) - 2) + [ENERGY_POWER_BOUNDS, (1.0, 4.0)]
    result = minimize(nll, theta0, jac=True, method="L-BFGS-B", bounds=bounds)
    b, cd, cr, p, q = unpack(result.x)
    cal.base, cal.disagreement, cal.correction = np.exp(b), np.exp(cd), np.exp(cr)
    cal.energy_power, cal.difficulty_power = float(p), float(q)
    cal.fitted_on["difficulty_largest"] = float(level.max())  # of a validation file (D = 1: all of them)
    sigma = cal.sigma(parts, level)
    # the scale that puts 90% of the validation components inside ±1.645σ
    cal.scale = float(np.quantile(np.abs(errors) / sigma[..., None], COVERAGE) / Z90)
    sigma *= cal.scale
    # replace a gap when the model expects to be no better there than the baseline typically is
    cal.max_uncertainty = float(np.sqrt(np.mean(cal.spline_sigma ** 2)))
    cal.fitted_on.update(validation_figures(sigma, errors),
                         max_uncertainty_angstrom=cal.max_uncertainty * ANGSTROM_PER_NM)
    return cal


def validation_figures(sigma: np.ndarray, errors: np.ndarray) -> dict:
    """Coverage of the nominal 90% interval (per component), Spearman correlation of per-gap uncertainty
    with per-gap error, and the median uncertainty (Å) — for any windows with known errors."""
    from scipy.stats import spearmanr
    inside = np.abs(errors) <= Z90 * sigma[..., None]
    rho = spearmanr(gap_uncertainty(sigma), gap_error(errors)).statistic if len(sigma) > 2 else float("nan")
    return {"coverage_90": float(inside.mean()), "spearman_gap": float(rho),
            "median_sigma_angstrom": float(np.median(sigma) * ANGSTROM_PER_NM)}


def window_parts(interp, trajectories, step: int | None = None):
    """Run a :class:`.learned.LearnedInterpolator` over every window of fine ``trajectories`` with known
    answers: its ``parts`` (prediction removed), its errors and the baseline's errors (W, G, N, 3) nm, and
    the index of the trajectory of each window (W,).
    ``step``: a window every ``step`` fine frames (default factor / 5, so every coarse phase is seen)."""
    from .windows import training_windows
    step = step or max(1, interp.factor // 5)
    parts, errors, baseline_errors, groups = [], [], [], []
    for index, traj in enumerate(trajectories):
        w = training_windows(traj, factor=interp.factor, context=interp.context, reference=interp.reference,
                             with_velocities=interp.with_velocities, step=step)
        x = w.inputs()
        for lo in range(0, len(w), interp.batch_size):
            part = interp.parts({key: value[lo: lo + interp.batch_size] for key, value in x.items()})
            target = w.target[lo: lo + interp.batch_size]
            errors.append(part.pop("prediction").reshape(target.shape) - target)
            baseline_errors.append(w.baseline[lo: lo + interp.batch_size] - target)
            parts.append(part)
            groups.append(np.full(len(target), index))
    return ({key: np.concatenate([p[key] for p in parts]) for key in parts[0]}, np.concatenate(errors),
            np.concatenate(baseline_errors), np.concatenate(groups))


#: at most about this many training windows set the out-of-distribution limits
TRAINING_WINDOWS = 20000


def calibrate(interp, trajectories, training=(), step: int | None = None) -> Calibration:
    """Fit the uncertainty of a loaded model on validation trajectories (never the test set).

    The baseline's errors (the spline, or Hermite for a with-velocities model: what the fallback uses)
    give the uncertainty of the gaps the model leaves to it and the default fallback threshold.
    ``training`` trajectories (some of the training data) set the out-of-distribution limits and D = 1.
    """
    parts, errors, baseline_errors, groups = window_parts(interp, trajectories, step)
    training_parts, files = None, recorded_paths(t.source for t in training)
    if training:
        frames = sum(t.n_frames for t in training)
        training_parts = window_parts(interp, training, step=max(interp.factor, frames // TRAINING_WINDOWS))[0]
    return fit_calibration(parts, errors, baseline_errors, groups, training_parts,
                           fitted_on={"files": recorded_paths(t.source for t in trajectories),
                                      "training_files": files})


def store(model, calibration: Calibration) -> None:
    """Put ``calibration`` into the model's gap layer metadata (saved with the ``.keras`` file)."""
    from .gap import gap_layer
    gap_layer(model).metadata["uncertainty"] = calibration.to_config()
