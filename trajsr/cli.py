"""``trajsr`` command line: parse, call the API, report. Errors are one line and exit status 2."""
from __future__ import annotations

import json
import signal
import sys
import warnings
from pathlib import Path

from .console import (COUNT, FACTOR, INDEX, NONNEGATIVE, POSITIVE, Parser, Terminated, import_tensorflow,
                      number, or_default, terminate)
from .errors import TrajsrError
from .units import ANGSTROM_PER_NM, PS_PER_FS


def _add_input(p, name="input", help="trajectory file (any mdtraj format, .npz, .xyz, .h5)", several=False):
    p.add_argument(name, help=help, nargs="+" if several else None)
    p.add_argument("-t", "--top", help="topology file for formats without atoms (dcd, xtc, trr, nc, ...)")
    p.add_argument("--dt", type=POSITIVE, metavar="FS",
                   help="frame spacing in fs, for files without time information")


def _add_output(p, required=True):
    p.add_argument("-o", "--output", required=required, help="output file; format from the extension")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")


def cmd_stride(args):
    from .io import check_writable, load, save
    check_writable(args.output, args.force)
    traj = load(args.input, top=args.top, dt_fs=args.dt)
    if args.factor >= traj.n_frames:
        raise TrajsrError(f"{args.input}: --factor {args.factor} would keep 1 of its {traj.n_frames} frames; "
                          "a coarse trajectory needs at least 2")
    coarse = traj.stride(args.factor)
    save(coarse, args.output, force=args.force)
    print(f"kept {coarse.n_frames} of {traj.n_frames} frames (every {args.factor}th) -> {args.output}")




def cmd_evaluate(args):
    from .io import check_writable, load
    from .metrics import reconstruction_errors
    from .report import format_errors
    for path in (args.json, args.plot, args.uncertainty_plot):
        if path:
            check_writable(path, args.force)
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
        from .io import atomic_path
        with atomic_path(args.json, args.force) as tmp, open(tmp, "w") as f:
            json.dump(errors, f, indent=2)
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


def cmd_calibrate(args):
    from .interpolation.uncertainty import calibrate_model
    from .modelfile import check_output
    check_output(args.output, args.force)
    import_tensorflow()
    cal, interp = calibrate_model(args.models, args.validation, args.output, force=args.force, top=args.top,
                                  dt_fs=args.dt, batch_size=args.batch_size)
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
    if args.geometry:
        from .datasets.custom import geometry_spec
        spec = geometry_spec(args.geometry, args.charge, args.multiplicity, args.name, args.equilibration_fs)
    elif args.pdb:
        from .datasets.custom import pdb_spec
        spec = pdb_spec(args.pdb, args.forcefield, args.water, args.box, args.name, args.equilibration_fs)
    elif len(args.names) != 1:
        raise TrajsrError("datasets make takes one dataset NAME")
    paths = datasets.make(args.names[0] if args.names else None, seeds=args.seed, steps=args.steps,
                          temperature=args.temperature, out_dir=args.out_dir, processes=args.processes,
                          force=args.force, spec=spec)
    print("\n".join(str(p) for p in paths))


