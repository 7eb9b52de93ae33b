"""Figures: error against time inside a gap, VDOS, a propagator's spectrum and temperature against
its reference. Matplotlib with the Agg backend; the format follows the file's extension (PNG, PDF, SVG, ...)."""
from __future__ import annotations

from pathlib import Path

from .errors import TrajsrError
from .io.atomic import atomic_path

#: extensions the Agg backend writes (matplotlib's savefig formats)
PLOT_FORMATS = ("png", "pdf", "svg", "eps", "ps", "jpg", "jpeg", "tif", "tiff")


def plot_format(path) -> str:
    """The figure format of ``path``'s extension; a one-line error for one matplotlib cannot write."""
    extension = Path(path).suffix[1:].lower()
    if extension not in PLOT_FORMATS:
        raise TrajsrError(f"{path}: a plot is written as {', '.join('.' + f for f in PLOT_FORMATS[:3])}, ...; "
                          f"not {('.' + extension) if extension else 'a file without an extension'}")
    return extension


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_gap_errors(errors: dict, path, force: bool = False, title: str = "") -> None:
    """MAE (Å) against time inside a gap, one line per method.

    ``errors`` maps a method name to the dict of :func:`trajsr.metrics.reconstruction_errors`.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, e in errors.items():
        mae = e["mae_by_gap_position_angstrom"]
        x = e.get("gap_time_fs", list(range(1, len(mae) + 1)))
        ax.semilogy(x, mae, "o-", label=f"{name} (MAE {e['mae_angstrom']:.2e} Å)")
    ax.set_xlabel("time after left kept frame (fs)" if errors and "gap_time_fs" in next(iter(errors.values()))
                  else "frame inside gap")
    ax.set_ylabel("MAE (Å)")
    _save(plt, fig, ax, path, force, title)


def plot_vdos(trajectories: dict, path, force: bool = False, max_wavenumber: float = 4000.0,
              title: str = "") -> None:
    """VDOS (cm⁻¹) of each named trajectory, overlaid."""
    from .observables import vdos
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, traj in trajectories.items():
        w, p = vdos(traj)
        keep = w <= max_wavenumber
        ax.plot(w[keep], p[keep], lw=1, label=name)
    ax.set_xlabel("wavenumber (cm$^{-1}$)")
    ax.set_ylabel("VDOS (normalised)")
    _save(plt, fig, ax, path, force, title)


def plot_spectra(spectra: list, path, reference=None, force: bool = False, max_wavenumber: float = 4000.0,
                 title: str = "") -> None:
    """:class:`trajsr.spectra.Spectrum` curves overlaid up to ``max_wavenumber`` (cm⁻¹), the ``reference``
    in black; each file's Nyquist limit, where it falls inside the plot, drawn dashed in its colour."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    for spec in ([reference] if reference is not None else []) + list(spectra):
        keep = spec.wavenumber <= max_wavenumber
        style = dict(color="k", lw=1.2, alpha=0.8, zorder=3) if spec is reference else dict(lw=1)
        line, = ax.plot(spec.wavenumber[keep], spec.intensity[keep],
                        label=f"{spec.label} ({spec.dt_fs:g} fs{', reference' if spec is reference else ''})",
                        **style)
        if spec.nyquist <= max_wavenumber:
            ax.axvline(spec.nyquist, color=line.get_color(), ls="--", lw=0.8)
            ax.text(spec.nyquist, ax.get_ylim()[1] * 0.95, " Nyquist", color=line.get_color(), fontsize=7,
                    va="top")
    ax.set_xlabel("wavenumber (cm$^{-1}$)")
    ax.set_ylabel("VDOS (1/cm$^{-1}$, unit area)")
    _save(plt, fig, ax, path, force, title)


def plot_uncertainty(gap_uncertainty, gap_error, path, force: bool = False, title: str = "") -> None:
    """Predicted against actual error per gap (both RMS per Cartesian component, Å), log-log, with y = x."""
    import numpy as np
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.loglog(gap_uncertainty, gap_error, ".", ms=2, alpha=0.4, label=f"{len(gap_error)} gaps")
    ends = [max(min(np.min(gap_uncertainty), np.min(gap_error)), 1e-8), max(np.max(gap_uncertainty),
                                                                             np.max(gap_error))]
    ax.plot(ends, ends, "k--", lw=1, label="error = uncertainty")
    ax.set_xlabel("predicted uncertainty per gap, RMS σ (Å)")
    ax.set_ylabel("actual error per gap, RMS (Å)")
    _save(plt, fig, ax, path, force, title)


def plot_propagator(spectra: dict, temperatures: dict, path, force: bool = False, title: str = "") -> None:
    """Two panels: VDOS (cm⁻¹) of each named trajectory (or pooled list), and the instantaneous temperature
    (K) against time (ps) of each named (time_ps, kelvin) trace."""
    from .observables import vdos
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for name, trajs in spectra.items():
        w, p = vdos(trajs)
        left.plot(w, p, lw=1, label=name)
    left.set_xlabel("wavenumber (cm$^{-1}$)")
    left.set_ylabel("VDOS (normalised)")
    left.legend(fontsize=8)
    for name, (t, kelvin) in temperatures.items():
        right.plot(t, kelvin, lw=0.6, label=name)
    right.set_xlabel("time (ps)")
    right.set_ylabel("temperature (K)")
    _save(plt, fig, right, path, force, title)


def _save(plt, fig, ax, path, force, title):
    """Title, legend, and an atomic write in the extension's format (no half-written file, no silent
    overwrite)."""
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path, force) as tmp:
        fig.savefig(tmp, dpi=120, format=plot_format(path))
    plt.close(fig)


__all__ = ["plot_gap_errors", "plot_propagator", "plot_spectra", "plot_uncertainty", "plot_vdos"]
