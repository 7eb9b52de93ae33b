"""``trajsr`` command line: parse, call the API, report. Errors are one line and exit status 2."""
from __future__ import annotations

import json
import signal
import sys
import warnings
from pathlib import Path

from . import cli_reports
from .card import running
from .console import import_tensorflow, terminate, xla_cache_limit_mb
from .errors import Terminated, TrajsrError, stops_kept
from .preflight import check_files
from .units import ANGSTROM_PER_NM


def cmd_stride(args):
    from .io import format_for_writing, load, save
    format_for_writing(args.output)  # that it can be written: checked with every command's files (preflight)
    traj = load(args.input, top=args.top, dt_fs=args.dt)
    if args.factor >= traj.n_frames:
        raise TrajsrError(f"{args.input}: --factor {args.factor} would keep 1 of its {traj.n_frames} frames; "
                          "a coarse trajectory needs at least 2")
    coarse = traj.stride(args.factor)
    save(coarse, args.output, force=args.force)
    print(f"kept {coarse.n_frames} of {traj.n_frames} frames (one in {args.factor}) -> {args.output}")




def cmd_calibrate(args):
    from .modelfile import check_output, is_propagator
    check_output(args.output, args.force)
    propagator = is_propagator(args.models[0])
    if args.factors and not propagator:
        raise TrajsrError("--factors is for propagators (shooting fills any factor); a super-resolution model "
                          "is calibrated at its own factor")
    if propagator and len(args.models) > 1:
        raise TrajsrError(f"{args.models[0]}: a propagator is calibrated alone (ensembles are of super-resolution "
                          "models)")
    import_tensorflow()
    if propagator:
        from .interpolation.calibrate import calibrate_propagator
        calibrations = calibrate_propagator(args.models[0], args.validation, args.output, factors=args.factors,
                                            training=args.training or (), force=args.force, top=args.top,
                                            dt_fs=args.dt)
        for key, cal in calibrations.items():
            fig = cal.fitted_on
            print(f"shooting {key}: calibrated on {fig['windows']} validation gaps, {fig['coverage_90']:.1%} inside "
                  f"the nominal 90% interval, Spearman {fig['spearman_gap']:.2f}, default --max-uncertainty "
                  f"{fig['max_uncertainty_angstrom']:.2e} Å")
        print(f"-> {args.output}")
        return
    from .interpolation.calibrate import calibrate_model
    cal, interp = calibrate_model(args.models, args.validation, args.output, training=args.training or (),
                                  force=args.force, top=args.top, dt_fs=args.dt, batch_size=args.batch_size)
    fig = cal.fitted_on
    what = f"ensemble of {len(args.models)} models" if len(args.models) > 1 else interp.name
    print(f"{what} calibrated on {fig['windows']} validation windows: {fig['coverage_90']:.1%} inside the nominal "
          f"90% interval, Spearman {fig['spearman_gap']:.2f}, default --max-uncertainty "
          f"{fig['max_uncertainty_angstrom']:.2e} Å -> {args.output}")


def cmd_datasets(args):
    from . import datasets
    if args.action == "list":
        from .report import format_datasets
        print(format_datasets(datasets.RECIPES, datasets.shipped()))
        return
    if args.action == "merge":
        from .datasets.manifest import merge
        if not args.names:
            raise TrajsrError("datasets merge needs the folders to merge (DIR ...) and -o OUT")
        print(f"merged {len(args.names)} folders -> {merge(args.names, args.out_dir, args.force)}")
        return
    spec = None
    if sum(map(bool, (args.names, args.geometry, args.pdb))) != 1:
        raise TrajsrError("datasets make takes one of: a dataset NAME, --geometry FILE, --pdb FILE")
    _refuse_options_of_other_modes(args)
    if args.geometry:
        from .datasets.custom import geometry_spec
        spec = geometry_spec(args.geometry, args.charge or 0, args.multiplicity, args.name, args.equilibration_fs,
                             method=args.method or "gfn2")
    elif args.pdb:
        from .datasets.custom import pdb_spec
        spec = pdb_spec(args.pdb, args.forcefield or "amber14-all.xml", args.water, args.box, args.name,
                        args.equilibration_fs)
    elif len(args.names) != 1:
        raise TrajsrError("datasets make takes one dataset NAME")
    else:
        if args.method:  # the same molecule at another level of theory: its own built-in recipe
            args.names = [datasets.at_level(args.names[0], args.method)]
        spec = datasets.builtin_spec(args.names[0], args.equilibration_fs)
    paths = datasets.make(args.names[0] if args.names else None, seeds=args.seed, md_steps=args.steps,
                          temperature_K=args.temperature, out_dir=args.out_dir, processes=args.processes,
                          force=args.force, spec=spec, thermostat=args.thermostat, tau_fs=args.tau_fs,
                          save_every=args.save_every)
    print("\n".join(str(p) for p in paths))


