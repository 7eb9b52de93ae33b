import numpy as np
import pytest

from trajsr import Trajectory, TrajsrError, get_baseline, reconstruction_errors
from trajsr.observables import bond_length_distance, bonds_of, vdos, vdos_overlap


def test_vdos_of_harmonic_oscillator_peaks_at_its_frequency():
    wavenumber = 1500.0  # cm^-1
    freq_thz = wavenumber / 33.35640951981521
    t = np.arange(8000) * 0.0005
    x = 0.01 * np.sin(2 * np.pi * freq_thz * t)
    pos = np.zeros((len(t), 2, 3))
    pos[:, 1, 0] = 0.1 + x
    traj = Trajectory(positions=pos, elements=["H", "H"], time=t)
    w, p = vdos(traj, resolution=20.0)
    assert w[np.argmax(p)] == pytest.approx(wavenumber, abs=10.0)  # within half a bin
    assert vdos_overlap(traj, traj) == pytest.approx(1.0, abs=1e-6)
    shifted = traj.replace(positions=np.stack([pos[:, 0], pos[:, 1] * 0 + 0.1 + 0.01 * np.sin(
        2 * np.pi * 1.5 * freq_thz * t)[:, None]], axis=1))
    assert vdos_overlap(traj, shifted) < 0.1


def test_pooled_spectra_angles_and_sampling_comparison():
    from trajsr.datasets import shipped_path
    from trajsr.io import load
    from trajsr.observables import angles_of, bond_angle_distance, compare_sampling
    ethanol = load(shipped_path("ethanol-gfn2"))
    bonds = bonds_of(ethanol)
    angles = angles_of(bonds)
    assert len(bonds) == 8 and len(angles) == 13  # ethanol: 8 bonds, 13 bond angles
    half = ethanol.n_frames // 2
    first, second = ethanol[:half], ethanol[half:]
    figures = compare_sampling(first, second)
    assert 0.5 < figures["vdos_overlap"] < 1.0 and figures["angle_w1_degrees"] < 5.0
    assert compare_sampling([first, second], [first, second])["vdos_overlap"] == pytest.approx(1.0)
    opened = ethanol.replace(positions=ethanol.positions * 1.05)  # every angle stays, every bond grows 5%
    assert bond_angle_distance(ethanol, opened) < 1e-6 < bond_length_distance(ethanol, opened)
    with pytest.raises(TrajsrError, match="same frame spacing"):
        vdos_overlap(ethanol, ethanol.stride(2))


def test_errors_are_zero_for_the_reference_and_grow_with_factor(ethanol):
    assert reconstruction_errors(ethanol, ethanol, 10)["mae_angstrom"] == 0.0
    maes = [reconstruction_errors(ethanol, get_baseline("spline").interpolate(ethanol.stride(f), f), f)
            ["mae_angstrom"] for f in (5, 10, 20)]
    assert maes[0] < maes[1] < maes[2]


def test_error_report_fields(ethanol):
    e = reconstruction_errors(ethanol, get_baseline("linear").interpolate(ethanol.stride(10), 10), 10)
    assert set(e["mae_by_element_angstrom"]) == {"C", "O", "H"}
    assert e["mae_by_element_angstrom"]["H"] > e["mae_by_element_angstrom"]["C"]
    assert len(e["mae_by_gap_position_angstrom"]) == 9 and e["gap_time_fs"][0] == pytest.approx(0.5)
    assert e["max_angstrom"] >= e["rmse_angstrom"] >= e["mae_angstrom"] > 0


def test_mismatched_reconstruction(ethanol):
    rebuilt = get_baseline("linear").interpolate(ethanol.stride(10), 10)
    with pytest.raises(TrajsrError, match="frames"):
        reconstruction_errors(ethanol, rebuilt[:-10], 10)
    with pytest.raises(TrajsrError, match="kept frame"):
        reconstruction_errors(ethanol, rebuilt, 5)
    with pytest.raises(TrajsrError, match="atoms"):
        reconstruction_errors(ethanol, rebuilt.replace(positions=rebuilt.positions[:, :5],
                                                       elements=rebuilt.elements[:5], velocities=None), 10)


