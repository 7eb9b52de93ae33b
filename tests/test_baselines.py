import numpy as np
import pytest

from trajsr import Trajectory, TrajsrError, get_baseline


def polynomial_trajectory(degree, n_frames=31, factor=5):
    """Positions that are a polynomial of time in every coordinate (nm, ps)."""
    rng = np.random.default_rng(degree)
    coef = rng.normal(size=(degree + 1, 4, 3))
    t = np.arange(n_frames) * 0.001
    pos = sum(coef[k] * (t[:, None, None] * 50) ** k for k in range(degree + 1))
    vel = sum(k * coef[k] * 50 * (t[:, None, None] * 50) ** (k - 1) for k in range(1, degree + 1))
    return Trajectory(positions=pos, velocities=vel, time=t, elements=["C", "H", "H", "O"])


@pytest.mark.parametrize("method,degree", [("linear", 1), ("spline", 3), ("hermite", 3)])
def test_reproduces_polynomial_exactly(method, degree):
    fine = polynomial_trajectory(degree)
    rebuilt = get_baseline(method).interpolate(fine.stride(5), 5)
    assert rebuilt.n_frames == fine.n_frames
    np.testing.assert_allclose(rebuilt.positions, fine.positions, atol=1e-9)
    np.testing.assert_allclose(rebuilt.time, fine.time)


def test_linear_does_not_reproduce_a_cubic():
    fine = polynomial_trajectory(3)
    rebuilt = get_baseline("linear").interpolate(fine.stride(5), 5)
    assert np.abs(rebuilt.positions - fine.positions).max() > 1e-4


@pytest.mark.parametrize("method", ["linear", "spline", "hermite"])
def test_kept_frames_unchanged(method, wiggle):
    coarse = wiggle.stride(4)
    rebuilt = get_baseline(method).interpolate(coarse, 4)
    np.testing.assert_array_equal(rebuilt.positions[::4], coarse.positions)


def test_hermite_needs_velocities(wiggle):
    with pytest.raises(TrajsrError, match="velocities"):
        get_baseline("hermite").interpolate(wiggle.replace(velocities=None).stride(4), 4)


def test_factor_must_be_at_least_two(wiggle):
    with pytest.raises(TrajsrError, match="factor"):
        get_baseline("spline").interpolate(wiggle, 1)


def test_periodic_gap_is_interpolated_across_the_box_edge():
    box = np.eye(3) * 2.0
    t = np.arange(21) * 0.001
    true = np.zeros((21, 1, 3))
    true[:, 0, 0] = 1.95 + 10.0 * t  # crosses the edge after frame 5
    wrapped = true.copy()
    wrapped[..., 0] %= 2.0
    traj = Trajectory(positions=wrapped, elements=["O"], time=t, unitcell_vectors=box)
    rebuilt = get_baseline("linear").interpolate(traj.stride(10), 10)
    # every frame is the true one up to a whole box vector, so no atom jumps across the box mid-gap
    delta = (rebuilt.positions - true)[..., 0] / 2.0
    np.testing.assert_allclose(delta, np.round(delta), atol=1e-9)
    np.testing.assert_array_equal(rebuilt.positions[::10], wrapped[::10])