#: datasets make's options that only one way of making applies (a built-in recipe has its own charge, ...)
_MAKE_MODE_OPTIONS = {"geometry": ("charge", "multiplicity"), "pdb": ("forcefield", "water", "box")}


def _refuse_options_of_other_modes(args):
    """``datasets make NAME --charge 1`` would silently make the neutral molecule: refuse what does not apply."""
    for mode, names in _MAKE_MODE_OPTIONS.items():
        if getattr(args, mode):
            continue
        given = [f"--{n}" for n in names if getattr(args, n) is not None]
        if given:
            made = "a built-in dataset" if args.names else "--geometry" if args.geometry else "--pdb"
            raise TrajsrError(f"datasets make: {', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to "
                              f"--{mode} FILE only, not to {made} (its recipe fixes them)")
    if args.names and args.name is not None:
        raise TrajsrError("datasets make: --name names a --geometry/--pdb recipe; a built-in dataset keeps its name")
    if args.pdb and args.method:
        raise TrajsrError("datasets make: --method picks the xTB level for --geometry or a built-in xTB dataset; "
                          "--pdb runs OpenMM with --forcefield")


def _multiworker_strategy():
    """Created inside the quiet TensorFlow import, before the devices start (its collectives need that);
    training.py imports TensorFlow itself, so it is imported only here."""
    from .training import distribution_strategy
    distribution_strategy("multiworker")


def cmd_train(args):
    from .modelfile import check_output
    check_output(args.output, args.force)  # before anything slow
    if args.strategy == "multiworker":
        from .cluster import check_cluster
        check_cluster()
    _refuse_options_of_other_task(args)
    import_tensorflow(before_devices=_multiworker_strategy if args.strategy == "multiworker" else None)
    verbose = 2 if args.quiet or not sys.stdout.isatty() else 1  # no progress bars' control codes in a log file
    # what both tasks take; each adds its own below (the other task's were refused above)
    common = dict(architecture=args.architecture, factor=args.factor, validation=args.validation,
                  output=args.output, epochs=args.epochs, batch_size=args.batch_size, width=args.width,
                  learning_rate=args.learning_rate, patience=args.patience, window_step=args.window_step,
                  max_minutes=args.max_minutes, seed=args.seed, strategy=args.strategy, force=args.force,
                  top=args.top, dt_fs=args.dt, verbose=verbose)
    if args.task == "propagate":
        from .propagation.train import fit_propagator
        _, history = fit_propagator(args.inputs, strides=args.strides, substeps=args.substeps,
                                    force_matching_minutes=args.force_matching_minutes, initial=args.initial,
                                    **common)
        key, what = _best_key(history)
        if getattr(history, "fitted_to", None) == "forces":
            print(f"{args.architecture} propagator: potential fitted to the stored forces, best {what} force error "
                  f"{_best(history.history[key]):.3f} of their RMS; no rollout fit (the files store no "
                  f"velocities) -> {args.output}")
            return
        print(f"{args.architecture} propagator: best {what} rollout MAE "
              f"{_best(history.history[key]) * ANGSTROM_PER_NM:.3e} Å -> {args.output}")
        _say_if_cut(args, history)
        return
    from .interpolation.train import fit
    net, history = fit(args.inputs, context=args.context, with_velocities=args.with_velocities, test=args.test,
                       solver=args.solver, **common)
    key, what = _best_key(history)
    best = _best(history.history[key]) * ANGSTROM_PER_NM
    print(f"{args.architecture}: best {what} MAE {best:.3e} Å after "
          f"{len(history.history[key])} epochs -> {args.output}")
    _say_if_cut(args, history)
    from .card import card_path
    card = card_path(args.output)
    if card.exists():
        recorded = json.loads(card.read_text())
        evaluation = recorded["evaluation"]
        with_velocities = recorded.get("settings", {}).get("with_velocities") and "hermite_over_model" in evaluation
        name = "hermite" if with_velocities else "spline"  # the baseline a user of the same inputs has
        ratio = evaluation[f"{name}_over_model"]
        print(f"card -> {card}: {ratio['trajectories']} held-out trajectories, {name}/model median "
              f"{ratio['median']:.2f}x, worst {ratio['worst']:.2f}x")
        if not ratio["median"] >= 1:
            print(f"trajsr: warning: the model is worse than the {name} baseline on the held-out trajectories "
                  f"(median {ratio['median']:.2f}x): use --method {name}, or train longer or on more data",
                  file=sys.stderr)


