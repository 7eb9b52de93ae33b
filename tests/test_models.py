"""Every model: config and .keras round trips, training lowers the loss, normalisation sees training data only."""
from pathlib import Path

import numpy as np
import pytest

from trajsr import TrajsrError
from trajsr.interpolation.learned import LearnedInterpolator
from trajsr.interpolation.names import model_names
from trajsr.interpolation.windows import normalization_stats, spline_matrix, training_windows

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def windows(ethanol):
    reference = ethanol.positions[0] - ethanol.positions[0].mean(0)
    return training_windows(ethanol[:400], factor=4, context=2, reference=reference, step=3)


def test_window_shapes(ethanol, windows):
    k, s, n = 2, 4, 9
    assert windows.kept.shape[1:] == (2 * k, n, 3)
    assert windows.baseline.shape[1:] == windows.target.shape[1:] == (s - 1, n, 3)
    x = windows.inputs()
    assert x["kept"].shape[1:] == (2 * k, 3 * n) and x["baseline"].shape[1:] == (s - 1, 3 * n)
    assert len(windows) == len(range(0, 400 - (2 * k - 1) * s, 3))
    # the target of window 0 is frames 5, 6, 7 (kept frames 0, 4, 8, 12), rotated rigidly
    d = np.linalg.norm(windows.target[0, 0, 0] - windows.target[0, 0, 1])
    assert d == pytest.approx(np.linalg.norm(ethanol.positions[5, 0] - ethanol.positions[5, 1]))


def test_spline_matrix_reproduces_cubics():
    m = spline_matrix(3, 5)
    x = np.arange(6.0)
    at = 2 + np.arange(1, 5) / 5
    np.testing.assert_allclose(m @ (x ** 3 - 2 * x), at ** 3 - 2 * at, atol=1e-10)


@pytest.mark.parametrize("name", model_names())
def test_config_and_keras_round_trip(tmp_path, windows, name):
    import keras

    from trajsr.interpolation.gap import build_model, gap_layer
    net = build_model(name, n_atoms=9, factor=4, context=2, width=8,
                      metadata=dict(elements=["C"] * 9, dt_fs=0.5, reference=np.zeros((9, 3)).tolist()))
    layer = gap_layer(net)
    layer.set_normalization(normalization_stats(windows))
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    net.save(tmp_path / "m.keras")
    back = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True, compile=False)
    x = {k: v[:7] for k, v in windows.inputs().items()}
    np.testing.assert_allclose(back.predict_on_batch(x), net.predict_on_batch(x), atol=1e-6)
    assert gap_layer(back).metadata["model"] == name


@pytest.mark.parametrize("name", ["bilstm", "biode", "bihnn", "seqbilstm"])
def test_a_few_steps_lower_the_loss(windows, name):
    import keras

    from trajsr.interpolation.gap import build_model, gap_layer
    keras.utils.set_random_seed(1)
    net = build_model(name, n_atoms=9, factor=4, context=2, width=16, learning_rate=3e-3)
    gap_layer(net).set_normalization(normalization_stats(windows))
    x, y = windows.inputs(), windows.targets()
    before = net.evaluate(x, y, verbose=0)
    net.fit(x, y, epochs=10, batch_size=16, verbose=0)
    assert net.evaluate(x, y, verbose=0) < 0.97 * before


def test_normalisation_comes_from_training_data_only(ethanol):
    from trajsr.interpolation.gap import gap_layer
    from trajsr.interpolation.train import fit
    train, valid = ethanol[:500], ethanol[500:]
    net, _ = fit([train], validation=[valid.replace(positions=valid.positions + 0.3)], model="rnn", factor=4,
                 context=2, width=4, epochs=1, verbose=0, window_step=3)
    reference = train.positions[0] - np.average(train.positions[0], axis=0, weights=train.masses)
    expected = normalization_stats(training_windows(train, factor=4, context=2, reference=reference, step=3))
    got = gap_layer(net).stats
    for key in expected:
        np.testing.assert_allclose(np.asarray(got[key]), expected[key], rtol=1e-4)


def test_architecture_and_its_earlier_spelling_are_one_argument(ethanol):
    from trajsr.interpolation.train import fit
    from trajsr.propagation.train import fit_propagator
    for train in (fit, fit_propagator):
        with pytest.raises(TrajsrError, match="architecture='lstm' and model='rnn'.*same argument"):
            train([ethanol], architecture="lstm", model="rnn", factor=4)
    with pytest.raises(TrajsrError, match="unknown architecture 'bilstmx'"):
        fit([ethanol], model="bilstmx", factor=4)


