"""The ``trajsr`` command line's options: every subcommand, its arguments, their types and help (units in
each). :mod:`trajsr.cli` runs them."""
from __future__ import annotations

from .console import COUNT, FACTOR, INDEX, NONNEGATIVE, POSITIVE, Once, Parser, number, or_default


def _add_input(p, name="input", help="trajectory file (any mdtraj format, .npz, .xyz, .h5)", several=False):
    p.add_argument(name, help=help, nargs="+" if several else None)
    p.add_argument("-t", "--top", help="topology file for formats without atoms (dcd, xtc, trr, nc, ...)")
    p.add_argument("--dt", type=POSITIVE, metavar="FS",
                   help="frame spacing in fs, for files without time information")


def _add_output(p, required=True):
    p.add_argument("-o", "--output", required=required, help="output file; format from the extension")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")


def _add_velocity_source(p):
    p.add_argument("--source", choices=["auto", "velocities", "positions"], default="auto",
                   help="velocities stored in the files, or central differences of their positions (exact "
                        "only for frames ~1 fs apart or finer); auto: stored ones where every file has them")


def build_parser(commands: dict) -> Parser:
    """The ``trajsr`` argument parser; ``commands`` maps each subcommand's name to the function that runs it."""
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
    p.set_defaults(func=commands["stride"])

    p = sub.add_parser("baseline", help="upsample with linear/spline/hermite (= upsample --method)")
    _add_input(p)
    _add_output(p)
    p.add_argument("--factor", type=FACTOR, required=True, help="upsampling factor S (>= 2)")
    p.add_argument("--method", choices=list(BASELINES), default="spline",
                   help="interpolation (hermite needs stored velocities)")
    p.add_argument("--chunk", type=COUNT, default=5000, help="kept frames per streamed chunk")
    p.set_defaults(func=commands["upsample"], model=None, batch_size=2048, out_dir=None, processes=1, suffix=None,
                   uncertainty=False, max_uncertainty=None, positions_only=False)

    p = sub.add_parser("reorder", help="list a trajectory's atoms in a model's order (or another file's), "
                       "matched by their bonds and positions")
    _add_input(p)
    _add_output(p)
    p.add_argument("--like", required=True, metavar="MODEL_OR_FILE",
                   help="a trajsr .keras model (its training geometry), or a trajectory file (its first frame)")
    p.set_defaults(func=commands["reorder"])

    p = sub.add_parser("evaluate", help="errors (Å) of a reconstruction over the dropped frames")
    p.add_argument("reference", help="the fine reference trajectory")
    _add_input(p, "reconstruction", "the reconstructed fine trajectory")
    p.add_argument("--factor", type=FACTOR, required=True, help="the factor the reconstruction used")
    p.add_argument("--json", help="write the errors as JSON here")
    p.add_argument("--plot", help="write a PNG of MAE (Å) against time inside a gap (fs)")
    p.add_argument("--uncertainty-plot", metavar="PNG",
                   help="write a PNG of predicted against actual error per gap (needs a stored uncertainty)")
    p.add_argument("--force", action="store_true", help="overwrite existing --json/--plot files")
    p.set_defaults(func=commands["evaluate"])

    p = sub.add_parser("spectrum", help="vibrational spectra (mass-weighted VDOS, cm⁻¹) of trajectories, overlaid; "
                       "with --reference, their overlap and band intensities")
    _add_input(p, "input", "trajectory file(s) (any format trajsr reads)", several=True)
    _add_velocity_source(p)
    p.add_argument("--reference", metavar="FILE", help="compare every file with this one (e.g. the fine truth)")
    p.add_argument("--resolution", type=POSITIVE, default=67.0, metavar="CM-1",
                   help="spectral resolution (cm⁻¹): Welch segments of 1/(c * resolution), 0.5 ps at 67")
    p.add_argument("--min-wavenumber", type=number(float, 0.0, True, "a non-negative number of cm⁻¹"),
                   default=300.0, metavar="CM-1", help="compare from here (cm⁻¹; below: torsions, rotation)")
    p.add_argument("--max-wavenumber", type=POSITIVE, default=4000.0, metavar="CM-1",
                   help="compare and plot up to here (cm⁻¹), or each pair's lower Nyquist limit")
    p.add_argument("--json", help="write the spectra and comparisons as JSON here")
    p.add_argument("--plot", help="write the overlaid spectra here (.png, .pdf, .svg), Nyquist limits dashed")
    p.add_argument("--force", action="store_true", help="overwrite existing --json/--plot files")
    p.set_defaults(func=commands["spectrum"])

    p = sub.add_parser("temperature", help="kinetic temperature (K) of trajectories: 3N-3, vibrations (3N-6), "
                       "by element")
    _add_input(p, "input", "trajectory file(s) (any format trajsr reads)", several=True)
    _add_velocity_source(p)
    p.epilog = ("From positions, the file's own differences twice as far apart estimate how low differences read "
                "the kinetic energy; beyond 2% every figure is printed as 'at least' (a lower bound).")
    p.add_argument("--json", help="write the temperatures as JSON here")
    p.add_argument("--force", action="store_true", help="overwrite an existing --json file")
    p.set_defaults(func=commands["temperature"])

    p = sub.add_parser("datasets", help="list the reference datasets, make one (built in or your own molecule), "
                       "or merge folders made apart")
    p.add_argument("action", choices=["list", "make", "merge"])
    p.add_argument("names", nargs="*", metavar="NAME|DIR",
                   help="make: a built-in dataset (see 'datasets list'); merge: folders with a manifest.json")
    p.add_argument("--geometry", help="make: your molecule (xyz, extxyz, pdb, ...; Å) for GFN2-xTB")
    p.add_argument("--method", choices=["gfn2", "gfn1"],
                   help="make --geometry or a built-in xTB dataset: level of theory (default gfn2; "
                        "'ethanol-gfn2 --method gfn1' makes ethanol-gfn1)")
    p.add_argument("--charge", type=int, help="make --geometry: total charge (e; default 0)")
    p.add_argument("--multiplicity", type=COUNT, help="make --geometry: spin multiplicity 2S+1 (odd electrons)")
    p.add_argument("--pdb", help="make: a biomolecule for OpenMM (with --forcefield)")
    p.add_argument("--forcefield", help="make --pdb: OpenMM force field file (default amber14-all.xml)")
    p.add_argument("--water", choices=["tip3p", "spce", "tip4pew"], help="make --pdb: solvate in this water")
    p.add_argument("--box", type=POSITIVE, metavar="NM", help="make --pdb --water: cubic box edge in nm")
    p.add_argument("--name", help="make --geometry/--pdb: dataset name (default: FILE stem + method)")
    p.add_argument("--equilibration-fs", type=number(float, 0.0, True, "a non-negative number of fs"),
                   default=1000.0, help="Langevin equilibration before the saved NVE run (fs)")
    p.add_argument("--thermostat", choices=["bussi", "langevin"],
                   help="make (xTB): NVT production run with this thermostat instead of NVE")
    p.add_argument("--tau-fs", type=POSITIVE, default=100.0,
                   help="make --thermostat: time constant (fs); for Langevin the inverse friction (500 fs = 2/ps)")
    p.add_argument("--save-every", type=COUNT, default=1, help="make (GFN2-xTB): keep every n-th 0.5 fs step")
    p.add_argument("--seed", type=NONNEGATIVE, nargs="+", default=[0], help="one trajectory per seed")
    p.add_argument("--md-steps", "--steps", dest="steps", action=Once, type=COUNT, metavar="N",
                   help="make: MD steps of 0.5 fs to run and save (--steps: the earlier spelling)")
    p.add_argument("--temperature", type=POSITIVE, help="temperature in K")
    p.add_argument("-o", "--out-dir", default=".", help="where to write NAME-seedN.h5 and manifest.json")
    p.add_argument("--processes", type=COUNT, help="parallel processes (default: one per core)")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.set_defaults(func=commands["datasets"])

    p = sub.add_parser("train", help="train a super-resolution model on fine trajectories")
    p.add_argument("inputs", nargs="+", help="fine reference trajectories (same molecule and spacing)")
    p.add_argument("-t", "--top", help="topology for formats without atoms")
    p.add_argument("--dt", type=POSITIVE, metavar="FS", help="frame spacing in fs for files without time")
    _add_output(p)
    p.add_argument("--task", choices=["interpolate", "propagate"], default="interpolate")
    p.add_argument("--architecture", "--model", dest="architecture", action=Once, default="bilstm",
                   choices=model_names(), metavar="ARCHITECTURE",
                   help="what to train (--model: the earlier spelling; elsewhere --model is a .keras file). "
                        "Interpolators: a family rolled one way (NAME) or both ways (biNAME), or seqbilstm "
                        "(a plain Bidirectional(LSTM) over the window); propagators (--task propagate): "
                        f"{', '.join(FAMILIES)}. Families: " + "; ".join(f"{f.name}: {f.summary}"
                                                                       for f in FAMILIES.values()))
    p.add_argument("--strides", type=COUNT, help="propagate: strides unrolled per example (default 4)")
    p.add_argument("--substeps", type=COUNT, help="propagate: integrator steps per stride (default 10)")
    p.add_argument("--force-matching-minutes", type=POSITIVE, metavar="MIN",
                   help="propagate (hnn): first fit the potential to the forces in the NVE frames for this long")
    p.add_argument("--initial", metavar="MODEL", help="propagate: start from this propagator's weights and "
                   "normalisation (same family and width; e.g. another stride)")
    p.add_argument("--factor", type=FACTOR, required=True, help="upsampling factor S (>= 2)")
    p.add_argument("--context", type=COUNT, help="interpolate: kept frames on each side of a gap (K; default 4)")
    p.add_argument("--with-velocities", action="store_true",
                   help="interpolate: also feed the kept frames' velocities (files that store them)")
    p.add_argument("--validation", nargs="+", help="held-out trajectories that pick the best epoch (default: the "
                   "last input)")
    p.add_argument("--test", nargs="+", help="interpolate: trajectories only for the card's evaluation "
                   "(OUTPUT.json)")
    p.add_argument("--epochs", type=COUNT, default=100, help="most epochs (early stopping may end sooner)")
    p.add_argument("--batch-size", type=COUNT, default=256, help="examples per training batch")
    p.add_argument("--width", "--units", dest="width", type=COUNT, default=128, help="width of the network")
    p.add_argument("--learning-rate", type=POSITIVE, default=1e-3, help="Adam's initial learning rate")
    p.add_argument("--patience", type=COUNT, default=8, help="early-stopping patience (epochs)")
    p.add_argument("--window-step", type=COUNT, default=1, help="a training window every N fine frames")
    p.add_argument("--max-minutes", type=POSITIVE, help="wall-clock budget (minutes), checked every batch")
    p.add_argument("--seed", type=NONNEGATIVE, default=0, help="seed of the weights and of the shuffling")
    p.add_argument("--strategy", choices=["default", "mirrored", "multiworker"], default="default",
                   help="tf.distribute strategy")
    p.add_argument("--solver", choices=["rk4", "dopri5"], help="interpolate: ODE solver (ode/biode; default rk4)")
    p.add_argument("--quiet", action="store_true", help="one line per epoch")
    p.set_defaults(func=commands["train"])

    p = sub.add_parser("upsample", help="rebuild the dropped frames of coarse trajectories (model or baseline)")
    _add_input(p, help="coarse trajectory file(s) (any mdtraj format, .npz, .xyz, .h5)", several=True)
    _add_output(p, required=False)
    p.add_argument("--out-dir", help="several inputs: write each here under its own name")
    p.add_argument("--suffix", help="with --out-dir: output format extension (default: the input's), e.g. .h5")
    p.add_argument("--processes", type=COUNT, default=1, help="with --out-dir: files upsampled in parallel")
    p.add_argument("--model", help="trained .keras super-resolution model (a propagator .keras fills each gap by "
                   "shooting with its learned dynamics; give --factor)")
    p.add_argument("--method", choices=list(BASELINES), help="a baseline instead of a model")
    p.add_argument("--factor", type=FACTOR, help="upsampling factor (a model's own by default; baselines need it)")
    p.add_argument("--chunk", type=COUNT, default=5000, help="kept frames per streamed chunk")
    p.add_argument("--batch-size", type=COUNT, default=2048, help="gaps per inference batch")
    p.add_argument("--positions-only", action="store_true",
                   help="ignore the velocities the file stores (a model or shooting rebuilds from positions alone)")
    p.add_argument("--uncertainty", action="store_true",
                   help="write each rebuilt atom's uncertainty (nm; trajsr .h5: dataset 'uncertainty', other "
                        "formats: OUTPUT.uncertainty.npz); a calibrated model or propagator (trajsr calibrate). It "
                        "tells hotter, harder or unfamiliar trajectories and gaps from easy ones, but ranks the gaps "
                        "within one trajectory only weakly (median Spearman 0.0-0.4: see README)")
    p.add_argument("--max-uncertainty", type=or_default(POSITIVE), nargs="?", const="default", metavar="Å",
                   help="replace gaps whose uncertainty exceeds this (Å; alone: the model's default from "
                        "validation) by Hermite (velocities stored) or the spline")
    p.set_defaults(func=commands["upsample"])

    p = sub.add_parser("calibrate", help="fit a model's uncertainty on validation trajectories (several models: "
                       "combine them into one ensemble file first)")
    p.add_argument("models", nargs="+", help="trained .keras super-resolution model(s), or one Hamiltonian "
                   "propagator (its shooting reconstruction is calibrated)")
    p.add_argument("--validation", nargs="+", required=True,
                   help="fine trajectories never used in training (nor for testing afterwards)")
    p.add_argument("--training", nargs="+", help="some of the training trajectories: the range beyond which a "
                   "context counts as out of distribution (default: the validation ones)")
    p.add_argument("-t", "--top", help="topology for formats without atoms")
    p.add_argument("--dt", type=POSITIVE, metavar="FS", help="frame spacing in fs for files without time")
    p.add_argument("--batch-size", type=COUNT, default=2048, help="windows per inference batch")
    p.add_argument("--factors", type=FACTOR, nargs="+", metavar="N",
                   help="a propagator: the upsampling factors to calibrate shooting for, over the validation "
                        "files' spacing (default: the propagator's stride over that spacing)")
    _add_output(p)
    p.set_defaults(func=commands["calibrate"])

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
    p.add_argument("--thermostat-every", type=COUNT, metavar="N",
                   help="with --temperature: update the thermostat every N learned steps (default 1)")
    p.add_argument("--rescale-energy-with", metavar="CALC", choices=["gfn2"],
                   help="hold E_pot + E_kin with this calculator (gfn2: one GFN2-xTB energy per learned step, "
                        "about 20x slower than the learned step alone)")
    p.add_argument("--seed", type=NONNEGATIVE, default=0, help="thermostat noise seed")
    p.add_argument("--fill", action="store_true",
                   help="write frames at the model's fine time step (0.5 fs for the shipped ones), each stride "
                        "filled by the same learned dynamics joining its two ends (Hamiltonian propagators; "
                        "spectra up to 4000 cm⁻¹)")
    p.set_defaults(func=commands["propagate"])

    p = sub.add_parser("adapt", help="fine-tune a Hamiltonian propagator's potential to your own trajectory (its "
                       "forces, else the paths between its frames; any spacing), then upsample with it")
    p.add_argument("base", help="propagator .keras with a learned potential (hnn, bihnn), e.g. a shipped one")
    _add_input(p, "input", "your trajectory file(s), one spacing (forces read from extxyz, npz F, trajsr h5)",
               several=True)
    _add_output(p)
    p.add_argument("--max-minutes", type=POSITIVE, default=5.0, help="fitting budget (minutes)")
    p.add_argument("--learning-rate", type=POSITIVE, default=3e-4, help="Adam's step (small: move from the base)")
    p.add_argument("--seed", type=NONNEGATIVE, default=0, help="seed of the shuffling")
    p.set_defaults(func=commands["adapt"])

    p = sub.add_parser("demo", help="stride a shipped trajectory, rebuild it, print the MAE table (Å)")
    p.add_argument("-o", "--out-dir", default="trajsr-demo", help="where to write the PNG and JSON")
    p.add_argument("--factor", type=FACTOR, default=10, help="stride to rebuild (default 10 = 5 fs)")
    p.add_argument("--force", action="store_true", help="overwrite earlier demo output")
    p.set_defaults(func=commands["demo"])
    return parser
