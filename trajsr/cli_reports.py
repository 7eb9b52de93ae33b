"""The ``trajsr`` commands that read trajectories and report on them: ``evaluate`` (errors of a
reconstruction), ``spectrum`` (vibrational spectra) and ``temperature`` (kinetic temperatures). Thin, as
:mod:`trajsr.cli`: check every output before any work, call the API, print with units."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

from .errors import TrajsrError
from .units import FS_PER_PS, INVERSE_CM_PER_THZ

#: what each velocity source is, in a report
WHERE = {"velocities": "the file's velocities", "positions": "differences of positions"}


def check_report_outputs(outputs: dict, inputs, force: bool) -> None:
    """One-line errors, before any work, for report files (``{"--json": path, ...}``, None = not asked) that
    share a path, name an input, exist without ``force``, or (``--plot*``) have no figure extension."""
    from .io import check_writable
    from .plots import plot_format
    given = {option: Path(path) for option, path in outputs.items() if path}
    if len({p.resolve() for p in given.values()}) != len(given):
        raise TrajsrError(f"{', '.join(given)} must be different files")
    sources = {Path(p).resolve() for p in inputs if p}
    for option, path in given.items():
        if path.resolve() in sources:
            raise TrajsrError(f"{path}: is an input of this command; write {option} elsewhere")
        check_writable(path, force)
        if option.startswith("--plot") or option.endswith("-plot"):
            plot_format(path)


def write_json(path, data, force: bool) -> None:
    """``data`` as JSON, atomically; a figure that cannot be computed (NaN) is null."""
    from .io import atomic_path
    with atomic_path(path, force) as tmp, open(tmp, "w") as f:
        json.dump(_finite_or_null(data), f, indent=2, allow_nan=False)


def _finite_or_null(value):
    """JSON has no NaN: a figure that cannot be computed (e.g. a rank correlation over constant values) is null."""
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(v) for v in value]
    if isinstance(value, float) and not abs(value) < float("inf"):
        return None
    return value


def cmd_evaluate(args):
    from .io import load
    from .metrics import reconstruction_errors
    from .report import format_errors
    check_report_outputs({"--json": args.json, "--plot": args.plot, "--uncertainty-plot": args.uncertainty_plot},
                         (args.reference, args.reconstruction), args.force)
    reference = load(args.reference, top=args.top, dt_fs=args.dt)
    reconstruction = load(args.reconstruction, top=args.top, dt_fs=args.dt)
    errors = reconstruction_errors(reference, reconstruction, args.factor)
    print(format_errors({args.reconstruction: errors}))
    sigma = _stored_uncertainty(args.reconstruction, reconstruction)
    if sigma is None and args.uncertainty_plot:
        raise TrajsrError(f"{args.reconstruction}: no uncertainty stored (upsample with --uncertainty)")
    if sigma is not None:
        from .metrics import uncertainty_errors
        figures, gap_sigma, gap_error = uncertainty_errors(reference, reconstruction, args.factor, sigma)
        errors["uncertainty"] = figures
        print(f"uncertainty: {figures['coverage_90']:.1%} of components inside the nominal 90% interval; "
              f"Spearman rank correlation of per-gap uncertainty with per-gap error {figures['spearman_gap']:.2f} "
              f"over {figures['gaps']} gaps")
        if args.uncertainty_plot:
            from .plots import plot_uncertainty
            plot_uncertainty(gap_sigma, gap_error, args.uncertainty_plot, force=args.force,
                             title=Path(args.reconstruction).name)
    if args.json:
        write_json(args.json, errors, args.force)
    if args.plot:
        from .plots import plot_gap_errors
        plot_gap_errors({args.reconstruction: errors}, args.plot, force=args.force)


def _stored_uncertainty(path, reconstruction):
    """A reconstruction's uncertainty (frames, atoms) nm: its h5 dataset, else its side file, else None."""
    if reconstruction.uncertainty is not None:
        return reconstruction.uncertainty
    from .interpolation.gapreport import side_file_path
    side = side_file_path(path)
    if not side.exists():
        return None
    import numpy as np
    try:
        with np.load(side) as f:
            sigma, unit = f["uncertainty"], str(f["unit"])
    except (OSError, KeyError, ValueError) as err:
        raise TrajsrError(f"{side}: not a readable uncertainty file ({err})") from None
    if unit != "nm":
        raise TrajsrError(f"{side}: uncertainty in {unit!r}; expected nm")
    return sigma