#: train's options that only one task reads, with their defaults
_TASK_OPTIONS = {"propagate": {"strides": 4, "substeps": 10, "force_matching_minutes": None, "initial": None},
                 "interpolate": {"context": 4, "with_velocities": False, "test": None, "solver": "rk4"}}


def _refuse_options_of_other_task(args):
    """An option of the other task would be silently ignored: refuse it; fill in this task's defaults."""
    for task, options in _TASK_OPTIONS.items():
        given = [f"--{name.replace('_', '-')}" for name in options if getattr(args, name) not in (None, False)]
        if task != args.task and given:
            raise TrajsrError(f"train --task {args.task}: {', '.join(given)} appl{'ies' if len(given) == 1 else 'y'}"
                              f" to --task {task} only")
        for name, default in options.items():
            if getattr(args, name) is None:
                setattr(args, name, default)


def _best_key(history):
    """The history column that picked the best epoch, and how to name it."""
    values = history.history.get("val_loss", [])
    if any(v == v for v in values):
        return "val_loss", "validation"
    return "loss", "training (no validation trajectories)"


def _say_if_cut(args, history):
    if getattr(history, "stopped_by_time_limit", False):
        print(f"trajsr: warning: --max-minutes {args.max_minutes:g} stopped the training after "
              f"{len(history.history.get('loss', []))} of at most {args.epochs} epochs; the model may be "
              "under-trained", file=sys.stderr)


def _best(values) -> float:
    """The smallest of an epoch column, ignoring epochs without the value (NaN)."""
    return min((v for v in values if v == v), default=float("nan"))


def cmd_upsample(args):
    from .interpolation.baselines import get_baseline
    from .interpolation.streaming import as_interpolator, check_targets, output_path, upsample
    if (args.model is None) == (args.method is None):
        raise TrajsrError("give either --model FILE (a trained model) or --method linear|spline|hermite")
    inputs = args.input if isinstance(args.input, list) else [args.input]
    if (args.output is None) == (args.out_dir is None):
        raise TrajsrError("give -o OUTPUT for one input, or --out-dir DIR for several")
    if args.output is not None and len(inputs) > 1:
        raise TrajsrError(f"{len(inputs)} inputs: write them with --out-dir DIR, not -o")
    from .io import format_for_writing
    if args.out_dir is not None:
        check_targets(inputs, args.out_dir, args.suffix, args.force)
    for source in inputs:  # a format trajsr cannot write: refused before the model loads
        format_for_writing(args.output or output_path(source, args.out_dir, args.suffix))
    if args.model:
        from .modelfile import is_propagator
        if args.factor is None and is_propagator(args.model):  # read without TensorFlow
            raise TrajsrError(f"shooting needs an upsampling factor (--factor): {args.model} is a propagator, whose "
                              "dynamics fills gaps of any factor")
        import_tensorflow()
    options = dict(top=args.top, dt_fs=args.dt, force=args.force, chunk=args.chunk, uncertainty=args.uncertainty,
                   positions_only=args.positions_only,
                   max_uncertainty=(args.max_uncertainty if args.max_uncertainty in (None, "default")
                                    else args.max_uncertainty / ANGSTROM_PER_NM))
    if args.method and (args.uncertainty or args.max_uncertainty):
        raise TrajsrError("--uncertainty and --max-uncertainty need a calibrated trained model (--model)")
    if args.out_dir is not None:
        from .interpolation.streaming import upsample_many
        model = args.method or args.model
        if args.processes == 1:
            model = get_baseline(args.method) if args.method else as_interpolator(args.model, args.batch_size)
        summaries = upsample_many(inputs, model, args.out_dir, factor=args.factor, processes=args.processes,
                                  suffix=args.suffix, batch_size=args.batch_size, **options)
    else:
        interp = get_baseline(args.method) if args.method else as_interpolator(args.model, args.batch_size)
        summaries = [upsample(inputs[0], interp, args.output, factor=args.factor, batch_size=args.batch_size,
                              **options)]
    name = args.method or Path(args.model).name
    for summary in summaries:
        note = (f"; {summary.spline_gaps} gaps at the ends (less than K kept frames of context) used the cubic "
                "spline") if summary.spline_gaps else ""
        if summary.guarded_gaps:
            note += (f"; {summary.guarded_gaps} gaps tore a bond and were replaced by "
                     f"{'Hermite' if summary.mode.startswith('with') else 'the spline'} (gap guard)")
        if summary.velocities.startswith("not kept"):
            note += (f"; the rebuilt velocities are {summary.velocities} (write .h5, .trr, .nc, .npz or .xyz to "
                     "keep them)")
        with_v = " with velocities (nm/ps)" if summary.velocities == "written" else ""
        print(f"{name} ({summary.mode}): {summary.kept_frames} kept -> {summary.fine_frames} frames{with_v} -> "
              f"{summary.output}{note}")
        if summary.gaps is not None and (args.uncertainty or args.max_uncertainty):
            print(f"  {summary.gaps.summary()}")


