"""What a streamed upsample learned about its gaps: the uncertainty summary, the fallback count, the
out-of-distribution warning, and the side file for formats that cannot hold the uncertainty."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..errors import TrajsrError
from ..io.atomic import TemporaryOutput
from ..units import ANGSTROM_PER_NM

#: warn when more than this fraction of a file's gaps has a context outside the training distribution
OOD_WARN_FRACTION = 0.01
#: what an out-of-distribution gap means for a learned interpolation model
OOD_MEANING = ("have a context outside the model's training data (more energy, or a structure it never saw): their "
               "reconstruction is less reliable; see --uncertainty, --max-uncertainty")


class GapReport:
    """Counts over the gaps written (each once, though streamed chunks overlap) and the frame uncertainties.

    Parameters
    ----------
    calibration : :class:`.uncertainty.Calibration`
    max_uncertainty : float (nm), "default" or None
        The fallback threshold in use (None: gaps are only counted against the default one).
    """

    def __init__(self, calibration, max_uncertainty=None):
        self.replacing = max_uncertainty is not None
        self.threshold = (calibration.max_uncertainty if max_uncertainty in (None, "default")
                          else float(max_uncertainty))  # nm
        self.gaps = self.out_of_distribution = self.above_threshold = self.replaced = 0
        self.difficulty_largest, self.difficulty_limit = calibration.difficulty_largest, calibration.difficulty_limit
        self._frames = []  # RMS over atoms of σ at each dropped frame (nm)
        self._difficulty = []  # D² at each gap the model filled

    def add(self, flags: dict, gaps: slice, uncertainty, factor: int, difficulty=None) -> None:
        """Count the gaps ``gaps`` of one chunk's per-gap ``flags``; keep the dropped frames' uncertainty and
        the chunk's difficulty at those gaps (``difficulty``, per gap, NaN where the baseline filled it)."""
        self.gaps += len(range(*gaps.indices(len(flags["replaced"]))))
        self.out_of_distribution += int(flags["out_of_distribution"][gaps].sum())
        self.above_threshold += int(flags["above_threshold"][gaps].sum())
        self.replaced += int(flags["replaced"][gaps].sum())
        if difficulty is not None:
            d = np.asarray(difficulty)[gaps]
            self._difficulty.append(d[np.isfinite(d)] ** 2)
        if uncertainty is not None and len(uncertainty):
            dropped = np.arange(len(uncertainty)) % factor != 0  # the slice starts at a kept frame
            self._frames.append(np.sqrt(np.mean(uncertainty[dropped] ** 2, axis=1)).astype(np.float32))

    @property
    def frame_uncertainty_angstrom(self) -> np.ndarray:
        """RMS over atoms of the uncertainty at every dropped frame (Å); empty without ``--uncertainty``."""
        return np.concatenate(self._frames) * ANGSTROM_PER_NM if self._frames else np.zeros(0)

    @property
    def difficulty(self) -> float | None:
        """The file's difficulty D: RMS correction over its gaps relative to that over the calibration files
        (:class:`.uncertainty.Calibration`); None before any gap was filled by the model."""
        d = np.concatenate(self._difficulty) if self._difficulty else np.zeros(0)
        return float(np.sqrt(np.mean(d))) if len(d) else None

    def summary(self) -> str:
        """One line: median and largest frame uncertainty (Å), gaps above the threshold, replaced."""
        frames = self.frame_uncertainty_angstrom
        text = (f"frame uncertainty median {np.median(frames):.2e} Å, largest {frames.max():.2e} Å; "
                if len(frames) else "")
        action = f"replaced by the baseline: {self.replaced}" if self.replacing else "not replaced"
        hard = (f"; difficulty {self.difficulty:.2f} (calibration files up to "
                f"{self.difficulty_largest:.2f})" if self.difficulty is not None
                and self.difficulty_limit is not None else "")
        return (f"{text}{self.above_threshold} of {self.gaps} gaps above {self.threshold * ANGSTROM_PER_NM:.2e} Å "
                f"({action}); {self.out_of_distribution} out of distribution{hard}")

    def as_dict(self) -> dict:
        frames = self.frame_uncertainty_angstrom
        return {"gaps": self.gaps, "threshold_angstrom": self.threshold * ANGSTROM_PER_NM,
                "above_threshold": self.above_threshold, "replaced": self.replaced,
                "out_of_distribution": self.out_of_distribution, "difficulty": self.difficulty,
                "difficulty_limit": self.difficulty_limit,
                "median_frame_uncertainty_angstrom": float(np.median(frames)) if len(frames) else None,
                "max_frame_uncertainty_angstrom": float(frames.max()) if len(frames) else None}

    def warn_if_out_of_distribution(self, source, meaning: str = OOD_MEANING) -> None:
        """One warning when many gaps are out of distribution; ``meaning`` says what that means for the
        method (the interpolator's ``out_of_distribution_means``)."""
        if self.gaps and self.out_of_distribution > OOD_WARN_FRACTION * self.gaps:
            warnings.warn(f"{source}: {self.out_of_distribution / self.gaps:.1%} of its gaps "
                          f"({self.out_of_distribution} of {self.gaps}) {meaning}", stacklevel=2)
        elif self.difficulty is not None and self.difficulty_limit is not None \
                and self.difficulty > self.difficulty_limit:  # few gaps stand out, but the whole file does
            warnings.warn(f"{source}: the model corrected its gaps {self.difficulty:.1f}x as much as on its "
                          f"calibration files on average (at most {self.difficulty_largest:.1f}x "
                          f"on any one of them): as a whole, the file's gaps {meaning}", stacklevel=2)


def side_file_path(output) -> Path:
    """Where the uncertainty of a format that cannot hold it goes: ``OUTPUT.uncertainty.npz``."""
    return Path(f"{output}.uncertainty.npz")


class SideFile:
    """The uncertainty (frames, atoms) nm gathered chunk by chunk and written all-or-nothing as
    ``OUTPUT.uncertainty.npz`` (keys ``uncertainty`` and ``unit``) when the block succeeds.
    Inactive (``active=False``) it does nothing; the output's existence is checked on entry."""

    def __init__(self, output, active: bool, force: bool = False):
        self.active, self.parts = active, []
        path = side_file_path(output)
        self.output = TemporaryOutput(path, force) if active else None
        # one left by an earlier run would be read as this output's uncertainty: replaced only with force
        self.stale = None if active or not path.exists() else path
        if self.stale is not None and not force:
            raise TrajsrError(f"{self.stale}: an uncertainty file of an earlier run; use --force to write "
                              f"{output} and remove it")

    def __enter__(self):
        return self

    def add(self, uncertainty) -> None:
        if self.active and uncertainty is not None:
            self.parts.append(uncertainty.astype(np.float32))

    def __exit__(self, exc_type, exc, tb):
        if not self.active:
            if exc_type is None and self.stale is not None:
                self.stale.unlink(missing_ok=True)
            return
        if exc_type is None:
            np.savez(self.output.tmp, uncertainty=np.concatenate(self.parts), unit=np.array("nm"))
            self.output.commit()
        self.output.discard()