def _check_stored_velocities(traj, used: str) -> None:
    """Stored velocities in another unit would scale a temperature by its square: check them against the
    positions (where the frames are close enough to tell) before they are used."""
    if used != "velocities" or traj.velocities is None or traj.time is None or traj.n_frames < 3:
        return
    from .geometry import unwrap
    from .interpolation.interpolator import check_velocities
    positions = unwrap(traj.positions, traj.unitcell_vectors) if traj.is_periodic else traj.positions
    check_velocities(traj, positions, remedy="take them from the positions (--source positions)")


def _warn_differences(traj, used: str) -> None:
    from .observables import DIFFERENCES_EXACT_FS
    if used == "positions" and traj.time is not None and traj.dt * FS_PER_PS > DIFFERENCES_EXACT_FS:
        nyquist = INVERSE_CM_PER_THZ / (2 * traj.dt)
        warnings.warn(f"{traj.source}: velocities from differences of positions {traj.dt * FS_PER_PS:g} fs apart "
                      f"miss everything above {nyquist:.0f} cm⁻¹ (the Nyquist limit) and read the "
                      "vibrations below it slow: rebuild fine frames first (trajsr upsample) and read theirs",
                      stacklevel=2)


def cmd_spectrum(args):
    from .io import load
    from .spectra import compare, spectrum
    check_report_outputs({"--json": args.json, "--plot": args.plot}, [*args.input, args.reference], args.force)
    if not args.min_wavenumber < args.max_wavenumber:
        raise TrajsrError(f"--min-wavenumber {args.min_wavenumber:g} must lie below --max-wavenumber "
                          f"{args.max_wavenumber:g} (cm⁻¹)")
    trajs = [load(path, top=args.top, dt_fs=args.dt) for path in args.input]
    reference = None if args.reference is None else load(args.reference, top=args.top, dt_fs=args.dt)
    everyone = trajs + ([reference] if reference is not None else [])
    source = args.source
    if source == "auto":  # one rule for every file, so that they compare alike
        without = [t for t in everyone if t.velocities is None]
        source = "positions" if without else "velocities"
        if without and len(without) < len(everyone):
            print(f"velocities from positions for every file: {without[0].source} stores none "
                  "(--source velocities uses the stored ones, where all files have them)")
    if reference is not None:
        for traj in trajs:
            if traj.elements != reference.elements:
                raise TrajsrError(f"{traj.source}: {traj.n_atoms} atoms ({' '.join(traj.elements[:6])}...), the "
                                  f"reference {reference.n_atoms} ({' '.join(reference.elements[:6])}...): not the "
                                  "same molecule in the same atom order")
    for traj in everyone:
        _check_stored_velocities(traj, source)
    spectra = [spectrum(t, source, args.resolution, label=str(path)) for t, path in zip(trajs, args.input)]
    ref = None if reference is None else spectrum(reference, source, args.resolution, label=str(args.reference))
    comparisons = []
    for spec, traj in zip(([ref] if ref else []) + spectra, ([reference] if ref else []) + trajs):
        _warn_differences(traj, spec.source)
        peaks = _peaks(spec, args.min_wavenumber, args.max_wavenumber)
        print(f"{spec.label}{' (reference)' if spec is ref else ''}: VDOS from {WHERE[spec.source]}, frames "
              f"{spec.dt_fs:g} fs apart (Nyquist limit {spec.nyquist:.0f} cm⁻¹), {spec.segments} Welch segments, "
              f"resolution {spec.resolution:.0f} cm⁻¹; strongest peaks at {peaks}")
        if spec.nyquist < args.max_wavenumber:
            print(f"  nothing above {spec.nyquist:.0f} cm⁻¹ is resolved; faster motion folds back below it "
                  "(aliasing)")
        if ref is not None and spec is not ref:
            c = compare(spec, ref, args.min_wavenumber, args.max_wavenumber)
            comparisons.append(c)
            bands = "; ".join(f"{name} {b['ratio']:.2f}x" for name, b in c["bands"].items() if b["ratio"] is not None)
            print(f"  against the reference: overlap {c['overlap']:.3f} over {c['range_cm1'][0]:.0f}-"
                  f"{c['range_cm1'][1]:.0f} cm⁻¹; band intensity relative to it: {bands or 'no band in range'}")
    if args.json:
        write_json(args.json, dict(source=source, units={"wavenumber": "cm-1", "intensity": "1/cm-1, unit area"},
                                   reference=None if ref is None else ref.to_dict(args.max_wavenumber),
                                   spectra=[s.to_dict(args.max_wavenumber) for s in spectra],
                                   comparisons=comparisons), args.force)
    if args.plot:
        from .plots import plot_spectra
        plot_spectra(spectra, args.plot, reference=ref, force=args.force, max_wavenumber=args.max_wavenumber)