def cmd_train(args):
    from .modelfile import check_output
    check_output(args.output, args.force)  # before anything slow
    import_tensorflow()
    if args.task == "propagate":
        from .propagation.train import fit_propagator
        _, history = fit_propagator(args.inputs, model=args.model, factor=args.factor, strides=args.strides,
                                    substeps=args.substeps, validation=args.validation, output=args.output,
                                    epochs=args.epochs, batch_size=args.batch_size, width=args.width,
                                    learning_rate=args.learning_rate, patience=args.patience,
                                    window_step=args.window_step, max_minutes=args.max_minutes, seed=args.seed,
                                    strategy=args.strategy, force=args.force, top=args.top, dt_fs=args.dt,
                                    verbose=2 if args.quiet else 1)
        key = "val_loss" if "val_loss" in history.history else "loss"
        print(f"{args.model} propagator: best {key.replace('_loss', '')} rollout MAE "
              f"{_best(history.history[key]) * ANGSTROM_PER_NM:.3e} Å -> {args.output}")
        return
    from .interpolation.train import fit
    net, history = fit(args.inputs, model=args.model, factor=args.factor, context=args.context,
                       with_velocities=args.with_velocities, validation=args.validation, test=args.test,
                       output=args.output,
                       epochs=args.epochs, batch_size=args.batch_size, width=args.width,
                       learning_rate=args.learning_rate, patience=args.patience, window_step=args.window_step,
                       max_minutes=args.max_minutes, seed=args.seed, strategy=args.strategy,
                       solver=args.solver, force=args.force, top=args.top, dt_fs=args.dt,
                       verbose=2 if args.quiet else 1)
    key = "val_loss" if "val_loss" in history.history else "loss"
    best = _best(history.history[key]) * ANGSTROM_PER_NM
    print(f"{args.model}: best {key.replace('_loss', '')} MAE {best:.3e} Å after "
          f"{len(history.history[key])} epochs -> {args.output}")
    from .interpolation.card import card_path
    card = card_path(args.output)
    if card.exists():
        ratio = json.loads(card.read_text())["evaluation"]["spline_over_model"]
        print(f"card -> {card}: {ratio['trajectories']} held-out trajectories, spline/model median "
              f"{ratio['median']:.2f}x, worst {ratio['worst']:.2f}x")


def _best(values) -> float:
    """The smallest of an epoch column, ignoring epochs without the value (NaN)."""
    return min((v for v in values if v == v), default=float("nan"))


