import warnings

import numpy as np
import pytest

from trajsr import Trajectory, TrajsrError, load, save
from trajsr.datasets import shipped_path

from .conftest import SHARED
from .test_bad_inputs import fails

PDB = shipped_path("alanine-dipeptide-amber").parent / "alanine-dipeptide.pdb"


@pytest.fixture(scope="module")
def ala():
    return load(shipped_path("alanine-dipeptide-amber"))[:20]


# format, tolerance on positions (nm), keeps velocities, keeps time, needs topology
FORMATS = [(".h5", 1e-6, True, True, False), (".npz", 1e-9, True, True, False),
           (".extxyz", 1e-6, True, True, False), (".trr", 1e-6, True, True, True),
           (".dcd", 1e-6, False, False, True), (".nc", 1e-4, False, True, True),
           (".xtc", 1e-3, False, True, True), (".pdb", 1e-3, False, False, False),
           (".gro", 1e-3, False, False, False)]


@pytest.mark.parametrize("suffix,tol,has_v,has_t,needs_top", FORMATS)
def test_round_trip(tmp_path, ala, suffix, tol, has_v, has_t, needs_top):
    path = tmp_path / f"traj{suffix}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        save(ala, path)
    assert any("0.001 nm" in str(w.message) for w in caught) == (suffix in (".xtc", ".gro"))
    back = load(path, top=PDB if needs_top else None)
    assert back.n_frames == ala.n_frames and back.elements == ala.elements
    np.testing.assert_allclose(back.positions, ala.positions, atol=tol)
    if has_v:
        np.testing.assert_allclose(back.velocities, ala.velocities, rtol=1e-5, atol=1e-5)
    else:
        assert back.velocities is None
    if has_t:
        np.testing.assert_allclose(back.time, ala.time, rtol=1e-5, atol=1e-7)
        assert back.dt == pytest.approx(0.0005, rel=1e-4)
    else:
        with pytest.raises(TrajsrError, match="--dt"):
            back.dt
        assert load(path, top=PDB if needs_top else None, dt_fs=0.5).dt == pytest.approx(0.0005)


def test_h5_keeps_metadata_and_energy(tmp_path, ala):
    save(ala, tmp_path / "a.h5")
    back = load(tmp_path / "a.h5")
    assert back.info["seed"] == 0 and back.info["temperature_K"] == 300.0
    np.testing.assert_allclose(back.potential_energy, ala.potential_energy, rtol=1e-6)


def test_npz_units_are_honoured(tmp_path):
    R = np.random.default_rng(0).normal(size=(3, 2, 3))
    np.savez(tmp_path / "a.npz", R=R, z=np.array([8, 1]), r_unit=np.array("nm"), V=R, v_unit=np.array("nm/ps"),
             t=np.array([0.0, 1.0, 2.0]), t_unit=np.array("ps"))
    t = load(tmp_path / "a.npz")
    np.testing.assert_allclose(t.positions, R)
    np.testing.assert_allclose(t.velocities, R)
    assert t.dt == 1.0 and t.elements == ["O", "H"]


def test_npz_with_pickled_objects_is_refused(tmp_path):
    np.savez(tmp_path / "a.npz", R=np.zeros((2, 1, 3)), z=np.array([{"x": 1}], dtype=object))
    with pytest.raises(TrajsrError, match="pickle"):
        load(tmp_path / "a.npz")


def shared(pattern):
    """A third-party file beside the checkout; skipped (with the path) where that folder is absent."""
    found = sorted(SHARED.glob(pattern))
    if not found:
        pytest.skip(f"no {SHARED / pattern} (third-party data, not shipped; set TRAJSR_SHARED_DATA)")
    return found[0]