def test_mismatched_model_and_trajectory(tmp_path, ethanol):
    from trajsr.interpolation.train import fit
    fit([ethanol[:400]], model="rnn", factor=4, context=2, width=4, epochs=1, verbose=0, window_step=5,
        output=tmp_path / "m.keras")
    interp = LearnedInterpolator(tmp_path / "m.keras")
    with pytest.raises(TrajsrError, match="upsamples by 4"):
        interp.interpolate(ethanol.stride(5), 5)
    with pytest.raises(TrajsrError, match="3 fs apart.*4 x 0.5 fs = 2 fs"):
        interp.interpolate(ethanol.stride(12).replace(time=ethanol.stride(12).time * 0.5), 4)
    with pytest.raises(TrajsrError, match="atom 0 is O"):
        interp.interpolate(ethanol.stride(4).replace(elements=["O"] + ethanol.elements[1:]))
    with pytest.raises(TrajsrError, match="3 atoms"):
        three = ethanol.stride(4)
        interp.interpolate(three.replace(positions=three.positions[:, :3], velocities=None,
                                         elements=three.elements[:3]))
    (tmp_path / "bad.keras").write_bytes(b"not a model")
    with pytest.raises(TrajsrError, match="bad.keras"):
        LearnedInterpolator(tmp_path / "bad.keras")