def cmd_upsample(args):
    from .interpolation.baselines import get_baseline
    from .interpolation.streaming import as_interpolator, upsample
    if (args.model is None) == (args.method is None):
        raise TrajsrError("give either --model FILE (a trained model) or --method linear|spline|hermite")
    if args.model:
        import_tensorflow()
    inputs = args.input if isinstance(args.input, list) else [args.input]
    if (args.output is None) == (args.out_dir is None):
        raise TrajsrError("give -o OUTPUT for one input, or --out-dir DIR for several")
    if args.output is not None and len(inputs) > 1:
        raise TrajsrError(f"{len(inputs)} inputs: write them with --out-dir DIR, not -o")
    options = dict(top=args.top, dt_fs=args.dt, force=args.force, chunk=args.chunk, uncertainty=args.uncertainty,
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
        print(f"{name}: {summary.kept_frames} kept -> {summary.fine_frames} frames -> {summary.output}{note}")
        if summary.gaps is not None and (args.uncertainty or args.max_uncertainty):
            print(f"  {summary.gaps.summary()}")


def cmd_propagate(args):
    from .io import check_writable, load, save
    check_writable(args.output, args.force)
    if args.thermostat and args.temperature is None:
        raise TrajsrError(f"--thermostat {args.thermostat} needs --temperature (K)")
    start = load(args.start, top=args.top, dt_fs=args.dt)
    if not -start.n_frames <= args.frame < start.n_frames:
        raise TrajsrError(f"{args.start}: --frame {args.frame} out of range ({start.n_frames} frames)")
    if start.velocities is None:
        raise TrajsrError(f"{args.start}: no velocities to start from (use a file that stores them: h5, npz, trr)")
    import_tensorflow()
    from .propagation.propagator import Propagator
    prop = Propagator.load(args.model)
    if prop.elements and start.elements != prop.elements:
        raise TrajsrError(f"{args.start}: atoms {''.join(start.elements)} differ from the model's "
                          f"{''.join(prop.elements)}")
    calc = None
    if args.rescale_energy_with:
        from .propagation.rescale import calculator_from
        calc = calculator_from(args.rescale_energy_with)
    thermostat = (args.thermostat or "bussi") if args.temperature is not None else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the guard's message is printed below, once
        traj = prop.run(start.positions[args.frame], start.velocities[args.frame], args.steps,
                        thermostat=thermostat, temperature=args.temperature,
                        rescale_energy_with=calc, progress=True, seed=args.seed)
    traj.topology = start.topology
    save(traj, args.output, force=args.force)
    print(f"{traj.n_frames} frames, {prop.stride_fs:g} fs apart ({(traj.n_frames - 1) * prop.stride_fs * PS_PER_FS:g} ps)"
          f" -> {args.output}")
    if "guard" in traj.info:
        print(f"trajsr: error: {traj.info['guard']}; the frames before it were written", file=sys.stderr)
        return 3
    return 0


def cmd_demo(args):
    from .demo import prepare_output, run_demo
    prepare_output(args.out_dir, args.force)
    import_tensorflow()
    run_demo(out_dir=args.out_dir, factor=args.factor, force=args.force)


def build_parser() -> Parser:
    from .dynamics.registry import FAMILIES
    from .interpolation.baselines import BASELINES
    from .interpolation.names import model_names
    parser = Parser(prog="trajsr", description="Molecular-dynamics trajectory "
                                     "super-resolution and learned propagators. Units: nm and ps inside, "
                                     "Å and fs in reports and options.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("stride", help="keep every S-th frame of a fine trajectory")
    _add_input(p)
    _add_output(p)
    p.add_argument("--factor", type=FACTOR, required=True, help="stride S (>= 2)")
    p.set_defaults(func=cmd_stride)

    p = sub.add_parser("baseline", help="upsample with linear/spline/hermite (= upsample --method)")
    _add_input(p)
    _add_output(p)
    p.add_argument("--factor", type=FACTOR, required=True, help="upsampling factor S (>= 2)")
    p.add_argument("--method", choices=list(BASELINES), default="spline",
                   help="interpolation (hermite needs stored velocities)")
    p.add_argument("--chunk", type=COUNT, default=5000, help="kept frames per streamed chunk")
    p.set_defaults(func=cmd_upsample, model=None, batch_size=2048, out_dir=None, processes=1, suffix=None)

    p = sub.add_parser("evaluate", help="errors (Å) of a reconstruction over the dropped frames")
    p.add_argument("reference", help="the fine reference trajectory")
    _add_input(p, "reconstruction", "the reconstructed fine trajectory")
    p.add_argument("--factor", type=FACTOR, required=True, help="the factor the reconstruction used")
    p.add_argument("--json", help="write the errors as JSON here")
    p.add_argument("--plot", help="write a PNG of MAE (Å) against time inside a gap (fs)")
    p.add_argument("--uncertainty-plot", metavar="PNG",
                   help="write a PNG of predicted against actual error per gap (needs a stored uncertainty)")
    p.add_argument("--force", action="store_true", help="overwrite existing --json/--plot files")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("datasets", help="list the reference datasets, make one (built in or your own molecule), "
                       "or merge folders made apart")
    p.add_argument("action", choices=["list", "make", "merge"])
    p.add_argument("names", nargs="*", metavar="NAME|DIR",
                   help="make: a built-in dataset (see 'datasets list'); merge: folders with a manifest.json")
    p.add_argument("--geometry", help="make: your molecule (xyz, extxyz, pdb, ...; Å) for GFN2-xTB")
    p.add_argument("--method", choices=["gfn2"], default="gfn2", help="make --geometry: level of theory")
    p.add_argument("--charge", type=int, default=0, help="make --geometry: total charge (e)")
    p.add_argument("--multiplicity", type=COUNT, help="make --geometry: spin multiplicity 2S+1 (odd electrons)")
    p.add_argument("--pdb", help="make: a biomolecule for OpenMM (with --forcefield)")
    p.add_argument("--forcefield", default="amber14-all.xml", help="make --pdb: OpenMM force field file")
    p.add_argument("--water", choices=["tip3p", "spce", "tip4pew"], help="make --pdb: solvate in this water")
    p.add_argument("--box", type=POSITIVE, metavar="NM", help="make --pdb --water: cubic box edge in nm")
    p.add_argument("--name", help="make --geometry/--pdb: dataset name (default: FILE stem + method)")
    p.add_argument("--equilibration-fs", type=number(float, 0.0, True, "a non-negative number of fs"),
                   default=1000.0, help="Langevin equilibration before the saved NVE run (fs)")
    p.add_argument("--seed", type=NONNEGATIVE, nargs="+", default=[0], help="one trajectory per seed")
    p.add_argument("--steps", type=COUNT, help="NVE steps of 0.5 fs to save")
    p.add_argument("--temperature", type=POSITIVE, help="temperature in K")
    p.add_argument("-o", "--out-dir", default=".", help="where to write NAME-seedN.h5 and manifest.json")
    p.add_argument("--processes", type=COUNT, help="parallel processes (default: one per core)")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("train", help="train a super-resolution model on fine trajectories")
    p.add_argument("inputs", nargs="+", help="fine reference trajectories (same molecule and spacing)")
    p.add_argument("-t", "--top", help="topology for formats without atoms")
    p.add_argument("--dt", type=POSITIVE, metavar="FS", help="frame spacing in fs for files without time")
    _add_output(p)
    p.add_argument("--task", choices=["interpolate", "propagate"], default="interpolate")
    p.add_argument("--model", default="bilstm", choices=model_names(),
                   help="interpolators: a family rolled one way (NAME) or both ways (biNAME), or seqbilstm "
                        "(a plain Bidirectional(LSTM) over the window); propagators (--task propagate): "
                        f"{', '.join(FAMILIES)}. Families: " + "; ".join(f"{f.name}: {f.summary}"
                                                                       for f in FAMILIES.values()))
    p.add_argument("--strides", type=COUNT, default=4, help="propagate: strides unrolled per example")
    p.add_argument("--substeps", type=COUNT, default=10, help="propagate: integrator steps per stride")
    p.add_argument("--factor", type=FACTOR, required=True, help="upsampling factor S (>= 2)")
    p.add_argument("--context", type=COUNT, default=4, help="kept frames on each side of a gap (K)")
    p.add_argument("--with-velocities", action="store_true",
                   help="also feed the kept frames' velocities (files that store them)")
    p.add_argument("--validation", nargs="+", help="held-out trajectories that pick the best epoch (default: the "
                   "last input)")
    p.add_argument("--test", nargs="+", help="trajectories only for the card's evaluation (OUTPUT.json)")
    p.add_argument("--epochs", type=COUNT, default=100)
    p.add_argument("--batch-size", type=COUNT, default=256)
    p.add_argument("--width", "--units", dest="width", type=COUNT, default=128, help="width of the network")
    p.add_argument("--learning-rate", type=POSITIVE, default=1e-3)
    p.add_argument("--patience", type=COUNT, default=8, help="early-stopping patience (epochs)")
    p.add_argument("--window-step", type=COUNT, default=1, help="a training window every N fine frames")
    p.add_argument("--max-minutes", type=POSITIVE, help="wall-clock budget (minutes), checked every batch")
    p.add_argument("--seed", type=NONNEGATIVE, default=0)
    p.add_argument("--strategy", choices=["default", "mirrored", "multiworker"], default="default",
                   help="tf.distribute strategy")
    p.add_argument("--solver", choices=["rk4", "dopri5"], default="rk4", help="ODE solver (ode/biode)")
    p.add_argument("--quiet", action="store_true", help="one line per epoch")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("upsample", help="rebuild the dropped frames of coarse trajectories (model or baseline)")
    _add_input(p, help="coarse trajectory file(s) (any mdtraj format, .npz, .xyz, .h5)", several=True)
    _add_output(p, required=False)
    p.add_argument("--out-dir", help="several inputs: write each here under its own name")
    p.add_argument("--suffix", help="with --out-dir: output format extension (default: the input's), e.g. .h5")
    p.add_argument("--processes", type=COUNT, default=1, help="with --out-dir: files upsampled in parallel")
    p.add_argument("--model", help="trained .keras super-resolution model")
    p.add_argument("--method", choices=list(BASELINES), help="a baseline instead of a model")
    p.add_argument("--factor", type=FACTOR, help="upsampling factor (a model's own by default; baselines need it)")
    p.add_argument("--chunk", type=COUNT, default=5000, help="kept frames per streamed chunk")
    p.add_argument("--batch-size", type=COUNT, default=2048, help="gaps per inference batch")
    p.add_argument("--uncertainty", action="store_true",
                   help="write each rebuilt atom's uncertainty (nm; trajsr .h5: dataset 'uncertainty', other "
                        "formats: OUTPUT.uncertainty.npz)")
    p.add_argument("--max-uncertainty", type=or_default(POSITIVE), nargs="?", const="default", metavar="Å",
                   help="replace gaps whose uncertainty exceeds this (Å; alone: the model's default from "
                        "validation) by Hermite (velocities stored) or the spline")
    p.set_defaults(func=cmd_upsample)

    p = sub.add_parser("calibrate", help="fit a model's uncertainty on validation trajectories (several models: "
                       "combine them into one ensemble file first)")
    p.add_argument("models", nargs="+", help="trained .keras super-resolution model(s)")
    p.add_argument("--validation", nargs="+", required=True,
                   help="fine trajectories never used in training (nor for testing afterwards)")
    p.add_argument("-t", "--top", help="topology for formats without atoms")
    p.add_argument("--dt", type=POSITIVE, metavar="FS", help="frame spacing in fs for files without time")
    p.add_argument("--batch-size", type=COUNT, default=2048, help="windows per inference batch")
    _add_output(p)
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("propagate", help="run a learned propagator from a start frame")
    p.add_argument("--model", required=True, help="propagator .keras (trajsr train --task propagate)")
    p.add_argument("--start", required=True, help="file with the start positions and velocities")
    p.add_argument("-t", "--top", help="topology for formats without atoms")
    p.add_argument("--dt", type=POSITIVE, metavar="FS", help="frame spacing of --start in fs, if it has no time")
    p.add_argument("--frame", type=INDEX, default=0, help="start frame (default 0; -1 = last)")
    p.add_argument("--steps", type=COUNT, required=True, help="learned steps (each the model's stride)")
    _add_output(p)
    p.add_argument("--temperature", type=POSITIVE, help="NVT at this temperature (K)")
    p.add_argument("--thermostat", choices=["bussi", "langevin"], help="with --temperature (default bussi)")
    p.add_argument("--rescale-energy-with", metavar="CALC", choices=["gfn2"],
                   help="hold E_pot + E_kin with this calculator (gfn2: one GFN2-xTB energy per learned step, "
                        "about 20x slower than the learned step alone)")
    p.add_argument("--seed", type=NONNEGATIVE, default=0, help="thermostat noise seed")
    p.set_defaults(func=cmd_propagate)

    p = sub.add_parser("demo", help="stride a shipped trajectory, rebuild it, print the MAE table (Å)")
    p.add_argument("-o", "--out-dir", default="trajsr-demo", help="where to write the PNG and JSON")
    p.add_argument("--factor", type=FACTOR, default=10, help="stride to rebuild (default 10 = 5 fs)")
    p.add_argument("--force", action="store_true", help="overwrite earlier demo output")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    warnings.formatwarning = lambda message, category, *a, **k: f"trajsr: warning: {message}\n"
    signal.signal(signal.SIGTERM, terminate)
    try:
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