def cmd_reorder(args):
    from .atom_order import match_atoms, molecule_of
    from .io import format_for_writing, load, save
    fmt = format_for_writing(args.output)  # writable and not the input: checked before (preflight)
    if Path(args.like).resolve() == Path(args.output).resolve():
        raise TrajsrError(f"{args.output}: is an input of this command; write the reordered file elsewhere")
    elements, reference, what = molecule_of(args.like)
    traj = load(args.input, top=args.top, dt_fs=args.dt)
    if traj.is_periodic:
        raise TrajsrError(f"{args.input}: has a periodic box; reorder matches one molecule in vacuum (its molecules "
                          "could be wrapped across the box)")
    fmt.check_holds(args.output, traj.is_periodic, args.input)
    order = match_atoms(traj, elements, reference, what)
    save(traj.reorder_atoms(order), args.output, force=args.force)
    moved = int((order != range(traj.n_atoms)).sum())
    print(f"{args.input}: {moved} of {traj.n_atoms} atoms moved to list them as {what} does (new atom k = old atom "
          f"order[k], order {' '.join(map(str, order))}) -> {args.output}")


def cmd_propagate(args):
    from .io import format_for_writing, load, save
    format_for_writing(args.output).check_holds(  # writable: checked before (preflight)
        args.output, False, "a propagated molecule")  # rollouts carry no unit cell
    if args.thermostat and args.temperature is None:
        raise TrajsrError(f"--thermostat {args.thermostat} needs --temperature (K)")
    if args.thermostat_every and args.temperature is None:
        raise TrajsrError("--thermostat-every needs --temperature (K)")
    if args.rescale_energy_with and args.temperature is not None:
        raise TrajsrError("--rescale-energy-with holds the total energy constant (NVE); --temperature asks for a "
                          "thermostat (NVT): use one or the other")
    start = load(args.start, top=args.top, dt_fs=args.dt)
    if not -start.n_frames <= args.frame < start.n_frames:
        raise TrajsrError(f"{args.start}: --frame {args.frame} out of range ({start.n_frames} frames)")
    if start.velocities is None:
        raise TrajsrError(f"{args.start}: no velocities to start from (use a file that stores them: h5, npz, trr)")
    import_tensorflow()
    from .propagation.propagator import Propagator
    prop = Propagator.load(args.model)
    from .atom_order import check_atoms
    check_atoms(start[args.frame], prop.elements, prop.layer.reference_list, "the propagator")
    filler = None
    if args.fill:  # the same file's potential fills each stride; a propagator without one is refused now
        from .interpolation.shooting import ShootingInterpolator
        filler = ShootingInterpolator(prop.layer)
    calc = None
    if args.rescale_energy_with:
        from .propagation.rescale import calculator_from
        calc = calculator_from(args.rescale_energy_with)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the guard's message is printed below, once
        traj = prop.run(start.positions[args.frame], start.velocities[args.frame], args.steps,
                        thermostat=args.thermostat, temperature_K=args.temperature,
                        thermostat_every=args.thermostat_every or 1, rescale_energy_with=calc, progress=True,
                        seed=args.seed)
    traj.topology = start.topology
    ensemble = traj.info["ensemble"]
    spacing = f"{prop.stride_fs:g} fs apart"
    if filler is not None and traj.n_frames > 1:
        traj = filler.interpolate(traj, prop.factor)
        spacing = (f"{prop.dt_fs:g} fs apart (each {prop.stride_fs:g} fs stride filled by the same dynamics, with "
                   "velocities)")
    save(traj, args.output, force=args.force)
    print(f"{traj.n_frames} frames, {spacing} ({(traj.time[-1] - traj.time[0]):g} ps), {ensemble} -> {args.output}")
    if "guard" in traj.info:
        print(f"trajsr: error: {traj.info['guard']}; the frames before it were written", file=sys.stderr)
        return 3
    return 0