def test_reads_mbgdml_sgdml_npz():
    path = shared("6h2o*.npz")
    t = load(path)
    assert t.n_frames == 301 and t.n_atoms == 18 and t.elements[:3] == ["O", "H", "H"]
    # Å/fs velocities -> nm/ps; positions agree with velocities (1 fs spacing, no time stored)
    step = (t.positions[2:] - t.positions[:-2]) / 2.0  # nm per fs
    np.testing.assert_allclose(step, t.velocities[1:-1] * 1e-3, atol=2e-4)
    assert t.potential_energy is not None


@pytest.mark.parametrize("pattern,frames,atoms", [("4h2o*.traj", 101, 12), ("10h2o*.traj", 1000, 30)])
def test_reads_plain_xyz_named_traj(pattern, frames, atoms):
    t = load(shared(pattern))
    assert (t.n_frames, t.n_atoms) == (frames, atoms)
    assert set(t.elements) == {"O", "H"}


def test_uneven_time_names_the_frame(tmp_path, ala):
    time = ala.time.copy()
    time[7:] += 0.0005  # a missing frame after frame 6
    save(ala.replace(time=time), tmp_path / "gap.h5")
    with pytest.raises(TrajsrError, match="frame 7"):
        load(tmp_path / "gap.h5")


def test_nan_coordinates_are_refused():
    pos = np.zeros((3, 2, 3))
    pos[1, 1, 0] = np.nan
    with pytest.raises(TrajsrError, match="frame 1, atom 1"):
        Trajectory(positions=pos, elements=["H", "H"])


def test_atom_count_mismatch(tmp_path, ala):
    save(ala, tmp_path / "a.dcd")
    ethanol_pdb = tmp_path / "ethanol.pdb"
    save(load(shipped_path("ethanol-gfn2"))[:1], ethanol_pdb)
    with pytest.raises(TrajsrError, match="atom count mismatch: topology has 9 atoms, trajectory has 22"):
        load(tmp_path / "a.dcd", top=ethanol_pdb)


def test_truncated_npz_is_refused_and_its_file_closed(tmp_path):
    import gc
    import warnings
    np.savez(tmp_path / "a.npz", R=np.zeros((20, 2, 3)), z=np.array([8, 1]))
    (tmp_path / "b.npz").write_bytes((tmp_path / "a.npz").read_bytes()[:300])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(TrajsrError, match="truncated or corrupt"):
            load(tmp_path / "b.npz")
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


