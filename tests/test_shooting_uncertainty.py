"""Shooting's uncertainty (issue 28): a propagator calibrated with ``trajsr calibrate``, σ written by
``trajsr upsample --uncertainty``, judged by ``trajsr evaluate``, gaps replaced by ``--max-uncertainty``,
and the first gaps of a file no worse than the rest."""
import json
import re

import numpy as np
import pytest

from trajsr import get_baseline, load, save

from .test_bad_inputs import fails, no_leftovers
from .test_wrong_answers import BILSTM, PROPAGATOR


@pytest.fixture(scope="module")
def files(tmp_path_factory, ethanol):
    d = tmp_path_factory.mktemp("shooting-sigma")
    save(ethanol, d / "fine.h5")
    save(ethanol.stride(10), d / "c10.h5")
    save(ethanol.stride(5), d / "c5.h5")
    save(ethanol[:501], d / "valid-a.h5")
    save(ethanol[500:], d / "valid-b.h5")
    return d


def test_shipped_propagator_writes_sigma_that_evaluate_judges(files, cli, tmp_path):
    out = cli("upsample", files / "c10.h5", "--model", PROPAGATOR, "--factor", 10, "--positions-only",
              "--uncertainty", "-o", tmp_path / "fine.h5").stdout
    assert "(from positions only)" in out and "frame uncertainty median" in out and "of 100 gaps above" in out
    fine = load(tmp_path / "fine.h5")
    assert fine.uncertainty.shape == (fine.n_frames, 9)
    dropped = np.arange(fine.n_frames) % 10 != 0
    assert (fine.uncertainty[~dropped] == 0).all() and (fine.uncertainty[dropped] > 0).all()
    cli("evaluate", files / "fine.h5", tmp_path / "fine.h5", "--factor", 10, "--json", tmp_path / "e.json",
        "--uncertainty-plot", tmp_path / "trust.png")
    report = json.loads((tmp_path / "e.json").read_text())
    assert 0.6 < report["uncertainty"]["coverage_90"] <= 1.0 and (tmp_path / "trust.png").exists()
    # the first gaps, where multiple shooting is decided from one side only, are no worse than the rest
    truth = load(files / "fine.h5").positions
    gap_error = np.sqrt(np.mean((fine.positions - truth)[:-1].reshape(100, 10, 9, 3)[:, 1:] ** 2, axis=(1, 2, 3)))
    assert gap_error[:3].max() < 5 * np.median(gap_error)


def test_max_uncertainty_replaces_gaps_by_the_fallback(files, cli, tmp_path):
    out = cli("upsample", files / "c10.h5", "--model", PROPAGATOR, "--factor", 10, "--positions-only",
              "--max-uncertainty", "1e-9", "-o", tmp_path / "safe.h5").stdout
    assert "replaced by the baseline: 100" in out
    spline = get_baseline("spline").interpolate(load(files / "c10.h5").replace(velocities=None), 10)
    np.testing.assert_allclose(load(tmp_path / "safe.h5").positions, spline.positions, atol=1e-6)
    with_velocities = cli("upsample", files / "c10.h5", "--model", PROPAGATOR, "--factor", 10,
                          "--max-uncertainty", "default", "-o", tmp_path / "v.h5").stdout
    assert "(with the file's velocities)" in with_velocities and "gaps above" in with_velocities


def test_calibrate_a_propagator_for_another_factor(files, cli, tmp_path):
    """The shipped file has no σ at factor 5: the hint names the command, which then works."""
    fails(cli("upsample", files / "c5.h5", "--model", PROPAGATOR, "--factor", 5, "--uncertainty",
              "-o", tmp_path / "a.h5", check=False), "no shooting uncertainty", "--factors 5")
    no_leftovers(tmp_path, "a.h5")
    out = cli("calibrate", PROPAGATOR, "--validation", files / "valid-a.h5", files / "valid-b.h5", "--factors", 5,
              "-o", tmp_path / "cal.keras").stdout
    assert "shooting positions x5 2.5 fs: calibrated on 200 validation gaps" in out
    assert "shooting velocities x5 2.5 fs" in out
    out = cli("upsample", files / "c5.h5", "--model", tmp_path / "cal.keras", "--factor", 5, "--uncertainty",
              "-o", tmp_path / "b.h5").stdout
    assert load(tmp_path / "b.h5").uncertainty[1:5].min() > 0
    # the file's difficulty beside the largest of the calibration files' (this file is made of them: ~1)
    hard, largest = map(float, re.search(r"difficulty ([\d.]+) \(calibration files up to ([\d.]+)\)", out).groups())
    assert 0.5 < hard <= largest * 1.01 and "unlike" not in out
    # the calibrations already stored stay: factor 10 still has its σ
    cli("upsample", files / "c10.h5", "--model", tmp_path / "cal.keras", "--factor", 10, "--uncertainty",
        "-o", tmp_path / "c.h5")


