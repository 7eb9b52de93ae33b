"""The recipe behind every shipped model: make data, train, test on held-out seeds, write a card.

    python models/recipe.py --dataset ethanol-gfn2 --factor 10 --model bilstm --epochs 40 \
        --train-seeds 1-14 --valid-seeds 15 --test-seeds 101-103 --name ethanol-gfn2-f10

writes models/NAME.keras and models/NAME.json (the card: data, seeds, training time and epochs, held-out
MAE in Å next to the cubic spline's, and this command). Trajectories missing from --data are made first.
Trained by epochs, a recipe run again on the same machine gives the same weights to the digit (fixed seeds,
CPU); ``--minutes`` adds a wall-clock budget instead, which ends training at whatever batch the machine
reached (the Bi-LSTM cards shipped so far were trained so: their card's ``training_minutes`` and command
say how long, and a re-run trains a different model of like accuracy).

    python models/recipe.py --name ethanol-gfn2-f10 --evaluate --test-seeds 101-103

re-evaluates a model already in models/ on the held-out seeds (its card's ``held_out``, with this command).
"""
import argparse
import time
from pathlib import Path

from trajsr import LearnedInterpolator, fit, load
from trajsr.datasets import get_recipe, make
from trajsr.card import command_line, machine, update_card
from trajsr.interpolation.card import evaluate, mean_mae, shipped_check
from trajsr.units import PS_PER_FS

ROOT = Path(__file__).resolve().parents[1]


def seeds(text):
    out = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def data_generation(paths):
    """How the trajectories were made, from their folders' manifest.json: files, the summed wall clock of
    the ``datasets make`` calls (minutes) and their processes."""
    from trajsr.datasets.manifest import read
    entries = {e["file"]: e for folder in {Path(p).parent for p in paths} for e in read(folder)}
    made = [entries[Path(p).name] for p in paths if Path(p).name in entries]
    calls = {(e.get("generation_seconds"), e.get("processes")) for e in made}  # one per make call
    return dict(files=len(paths), recorded=len(made),
                make_wall_minutes=round(sum(s or 0 for s, _ in calls) / 60, 1),
                processes=sorted({p for _, p in calls if p}))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="ethanol-gfn2")
    p.add_argument("--factor", type=int, default=10)
    p.add_argument("--model", default="bilstm")
    p.add_argument("--context", type=int, default=4)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--epochs", type=int, default=500, help="epochs (early stopping may end sooner)")
    p.add_argument("--minutes", type=float, help="a training wall-clock budget as well (the model then depends on "
                   "the machine's speed)")
    p.add_argument("--window-step", type=int, default=2)
    p.add_argument("--steps", type=int, default=40000, help="0.5 fs steps per made trajectory")
    p.add_argument("--train-seeds", default="1-14")
    p.add_argument("--valid-seeds", default="15")
    p.add_argument("--test-seeds", default="101-103")
    p.add_argument("--data", nargs="+", help="folders of NAME-seedN.h5 (default data/DATASET; missing seeds are "
                   "made in the first)")
    p.add_argument("--name", required=True)
    p.add_argument("--out", default=str(ROOT / "models"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--check-shipped", action="store_true",
                   help="only re-evaluate models/NAME on the shipped trajectory and record it in its card")
    p.add_argument("--evaluate", action="store_true",
                   help="only re-evaluate models/NAME on the --test-seeds and record it in its card")
    args = p.parse_args(argv)
    if args.check_shipped:
        print(shipped_check(Path(args.out) / f"{args.name}.json"))
        return
    folders = [Path(d) for d in args.data] if args.data else [ROOT / "data" / args.dataset.split("-")[0]]

    def path(seed):  # the first folder that holds the seed's file, else the first folder
        name = f"{args.dataset}-seed{seed}.h5"
        return next((f / name for f in folders if (f / name).exists()), folders[0] / name)

    def ensure(seed_list):  # make what is missing (the test seeds only after training)
        missing = [s for s in seed_list if not path(s).exists()]
        if missing:
            make(args.dataset, seeds=missing, md_steps=args.steps, out_dir=folders[0])

    out = Path(args.out) / f"{args.name}.keras"
    command = command_line("models/recipe.py", argv)
    if args.evaluate:
        if not out.exists():
            p.error(f"--evaluate: {out} does not exist (train it first, without --evaluate)")
        ensure(seeds(args.test_seeds))
        held_out = held_out_evaluation(out, [path(s) for s in seeds(args.test_seeds)])
        update_card(out, dict(held_out=held_out), command=command)
        return
    all_seeds = seeds(args.train_seeds) + seeds(args.valid_seeds) + seeds(args.test_seeds)
    ensure(seeds(args.train_seeds) + seeds(args.valid_seeds))
    start = time.time()
    fit([path(s) for s in seeds(args.train_seeds)], validation=[path(s) for s in seeds(args.valid_seeds)],
        architecture=args.model, factor=args.factor, context=args.context, width=args.width, epochs=args.epochs,
        window_step=args.window_step, max_minutes=args.minutes, seed=args.seed, output=out, force=True, verbose=2)
    minutes = (time.time() - start) / 60
    ensure(seeds(args.test_seeds))
    held_out = held_out_evaluation(out, [path(s) for s in seeds(args.test_seeds)])
    card = dict(name=args.name, model=args.model, dataset=args.dataset, method=get_recipe(args.dataset).method,
                factor=args.factor, context=args.context, width=args.width, input="positions only",
                train_seeds=seeds(args.train_seeds), validation_seeds=seeds(args.valid_seeds),
                test_seeds=seeds(args.test_seeds),
                trajectory_ps=args.steps * get_recipe(args.dataset).dt_fs * PS_PER_FS,
                training_minutes=round(minutes, 2), machine=machine(),
                data_generation=data_generation([path(s) for s in all_seeds]),
                held_out=held_out)
    # the card trajsr's fit wrote (settings, training record, validation figures) gains the recipe's sections
    update_card(out, card, command=command)
    shipped_check(out)  # where the dataset has a shipped trajectory
    print(f"{args.name}: trained {minutes:.1f} min")


def held_out_evaluation(model_path, paths) -> dict:
    """The model against the spline (and Hermite) on each held-out trajectory (``evaluate``: MAE in Å,
    measured temperature, median and worst ratio), printed."""
    interp = LearnedInterpolator(model_path)
    evaluation = evaluate(interp, [load(p) for p in paths], interp.factor)
    model, spline = mean_mae(evaluation)
    ratio = evaluation["spline_over_model"]
    print(f"{Path(model_path).stem}: held-out MAE {model:.2e} Å, spline {spline:.2e} Å (mean over "
          f"{ratio['trajectories']} trajectories); spline/model median {ratio['median']:.1f}x, "
          f"worst {ratio['worst']:.1f}x")
    return evaluation


if __name__ == "__main__":
    main()
