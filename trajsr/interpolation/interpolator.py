"""The interface every interpolator answers: a coarse trajectory and a factor in, the fine one out.

Baselines and learned models subclass :class:`Interpolator` and implement :meth:`fill`, which works
on plain arrays (nm, ps). The base class handles what they share: checking the input, periodic
unwrapping before and re-imaging after, time stamps, and putting the kept frames back unchanged.
"""
from __future__ import annotations

import numpy as np

from ..errors import TrajsrError
from ..geometry import unwrap
from ..trajectory import Trajectory, check_factor
from ..units import FS_PER_PS
from .gapreport import OOD_MEANING


class Interpolator:
    """Base class: rebuild the ``factor − 1`` frames dropped between consecutive kept frames."""

    #: short name used by the CLI and in reports
    name = "interpolator"
    #: whether :meth:`fill` needs the coarse velocities
    needs_velocities = False
    #: whether :meth:`fill` uses the coarse velocities when the file stores them (shooting's bridge does)
    uses_stored_velocities = False
    #: kept frames on each side of a gap that decide it (to round-off): what streaming must overlap
    context = 1
    #: whether :meth:`interpolate` takes ``starts_file`` (a solve over the whole chunk treats the file's
    #: first frames apart; streaming says which chunk starts the file) and ``stop`` (a ``threading.Event``
    #: that ends the solve early)
    solves_whole_chunks = False
    #: chunks of a streamed file computed at once, each on a thread (a method that leaves cores idle says 2)
    chunks_side_by_side = 1
    #: the upsampling factor a trained model is fixed to (None: any factor)
    factor = None
    #: why --uncertainty is refused for this interpolator (a hint that leads somewhere)
    no_uncertainty = ("uncertainty needs a calibrated interpolation model (trajsr train, then trajsr calibrate "
                      "MODEL --validation FILES)")

    #: what a gap flagged out of distribution means for this method (the end of ``upsample``'s warning)
    out_of_distribution_means = OOD_MEANING

    def calibration_for(self, coarse: Trajectory, factor: int):
        """The uncertainty calibration that rebuilding ``coarse`` by ``factor`` would use, or None."""
        return None

    def uncertainty_hint(self, coarse: Trajectory, factor: int) -> str:
        """Why ``coarse`` gets no uncertainty here, and what to run instead."""
        return self.no_uncertainty

    def working_bytes_per_kept_frame(self, coarse: Trajectory) -> int:
        """Memory rebuilding a chunk like ``coarse`` holds per kept frame beyond its fine frames (bytes): 0 here."""
        return 0

    def bytes_per_kept_frame(self, coarse: Trajectory, factor: int) -> int:
        """Memory rebuilding ``coarse`` by ``factor`` holds per kept frame (bytes): its fine frames (positions
        and velocities, float64) and the method's working memory (:meth:`working_bytes_per_kept_frame`)."""
        return factor * coarse.n_atoms * 3 * 8 * 2 + self.working_bytes_per_kept_frame(coarse)

    def check_memory(self, coarse: Trajectory, factor: int) -> None:
        """One error, before any work, where rebuilding ``coarse`` at once would need more memory than this
        machine has (:meth:`bytes_per_kept_frame`). Streaming (:func:`.streaming.upsample`) rebuilds a file in
        chunks that fit."""
        need = coarse.n_frames * self.bytes_per_kept_frame(coarse, factor)
        have = physical_memory_bytes()
        if have is not None and need > have:
            raise TrajsrError(
                f"{coarse.source}: rebuilding its {coarse.n_frames} frames of {coarse.n_atoms} atoms with {self.name} "
                f"at factor {factor} in memory needs {_size(need)}, more than this machine's {_size(have)}: rebuild "
                "the file in chunks (trajsr upsample, or trajsr.upsample in Python), or pass fewer frames at a time")

    def edge_gaps(self, n_kept: int) -> int:
        """How many of the ``n_kept − 1`` gaps fall back to the spline for lack of context (0 here)."""
        return 0

    def fill(self, positions: np.ndarray, velocities: np.ndarray | None, dt: float, factor: int):
        """Interpolate arrays.

        Parameters
        ----------
        positions : ndarray, shape (n_kept, atoms, 3)
            Kept frames in nm, periodic jumps already removed.
        velocities : ndarray, shape (n_kept, atoms, 3) or None
            Velocities of the kept frames in nm/ps.
        dt : float
            Spacing of the kept frames in ps (1.0 when the file has no time; then no velocities come out).
        factor : int
            Upsampling factor.

        Returns
        -------
        positions : ndarray, shape ((n_kept − 1) * factor + 1, atoms, 3)
        velocities : ndarray of the same shape, or None
        extra : dict, optional
            A learned model's ``uncertainty`` ((frames, atoms) nm) and ``gap_flags`` (per-gap booleans).
        """
        raise NotImplementedError

    def uses_velocities(self, coarse: Trajectory) -> bool:
        """Whether the reconstruction of ``coarse`` rests on its stored velocities."""
        return coarse.velocities is not None and (self.needs_velocities or self.uses_stored_velocities)

    def check(self, coarse: Trajectory, factor: int) -> None:
        """One-line errors, before any work, for a trajectory this interpolator cannot rebuild."""
        if self.needs_velocities and coarse.velocities is None:
            raise TrajsrError(f"{coarse.source}: {self.name} interpolation needs velocities, and this file "
                              "stores none (formats with velocities: trr, nc, npz V, trajsr h5)")
        if coarse.time is None and self.needs_velocities:
            raise TrajsrError(f"{coarse.source}: {self.name} interpolation weighs velocities by the frame spacing, "
                              "and this file has no time: give the spacing of its frames with --dt (fs)")

    def interpolate(self, coarse: Trajectory, factor: int, **fill_options) -> Trajectory:
        """Return the fine trajectory: ``(len(coarse) − 1) * factor + 1`` frames, kept frames unchanged.
        ``fill_options`` go to :meth:`fill` (a calibrated method's uncertainty options)."""
        factor = check_factor(factor)
        if coarse.n_frames < 2:
            raise TrajsrError(f"{coarse.source}: need at least 2 frames to interpolate, got {coarse.n_frames}")
        self.check(coarse, factor)
        self.check_memory(coarse, factor)
        # without time, frames are taken 1 apart: positions do not depend on the unit, velocities would
        dt = coarse.dt if coarse.time is not None else 1.0
        positions = coarse.positions
        if coarse.is_periodic:
            positions = unwrap(positions, coarse.unitcell_vectors)
        if coarse.time is not None and self.uses_velocities(coarse):
            check_velocities(coarse, positions)
        fine, fine_velocities, *more = self.fill(positions, coarse.velocities, dt, factor, **fill_options)
        extra = more[0] if more else {}  # a learned model's uncertainty and per-gap flags
        if coarse.time is None:
            fine_velocities = None
        if coarse.is_periodic:
            # each gap goes back into the periodic image of its left kept frame
            shift = np.repeat(coarse.positions - positions, factor, axis=0)[: len(fine)]
            fine = fine + shift
        fine[::factor] = coarse.positions
        if fine_velocities is not None and coarse.velocities is not None:
            fine_velocities[::factor] = coarse.velocities
        n = len(fine)
        time = None if coarse.time is None else coarse.time[0] + np.arange(n) * dt / factor
        box = None if coarse.unitcell_vectors is None else np.repeat(coarse.unitcell_vectors, factor,
                                                                      axis=0)[:n]
        info = dict(coarse.info, interpolation=self.name, factor=factor)
        for key in ("gap_flags", "gap_difficulty"):
            if key in extra:
                info[key] = extra[key]
        info.pop("guard_failed", None)  # a flag of this reconstruction only (see .gapguard)
        return Trajectory(positions=fine, elements=coarse.elements, velocities=fine_velocities, time=time,
                          unitcell_vectors=box, topology=coarse.topology, uncertainty=extra.get("uncertainty"),
                          info=info,
                          source=f"{self.name} reconstruction of {coarse.source}")

    def __repr__(self):
        return f"{type(self).__name__}()"


