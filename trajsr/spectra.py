"""Vibrational spectra of trajectory files, and how one compares with a reference: the figure people
rebuild fine frames for.

A spectrum is the mass-weighted vibrational density of states (:func:`trajsr.observables.vdos`: centre of
mass removed, Welch segments with a Hann window, the resolution in cm⁻¹), with each atom's part of it.
A band is a window of group frequencies, or (``hydrogens_on``) the stretch region of the hydrogens bonded
to given elements: where a molecule's O–H stretch lies is decided by its own bonds (malonaldehyde's
hydrogen-bonded O–H stretch sits near 2960 cm⁻¹, among the C–H stretches, and leaves the usual O–H window
above 3300 cm⁻¹ almost empty), so the atoms' band finds it where a fixed window sees only a tail.

Frames ``dt`` apart hold nothing above the Nyquist limit 1/(2c·dt): 3336 cm⁻¹ at 5 fs, 1668 cm⁻¹ at
10 fs. Motion faster than that folds back below it (aliasing), so a comparison stops at the lower Nyquist
limit of the two spectra, and a band above it is not compared at all.
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
    """A named wavenumber range (cm⁻¹). ``needs``: element sets of which the molecule must hold one each
    (("H",), ("O", "N")) = a hydrogen and an O or N) for it to be reported. ``hydrogens_on``: the band is
    then the part of the spectrum of the hydrogens bonded to one of these elements (each hydrogen's nearest
    other atom in the first frame), not of every atom."""

    name: str
    low: float
    high: float
    needs: tuple = ()
    hydrogens_on: tuple = ()

    def applies_to(self, elements) -> bool:
        present = set(elements)
        return all(present & set(group) for group in self.needs)

    def atoms(self, partners) -> list:
        """The atoms whose spectrum the band sums (all when it names no partners), from each atom's
        partner (see :func:`hydrogen_partners`)."""
        if not self.hydrogens_on:
            return list(range(len(partners)))
        return [i for i, p in enumerate(partners) if p in self.hydrogens_on]


#: the stretch region of an X–H band by atoms: above the X–H bends (< 1700 cm⁻¹), to the fastest stretch
STRETCH_REGION = (2000.0, 4000.0)
BANDS = (
    Band("skeletal", 300.0, 1000.0),
    Band("fingerprint", 1000.0, 1500.0),
    Band("double bonds, X-H bends", 1500.0, 1900.0),
    Band("C-H stretch", 2700.0, 3300.0, needs=(("C",), ("H",))),
    Band("O-H/N-H stretch", 3300.0, 4000.0, needs=(("O", "N"), ("H",))),
    Band("C-H stretch (by atom)", *STRETCH_REGION, needs=(("C",), ("H",)), hydrogens_on=("C",)),
    Band("O-H/N-H stretch (by atom)", *STRETCH_REGION, needs=(("O", "N"), ("H",)), hydrogens_on=("O", "N")),
)


def hydrogen_partners(traj) -> list:
    """For each atom of ``traj``: the element of the atom a hydrogen is bonded to (its nearest non-hydrogen
    atom in the first frame), None for other atoms and for a hydrogen with no other element present."""
    x, elements = traj.positions[0], list(traj.elements)
    heavy = [i for i, e in enumerate(elements) if e != "H"]
    if not heavy:
        return [None] * len(elements)
    partners = []
    for i, e in enumerate(elements):
        if e != "H":
            partners.append(None)
            continue
        nearest = heavy[int(np.argmin(np.linalg.norm(x[heavy] - x[i], axis=1)))]
        partners.append(elements[nearest])
    return partners


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
    #: each atom's part of ``intensity`` (frequencies, atoms), 1/cm⁻¹
    partial: np.ndarray | None = None
    #: per atom, the element a hydrogen is bonded to (:func:`hydrogen_partners`), else None
    partners: list | None = None

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
    wavenumber, intensity, partial = vdos(trajs, resolution, source=source, per_atom=True)
    segment = welch_segment(first.dt, resolution)
    return Spectrum(label=label or str(first.source), wavenumber=wavenumber, intensity=intensity,
                    source=velocity_source(first, source),
                    dt_fs=first.dt * FS_PER_PS, resolution=INVERSE_CM_PER_THZ / (segment * first.dt),
                    segments=sum(1 + (t.n_frames - segment) // (segment // 2) for t in trajs),
                    elements=list(first.elements), partial=partial, partners=hydrogen_partners(first))


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
    p_area, q_area = np.trapezoid(p, grid), np.trapezoid(q, grid)
    p, q = p / p_area, q / q_area
    bands = {}
    for band in BANDS:
        atoms = band.atoms(reference.partners or [None] * len(reference.elements))
        if not band.applies_to(reference.elements) or band.low < min_wavenumber or not atoms:
            continue
        if band.high > top + reference.resolution:
            bands[band.name] = dict(range_cm1=[band.low, band.high], ratio=None,
                                    why=f"above the compared range (to {top:.0f} cm⁻¹)")
            continue
        inside = (grid >= band.low) & (grid <= band.high)
        if band.hydrogens_on:  # those atoms' part, on the same scale as the whole spectrum
            p_band = _partial_on(spec, atoms, grid[inside]) / p_area
            q_band = _partial_on(reference, atoms, grid[inside]) / q_area
        else:
            p_band, q_band = p[inside], q[inside]
        mine, theirs = np.trapezoid(p_band, grid[inside]), np.trapezoid(q_band, grid[inside])
        bands[band.name] = dict(range_cm1=[band.low, band.high], ratio=float(mine / theirs) if theirs > 0 else None,
                                reference_share=float(theirs),
                                **({"atoms": atoms} if band.hydrogens_on else {}))
    overlap = float(np.minimum(p / p.sum(), q / q.sum()).sum())
    return dict(label=spec.label, reference=reference.label, overlap=overlap,
                range_cm1=[float(min_wavenumber), float(top)], bands=bands)


def _partial_on(spec: Spectrum, atoms, grid) -> np.ndarray:
    """The summed partial spectra of ``atoms`` on ``grid`` (cm⁻¹)."""
    if spec.partial is None:
        raise TrajsrError(f"{spec.label}: a spectrum without its atoms' parts (made before they were kept); "
                          "compute it again with trajsr.spectra.spectrum")
    return np.interp(grid, spec.wavenumber, spec.partial[:, atoms].sum(axis=1))
