"""A trained ``.keras`` super-resolution model behind the :class:`~trajsr.interpolation.interpolator.Interpolator`
interface, so the CLI, the demo, streaming and the benchmarks treat it like a baseline.

The edge rule lives here, once: the first and last K − 1 gaps have fewer than K kept frames on a side
and are filled by a cubic spline through the 2K kept frames nearest to them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import TrajsrError
from ..modelfile import load_model
from ..physics import masses_of
from ..trajectory import Trajectory
from ..units import FS_PER_PS
from ..atom_order import check_atoms
from .interpolator import Interpolator
from .uncertainty import apply_calibration, calibration_record, resolve_threshold
from .windows import build_windows, restore, spline_matrix


def edge_gap_indices(n_kept: int, context: int) -> list:
    """Gaps (of ``n_kept − 1``) with fewer than ``context`` kept frames on a side: the spline fills them."""
    return [g for g in range(n_kept - 1) if g < context - 1 or g >= n_kept - context]


class LearnedInterpolator(Interpolator):
    """Upsample with a trained model; gaps with fewer than K kept frames on a side use the spline.

    Parameters
    ----------
    model : keras.Model or path
        A model made by :func:`trajsr.train.fit`.
    batch_size : int
        Windows per inference batch.
    """

    no_uncertainty = ("this model has no uncertainty calibration; calibrate it on validation trajectories first "
                      "(trajsr calibrate MODEL --validation FILES -o CALIBRATED.keras)")

    def __init__(self, model, batch_size: int = 2048):
        from . import ensemble  # noqa: F401 (registers the ensemble layer with Keras)
        from .gap import gap_layer
        if batch_size < 1:
            raise TrajsrError(f"batch size must be a positive number of gaps, got {batch_size}")
        self.model = load_model(model, expect="interpolate") if isinstance(model, (str, Path)) else model
        try:
            layer = gap_layer(self.model)
        except ValueError:
            raise TrajsrError(f"{model}: not a trajsr super-resolution model (no gap_interpolator layer; "
                              "propagators are run with 'trajsr propagate')") from None
        self.factor, self.context = layer.factor, layer.context
        self.with_velocities, self.meta = layer.with_velocities, layer.metadata
        self.n_atoms, self.elements = layer.n_atoms, list(self.meta.get("elements", []))
        self.reference = np.asarray(self.meta["reference"])
        self.dt_fs = float(self.meta["dt_fs"])
        self.name = self.meta.get("model", "learned")
        self.needs_velocities = self.with_velocities
        self.batch_size = batch_size
        self._compiled = self._compiled_parts = None

    def edge_gaps(self, n_kept: int) -> int:
        return len(edge_gap_indices(n_kept, self.context))

    def check(self, coarse: Trajectory, factor: int) -> None:
        """One-line errors for a trajectory the model was not trained for."""
        super().check(coarse, factor)
        if factor != self.factor:
            raise TrajsrError(f"model upsamples by {self.factor}, not {factor}")
        if coarse.n_atoms != self.n_atoms:
            raise TrajsrError(f"{coarse.source}: {coarse.n_atoms} atoms, the model was trained on {self.n_atoms}")
        check_atoms(coarse, self.elements, self.reference)
        if coarse.time is None:  # a model is fixed to one spacing: a file without time must say its own
            raise TrajsrError(f"{coarse.source}: no time in this file, and the model is for frames "
                              f"{self.factor * self.dt_fs:g} fs apart: give their spacing with --dt (fs)")
        if coarse.n_frames > 1:
            spacing, expected = coarse.dt * FS_PER_PS, self.factor * self.dt_fs
            if abs(spacing - expected) > 1e-3 * expected:
                raise TrajsrError(f"{coarse.source}: frames are {spacing:g} fs apart; the model expects "
                                  f"factor x dt = {self.factor} x {self.dt_fs:g} fs = {expected:g} fs")

    def calibration_for(self, coarse, factor):
        return self.calibration

    @property
    def calibration(self):
        """The model's stored :class:`.uncertainty.Calibration`, or None (a model never calibrated)."""
        from .uncertainty import Calibration
        config = self.meta.get("uncertainty")
        return Calibration.from_config(config) if config else None

    def interpolate(self, coarse: Trajectory, factor: int | None = None, uncertainty: bool = False,
                    max_uncertainty=None) -> Trajectory:
        """The fine trajectory (nm, ps).

        Parameters
        ----------
        uncertainty : bool
            Also return the per-atom uncertainty (``Trajectory.uncertainty``, (frames, atoms) nm: the σ of
            each Cartesian component of an atom's error; 0 at kept frames). Needs a calibrated model.
        max_uncertainty : float or "default", optional
            Replace every gap whose uncertainty (RMS of σ over its frames and atoms, nm) exceeds this by
            Hermite (velocities stored) or the spline; ``"default"``: the threshold chosen on validation.
        Per-gap flags (``out_of_distribution``, ``above_threshold``, ``replaced``) go to
        ``info["gap_flags"]`` when the model is calibrated.
        """
        factor = self.factor if factor is None else factor
        self.check(coarse, factor)
        cal = self.calibration
        if (uncertainty or max_uncertainty is not None) and cal is None:
            raise TrajsrError(f"{self.name}: {self.no_uncertainty}")
        threshold = resolve_threshold(max_uncertainty, cal)
        self._options = dict(uncertainty=uncertainty, threshold=threshold, calibration=cal)
        try:
            fine = super().interpolate(coarse, factor)
        finally:
            self._options = {}
        if uncertainty:  # recorded in a trajsr .h5's attributes
            fine.info["uncertainty_calibration"] = calibration_record(self.name, cal, threshold, fine)
        return fine

    def fill(self, positions, velocities, dt, factor):
        """Fill every gap; the first and last K − 1 gaps (too little context) with a local spline. With a
        calibrated model also the uncertainty (frames, atoms) nm and the per-gap flags (see
        :meth:`interpolate`)."""
        n, k = len(positions), self.context
        options = getattr(self, "_options", {})
        cal, threshold = options.get("calibration"), options.get("threshold")
        fine = np.empty(((n - 1) * factor + 1, self.n_atoms, 3))
        fine[::factor] = positions
        gaps_view = fine[:-1].reshape(n - 1, factor, self.n_atoms, 3)[:, 1:]  # (gaps, S − 1, N, 3) view
        interior = np.arange(k - 1, n - k)  # gaps with K kept frames on each side
        masses = masses_of(self.elements) if self.elements else np.ones(self.n_atoms)
        collected = []
        for lo in range(0, len(interior), self.batch_size):
            gaps = interior[lo: lo + self.batch_size]
            w = build_windows(positions, velocities, factor=factor, context=k, masses=masses,
                              reference=self.reference, starts=gaps - (k - 1), spacing_ps=dt,
                              with_velocities=self.with_velocities, targets=False, index_step=1)
            if cal is None:
                pred = self._predict(w.inputs())
            else:
                parts = self.parts(w.inputs())
                pred = parts.pop("prediction")
                collected.append(parts)
            gaps_view[gaps] = restore(pred.reshape(len(gaps), factor - 1, self.n_atoms, 3).astype(np.float64),
                                      w.com, w.rotation)
        for g in edge_gap_indices(n, k):
            fine[g * factor + 1: (g + 1) * factor] = _local_spline(positions, g, k, factor)
        if cal is None:
            return fine, fine_velocities(fine, dt, factor)
        parts = {key: np.concatenate([c[key] for c in collected]) for key in collected[0]} if collected else {}
        extra = apply_calibration(fine, positions, velocities, dt, factor, parts, cal, threshold,
                                  options.get("uncertainty", False), gaps=interior)
        return fine, fine_velocities(fine, dt, factor), extra

    def _predict(self, inputs: dict) -> np.ndarray:
        """The model on one batch, through a compiled graph of a fixed batch size (a power of two up to
        ``batch_size``; the batch is padded), so the graph is traced a handful of times, not per batch."""
        import tensorflow as tf

        from .gap import model_inputs
        if self._compiled is None:
            self._compiled = tf.function(lambda x: self.model(x, training=False), reduce_retracing=False)
        n, padded = self._padded(inputs)
        return self._compiled(model_inputs(self.model, padded)).numpy()[:n]

    def parts(self, inputs: dict) -> dict:
        """:meth:`.gap.GapModel.parts` on one batch of windows (compiled like :meth:`_predict`): the
        prediction and the signals the uncertainty is made of, as NumPy arrays."""
        import tensorflow as tf

        from .gap import gap_layer
        if self._compiled_parts is None:
            layer = gap_layer(self.model)
            self._compiled_parts = tf.function(lambda x: layer.parts(x["kept"], x["baseline"]),
                                               reduce_retracing=False)
        n, padded = self._padded(inputs)
        return {key: value.numpy()[:n] for key, value in self._compiled_parts(padded).items()}

    def _padded(self, inputs: dict):
        n = len(next(iter(inputs.values())))
        size = min(self.batch_size, 1 << max(0, (n - 1).bit_length()))
        return n, {key: np.concatenate([a, np.zeros((size - n,) + a.shape[1:], a.dtype)]) if size > n else a
                   for key, a in inputs.items()}