def cmd_adapt(args):
    from .adapt import HOLD_BACK, adapt
    from .io import load
    from .modelfile import check_output
    check_output(args.output, args.force)
    trajs = [load(path, top=args.top, dt_fs=args.dt) for path in args.input]
    import_tensorflow()
    card = adapt(args.base, trajs, args.output, max_minutes=args.max_minutes, learning_rate=args.learning_rate,
                 seed=args.seed, force=args.force)
    before, after = card["held_back"]["before"], card["held_back"]["after"]
    miss = lambda d: sum(s["position_miss_angstrom"] for s in d["shooting"]) / len(d["shooting"])  # noqa: E731
    forces = (f"force error {before['force_error']:.3f} -> {after['force_error']:.3f} (MAE over RMS), "
              if card["fitted_to"] == "forces" else "")
    print(f"adapted {card['adapted_from']} to the {card['fitted_to']} of {card['frames_trained']} frames "
          f"({card['epochs']} epochs, {card['minutes']:.1f} min); on the {card['frames_held_back']} frames held back "
          f"(the last {HOLD_BACK:.0%} of each file): {forces}shooting position miss {miss(before):.2e} -> "
          f"{miss(after):.2e} Å -> {args.output} (card {Path(args.output).with_suffix('.json')})")
    if not card["adapted"]:
        judged = "forces" if card["fitted_to"] == "forces" else "shooting residual"
        print(f"trajsr: warning: the held-back frames' {judged} did not improve; the base potential was kept "
              "unchanged", file=sys.stderr)


def cmd_demo(args):
    from .demo import prepare_output, run_demo
    prepare_output(args.out_dir, args.force)
    import_tensorflow()
    run_demo(out_dir=args.out_dir, factor=args.factor, force=args.force)


def main(argv=None) -> int:
    from .options import build_parser
    parser = build_parser({name[4:]: f for module in (globals(), vars(cli_reports)) for name, f in module.items()
                           if name.startswith("cmd_")})
    argv = sys.argv[1:] if argv is None else [str(word) for word in argv]
    args = parser.parse_args(argv)
    warnings.formatwarning = lambda message, category, *a, **k: f"trajsr: warning: {message}\n"
    # mdtraj's advice on every NetCDF file read or written: netCDF4 is optional (scipy reads these files)
    warnings.filterwarnings("ignore", message=".*'netCDF4' Python package is not installed", category=UserWarning)
    signal.signal(signal.SIGTERM, terminate)
    try:
        xla_cache_limit_mb()  # a bad TRAJSR_XLA_CACHE_MB stops a command before it starts, not at its TF import
        # what the cards written now record; a Ctrl-C that lands in a C library's callback, raised at the next step
        with running(["trajsr", *argv]), stops_kept():
            check_files(args)  # a missing input or an existing output: named before any work
            status = args.func(args)
    except TrajsrError as err:
        print(f"trajsr: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("trajsr: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("trajsr: terminated (SIGTERM); no partial output was left", file=sys.stderr)
        return 143
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