def test_calibrate_refuses_what_it_cannot_do(files, cli, tmp_path):
    fails(cli("calibrate", BILSTM, "--validation", files / "valid-a.h5", "--factors", 5, "-o", tmp_path / "x.keras",
              check=False), "--factors is for propagators")
    fails(cli("calibrate", PROPAGATOR, PROPAGATOR, "--validation", files / "valid-a.h5", "-o", tmp_path / "x.keras",
              check=False), "calibrated alone")
    short = load(files / "fine.h5")[:30]
    save(short, tmp_path / "short.h5")
    fails(cli("calibrate", PROPAGATOR, "--validation", tmp_path / "short.h5", "-o", tmp_path / "x.keras",
              check=False), "30 frames", "at least 41")
    fails(cli("calibrate", PROPAGATOR, "--validation", files / "c10.h5", "-o", tmp_path / "x.keras", check=False),
          "frames 5 fs apart", "needs fine trajectories")
    no_leftovers(tmp_path, "x.keras")


def test_streamed_shooting_stays_close_to_the_whole_file_solve(files, tmp_path):
    """Only the file's first frames are solved backwards in time; a streamed chunk's first frames overlap
    the chunk before, so streaming (``--chunk 40``) stays within ~2e-4 Å of the in-memory result (the
    README's figure) and does not redo the start-of-file treatment at every chunk."""
    from trajsr import upsample
    from trajsr.interpolation.shooting import ShootingInterpolator
    shooting = ShootingInterpolator.load(PROPAGATOR)
    coarse = load(files / "c10.h5").replace(velocities=None)
    save(coarse, tmp_path / "c.h5")
    memory = shooting.interpolate(coarse, 10)
    upsample(tmp_path / "c.h5", shooting, tmp_path / "s.h5", factor=10, chunk=40, progress=False)
    streamed = load(tmp_path / "s.h5").positions
    assert np.abs(streamed - memory.positions).max() < 3e-5  # nm
    truth = load(files / "fine.h5").positions[:len(streamed)]  # as close to the truth either way
    errors = [np.abs(p - truth).mean() for p in (streamed, memory.positions)]
    assert abs(errors[0] / errors[1] - 1) < 0.02


