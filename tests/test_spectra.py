"""What users rebuild frames for (issue 29): ``trajsr spectrum``, ``trajsr temperature`` and the velocities
``upsample`` writes, each through the command line and checked against an independent computation."""
import json

import numpy as np
import pytest

from trajsr import load, save
from trajsr.physics import temperature
from trajsr.units import INVERSE_CM_PER_THZ

from .conftest import ROOT
from .test_bad_inputs import fails, no_leftovers

BILSTM = ROOT / "models" / "ethanol-gfn2-f10.keras"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The whole shipped ethanol trajectory (2.5 ps at 0.5 fs), a 5 fs copy, and both without velocities."""
    from trajsr.datasets import shipped_path
    d = tmp_path_factory.mktemp("spectra")
    fine = load(shipped_path("ethanol-gfn2"))
    save(fine, d / "fine.h5")
    save(fine.replace(velocities=None), d / "fine_x.h5")
    save(fine.stride(10), d / "c10.h5")
    save(fine.stride(10).replace(velocities=None, time=None), d / "c10.xyz")
    return d


def numpy_vdos(v, masses, dt_ps, resolution=67.0, atoms=None):
    """An independent VDOS: centre-of-mass velocity removed, √m weights, Welch by hand (periodic Hann window,
    half overlap, each segment's mean removed, one-sided |rfft|²), unit area over cm⁻¹; with ``atoms``, the
    part of it those atoms make (on the same scale)."""
    v = v - (masses[None, :, None] * v).sum(1, keepdims=True) / masses.sum()
    y = (v * np.sqrt(masses)[None, :, None]).reshape(len(v), -1)
    n = int(round(INVERSE_CM_PER_THZ / (resolution * dt_ps)))
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)
    power = []
    for start in range(0, len(y) - n + 1, n // 2):
        seg = y[start:start + n]
        power.append(np.abs(np.fft.rfft((seg - seg.mean(0)) * window[:, None], axis=0)) ** 2)
    power = np.mean(power, axis=0)  # (frequencies, 3N)
    power[1:-1 if n % 2 == 0 else None] *= 2
    wavenumber = np.fft.rfftfreq(n, dt_ps) * INVERSE_CM_PER_THZ
    area = np.trapezoid(power.sum(1), wavenumber)
    part = power if atoms is None else power.reshape(len(power), -1, 3)[:, atoms].reshape(len(power), -1)
    return wavenumber, part.sum(1) / area


def test_spectrum_agrees_with_an_independent_numpy_computation(files, cli, tmp_path):
    fine = load(files / "fine.h5")
    cli("spectrum", files / "fine.h5", "--json", tmp_path / "s.json", "--max-wavenumber", 5000)
    spec = json.loads((tmp_path / "s.json").read_text())["spectra"][0]
    assert spec["source"] == "velocities" and spec["dt_fs"] == pytest.approx(0.5)
    w, p = numpy_vdos(fine.velocities, fine.masses, fine.dt)
    keep = w <= 5000
    np.testing.assert_allclose(spec["wavenumber_cm1"], w[keep], rtol=1e-10)
    np.testing.assert_allclose(spec["intensity_per_cm1"], p[keep], rtol=1e-8, atol=1e-12)
    # from positions: central differences at 0.5 fs, by the same hand
    cli("spectrum", files / "fine_x.h5", "--json", tmp_path / "x.json", "--max-wavenumber", 5000)
    spec = json.loads((tmp_path / "x.json").read_text())["spectra"][0]
    assert spec["source"] == "positions"
    _, px = numpy_vdos(np.gradient(fine.positions, fine.dt, axis=0), fine.masses, fine.dt)
    np.testing.assert_allclose(spec["intensity_per_cm1"], px[keep], rtol=1e-8, atol=1e-12)


def test_stretch_bands_by_atom_sum_the_spectra_of_the_bonded_hydrogens(files, tmp_path):
    """'O-H/N-H stretch (by atom)': the hydroxyl hydrogen's part of the spectrum over 2000-4000 cm⁻¹, found where the
    molecule's own bonds put it (malonaldehyde's hydrogen-bonded O-H stretch sits below the usual window)."""
    from trajsr.spectra import compare, hydrogen_partners, spectrum
    fine = load(files / "fine.h5")
    assert hydrogen_partners(fine) == [None, None, None, "O", "C", "C", "C", "C", "C"]  # ethanol: O-H is atom 3
    malonaldehyde = load(ROOT / "datasets" / "geometries" / "malonaldehyde.xyz")
    partners = hydrogen_partners(malonaldehyde)
    assert sorted(p for p in partners if p) == ["C", "C", "C", "O"]
    reference = spectrum(fine, "velocities")
    np.testing.assert_allclose(reference.partial.sum(axis=1), reference.intensity, rtol=1e-12)
    bands = compare(reference, reference)["bands"]
    assert bands["O-H/N-H stretch (by atom)"]["atoms"] == [3]
    assert bands["C-H stretch (by atom)"]["atoms"] == [4, 5, 6, 7, 8]
    # independently: the hydroxyl hydrogen's part of the spectrum, by hand, as a share of the compared area
    w, total = numpy_vdos(fine.velocities, fine.masses, fine.dt)
    _, hydroxyl = numpy_vdos(fine.velocities, fine.masses, fine.dt, atoms=[3])
    grid, band = (w >= 300) & (w <= 4000), (w >= 2000) & (w <= 4000)
    share = np.trapezoid(hydroxyl[band], w[band]) / np.trapezoid(total[grid], w[grid])
    assert bands["O-H/N-H stretch (by atom)"]["reference_share"] == pytest.approx(share, rel=1e-6)
    assert 0.02 < share < 0.2


def test_spectrum_compares_with_a_reference_below_each_nyquist_limit(files, cli, tmp_path):
    out = cli("spectrum", files / "fine_x.h5", files / "c10.h5", "--reference", files / "fine.h5",
              "--json", tmp_path / "c.json", "--plot", tmp_path / "c.svg")
    report = json.loads((tmp_path / "c.json").read_text())
    assert report["source"] == "positions"  # one rule for all: a file without velocities decides
    same, coarse = report["comparisons"]
    assert same["overlap"] == pytest.approx(1.0) and same["range_cm1"] == [300.0, 4000.0]
    for band in same["bands"].values():
        assert band["ratio"] == pytest.approx(1.0)
    assert set(same["bands"]) >= {"C-H stretch", "O-H/N-H stretch"}  # ethanol has both
    # 5 fs: compared only up to its Nyquist limit; the O-H stretch lies above it and is not judged
    assert coarse["range_cm1"][1] == pytest.approx(INVERSE_CM_PER_THZ / (2 * 0.005))
    assert coarse["bands"]["O-H/N-H stretch"]["ratio"] is None and coarse["overlap"] < 0.99
    assert "aliasing" in out.stdout and "Nyquist" in out.stdout
    assert (tmp_path / "c.svg").read_text().lstrip().startswith("<?xml")


def test_temperature_agrees_with_the_stored_velocities(files, cli, tmp_path):
    fine = load(files / "fine.h5")
    cli("temperature", files / "fine.h5", files / "fine_x.h5", "--json", tmp_path / "t.json")
    got = json.loads((tmp_path / "t.json").read_text())["files"]
    truth = temperature(fine.velocities, fine.masses).mean()
    assert got[str(files / "fine.h5")]["temperature_K"] == pytest.approx(truth, rel=1e-10)
    assert got[str(files / "fine.h5")]["source"] == "velocities"
    from trajsr.observables import kinetic_temperature
    alone = kinetic_temperature(fine, vibrations=False)  # what evaluate labels rows with: no rotation split
    assert alone["temperature_K"] == got[str(files / "fine.h5")]["temperature_K"]
    assert alone["by_element"] is None and got[str(files / "fine.h5")]["by_element"]
    assert got[str(files / "fine_x.h5")]["temperature_K"] == pytest.approx(truth, rel=0.02)  # 0.5 fs differences
    # 5 fs differences read low, and the command says it is a lower bound
    low = cli("temperature", files / "c10.h5", "--source", "positions")
    assert "a lower bound, not the temperature" in low.stdout and "rebuild fine frames" in low.stdout
    kelvin = float(low.stdout.split(": at least ")[1].split(" K")[0])
    assert kelvin < 0.7 * truth


def test_temperature_counts_the_distances_a_file_holds_rigid(cli, tmp_path):
    """TIP3P water keeps 3 distances per molecule fixed: 150 fewer degrees of freedom in the shipped box, or
    its temperature reads 2/3 of the truth."""
    from trajsr.datasets import shipped_path
    cli("temperature", shipped_path("water-tip3p"), shipped_path("ethanol-gfn2"), "--json", tmp_path / "t.json")
    water, ethanol = json.loads((tmp_path / "t.json").read_text())["files"].values()
    assert water["rigid"] == 150 and water["degrees_of_freedom"] == 3 * 150 - 3 - 150
    assert 250 < water["temperature_K"] < 350  # an OpenMM run at 300 K
    assert ethanol["rigid"] == 0 and ethanol["degrees_of_freedom"] == 24


def test_spectrum_and_temperature_refuse_what_they_cannot_read(files, cli, tmp_path):
    from trajsr.datasets import shipped_path
    fails(cli("spectrum", files / "fine_x.h5", "--source", "velocities", check=False), "fine_x.h5",
          "no velocities")
    fails(cli("temperature", files / "fine_x.h5", "--source", "velocities", check=False), "no velocities")
    fails(cli("spectrum", files / "c10.xyz", check=False), "c10.xyz", "--dt")
    fails(cli("temperature", files / "c10.xyz", check=False), "c10.xyz", "--dt")
    fails(cli("spectrum", files / "c10.h5", "--resolution", 1, check=False), "frames", "resolution")
    fails(cli("spectrum", shipped_path("malonaldehyde-gfn2"), "--reference", files / "fine.h5", check=False),
          "atom order")
    fails(cli("spectrum", files / "fine.h5", "--min-wavenumber", 4000, "--max-wavenumber", 300, check=False),
          "--min-wavenumber")
    fails(cli("spectrum", files / "fine.h5", "--json", tmp_path / "a", "--plot", tmp_path / "a", check=False),
          "different files")
    fails(cli("spectrum", files / "fine.h5", "--plot", tmp_path / "a.txt", check=False), "a.txt")
    fails(cli("temperature", files / "fine.h5", "--json", files / "fine.h5", check=False), "is an input")
    (tmp_path / "old.json").write_text("mine")
    fails(cli("temperature", files / "fine.h5", "--json", tmp_path / "old.json", check=False), "--force")
    assert (tmp_path / "old.json").read_text() == "mine"
    fails(cli("spectrum", files / "fine.h5", "--resolution", 0, check=False), "--resolution")
    save(load(files / "fine.h5")[:1], tmp_path / "one.h5")
    fails(cli("spectrum", tmp_path / "one.h5", check=False), "one.h5", "1 frame")
    fine = load(files / "fine.h5")
    save(fine.replace(velocities=10 * fine.velocities), tmp_path / "v10.h5")  # Å/ps read as nm/ps: 100x the T
    fails(cli("temperature", tmp_path / "v10.h5", check=False), "v10.h5", "10x", "--source positions")
    fails(cli("spectrum", tmp_path / "v10.h5", check=False), "v10.h5", "disagree")
    no_leftovers(tmp_path, "a", "a.txt")


def test_upsample_writes_the_velocities_it_rebuilds(files, cli, tmp_path):
    """A Bi-LSTM's fine path carries velocities (its spline derivative), and the summary says where they went."""
    fine = load(files / "fine.h5")
    out = cli("upsample", files / "c10.h5", "--model", BILSTM, "--positions-only", "-o", tmp_path / "b.h5").stdout
    assert "with velocities (nm/ps)" in out
    rebuilt = load(tmp_path / "b.h5")
    kinetic = temperature(rebuilt.velocities, rebuilt.masses).mean()
    assert kinetic == pytest.approx(temperature(fine.velocities, fine.masses).mean(), rel=0.03)
    spline = cli("upsample", files / "c10.h5", "--method", "spline", "--factor", 10, "--positions-only",
                 "-o", tmp_path / "s.dcd", "-t", ROOT / "datasets" / "ethanol.pdb").stdout
    assert "not kept by .dcd" in spline
    linear = cli("upsample", files / "c10.h5", "--method", "linear", "--factor", 10, "-o", tmp_path / "l.h5").stdout
    assert "velocities" not in linear.split("->")[1]