def physical_memory_bytes() -> int | None:
    """This machine's physical memory (bytes), or None where the system does not say."""
    import os
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 1024 ** 3:.1f} GiB" if n_bytes >= 1024 ** 3 else f"{n_bytes / 1024 ** 2:.1f} MiB"


def fine_times(n_kept: int, factor: int, dt: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Times (ps) of the kept frames and of every fine frame, for ``n_kept`` kept frames."""
    kept = np.arange(n_kept) * dt
    fine = np.arange((n_kept - 1) * factor + 1) * (dt / factor)
    return kept, fine


def check_velocities(coarse: Trajectory, positions: np.ndarray,
                     remedy: str = "ignore its velocities (upsample --positions-only)") -> None:
    """Refuse stored velocities that the positions contradict: another unit (Å/ps or Å/fs read as nm/ps),
    reversed, or from another trajectory (see :func:`trajsr.physics.velocity_scale`). ``positions`` are
    the kept frames with periodic jumps removed (nm). Where the frames are too far apart for the positions
    to tell (fit residual ≥ 0.9), nothing is checked. ``remedy`` ends the message."""
    from ..physics import velocity_scale
    scale, residual = velocity_scale(positions, coarse.velocities, coarse.dt, coarse.elements)
    if residual >= 0.9 or not np.isfinite(scale):
        return
    low, high = (0.5, 2.0) if residual < 0.6 else (0.1, 3.0)
    if low <= scale <= high:
        return
    hint = ("reversed (negated) velocities" if scale < 0 else
            f"velocities about {1 / scale:.3g}x too large (another unit? Å/ps read as nm/ps is 10x)" if scale < low
            else f"velocities about {scale:.3g}x too small (another unit? Å/fs read as nm/ps is 100x)")
    raise TrajsrError(f"{coarse.source}: the stored velocities disagree with the positions: the heavy atoms move "
                      f"{scale:.3g}x as far as the velocities say between frames {coarse.dt * FS_PER_PS:g} fs apart, "
                      f"{hint}; fix the file, or {remedy}")
