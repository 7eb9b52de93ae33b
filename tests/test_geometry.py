import numpy as np
from scipy.spatial.transform import Rotation

from trajsr.geometry import align, kabsch_rotation, remove_center_of_mass, unwrap


def wrap(positions, unitcell_vectors):
    """Every atom put inside the primary cell (what an MD code writes): the test's periodic input."""
    frac = np.einsum("fai,fij->faj", positions, np.linalg.inv(unitcell_vectors))
    return np.einsum("faj,fji->fai", frac - np.floor(frac), unitcell_vectors)


def test_kabsch_recovers_a_known_rotation():
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(7, 3))
    ref -= ref.mean(0)
    rot = Rotation.from_euler("xyz", [30, -50, 110], degrees=True).as_matrix()
    mobile = ref @ rot.T
    r = kabsch_rotation(mobile, ref)
    np.testing.assert_allclose(r, rot, atol=1e-12)
    np.testing.assert_allclose(mobile @ r, ref, atol=1e-12)
    assert np.linalg.det(r) > 0


def test_align_is_undone_as_documented():
    rng = np.random.default_rng(2)
    frames = rng.normal(size=(4, 6, 3))
    masses = rng.uniform(1, 16, 6)
    aligned, com, rot = align(frames, frames[0], masses)
    np.testing.assert_allclose(aligned @ np.swapaxes(rot, -1, -2) + com, frames, atol=1e-12)  # as documented
    centred, _ = remove_center_of_mass(aligned, masses)
    np.testing.assert_allclose(centred, aligned, atol=1e-12)


def test_unwrap_wrap_round_trip_across_box_edge():
    box = np.tile(np.diag([1.5, 2.0, 2.5]), (6, 1, 1))
    true = np.zeros((6, 2, 3))
    true[:, 0, 0] = 1.3 + 0.1 * np.arange(6)  # leaves the box at frame 2
    true[:, 1, 2] = 0.2 - 0.1 * np.arange(6)  # leaves through the lower face
    wrapped = wrap(true, box)
    assert (wrapped >= 0).all() and (wrapped[..., 0] < 1.5).all()
    np.testing.assert_allclose(unwrap(wrapped, box), true - true[:1] + wrapped[:1], atol=1e-12)
    np.testing.assert_allclose(wrap(unwrap(wrapped, box), box), wrapped, atol=1e-12)