def test_bond_lengths(ethanol):
    assert len(bonds_of(ethanol)) == 8  # ethanol has 8 bonds
    assert bond_length_distance(ethanol, ethanol) == 0.0
    stretched = ethanol.replace(positions=ethanol.positions * 1.05)
    assert bond_length_distance(ethanol, stretched) > 0.03  # Å


def test_canonical_velocities_give_every_element_the_same_temperature():
    """Maxwell–Boltzmann velocities at an ethanol geometry: with the rigid-body motion removed, each
    element reads T (heavy atoms and atoms far from the axis keep fewer degrees of freedom)."""
    from trajsr import load
    from trajsr.physics import rigid_body_split, temperature_by_element, vibrational_temperature
    from trajsr.propagation.thermostats import maxwell_boltzmann
    from trajsr.resources import shipped_folder
    ethanol = load(shipped_folder("datasets") / "ethanol-gfn2-seed0.h5")
    masses = np.asarray(ethanol.masses)
    x = np.broadcast_to(ethanol.positions[0], (40000, 9, 3))
    v = maxwell_boltzmann(x.shape, masses, 400.0, np.random.default_rng(0))
    for element, kelvin in temperature_by_element(x, v, masses, ethanol.elements).items():
        assert kelvin == pytest.approx(400.0, rel=0.02), element
    assert vibrational_temperature(x, v, masses).mean() == pytest.approx(400.0, rel=0.01)
    vibrational, rigid, shares = rigid_body_split(x[:5], v[:5], masses)
    np.testing.assert_allclose(vibrational + rigid, v[:5])
    np.testing.assert_allclose(shares.sum(-1), 21.0)                      # 3N − 6
    centred = x[:5] - (masses[:, None] * x[:5]).sum(-2, keepdims=True) / masses.sum()
    np.testing.assert_allclose((masses[:, None] * np.cross(centred, vibrational)).sum(-2), 0.0, atol=1e-9)
    np.testing.assert_allclose((masses[:, None] * vibrational).sum(-2), 0.0, atol=1e-9)
    # spinning the molecule adds rigid motion only: its vibrations read the same temperature
    spin = np.cross(np.array([0.0, 0.0, 30.0]), centred)                 # ω in rad/ps
    np.testing.assert_allclose(rigid_body_split(x[:5], v[:5] + spin, masses)[0], vibrational, atol=1e-9)
    # a linear molecule keeps 3N − 5
    assert rigid_body_split(np.array([[0.0, 0, 0], [0, 0, 0.074]]), np.ones((2, 3)),
                            np.array([1.008, 1.008]))[2].sum() == pytest.approx(1.0)


def test_element_temperature_error_bars_come_from_the_spread_between_runs():
    """Three runs, the same canonical velocities scaled to 380, 400 and 420 K: each element's error bar
    is the runs' standard deviation (20 K) over √3, not the far smaller one of the frames pooled."""
    from trajsr import load
    from trajsr.observables import pooled_temperature_by_element, temperature_by_element_error_bars
    from trajsr.propagation.thermostats import maxwell_boltzmann
    from trajsr.resources import shipped_folder
    ethanol = load(shipped_folder("datasets") / "ethanol-gfn2-seed0.h5")[:1]
    x = np.broadcast_to(ethanol.positions[0], (20000, 9, 3))
    v = maxwell_boltzmann(x.shape, np.asarray(ethanol.masses), 400.0, np.random.default_rng(1))
    runs = [ethanol.replace(positions=x, velocities=v * np.sqrt(kelvin / 400.0), time=np.arange(20000) * 0.005,
                            potential_energy=None)
            for kelvin in (380.0, 400.0, 420.0)]
    middle = pooled_temperature_by_element(runs[1])
    assert middle["O"] == pytest.approx(400.0, rel=0.03)
    bars = temperature_by_element_error_bars(runs)
    assert set(bars) == {"C", "O", "H"}
    for element, kelvin in bars.items():  # each run's element T is middle · (380, 400, 420) / 400
        assert kelvin == pytest.approx(middle[element] / 400.0 * 20.0 / np.sqrt(3), rel=1e-6), element
    assert all(np.isnan(list(temperature_by_element_error_bars(runs[:1]).values())))


