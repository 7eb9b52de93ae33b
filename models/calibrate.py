"""Calibrate a shipped model's uncertainty, or build a shipped ensemble, and record it in the card.

    # one model: calibrate it in place (its card gains an "uncertainty" entry)
    python models/calibrate.py --name ethanol-gfn2-f10 --validation V.h5 ... --training T.h5 ... --test X.h5 ...
    # several: an ensemble file NAME.keras with its own card (members' recipes and cards inside)
    python models/calibrate.py --name ethanol-gfn2-f10-ensemble --members A.keras B.keras C.keras \
        --validation ... --training ... --test ...
    # the test figures again (as the card's other sections: interpolation.card.evaluate), calibration kept
    python models/calibrate.py --name ethanol-gfn2-f10 --evaluate --test X.h5 ...

Validation trajectories fit the uncertainty (and weigh the ensemble's members); training ones set what
counts as out of distribution; the test ones (never seen by any step) give the card's per-trajectory
MAE against the spline, the coverage of the nominal 90% interval and the Spearman correlation, with
their median and worst.
"""
import argparse
import time
from pathlib import Path

from trajsr import LearnedInterpolator, load
from trajsr.card import command_line, read_card, update_card
from trajsr.interpolation.card import evaluate, mean_mae, shipped_check
from trajsr.interpolation.calibrate import calibrate_model

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", required=True, help="models/NAME.keras (and NAME.json) to write")
    p.add_argument("--members", nargs="+", help="models to combine (default: models/NAME.keras alone)")
    p.add_argument("--validation", nargs="+", default=[], help="what the uncertainty is fitted on (required "
                   "unless --evaluate)")
    p.add_argument("--training", nargs="+", default=[])
    p.add_argument("--test", nargs="+", required=True)
    p.add_argument("--out", default=str(ROOT / "models"))
    p.add_argument("--evaluate", action="store_true",
                   help="only re-evaluate models/NAME on --test (its calibration kept) and record it in the card")
    args = p.parse_args(argv)
    out = Path(args.out) / f"{args.name}.keras"
    members = args.members or [str(out)]
    if not args.validation and not args.evaluate:
        p.error("--validation is required (the trajectories the uncertainty is fitted on)")
    overlap = set(map(str, args.test)) & set(map(str, args.validation + args.training))
    if overlap:
        raise SystemExit(f"test trajectories must not be validation or training ones: {sorted(overlap)[0]}")
    card_path = out.with_suffix(".json")
    command = command_line("models/calibrate.py", argv)
    if args.evaluate:  # the test figures again, the calibration as it is
        if not out.exists():
            p.error(f"--evaluate: {out} does not exist (calibrate it first, without --evaluate)")
        interp = LearnedInterpolator(out)
        evaluation = evaluate(interp, [load(t) for t in args.test], interp.factor)
        card = read_card(card_path)
        calibration = {k: v for k, v in card.get("uncertainty", {}).items() if k not in ("test", "summary")}
        # one write: the new test figures, and the calibration record without the figures an earlier
        # calibrate run kept beside it
        update_card(card_path, dict(test_sections(evaluation, len(card.get("members", [])) > 1, command),
                                    uncertainty=calibration))
        return report(args.name, evaluation)
    start = time.time()
    calibration, interp = calibrate_model(members, args.validation, out, training=args.training, force=True)
    minutes = (time.time() - start) / 60
    evaluation = evaluate(interp, [load(t) for t in args.test], interp.factor)
    record = dict(command=command, validation=[Path(v).name for v in args.validation],
                  training=[Path(t).name for t in args.training], minutes=round(minutes, 2),
                  calibration=calibration.fitted_on)
    if len(members) == 1:
        card = read_card(card_path)
    else:
        cards = [read_card(m) for m in members]
        first = cards[0]
        card = dict(name=args.name, model=f"ensemble of {len(members)} {first['model']}", dataset=first["dataset"],
                    method=first["method"], factor=first["factor"], context=first["context"],
                    input=first["input"], train_seeds=first["train_seeds"],
                    validation_seeds=first["validation_seeds"], training_minutes=round(
                        sum(c["training_minutes"] for c in cards), 2),
                    machine=first["machine"], weights=interp.model.get_layer("gap_interpolator").member_weights,
                    members=[dict(name=c["name"], width=c.get("width"), training_minutes=c["training_minutes"],
                                  train_seeds=c["train_seeds"], command=c["command"],
                                  held_out_mae_angstrom=mean_mae(c["held_out"])[0]) for c in cards])
    card["uncertainty"] = record
    card.update(test_sections(evaluation, len(members) > 1, command))
    update_card(card_path, card, new=True)
    if len(members) > 1:  # re-evaluated on the shipped trajectory by the tests
        shipped_check(card_path)
    report(args.name, evaluation)


def test_sections(evaluation, ensemble: bool, command: str) -> dict:
    """The card's sections an evaluation on the test files fills, each with the ``command`` that made it:
    ``test_set``; an ensemble's headline ``held_out`` figures and its ``test_seeds`` (a list) are its test
    set's too."""
    sections = dict(test_set=dict(evaluation, command=command))
    if ensemble:
        sections.update(held_out=dict(evaluation, command=command),
                        test_seeds=[r["file"] for r in evaluation["per_trajectory"]])
    return sections


def report(name, evaluation):
    s, ratio = evaluation["uncertainty"], evaluation["spline_over_model"]
    print(f"{name}: coverage of the 90% interval median {s['coverage_90_median']:.1%} (furthest "
          f"{s['coverage_90_furthest']:.1%}), Spearman median {s['spearman_gap_median']:.2f} (worst "
          f"{s['spearman_gap_worst']:.2f}); spline/model median {ratio['median']:.1f}x, worst "
          f"{ratio['worst']:.1f}x over {ratio['trajectories']} test trajectories")


if __name__ == "__main__":
    main()