def _peaks(spec, low: float, high: float, count: int = 4) -> str:
    """The ``count`` most prominent peaks between ``low`` and ``high`` cm⁻¹, by wavenumber."""
    from scipy.signal import find_peaks
    keep = (spec.wavenumber >= low) & (spec.wavenumber <= min(high, spec.nyquist))
    w, p = spec.wavenumber[keep], spec.intensity[keep]
    found, props = find_peaks(p, prominence=0)
    best = sorted(w[found[props["prominences"].argsort()[::-1][:count]]])
    return ", ".join(f"{x:.0f}" for x in best) + " cm⁻¹" if best else "none"


def cmd_temperature(args):
    from .io import load
    from .observables import kinetic_temperature, velocity_source
    check_report_outputs({"--json": args.json}, args.input, args.force)
    results = {}
    for path in args.input:
        traj = load(path, top=args.top, dt_fs=args.dt)
        if traj.n_atoms < 2:
            raise TrajsrError(f"{path}: {traj.n_atoms} atom; a kinetic temperature without the centre of mass needs "
                              "at least 2")
        _check_stored_velocities(traj, velocity_source(traj, args.source))
        r = results[str(path)] = kinetic_temperature(traj, args.source)
        spacing = "" if r["dt_fs"] is None else f", {r['dt_fs']:g} fs apart"
        least = "at least " if r["lower_bound"] else ""
        if r["rigid"]:
            held = (f"3N-3-{r['rigid']} = {r['degrees_of_freedom']} degrees of freedom ({r['rigid']} distances held "
                    "rigid in the file: constraints)")
            parts = ""
        else:
            held = f"3N-3 = {r['degrees_of_freedom']} degrees of freedom"
            elements = ", ".join(f"{e} {kelvin:.0f} K" for e, kelvin in r["by_element"].items())
            parts = (f"; vibrations {least}{r['vibrational_temperature_K']:.1f} K over 3N-6; by element"
                     f"{', at least' if least else ''}: {elements}")
        print(f"{path}: {least}{r['temperature_K']:.1f} K over {held} (±{r['temperature_std_K']:.0f} K frame to "
              f"frame, {r['frames']} frames{spacing}, from {WHERE[r['source']]}){parts}")
        if r["lower_bound"]:
            print(f"  a lower bound, not the temperature: differences of positions {r['dt_fs']:g} fs apart do not "
                  "resolve the motion" + ("" if r["shortfall"] is None else
                                          f" (taken twice as far apart they read {3 * r['shortfall']:.0%} lower "
                                          "still)") +
                  "; rebuild fine frames with velocities first (trajsr upsample) and read theirs")
    if args.json:
        write_json(args.json, dict(units={"temperature": "K"}, files=results), args.force)
