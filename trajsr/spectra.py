"""Vibrational spectra of trajectory files, and how one compares with a reference: the figure people
rebuild fine frames for.

A spectrum is the mass-weighted vibrational density of states (:func:`trajsr.observables.vdos`: centre of
mass removed, Welch segments with a Hann window, the resolution in cm⁻¹). Frames ``dt`` apart hold
nothing above the Nyquist limit 1/(2c·dt): 3336 cm⁻¹ at 5 fs, 1668 cm⁻¹ at 10 fs. Motion faster than that
folds back below it (aliasing), so a comparison stops at the lower Nyquist limit of the two spectra, and a
band above it is not compared at all.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import TrajsrError
from .observables import VDOS_MIN_WAVENUMBER, VDOS_RESOLUTION, vdos, velocity_source, welch_segment
from .trajectory import Trajectory
from .units import FS_PER_PS, INVERSE_CM_PER_THZ

#: the top of a comparison by default (cm⁻¹): above the fastest X–H stretch of organic molecules
MAX_WAVENUMBER = 4000.0


@dataclass(frozen=True)
class Band:
    """A named wavenumber range (cm⁻¹) of the usual group frequencies; ``needs``: element sets of which
    the molecule must hold one each (("H",), ("O", "N")) = a hydrogen and an O or N) for it to be reported."""

    name: str
    low: float
    high: float
    needs: tuple = ()

    def applies_to(self, elements) -> bool:
        present = set(elements)
        return all(present & set(group) for group in self.needs)


BANDS = (
    Band("skeletal", 300.0, 1000.0),
    Band("fingerprint", 1000.0, 1500.0),
    Band("double bonds, X-H bends", 1500.0, 1900.0),
    Band("C-H stretch", 2700.0, 3300.0, needs=(("C",), ("H",))),
    Band("O-H/N-H stretch", 3300.0, 4000.0, needs=(("O", "N"), ("H",))),
)


@dataclass
class Spectrum:
    """A trajectory's VDOS: ``intensity`` (1/cm⁻¹, unit area) at ``wavenumber`` (cm⁻¹)."""

    label: str
    wavenumber: np.ndarray
    intensity: np.ndarray
    #: "velocities" (the file's own) or "positions" (central differences)
    source: str
    dt_fs: float
    #: bin spacing (cm⁻¹): 1/(c · segment duration)
    resolution: float
    #: Welch segments averaged (half overlap)
    segments: int
    elements: list

    @property
    def nyquist(self) -> float:
        """Highest wavenumber the frame spacing resolves (cm⁻¹)."""
        return INVERSE_CM_PER_THZ * FS_PER_PS / (2 * self.dt_fs)

    def to_dict(self, max_wavenumber: float | None = None) -> dict:
        keep = slice(None) if max_wavenumber is None else self.wavenumber <= max_wavenumber
        return dict(label=self.label, source=self.source, dt_fs=self.dt_fs, nyquist_cm1=self.nyquist,
                    resolution_cm1=self.resolution, segments=self.segments,
                    wavenumber_cm1=self.wavenumber[keep].tolist(), intensity_per_cm1=self.intensity[keep].tolist())


def spectrum(traj, source: str = "auto", resolution: float = VDOS_RESOLUTION, label: str | None = None) -> Spectrum:
    """The VDOS of one trajectory, or of several pooled (independent runs of one molecule and spacing).

    Parameters
    ----------
    traj : Trajectory or list of Trajectory
        Needs time and at least one Welch segment of frames.
    source : {"auto", "velocities", "positions"}
        Velocities stored in the file, or central differences of the positions; ``auto``: stored ones
        where there are any.
    resolution : float
        Spectral resolution in cm⁻¹ (sets the segment length).
    """
    trajs = [traj] if isinstance(traj, Trajectory) else list(traj)
    for t in trajs:
        if t.time is None:
            raise TrajsrError(f"{t.source}: a spectrum needs the frame spacing, and this file has no time: give "
                              "it with --dt (fs)")
        if t.n_frames < 4:
            raise TrajsrError(f"{t.source}: {t.n_frames} frame(s); a spectrum needs at least one Welch segment of "
                              f"frames ({welch_segment(t.dt, resolution) if t.n_frames > 1 else 'many'})")
    first = trajs[0]
    wavenumber, intensity = vdos(trajs, resolution, source=source)
    segment = welch_segment(first.dt, resolution)
    return Spectrum(label=label or str(first.source), wavenumber=wavenumber, intensity=intensity,
                    source=velocity_source(first, source),
                    dt_fs=first.dt * FS_PER_PS, resolution=INVERSE_CM_PER_THZ / (segment * first.dt),
                    segments=sum(1 + (t.n_frames - segment) // (segment // 2) for t in trajs),
                    elements=list(first.elements))


def compare(spec: Spectrum, reference: Spectrum, min_wavenumber: float = VDOS_MIN_WAVENUMBER,
            max_wavenumber: float = MAX_WAVENUMBER) -> dict:
    """How ``spec`` matches ``reference`` between ``min_wavenumber`` and the lowest of ``max_wavenumber``
    and the two Nyquist limits (cm⁻¹).

    Both spectra are put on the reference's bins and normalised to unit area over that range.

    Returns
    -------
    dict
        ``overlap``: Σ min(p, q) over the bins (1 = identical, 0 = disjoint); ``range_cm1``: the range
        compared; ``bands``: for each band of :data:`BANDS` the molecule has, its intensity relative to the
        reference's (1 = same), or None with the reason when the band lies above a Nyquist limit.
    """
    if spec.elements != reference.elements:
        raise TrajsrError(f"{spec.label}: its atoms ({len(spec.elements)}: {' '.join(spec.elements[:6])}...) are not "
                          f"the reference's ({len(reference.elements)}: {' '.join(reference.elements[:6])}...)")
    top = min(max_wavenumber, spec.nyquist, reference.nyquist)
    grid = reference.wavenumber[(reference.wavenumber >= min_wavenumber) & (reference.wavenumber <= top)]
    if len(grid) < 3:
        raise TrajsrError(f"{spec.label}: fewer than 3 bins of {reference.resolution:.0f} cm⁻¹ between "
                          f"{min_wavenumber:g} and {top:.0f} cm⁻¹ to compare (the Nyquist limit of frames "
                          f"{max(spec.dt_fs, reference.dt_fs):g} fs apart is "
                          f"{min(spec.nyquist, reference.nyquist):.0f} cm⁻¹)")
    p = np.interp(grid, spec.wavenumber, spec.intensity)
    q = np.interp(grid, reference.wavenumber, reference.intensity)
    p, q = p / np.trapezoid(p, grid), q / np.trapezoid(q, grid)
    bands = {}
    for band in BANDS:
        if not band.applies_to(reference.elements) or band.low < min_wavenumber:
            continue
        if band.high > top + reference.resolution:
            bands[band.name] = dict(range_cm1=[band.low, band.high], ratio=None,
                                    why=f"above the compared range (to {top:.0f} cm⁻¹)")
            continue
        inside = (grid >= band.low) & (grid <= band.high)
        mine, theirs = np.trapezoid(p[inside], grid[inside]), np.trapezoid(q[inside], grid[inside])
        bands[band.name] = dict(range_cm1=[band.low, band.high], ratio=float(mine / theirs) if theirs > 0 else None,
                                reference_share=float(theirs))
    overlap = float(np.minimum(p / p.sum(), q / q.sum()).sum())
    return dict(label=spec.label, reference=reference.label, overlap=overlap,
                range_cm1=[float(min_wavenumber), float(top)], bands=bands)