def fine_velocities(fine: np.ndarray, dt: float, factor: int) -> np.ndarray:
    """Velocities (nm/ps) of a rebuilt fine path (frames, N, 3) nm with kept frames ``dt`` ps apart: the
    derivative of the cubic spline through every fine frame (an O–H stretch's speed to 1 part in 10⁴
    at 0.5 fs, where central differences lose 2%)."""
    from scipy.interpolate import CubicSpline
    t = np.arange(len(fine)) * (dt / factor)
    return CubicSpline(t, fine, axis=0)(t, 1)


def _local_spline(positions, gap, context, factor):
    """Spline through the 2K kept frames nearest to ``gap`` (fewer if the trajectory is shorter)."""
    n = len(positions)
    width = min(2 * context, n)
    start = int(np.clip(gap - width // 2 + 1, 0, n - width))
    m = spline_matrix(width // 2, factor, gap - start) if width % 2 == 0 else _odd_spline(width, factor,
                                                                                           gap - start)
    return np.einsum("gk,kai->gai", m, positions[start: start + width])


def _odd_spline(width, factor, gap):
    from scipy.interpolate import CubicSpline
    at = gap + np.arange(1, factor) / factor
    if width == 2:
        return np.stack([1 - at, at], axis=1)
    return CubicSpline(np.arange(width, dtype=float), np.eye(width), axis=0)(at)