def test_truncated_file(tmp_path, ala):
    save(ala, tmp_path / "a.h5")
    data = (tmp_path / "a.h5").read_bytes()
    (tmp_path / "b.h5").write_bytes(data[: len(data) // 3])
    with pytest.raises(TrajsrError, match="b.h5"):
        load(tmp_path / "b.h5")


def test_a_cut_dcd_is_refused_before_its_first_chunk(tmp_path, ethanol):
    """A streamed DCD's frame count is checked against its size up front, so a cut-off file stops a command
    before any chunk is worked on (with or without unit cells), not when the reading runs out."""
    from trajsr.io.stream import iter_chunks
    save(ethanol[:1], tmp_path / "top.pdb")
    boxed = ethanol.stride(10).replace(unitcell_vectors=np.repeat(np.eye(3)[None] * 3.0, 101, 0))
    for name, traj in (("c.dcd", ethanol.stride(10)), ("boxed.dcd", boxed)):
        save(traj, tmp_path / name)
        assert sum(p.n_frames for p in iter_chunks(tmp_path / name, top=tmp_path / "top.pdb", chunk=20)) == 101
        (tmp_path / f"cut-{name}").write_bytes((tmp_path / name).read_bytes()[:-1000])
        chunks = iter_chunks(tmp_path / f"cut-{name}", top=tmp_path / "top.pdb", chunk=20)
        with pytest.raises(TrajsrError, match=r"truncated: its header declares 101 frames, only 9\d are complete"):
            next(chunks)


def test_a_cut_xyz_is_refused_naming_its_frame(tmp_path, ethanol, cli):
    """ASE and mdtraj both drop an XYZ file's cut last frame without a word (or fail without naming it):
    wherever the cut falls, through ASE or with a topology through mdtraj, the command stops naming the
    frame; a complete file, also one without a final newline, is read whole."""
    save(ethanol[:1], tmp_path / "top.pdb")
    save(ethanol[:50], tmp_path / "full.xyz")
    text = (tmp_path / "full.xyz").read_text()
    lines = text.splitlines(keepends=True)  # 11 lines a frame: count, comment, 9 atoms
    cuts = {"after the count": "".join(lines[:11 * 30 + 1]), "after 4 atoms": "".join(lines[:11 * 30 + 6]),
            "inside a line": "".join(lines[:11 * 30 + 6]) + lines[11 * 30 + 6][:20],
            "inside the last number": text[:-5]}
    for how, cut in cuts.items():
        (tmp_path / "cut.xyz").write_text(cut)
        for top in ((), ("-t", tmp_path / "top.pdb")):
            proc = cli("stride", tmp_path / "cut.xyz", *top, "--factor", 2, "-o", tmp_path / "o.h5", check=False)
            frame = 49 if how == "inside the last number" else 30
            assert proc.returncode == 2 and f"cut.xyz: frame {frame} " in proc.stderr, (how, top, proc.stderr)
            assert "truncated" in proc.stderr and not (tmp_path / "o.h5").exists()
    (tmp_path / "whole.xyz").write_text(text.rstrip("\n"))
    for name in ("full.xyz", "whole.xyz"):
        assert load(tmp_path / name).n_frames == 50
        assert load(tmp_path / name, top=tmp_path / "top.pdb").n_frames == 50


def test_a_cut_amber_ascii_trajectory_is_refused_naming_its_frame(tmp_path, ethanol, cli):
    """mdtraj reads an .mdcrd/.crd file cut inside a frame as the whole frames before it, and a number cut
    short as it stands, without a word: the command (read whole or streamed) stops naming the frame."""
    save(ethanol[:1], tmp_path / "top.pdb")
    boxed = ethanol[:50].replace(unitcell_vectors=np.repeat(np.eye(3)[None] * 3.0, 50, 0))
    for name, traj in (("a.mdcrd", ethanol[:50]), ("boxed.crd", boxed)):
        save(traj, tmp_path / name)
        lines = (tmp_path / name).read_text().splitlines(keepends=True)
        per_frame = 4 if name == "boxed.crd" else 3  # 27 numbers, ten a line (and the box's line)
        cuts = {30: "".join(lines[:1 + per_frame * 30 + 2]), 49: "".join(lines)[:-3]}
        for frame, text in cuts.items():
            (tmp_path / f"cut-{name}").write_text(text)
            for command in (("stride", "--factor", 2), ("upsample", "--method", "spline", "--factor", 2)):
                proc = cli(command[0], tmp_path / f"cut-{name}", "-t", tmp_path / "top.pdb", "--dt", 0.5,
                           *command[1:], "-o", tmp_path / "o.h5", check=False)
                assert proc.returncode == 2 and f"frame {frame} " in proc.stderr and "truncated" in proc.stderr, \
                    proc.stderr
                assert not (tmp_path / "o.h5").exists()
        assert load(tmp_path / name, top=tmp_path / "top.pdb").n_frames == 50


def test_a_cut_gro_file_is_refused_naming_its_frame(tmp_path, ethanol, cli):
    """mdtraj failed on a .gro file cut inside a frame without naming it ("object of type 'NoneType' has no
    len()", or the line it did not expect): the frame and the whole frames before it are named, whether
    the cut falls in an atom line, between atom lines or in the box line. GRO, like xtc, keeps 0.001 nm."""
    with pytest.warns(UserWarning, match="gro keeps positions to 0.001 nm"):
        save(ethanol[:20], tmp_path / "a.gro")
    text = (tmp_path / "a.gro").read_text()
    lines = text.splitlines(keepends=True)  # 12 a frame: title, count, 9 atoms, box
    cuts = {"inside atom line 6": "".join(lines[:12 * 10 + 7]) + lines[12 * 10 + 7][:20],
            "after 3 of its 9 atom lines": "".join(lines[:12 * 10 + 5]),
            "inside its box line": text[:-9], "after its title line": "".join(lines[:12 * 10 + 1])}
    for words, cut in cuts.items():
        (tmp_path / "cut.gro").write_text(cut)
        frame = 19 if "box" in words else 10
        fails(cli("stride", tmp_path / "cut.gro", "--dt", 0.5, "--factor", 2, "-o", tmp_path / "o.h5", check=False),
              f"frame {frame} ends {words}", f"frames 0-{frame - 1} are complete")
    assert not (tmp_path / "o.h5").exists()
    assert load(tmp_path / "a.gro").n_frames == 20 and load(text_file(tmp_path, text.rstrip("\n"))).n_frames == 20


def test_a_repeated_frame_is_refused_in_a_file_without_time(tmp_path, ethanol, cli):
    """A restarted run appended to a DCD repeats its last frame: with no time in the file, the spline and the
    models rebuilt a gap that stands still and one that catches up, exit 0. Whole or streamed, the seam
    between two chunks included, the two frames are named; so are two runs joined (a jump)."""
    save(ethanol[:1], tmp_path / "top.pdb")
    coarse = load(shipped_path("ethanol-gfn2")).stride(10)  # 501 frames: chunks of the spline's 96 or more
    n = coarse.n_frames
    save(coarse[np.r_[0:101, 100:n]].replace(velocities=None, time=None), tmp_path / "appended.dcd")
    for chunk in (5000, 101, 96):  # one chunk, the seam between two, inside the second
        fails(cli("upsample", tmp_path / "appended.dcd", "-t", tmp_path / "top.pdb", "--dt", 5, "--method",
                  "spline", "--factor", 10, "--chunk", chunk, "-o", tmp_path / "o.h5", check=False),
              "frames 100 and 101 hold the same positions", "restarted run")
    fails(cli("stride", tmp_path / "appended.dcd", "-t", tmp_path / "top.pdb", "--factor", 2, "-o",
              tmp_path / "o.h5", check=False), "frames 100 and 101")
    assert not (tmp_path / "o.h5").exists()
    save(coarse.replace(velocities=None, time=None), tmp_path / "whole.dcd")  # the same frames once each
    assert load(tmp_path / "whole.dcd", top=tmp_path / "top.pdb").n_frames == n
    # two runs joined (the second one's frames moved 5 Å): a jump, named where it is
    other = coarse.positions[:, ::-1].copy()[:, np.argsort(np.arange(9)[::-1])] + np.array([0.5, 0.0, 0.0])
    joined = coarse.replace(positions=np.concatenate([coarse.positions[:300], other[300:]]), velocities=None,
                            time=None, potential_energy=None)
    save(joined, tmp_path / "joined.dcd")
    for chunk in (5000, 300):  # inside one chunk, at the seam
        fails(cli("upsample", tmp_path / "joined.dcd", "-t", tmp_path / "top.pdb", "--dt", 5, "--method", "spline",
                  "--factor", 10, "--chunk", chunk, "-o", tmp_path / "o.h5", check=False),
              "between frames 299 and 300", "two runs joined")
    assert not (tmp_path / "o.h5").exists()


def text_file(folder, text, name="whole.gro"):
    (folder / name).write_text(text)
    return folder / name


def test_netcdf_files_read_without_mdtraj_advice_on_the_console(tmp_path, ethanol, cli):
    """mdtraj warns on every .nc file that netCDF4 (optional) is not installed: three lines the CLI printed
    as a trajsr warning on each read; the command's own output is all that is left."""
    save(ethanol[:1], tmp_path / "top.pdb")
    save(ethanol[:40], tmp_path / "a.nc")
    proc = cli("stride", tmp_path / "a.nc", "-t", tmp_path / "top.pdb", "--factor", 2, "-o", tmp_path / "b.nc")
    assert proc.stderr == "" and load(tmp_path / "b.nc", top=tmp_path / "top.pdb").n_frames == 20


def test_float32_times_of_long_fine_files_read_back(tmp_path, ethanol):
    """xtc and trr keep time in float32: 0.5 fs frames past ~8 ps step unevenly by more than the spacing
    check's 0.1% (0.7% at 15 ps), so a fine file trajsr itself wrote could not be read back; the check now
    allows that rounding and still finds a missing frame."""
    n = 30_001  # 15 ps at 0.5 fs
    there_and_back = np.concatenate([ethanol.positions, ethanol.positions[-2:0:-1]])  # continuous, no jump
    reps = -(-n // len(there_and_back))
    fine = Trajectory(positions=np.concatenate([there_and_back] * reps)[:n], elements=ethanol.elements,
                      time=np.arange(n) * 0.0005)
    save(fine[:1], tmp_path / "top.pdb")
    for name in ("fine.trr", "fine.xtc"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # xtc's precision warning
            save(fine, tmp_path / name)
            save(fine[np.r_[0:20_000, 20_001:n]], tmp_path / f"gap-{name}")
        assert load(tmp_path / name, top=tmp_path / "top.pdb").dt == pytest.approx(0.0005, rel=1e-6)
        with pytest.raises(TrajsrError, match=r"uneven time step at frame 20000: (1|0\.99\d*) fs after 0.5 fs"):
            load(tmp_path / f"gap-{name}", top=tmp_path / "top.pdb").dt


def test_no_silent_overwrite_and_no_partial_file(tmp_path, ala):
    save(ala, tmp_path / "a.npz")
    with pytest.raises(TrajsrError, match="--force"):
        save(ala, tmp_path / "a.npz")
    save(ala, tmp_path / "a.npz", force=True)
    with pytest.raises(TrajsrError):
        save(ala, tmp_path / "a.unknownformat")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz"]


def test_ab_initio_outputs_that_ase_reads_come_with_their_forces(tmp_path, ethanol, cli):
    """An ab initio code's MD output (here CASTEP's .md, which ASE writes too; VASP's vasprun.xml and
    OUTCAR, ORCA, ... go the same way) is read through ASE with its forces, needs --dt, and is not written."""
    import ase.io
    from ase.calculators.singlepoint import SinglePointCalculator

    from trajsr.units import KJ_PER_MOL_PER_EV, NM_PER_ANGSTROM
    rng = np.random.default_rng(0)
    forces = rng.normal(size=(5, ethanol.n_atoms, 3)) * 100.0  # kJ/mol/nm
    frames = []
    for i in range(5):
        atoms = ethanol.to_ase(10 * i)
        atoms.calc = SinglePointCalculator(atoms, forces=forces[i] / KJ_PER_MOL_PER_EV * NM_PER_ANGSTROM, energy=-1.0)
        frames.append(atoms)
    ase.io.write(tmp_path / "run.md", frames, format="castep-md")
    traj = load(tmp_path / "run.md", dt_fs=5)
    np.testing.assert_allclose(traj.positions, ethanol.positions[:50:10], atol=1e-9)
    np.testing.assert_allclose(traj.forces, forces, rtol=1e-6)
    assert traj.elements == ethanol.elements and traj.unitcell_vectors is None  # pbc without a cell: no box
    out = cli("upsample", tmp_path / "run.md", "--dt", 5, "--method", "spline", "--factor", 2,
              "-o", tmp_path / "fine.h5").stdout
    assert "5 kept -> 9 frames" in out
    (tmp_path / "vasprun.xml").write_text("<modeling>truncated")
    proc = cli("upsample", tmp_path / "vasprun.xml", "--dt", 5, "--method", "spline", "--factor", 2,
               "-o", tmp_path / "v.h5", check=False)
    assert proc.returncode == 2 and "vasprun.xml: cannot read" in proc.stderr and "Traceback" not in proc.stderr
