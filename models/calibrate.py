"""Calibrate a shipped model's uncertainty, or build a shipped ensemble, and record it in the card.

    # one model: calibrate it in place (its card gains an "uncertainty" entry)
    python models/calibrate.py --name ethanol-gfn2-f10 --validation V.h5 ... --training T.h5 ... --test X.h5 ...
    # several: an ensemble file NAME.keras with its own card (members' recipes and cards inside)
    python models/calibrate.py --name ethanol-gfn2-f10-ensemble --members A.keras B.keras C.keras \
        --validation ... --training ... --test ...

Validation trajectories fit the uncertainty (and weigh the ensemble's members); training ones set what
counts as out of distribution; the test ones (never seen by any step) give the card's per-trajectory
MAE against the spline, the coverage of the nominal 90% interval and the Spearman correlation, with
their median and worst.
"""
import argparse
import statistics
import time
from pathlib import Path

from trajsr import load
from trajsr.card import command_line, read_card, update_card
from trajsr.interpolation.card import evaluate, shipped_check
from trajsr.interpolation.calibrate import calibrate_model

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", required=True, help="models/NAME.keras (and NAME.json) to write")
    p.add_argument("--members", nargs="+", help="models to combine (default: models/NAME.keras alone)")
    p.add_argument("--validation", nargs="+", required=True)
    p.add_argument("--training", nargs="+", default=[])
    p.add_argument("--test", nargs="+", required=True)
    p.add_argument("--out", default=str(ROOT / "models"))
    args = p.parse_args(argv)
    out = Path(args.out) / f"{args.name}.keras"
    members = args.members or [str(out)]
    overlap = set(map(str, args.test)) & set(map(str, args.validation + args.training))
    if overlap:
        raise SystemExit(f"test trajectories must not be validation or training ones: {sorted(overlap)[0]}")
    start = time.time()
    calibration, interp = calibrate_model(members, args.validation, out, training=args.training, force=True)
    minutes = (time.time() - start) / 60
    tests = [load(t) for t in args.test]
    evaluation = evaluate(interp, tests, interp.factor)
    ratios = [r["spline_over_model"] for r in evaluation["per_trajectory"]]
    record = dict(command=command_line("models/calibrate.py", argv),
                  validation=[Path(v).name for v in args.validation], training=[Path(t).name for t in args.training],
                  minutes=round(minutes, 2), calibration=calibration.fitted_on,
                  test=[dict(file=r["file"], temperature_K=r["temperature_K"], **r["uncertainty"])
                        for r in evaluation["per_trajectory"]],
                  summary=evaluation["uncertainty"])
    card_path = out.with_suffix(".json")
    if len(members) == 1:
        card = read_card(card_path)
    else:
        cards = [read_card(m) for m in members]
        first = cards[0]
        card = dict(name=args.name, model=f"ensemble of {len(members)} {first['model']}", dataset=first["dataset"],
                    method=first["method"], factor=first["factor"], context=first["context"],
                    input=first["input"], train_seeds=first["train_seeds"],
                    validation_seeds=first["validation_seeds"], test_seeds=first["test_seeds"],
                    training_minutes=round(sum(c["training_minutes"] for c in cards), 2),
                    machine=first["machine"], weights=interp.model.get_layer("gap_interpolator").member_weights,
                    members=[dict(name=c["name"], width=c.get("width"), training_minutes=c["training_minutes"],
                                  train_seeds=c["train_seeds"], command=c["command"],
                                  held_out_mae_angstrom=c["held_out"]["model_mae_angstrom"]) for c in cards])
    card["uncertainty"] = record
    card["test_set"] = dict(per_trajectory=evaluation["per_trajectory"],
                            spline_over_model_median=statistics.median(ratios),
                            spline_over_model_worst=min(ratios), trajectories=len(ratios))
    if len(members) > 1:  # the ensemble's headline numbers are its test set's
        rows = evaluation["per_trajectory"]
        card["held_out"] = dict(model_mae_angstrom=statistics.mean(r["model_mae_angstrom"] for r in rows),
                                spline_mae_angstrom=statistics.mean(r["spline_mae_angstrom"] for r in rows),
                                spline_over_model_median=statistics.median(ratios),
                                spline_over_model_worst=min(ratios))
        card["test_seeds"] = [r["file"] for r in rows]
    update_card(card_path, card, new=True)
    if len(members) > 1:  # re-evaluated on the shipped trajectory by the tests
        shipped_check(card_path)
    s = evaluation["uncertainty"]
    print(f"{args.name}: coverage of the 90% interval median {s['coverage_90_median']:.1%} (furthest "
          f"{s['coverage_90_furthest']:.1%}), Spearman median {s['spearman_gap_median']:.2f} (worst "
          f"{s['spearman_gap_worst']:.2f}); spline/model median {statistics.median(ratios):.1f}x, worst "
          f"{min(ratios):.1f}x over {len(ratios)} test trajectories")


if __name__ == "__main__":
    main()
