"""Per-atom uncertainty of a reconstruction: calibration, output, fallback, out-of-distribution warning."""
import warnings

import numpy as np
import pytest

from trajsr import TrajsrError, load, save
from trajsr.interpolation.baselines import get_baseline
from trajsr.interpolation.gapreport import SideFile, side_file_path
from trajsr.interpolation.learned import LearnedInterpolator
from trajsr.interpolation.streaming import upsample
from trajsr.interpolation.calibrate import calibrate_model
from trajsr.interpolation.uncertainty import gap_uncertainty


@pytest.fixture
def calibrated(tiny_model):
    """Training with validation data calibrates a model's uncertainty on them."""
    return tiny_model


def _noisy(traj, scale_nm, seed=0):
    rng = np.random.default_rng(seed)
    return traj.replace(positions=traj.positions + rng.normal(scale=scale_nm, size=traj.positions.shape))


def test_uncertainty_is_zero_at_kept_frames_and_positive_elsewhere(calibrated, ethanol):
    fine = LearnedInterpolator(calibrated).interpolate(ethanol.stride(5), uncertainty=True)
    assert fine.uncertainty.shape == (fine.n_frames, fine.n_atoms)
    kept = np.arange(fine.n_frames) % 5 == 0
    assert (fine.uncertainty[kept] == 0).all()
    assert (fine.uncertainty[~kept] > 0).all() and np.isfinite(fine.uncertainty).all()


def test_noisy_context_is_more_uncertain_and_flagged(calibrated, ethanol):
    interp = LearnedInterpolator(calibrated)
    coarse = ethanol.stride(5)
    clean = interp.interpolate(coarse, uncertainty=True)
    noisy = interp.interpolate(_noisy(coarse, 0.005), uncertainty=True)  # 0.05 Å of noise on every kept atom
    inner = np.arange(10, clean.n_frames - 10)  # gaps the model fills (not the spline-filled ends) ...
    inner = inner[inner % 5 != 0]  # ... and their dropped frames
    assert np.median(noisy.uncertainty[inner]) > 1.5 * np.median(clean.uncertainty[inner])
    assert noisy.info["gap_flags"]["out_of_distribution"].mean() > 0.5
    assert clean.info["gap_flags"]["out_of_distribution"].mean() < 0.1


def test_upsample_warns_once_for_a_context_unlike_the_training_data(tmp_path, calibrated, ethanol):
    save(_noisy(ethanol.stride(5), 0.005), tmp_path / "hot.h5")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = upsample(tmp_path / "hot.h5", calibrated, tmp_path / "fine.h5", chunk=40, progress=False)
    ours = [w for w in caught if "outside the model's training data" in str(w.message)]
    assert len(ours) == 1 and "hot.h5" in str(ours[0].message)
    assert summary.gaps.out_of_distribution > 0.5 * summary.gaps.gaps


def test_side_file_beside_formats_without_room_and_dataset_in_h5(tmp_path, cli, calibrated, ethanol):
    save(ethanol.stride(5), tmp_path / "coarse.h5")
    save(ethanol[:1], tmp_path / "top.pdb")
    cli("upsample", tmp_path / "coarse.h5", "--model", calibrated, "-o", tmp_path / "fine.dcd", "--uncertainty")
    side = side_file_path(tmp_path / "fine.dcd")
    with np.load(side) as f:
        dcd_sigma, unit = f["uncertainty"], str(f["unit"])
    assert unit == "nm" and dcd_sigma.shape == (ethanol.n_frames, ethanol.n_atoms)
    out = cli("upsample", tmp_path / "coarse.h5", "--model", calibrated, "-o", tmp_path / "fine.h5",
              "--uncertainty").stdout
    assert "frame uncertainty median" in out and "gaps above" in out
    h5 = load(tmp_path / "fine.h5")
    np.testing.assert_allclose(h5.uncertainty, dcd_sigma, rtol=1e-6)
    assert not side_file_path(tmp_path / "fine.h5").exists()
    assert "uncertainty_calibration" in h5.info
    # evaluate reads the uncertainty back (side file) and draws predicted against actual error
    save(ethanol, tmp_path / "ref.h5")
    out = cli("evaluate", tmp_path / "ref.h5", tmp_path / "fine.dcd", "-t", tmp_path / "top.pdb", "--factor", "5",
              "--uncertainty-plot", tmp_path / "u.png").stdout
    assert "Spearman" in out and "nominal 90% interval" in out
    assert (tmp_path / "u.png").read_bytes()[:4] == b"\x89PNG"
    # the side file is never overwritten silently, and nothing partial is left
    side.write_bytes(b"mine")
    (tmp_path / "fine.dcd").unlink()
    with pytest.raises(TrajsrError, match="uncertainty.npz: file exists"):
        upsample(tmp_path / "coarse.h5", calibrated, tmp_path / "fine.dcd", uncertainty=True, progress=False)
    assert side.read_bytes() == b"mine" and not (tmp_path / "fine.dcd").exists()
    assert not list(tmp_path.glob("*partial*"))


def test_side_file_is_all_or_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with SideFile(tmp_path / "fine.dcd", True) as side:
            side.add(np.ones((3, 2)))
            raise RuntimeError("the trajectory failed")
    assert not list(tmp_path.iterdir())


def test_fallback_replaces_exactly_the_gaps_above_the_threshold(calibrated, ethanol):
    interp, coarse = LearnedInterpolator(calibrated), ethanol.stride(5)
    plain = interp.interpolate(coarse, uncertainty=True)
    n_gaps = coarse.n_frames - 1
    per_gap = gap_uncertainty(plain.uncertainty[:-1].reshape(n_gaps, 5, -1)[:, 1:])
    interior = np.arange(interp.context - 1, coarse.n_frames - interp.context)
    threshold = float(np.median(per_gap[interior]))
    expected = np.zeros(n_gaps, bool)
    expected[interior] = per_gap[interior] > threshold
    safe = interp.interpolate(coarse, uncertainty=True, max_uncertainty=threshold)
    np.testing.assert_array_equal(safe.info["gap_flags"]["replaced"], expected)
    hermite = get_baseline("hermite").interpolate(coarse, 5)  # ethanol stores velocities
    for gap in range(n_gaps):
        frames = slice(gap * 5 + 1, gap * 5 + 5)
        want = hermite if expected[gap] else plain
        np.testing.assert_allclose(safe.positions[frames], want.positions[frames], atol=1e-9)


def test_calibration_and_ensemble_round_trip_through_keras(tmp_path, calibrated, ethanol):
    from trajsr.interpolation.train import fit
    first = LearnedInterpolator(calibrated).calibration
    again = LearnedInterpolator(calibrated).calibration
    np.testing.assert_array_equal(first.base, again.base)
    assert first.scale == again.scale > 0 and first.max_uncertainty > 0
    other, _ = fit([ethanol[:600]], model="bilstm", factor=5, context=2, width=8, epochs=1, window_step=8,
                   verbose=0, seed=1)  # a second member, in memory
    cal, interp = calibrate_model([calibrated, other], [ethanol[600:]], tmp_path / "ensemble.keras")
    loaded = LearnedInterpolator(tmp_path / "ensemble.keras")
    np.testing.assert_allclose(loaded.calibration.base, cal.base)
    coarse = ethanol.stride(5)
    members = [LearnedInterpolator(m).interpolate(coarse).positions for m in (calibrated, other)]
    weights = loaded.model.get_layer("gap_interpolator").member_weights
    mean = weights[0] * members[0] + weights[1] * members[1]
    np.testing.assert_allclose(loaded.interpolate(coarse).positions, mean, atol=1e-6)
