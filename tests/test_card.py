"""The model card: one format and one writer (trajsr.card) for `trajsr train` (both tasks), `adapt`,
models/recipe.py, models/calibrate.py and the bench scripts that add their figures to a card."""
import io
import json
import zipfile

import h5py
import numpy as np
import pytest

from trajsr import TrajsrError, load, save
from trajsr.card import read_card, save_card, update_card

from .conftest import ROOT


def test_update_keeps_the_other_sections_and_records_the_command(tmp_path):
    card = tmp_path / "m.json"
    save_card(card, {"name": "m", "shooting": {"positions only": {"10": {"median": 30.0}}}})
    with pytest.raises(TrajsrError, match="exists"):
        save_card(card, {"name": "other"})  # the user's file is never replaced without force
    update_card(tmp_path / "m.keras", {"uncertainty": {"coverage_90": 0.9}}, command="python bench/x.py --record")
    written = json.loads(card.read_text())
    assert written["shooting"] == {"positions only": {"10": {"median": 30.0}}}
    assert written["uncertainty"] == {"coverage_90": 0.9, "command": "python bench/x.py --record"}
    assert written["units"]["mae"] == "Å" and read_card(card) == written
    again = update_card(card, {"name": "n"}, command="python models/recipe.py --name n", new=True)
    assert again == {"name": "n", "command": "python models/recipe.py --name n", "units": written["units"]}
    assert not [p.name for p in tmp_path.iterdir() if p.name != "m.json"]  # written in place, nothing beside it


def _weights(model_path) -> list:
    """Every weight array a ``.keras`` file stores, in its order (read without Keras)."""
    arrays = []
    with h5py.File(io.BytesIO(zipfile.ZipFile(model_path).read("model.weights.h5")), "r") as f:
        f.visititems(lambda name, item: arrays.append(item[()]) if isinstance(item, h5py.Dataset) else None)
    return arrays


def test_recipe_adds_its_sections_to_the_card_training_wrote(tmp_path):
    """models/recipe.py at tiny size, on thirds of the shipped trajectory: the card keeps what `fit` wrote
    (settings, training record, evaluation) and gains the recipe's seeds, held-out figures and command."""
    fine = load(ROOT / "datasets" / "ethanol-gfn2-seed0.h5")
    data = tmp_path / "data"
    data.mkdir()
    for seed, part in zip((1, 2, 3), (fine[:1700], fine[1700:3400], fine[3400:])):
        save(part, data / f"ethanol-gfn2-seed{seed}.h5")
    import importlib.util

    def script(name):  # a script of models/, imported as a module
        spec = importlib.util.spec_from_file_location(name, ROOT / "models" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    recipe = script("recipe")
    for out in (tmp_path, tmp_path / "again"):
        out.mkdir(exist_ok=True)
        recipe.main(["--data", str(data), "--factor", "10", "--model", "rnn", "--width", "8", "--epochs", "2",
                     "--train-seeds", "1", "--valid-seeds", "2", "--test-seeds", "3", "--name", "tiny",
                     "--out", str(out)])
    # trained by epochs, the recipe run again gives the same model to the digit
    weights = [_weights(out / "tiny.keras") for out in (tmp_path, tmp_path / "again")]
    assert len(weights[0]) > 0 and all(np.array_equal(a, b) for a, b in zip(*weights))
    card = read_card(tmp_path / "tiny.keras")
    assert card["training"]["epochs"] == 2 and not card["training"]["stopped_by_time_limit"]
    assert card["settings"]["model"] == "rnn" and card["training"]["files"]  # what fit wrote
    assert card["train_seeds"] == [1] and card["test_seeds"] == [3]  # what the recipe adds
    assert card["held_out"]["command"].startswith("python models/recipe.py --data")
    assert card["held_out"]["per_trajectory"][0]["file"] == "ethanol-gfn2-seed3.h5"
    assert card["held_out"]["per_trajectory"][0]["temperature_K"] > 0  # measured
    assert card["shipped_check"]["file"] == "ethanol-gfn2-seed0.h5" and "cores" in card["machine"]
    # models/calibrate.py --evaluate: the test figures in the same format, the calibration kept
    script("calibrate").main(["--name", "tiny", "--out", str(tmp_path), "--evaluate", "--test", str(data / "ethanol-gfn2-seed3.h5")])
    again = read_card(tmp_path / "tiny.keras")
    assert again["test_set"]["per_trajectory"][0]["model_mae_angstrom"] == pytest.approx(
        card["held_out"]["per_trajectory"][0]["model_mae_angstrom"])  # the same model on the same file
    assert {"coverage_90_median", "spearman_gap_median"} <= set(again["test_set"]["uncertainty"])
    assert again["test_set"]["command"].startswith("python models/calibrate.py --name tiny")
    assert again["held_out"] == card["held_out"]  # an interpolator of its own: only test_set is rewritten


def test_recorded_commands_can_be_pasted_again():
    """Cards and bench results record their command shell-quoted (a glob stays a glob for the next reader)
    and name the CLI's own arguments while trajsr.cli.main runs, also when it is called from Python."""
    from trajsr.card import command_line, running
    assert command_line("bench/shooting.py", ["--tests", "data/t*/*.h5", "a b"]) == \
        "python bench/shooting.py --tests 'data/t*/*.h5' 'a b'"
    with running(["trajsr", "train", "x y.h5"]):
        assert command_line() == "trajsr train 'x y.h5'"
        assert command_line("models/recipe.py", []) == "python models/recipe.py"  # a script names itself
    assert "trajsr train" not in command_line()