def test_streamed_chunks_side_by_side_write_what_one_at_a_time_writes_and_stop_with_the_command(files, tmp_path,
                                                                                             monkeypatch):
    """Shooting computes two streamed chunks at once (threads) where their memory allows: the same numbers as
    one at a time. When the command stops (here a chunk's error), the chunk still computing is told to stop,
    and a solve told so ends with ``Cancelled`` before its next batch of paths, not after the whole chunk."""
    import threading

    from trajsr import Trajectory, upsample
    from trajsr.errors import Cancelled, TrajsrError
    from trajsr.interpolation.shooting import ShootingInterpolator
    from trajsr.interpolation.streaming import _chunks_at_once
    shooting = ShootingInterpolator.load(PROPAGATOR)
    coarse = load(files / "c10.h5").replace(velocities=None)
    # two at once where both chunks' Jacobians fit (9 atoms: ~0.7 GB); 60 atoms from positions would hold
    # ~15 GB a chunk: one clear error naming the --chunk that fits, before any work; with velocities no Jacobians
    big = Trajectory(positions=np.zeros((2, 60, 3)), elements=["C"] * 60, time=np.array([0.0, 0.005]))
    assert _chunks_at_once(shooting, coarse, 10, 5000, 16) == 2
    middle = Trajectory(positions=np.zeros((2, 30, 3)), elements=["C"] * 30, time=np.array([0.0, 0.005]))
    assert _chunks_at_once(shooting, middle, 10, 5000, 16) == 1  # ~4 GB a chunk: one at a time
    with pytest.raises(TrajsrError, match=r"shooting of 60 atoms .* 14.7 GiB per chunk; use --chunk 1352 or less"):
        _chunks_at_once(shooting, big, 10, 5000, 16)
    assert _chunks_at_once(shooting, big.replace(velocities=np.zeros((2, 60, 3))), 10, 5000, 16) == 2
    # in memory (the Python API), the same count against the machine's memory, before any work
    import trajsr.interpolation.interpolator as interpolator
    monkeypatch.setattr(interpolator, "physical_memory_bytes", lambda: 4 * 1024 ** 2)
    with pytest.raises(TrajsrError, match=r"its 101 frames of 9 atoms with shooting at factor 10 in memory needs "
                                          r"7.2 MiB, more than this machine's 4.0 MiB: rebuild the file in chunks"):
        shooting.interpolate(coarse, 10)
    assert shooting.interpolate(load(files / "c10.h5"), 10).n_frames == 1001  # velocities: no Jacobians, 0.4 MiB
    monkeypatch.undo()
    save(coarse, tmp_path / "c.h5")
    upsample(tmp_path / "c.h5", shooting, tmp_path / "two.h5", factor=10, chunk=40, progress=False)
    shooting.chunks_side_by_side = 1
    upsample(tmp_path / "c.h5", shooting, tmp_path / "one.h5", factor=10, chunk=40, progress=False)
    two, one = load(tmp_path / "two.h5"), load(tmp_path / "one.h5")
    np.testing.assert_array_equal(two.positions, one.positions)
    np.testing.assert_array_equal(two.velocities, one.velocities)

    shooting.chunks_side_by_side = 2
    stops, solve = [], shooting.interpolate

    def second_chunk_fails(chunk, factor, **options):
        stops.append(options["stop"])
        if len(stops) == 2:
            raise TrajsrError("the second chunk failed")
        return solve(chunk, factor, **options)
    shooting.interpolate = second_chunk_fails
    with pytest.raises(TrajsrError, match="second chunk"):
        upsample(tmp_path / "c.h5", shooting, tmp_path / "failed.h5", factor=10, chunk=40, progress=False)
    assert len(stops) >= 2 and all(stop.is_set() for stop in stops)
    no_leftovers(tmp_path, "failed.h5")
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        shooting.shoot_positions(coarse.positions, coarse.dt, 10, stop=stop)


def test_a_file_unlike_every_calibration_file_is_named_even_when_no_gap_stands_out():
    """A thermostat's kicks spread over every gap: few gaps pass the out-of-distribution limits, but the file's
    difficulty D (its RMS correction against the calibration's) is far above every calibration file's."""
    import warnings

    from trajsr.interpolation.gapreport import GapReport
    from trajsr.interpolation.uncertainty import DIFFICULTY_MARGIN, Calibration

    cal = Calibration(base=np.ones((4, 3)), disagreement=np.ones(4), correction=np.ones(4), energy_power=0.0,
                      difficulty_power=1.0, difficulty_reference=1e-4, scale=1.0, energy_limit=1.0,
                      structure_limit=1.0, correction_limit=1.0, spline_sigma=np.ones((4, 3)), max_uncertainty=1.0,
                      fitted_on={"difficulty_largest": 1.2})
    flags = {k: np.zeros(100, bool) for k in ("out_of_distribution", "above_threshold", "replaced")}
    for difficulty, warned in ((1.1, False), (1.2 * DIFFICULTY_MARGIN * 0.99, False), (4.8, True)):
        report = GapReport(cal)
        report.add(flags, slice(0, 60), None, 5, np.full(100, difficulty))
        report.add(flags, slice(0, 40), None, 5, np.r_[np.full(40, difficulty), np.full(60, np.nan)])
        assert report.difficulty == pytest.approx(difficulty) and f"difficulty {difficulty:.2f}" in report.summary()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            report.warn_if_out_of_distribution("run.xyz", "are unlike them")
        assert bool(caught) == warned
        if warned:
            assert "corrected its gaps 4.8x" in str(caught[0].message) and "at most 1.2x" in str(caught[0].message)
    older = Calibration(**{**cal.__dict__, "fitted_on": {}})  # calibrated before D was recorded: no such warning
    report = GapReport(older)
    report.add(flags, slice(0, 100), None, 5, np.full(100, 9.0))
    assert report.difficulty_limit is None and "difficulty" not in report.summary()