def test_keras_example_script_runs(tmp_path, ethanol):
    import subprocess
    import sys
    from pathlib import Path

    from trajsr import load, save
    from trajsr.datasets import shipped_path
    full = load(shipped_path("ethanol-gfn2"))
    save(full[:3000], tmp_path / "a.h5")
    save(full[3000:], tmp_path / "b.h5")
    script = Path(__file__).resolve().parents[1] / "models" / "keras_example.py"
    proc = subprocess.run([sys.executable, str(script), tmp_path / "a.h5", "--valid", tmp_path / "b.h5",
                           "--factor", "5", "--epochs", "1", "-o", tmp_path / "m.keras"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "model: MAE" in proc.stdout and "spline: MAE" in proc.stdout


@pytest.mark.parametrize("card", sorted((ROOT / "models").glob("*-f*.json")), ids=lambda p: p.stem)
def test_shipped_models_reproduce_their_cards(card, tmp_path):
    """Every shipped model (propagators by shooting) loads (old files included) and gives its card's figure on
    the shipped trajectory again, re-evaluated by the package code that wrote it."""
    import json
    import shutil

    from trajsr.interpolation.card import shipped_check
    from trajsr.card import UNITS
    info = json.loads(card.read_text())
    assert info["units"] == UNITS  # the figures' units (the width is "width", as trajsr train names it)
    check = info["shipped_check"]
    copy = tmp_path / card.name  # the check rewrites the card it is given
    shutil.copy(card, copy)
    shutil.copy(card.with_suffix(".keras"), copy.with_suffix(".keras"))
    again = shipped_check(copy)
    assert again["file"] == check["file"] and again["frames"] == check["frames"]
    # shooting iterates to a tolerance in float32: its last digits may move with the CPU's instructions
    assert again["model_mae_angstrom"] == pytest.approx(check["model_mae_angstrom"],
                                                        rel=2e-3 if info.get("task") == "propagate" else 1e-4)
    assert again["spline_mae_angstrom"] == pytest.approx(check["spline_mae_angstrom"], rel=1e-6)
    assert again["model_mae_angstrom"] < again["spline_mae_angstrom"]
    # a card of a dataset without a shipped trajectory (the user's own molecule) is left as it is
    copy.write_text(json.dumps(dict(info, dataset="methanol-gfn2")))
    before = copy.read_text()
    assert shipped_check(copy) is None and copy.read_text() == before
    # the one evaluation format (interpolators' held-out figures, propagators' shooting per input and factor):
    # its median and worst are its rows', every row labelled by its measured temperature
    evaluations = [(info[section], "python models/", ("spline",)) for section in ("held_out", "test_set")
                   if section in info]
    evaluations += [(evaluation, "python bench/shooting.py", ("hermite" if mode == "with velocities" else "spline",))
                    for mode, by_factor in info.get("shooting", {}).items() for evaluation in by_factor.values()]
    assert evaluations, "every shipped card holds how its model does on held-out trajectories"
    for evaluation, command, baselines in evaluations:
        rows = evaluation["per_trajectory"]
        for baseline in baselines:
            ratios = [r[f"{baseline}_mae_angstrom"] / r["model_mae_angstrom"] for r in rows]
            assert all(r[f"{baseline}_over_model"] == pytest.approx(q) for r, q in zip(rows, ratios))
            summary = evaluation[f"{baseline}_over_model"]
            assert summary["median"] == pytest.approx(float(np.median(ratios)))
            assert summary["worst"] == pytest.approx(min(ratios))
            assert summary["trajectories"] == len(ratios) >= 3
        assert all(r["temperature_K"] > 0 and r["frames"] > 0 for r in rows)  # measured, every row
        assert evaluation["command"].startswith(command)


def test_saved_models_carry_no_optimizer_state(tmp_path, ethanol):
    import zipfile

    import h5py

    from trajsr.interpolation.train import fit
    fit([ethanol[:300]], model="rnn", factor=4, context=2, width=4, epochs=1, verbose=0, window_step=5,
        output=tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as z, z.open("model.weights.h5") as f, h5py.File(f) as h:
        assert "optimizer" not in h or len(h["optimizer"].get("vars", {})) == 0
    LearnedInterpolator(tmp_path / "m.keras").interpolate(ethanol.stride(4)[:20])


@pytest.mark.parametrize("path", sorted((ROOT / "models").glob("*.keras")), ids=lambda p: p.stem)
def test_shipped_models_carry_no_optimizer_state(path):
    import zipfile

    import h5py
    with zipfile.ZipFile(path) as z, z.open("model.weights.h5") as f, h5py.File(f) as h:
        assert "optimizer" not in h or len(h["optimizer"].get("vars", {})) == 0


def test_shipped_files_name_no_folder_outside_the_repository():
    """Cards, results, manifests and the model files' own records name inputs relative to the repository:
    a path of the machine they were made on (``/tmp/...``, ``/home/...``) means nothing to a reader."""
    import re
    import subprocess
    import zipfile
    absolute = re.compile(r"(?<![\w.~-])/(?:tmp|home|work|root|Users|scratch|mnt|var|opt|private)/")
    listed = subprocess.run(["git", "ls-files", "models", "bench/results", "datasets", "README.md",
                             "ARCHITECTURE.md"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    found = []
    for name in listed:
        path = ROOT / name
        if path.suffix == ".keras":
            with zipfile.ZipFile(path) as z:
                text = z.read("config.json").decode()
        elif path.suffix in (".json", ".md", ".csv", ".txt", ".cfg", ".yaml"):
            text = path.read_text()
        else:
            continue
        found += [f"{name}: {m.group(0)}" for m in absolute.finditer(text)]
    assert len(listed) > 20 and not found, found[:5]


def test_cards_record_input_files_relative_to_the_current_folder(tmp_path, monkeypatch):
    from trajsr.card import recorded_paths
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    inside, outside = tmp_path / "data" / "a.h5", Path("/elsewhere/b.h5")
    assert recorded_paths([inside, outside, "data/c.h5"]) == ["data/a.h5", "/elsewhere/b.h5", "data/c.h5"]


@pytest.mark.parametrize("card", sorted((ROOT / "models").glob("*-f*.json")), ids=lambda p: p.stem)
def test_shipped_test_sets_never_overlap_training_or_validation(card):
    """The files a card's test figures come from were never used to train, select or calibrate the model."""
    import json
    info = json.loads(card.read_text())
    seen = {f"{info['dataset']}-seed{s}.h5" for s in info.get("train_seeds", []) + info.get("validation_seeds", [])}
    for member in info.get("members", []):
        seen |= {f"{info['dataset']}-seed{s}.h5" for s in member["train_seeds"]}
    calibration = info.get("uncertainty", {})
    seen |= set(calibration.get("validation", [])) | set(calibration.get("training", []))
    tested = {r["file"] for r in info.get("test_set", {}).get("per_trajectory", [])}
    tested |= {r["file"] for r in info.get("held_out", {}).get("per_trajectory", [])}
    seen |= set(info.get("train_files", [])) | set(info.get("validation_files", []))  # propagator cards
    tested |= set(info.get("test_files", []))
    tested |= {r["file"] for by_factor in info.get("shooting", {}).values() for f in by_factor.values()
               for r in f["per_trajectory"]}  # a propagator's upsampling figures
    tested |= {run.rsplit("/", 1)[-1] for o in info.get("nvt", {}).values() for run in o["reference_runs"]}
    tested |= {info["shipped_check"]["file"]}
    assert seen and tested, "a card must name the files it was trained on and those it was tested on"
    assert not tested & seen
    if calibration:  # a calibrated card's test figures: coverage near 90%, and their median and worst
        test = info.get("test_set")  # an interpolator's evaluation, else shooting's (bench/shooting_uncertainty.py)
        summary, rows = (test["uncertainty"], test["per_trajectory"]) if test else (calibration["summary"],
                                                                                   calibration["test"])
        assert 0.5 < summary["coverage_90_median"] < 1.0 and len(rows) >= 6


def test_shipped_model_predicts_the_same_with_and_without_its_calibration(ethanol):
    """The plain Keras call (old input names included) and the calibrated path give the same frames."""
    calibrated = LearnedInterpolator(ROOT / "models" / "ethanol-gfn2-f10.keras")
    plain = LearnedInterpolator(calibrated.model)
    plain.meta = {k: v for k, v in calibrated.meta.items() if k != "uncertainty"}
    assert calibrated.calibration is not None and plain.calibration is None
    coarse = ethanol.stride(10)
    np.testing.assert_allclose(plain.interpolate(coarse).positions, calibrated.interpolate(coarse).positions,
                               atol=1e-7)