def test_bond_lengths_by_element_do_not_count_a_proton_transfer_between_equivalent_sites():
    """O–H···O with the hydrogen on the left oxygen against the same with it on the right: every labelled
    bond length differs (0.98 against 1.82 Å), the sorted element-pair lengths are the same."""
    rng = np.random.default_rng(0)
    left = np.zeros((200, 3, 3))
    left[:, 1, 0] = 0.098 + 0.003 * rng.standard_normal(200)  # nm
    left[:, 2, 0] = 0.280 + 0.003 * rng.standard_normal(200)
    right = left.copy()
    right[:, 1, 0] = left[:, 2, 0] - left[:, 1, 0]  # the mirror image: H at the same distance from O2
    a, b = (Trajectory(positions=x, elements=["O", "H", "O"], time=np.arange(200) * 0.001) for x in (left, right))
    bonds = np.array([[0, 1]])
    assert bond_length_distance(a, b, bonds) == pytest.approx(0.84, abs=0.05)
    assert bond_length_distance(a, b, bonds, by_element=True) < 1e-9
    assert bond_length_distance(a, a.replace(positions=left * 1.1), bonds, by_element=True) > 0.05


def test_hydrogen_hops_count_a_proton_transfer_once_however_long_in_flight():
    """O–H···O over 1 ps: the hydrogen goes to the right oxygen through 1.4 Å in flight, and back: 2 hops."""
    from trajsr.observables import hydrogen_hops_per_ps
    h = np.concatenate([np.full(40, 0.098), np.linspace(0.098, 0.182, 21)[1:], np.full(20, 0.182),
                        np.linspace(0.182, 0.098, 11)[1:], np.full(11, 0.098)])  # nm, 101 frames
    x = np.zeros((len(h), 3, 3))
    x[:, 1, 0], x[:, 2, 0] = h, 0.28
    traj = Trajectory(positions=x, elements=["O", "H", "O"], time=np.arange(len(h)) * 0.01)
    assert hydrogen_hops_per_ps(traj) == pytest.approx(2.0)
    assert hydrogen_hops_per_ps(traj[:50]) == pytest.approx(0.0)  # mid-way (1.4 Å from both): no hop yet


def test_temperature_from_coarse_positions_is_a_lower_bound_and_says_so():
    """Differences of positions read the kinetic energy low; the file's own differences twice as far apart
    estimate how low, close where it is small, and a figure far off is marked a lower bound."""
    from trajsr import load
    from trajsr.observables import differences_shortfall, kinetic_temperature
    from trajsr.resources import shipped_folder
    folder = shipped_folder("datasets")
    for name, stride in (("ethanol-gfn2-seed0.h5", 2), ("water-tip3p-seed0.h5", 4), ("uracil-gfn2-seed0.h5", 2)):
        fine = load(folder / name)
        truth = kinetic_temperature(fine, "velocities")["temperature_K"]
        coarse = fine[::stride].replace(velocities=None)
        read = kinetic_temperature(coarse, "positions")
        measured = 1 - read["temperature_K"] / truth
        assert 0 < measured < 0.05 and read["shortfall"] == pytest.approx(measured, abs=0.01), name
        assert read["lower_bound"] == (read["shortfall"] > 0.02), name
    ethanol = load(folder / "ethanol-gfn2-seed0.h5")
    assert not kinetic_temperature(ethanol, "positions")["lower_bound"]  # 0.5 fs frames resolve it
    assert kinetic_temperature(ethanol, "velocities")["shortfall"] is None
    coarse = ethanol[::10].replace(velocities=None)
    read = kinetic_temperature(coarse)
    assert read["lower_bound"] and read["temperature_K"] < 0.6 * kinetic_temperature(ethanol)["temperature_K"]
    assert differences_shortfall(coarse) > 0.1 and differences_shortfall(coarse[:4]) is None
