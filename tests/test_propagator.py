"""Learned propagators: energy conservation, momentum, energy rescaling, ASE integrator, guard, CLI."""
from pathlib import Path

import ase
import ase.io
import numpy as np
import pytest
from ase import units
from ase.calculators.calculator import Calculator, all_changes

from trajsr import Trajectory, TrajsrError, load, save
from trajsr.ase import LearnedDynamics
from trajsr.card import read_card
from trajsr.physics import vibrational_temperature
from trajsr.propagation.propagator import Propagator

from .test_bad_inputs import fails

MASS = 1.008  # Da
K_BOND, R0 = 4.0e4, 0.074  # kJ/mol/nm^2, nm: a vibration period of about 22 fs


def harmonic_energy(x, v):
    """Exact energy (kJ/mol) of the harmonic diatomic, frames (..., 2, 3)."""
    r = np.linalg.norm(x[..., 0, :] - x[..., 1, :], axis=-1)
    return 0.5 * K_BOND * (r - R0) ** 2 + 0.5 * MASS * (v ** 2).sum(axis=(-1, -2))


def harmonic_trajectory(amplitude, direction, n=1200, dt=0.0005):
    """Velocity Verlet for two H atoms joined by a harmonic spring (nm, ps)."""
    x = np.zeros((n, 2, 3))
    v = np.zeros((n, 2, 3))
    u = direction / np.linalg.norm(direction)
    x[0, 1] = (R0 + amplitude) * u

    def force(pos):
        d = pos[1] - pos[0]
        r = np.linalg.norm(d)
        f = -K_BOND * (r - R0) * d / r
        return np.stack([-f, f])
    f = force(x[0])
    for i in range(n - 1):
        v_half = v[i] + 0.5 * dt * f / MASS
        x[i + 1] = x[i] + dt * v_half
        f = force(x[i + 1])
        v[i + 1] = v_half + 0.5 * dt * f / MASS
    return Trajectory(positions=x, velocities=v, time=np.arange(n) * dt, elements=["H", "H"])


class HarmonicBond(Calculator):
    """The same spring as an ASE calculator (eV, Å)."""
    implemented_properties = ["energy", "forces"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        d = (atoms.positions[1] - atoms.positions[0]) * 0.1
        r = np.linalg.norm(d)
        e = 0.5 * K_BOND * (r - R0) ** 2 / 96.48533212331
        f = -K_BOND * (r - R0) * d / r / 96.48533212331 * 0.1
        self.results = {"energy": e, "forces": np.stack([-f, f])}


@pytest.fixture(scope="module")
def oscillator_model(tmp_path_factory):
    from trajsr.propagation.train import fit_propagator
    rng = np.random.default_rng(0)
    trajs = [harmonic_trajectory(a, rng.normal(size=3)) for a in (0.004, 0.006, 0.008, 0.010, 0.012, 0.007)]
    path = tmp_path_factory.mktemp("prop") / "hnn.keras"
    fit_propagator(trajs[:-1], validation=trajs[-1:], model="hnn", factor=4, strides=2, substeps=2, width=32,
                   epochs=12, learning_rate=3e-3, window_step=2, verbose=0, output=path)
    return path


def test_hamiltonian_propagator_keeps_energy_of_harmonic_oscillator(oscillator_model):
    prop = Propagator.load(oscillator_model)
    start = harmonic_trajectory(0.009, np.array([1.0, 1.0, 0.0]), n=2)
    traj = prop.run(start.positions[0], start.velocities[0], 5000)  # 5000 x 2 fs = 10 ps, ~450 periods
    assert traj.n_frames == 5001 and "guard" not in traj.info
    true = harmonic_energy(traj.positions, traj.velocities)
    assert np.abs(true - true[0]).max() < 0.15 * true[0]  # bounded: no drift over 450 periods
    first, last = true[:500].mean(), true[-500:].mean()
    assert abs(last - first) < 0.02 * true[0]
    import tensorflow as tf
    learned = prop.layer.energy(tf.constant(traj.positions, tf.float32), tf.constant(traj.velocities, tf.float32))
    learned = learned.numpy()
    assert np.abs(learned - learned[0]).max() < 0.05 * true[0]


def test_center_of_mass_momentum_is_conserved_exactly(oscillator_model):
    prop = Propagator.load(oscillator_model)
    start = harmonic_trajectory(0.009, np.array([0.0, 1.0, 0.0]), n=2)
    v0 = start.velocities[0] + np.array([0.3, -0.2, 0.1])  # the molecule drifts
    replicas = prop.run(np.stack([start.positions[0]] * 3), np.stack([v0, v0 * 0.5, -v0]), 300)
    assert len(replicas) == 3
    for traj, v in zip(replicas, (v0, v0 * 0.5, -v0)):
        p = (traj.velocities * MASS).sum(axis=1)
        np.testing.assert_allclose(p, np.broadcast_to(p[0], p.shape), atol=1e-12)
        np.testing.assert_allclose(p[0], (v * MASS).sum(0), atol=1e-12)
        com = traj.positions.mean(axis=1)
        np.testing.assert_allclose(com, com[0] + p[0] / (2 * MASS) * traj.time[:, None], atol=1e-9)


def test_energy_rescaling_holds_total_energy_of_known_potential(oscillator_model):
    prop = Propagator.load(oscillator_model)
    start = harmonic_trajectory(0.008, np.array([0.0, 0.0, 1.0]), n=2)
    traj = prop.run(start.positions[0], start.velocities[0], 200, rescale_energy_with=HarmonicBond())
    total = harmonic_energy(traj.positions, traj.velocities)
    potential = total - 0.5 * MASS * (traj.velocities ** 2).sum(axis=(1, 2))
    # wherever the kinetic energy can absorb the change (E_pot <= E_start), the total stays put
    fixable = potential <= total[0]
    assert fixable.mean() > 0.9
    np.testing.assert_allclose(total[fixable], total[0], rtol=1e-6)
    assert traj.info["ensemble"] == "NVE, energy rescaled to the start's"
    for thermostat in ("bussi", None):  # NVE constraint and NVT thermostat (a temperature alone asks for Bussi)
        with pytest.raises(TrajsrError, match="one or the other"):
            prop.run(start.positions[0], start.velocities[0], 2, rescale_energy_with=HarmonicBond(),
                     thermostat=thermostat, temperature=300.0)
    # a temperature without a thermostat is NVT (Bussi) in the API as on the command line, never a silent NVE
    assert prop.run(start.positions[0], start.velocities[0], 2, temperature=40.0).info["ensemble"] == \
        "NVT, bussi at 40 K"
    assert prop.run(start.positions[0], start.velocities[0], 2).info["ensemble"] == "NVE"


def test_thermostats_reach_their_temperature(oscillator_model):
    prop = Propagator.load(oscillator_model)
    start = harmonic_trajectory(0.008, np.array([0.0, 0.0, 1.0]), n=2)
    # a low temperature keeps the toy molecule inside the bond lengths its potential was trained on
    for kind, every in (("bussi", 1), ("langevin", 1), ("bussi", 3)):  # 3: updates every 3 strides, compiled
        runs = prop.run(np.stack([start.positions[0]] * 64), np.stack([start.velocities[0]] * 64), 300,
                        thermostat=kind, temperature=40.0, thermostat_time_fs=20.0, friction_per_fs=0.05,
                        thermostat_every=every)
        assert runs[0].n_frames == 301 and runs[0].info["ensemble"] == f"NVT, {kind} at 40 K"
        temps = np.array([vibrational_temperature(r.positions[100:], r.velocities[100:], r.masses) for r in runs])
        assert temps.mean() == pytest.approx(40.0, rel=0.15)
        if kind == "bussi":  # the rigid rotation is left alone: the spring never turns
            axis = runs[0].positions[:, 1] - runs[0].positions[:, 0]
            assert np.abs(axis[:, :2]).max() < 1e-6 * np.abs(axis[:, 2]).min()


def test_ase_integrator_with_observers_and_trajectory(tmp_path, oscillator_model):
    start = harmonic_trajectory(0.008, np.array([1.0, 0.0, 0.0]), n=2)
    atoms = ase.Atoms("H2", positions=start.positions[0] * 10)
    atoms.set_velocities(start.velocities[0] / 100 / units.fs)
    assert atoms.calc is None
    seen = []
    dyn = LearnedDynamics(atoms, oscillator_model, trajectory=str(tmp_path / "md.traj"))
    dyn.attach(lambda: seen.append(dyn.get_time() / units.fs), interval=10)
    dyn.run(50)
    assert seen == pytest.approx([0, 20, 40, 60, 80, 100])
    frames = ase.io.read(tmp_path / "md.traj", ":")
    assert len(frames) == 51
    assert not np.allclose(frames[0].positions, frames[-1].positions)
    with pytest.raises(TrajsrError, match="not the model's step of 2 fs"):
        LearnedDynamics(atoms, oscillator_model, timestep=0.5 * units.fs)


def test_guard_stops_a_bad_model_and_keeps_the_frames_before(tmp_path, oscillator_model, cli):
    prop = Propagator.load(oscillator_model)
    # sabotage: a potential a hundred times too steep throws the atoms apart within a few steps
    out = prop.layer.net[-1]
    out.kernel.assign(out.kernel * -100.0)
    start = harmonic_trajectory(0.008, np.array([1.0, 0.0, 0.0]), n=2)
    with pytest.warns(UserWarning, match="rollout stopped at step"):
        traj = prop.run(start.positions[0], start.velocities[0], 1000)
    assert 1 <= traj.n_frames < 1000 and "bond H0-H1" in traj.info["guard"]
    # the CLI writes the frames before the failure and exits non-zero
    bad = tmp_path / "bad.keras"
    model = __import__("keras").saving.load_model(oscillator_model)
    model.get_layer("unroll").step.net[-1].kernel.assign(model.get_layer("unroll").step.net[-1].kernel * -100.0)
    model.save(bad)
    save(start, tmp_path / "start.h5")
    proc = cli("propagate", "--model", bad, "--start", tmp_path / "start.h5", "--steps", 1000,
               "-o", tmp_path / "out.h5", check=False)
    assert proc.returncode == 3 and "rollout stopped at step" in proc.stderr
    from trajsr import load
    assert 1 <= load(tmp_path / "out.h5").n_frames < 1000


def test_cli_train_and_propagate(tmp_path, cli, oscillator_model):
    rng = np.random.default_rng(1)
    for i, a in enumerate((0.005, 0.01)):
        save(harmonic_trajectory(a, rng.normal(size=3), n=400), tmp_path / f"h{i}.h5")
    out = cli("train", tmp_path / "h0.h5", tmp_path / "h1.h5", "--task", "propagate", "--model", "lstm",
              "--factor", 4, "--strides", 2, "--substeps", 2, "--width", 8, "--epochs", 1, "-o",
              tmp_path / "p.keras", "--quiet").stdout
    assert "propagator" in out
    command = Propagator.load(tmp_path / "p.keras").layer.metadata["training"]["command"]
    assert command.startswith("trajsr train") and "--task propagate --model lstm" in command  # for its card
    card = read_card(tmp_path / "p.keras")  # the card train writes for both tasks
    assert card["task"] == "propagate" and card["settings"]["strides"] == 2 and card["command"] == command
    assert card["evaluated_on"].startswith("validation trajectories") and card["evaluation"]["best"] > 0
    fails(cli("train", tmp_path / "h0.h5", "--task", "propagate", "--model", "lstm", "--factor", 4, "-o",
              tmp_path / "p.keras", check=False), "exists")  # model and card are the user's files
    out = cli("propagate", "--model", oscillator_model, "--start", tmp_path / "h0.h5", "--frame", 10,
              "--steps", 25, "-o", tmp_path / "run.npz", "--temperature", 40).stdout
    assert "26 frames, 2 fs apart" in out and "NVT, bussi at 40 K" in out
    # --fill: the same run, each 2 fs stride filled with the same potential's path at the data's 0.5 fs
    out = cli("propagate", "--model", oscillator_model, "--start", tmp_path / "h0.h5", "--frame", 10,
              "--steps", 25, "-o", tmp_path / "fill.h5", "--temperature", 40, "--fill").stdout
    assert "101 frames, 0.5 fs apart" in out and "filled by the same dynamics" in out
    run, filled = load(tmp_path / "run.npz"), load(tmp_path / "fill.h5")
    np.testing.assert_allclose(filled.positions[::4], run.positions, atol=1e-6)  # the strides stay as run
    np.testing.assert_allclose(filled.velocities[::4], run.velocities, atol=1e-5)
    assert np.diff(filled.time) == pytest.approx(0.0005)
    fails(cli("propagate", "--model", tmp_path / "p.keras", "--start", tmp_path / "h0.h5", "--steps", 5, "--fill",
              "-o", tmp_path / "lstm.h5", check=False), "Hamiltonian")
    assert not (tmp_path / "lstm.h5").exists()
    with pytest.raises(AssertionError, match="no velocities"):
        save(harmonic_trajectory(0.01, np.ones(3), n=5).replace(velocities=None), tmp_path / "nov.npz")
        cli("propagate", "--model", oscillator_model, "--start", tmp_path / "nov.npz", "--steps", 5,
            "-o", tmp_path / "x.npz")


def test_ode_family_learns_a_stride_better_than_ballistic_motion(tmp_path):
    from trajsr.propagation.train import fit_propagator
    rng = np.random.default_rng(2)
    trajs = [harmonic_trajectory(a, rng.normal(size=3)) for a in (0.004, 0.006, 0.008, 0.010, 0.007)]
    net, history = fit_propagator(trajs[:-1], validation=trajs[-1:], model="ode", factor=4, strides=2, substeps=4,
                                  width=32, epochs=8, learning_rate=3e-3, window_step=3, verbose=0,
                                  output=tmp_path / "ode.keras")
    assert history.history["val_loss"][-1] < history.history["val_loss"][0]
    prop = Propagator.load(tmp_path / "ode.keras")
    assert prop.family == "ode"
    test = harmonic_trajectory(0.009, np.array([0.0, 1.0, 1.0]), n=401)
    traj = prop.run(test.positions[0], test.velocities[0], 100)
    assert traj.n_frames == 101 and "guard" not in traj.info
    tau = 4 * 0.0005
    starts = np.arange(0, 396, 4)
    learned = prop.step(test.positions[starts], test.velocities[starts], 1)[0][0]
    ballistic = test.positions[starts] + test.velocities[starts] * tau
    truth = test.positions[starts + 4]
    assert np.abs(learned - truth).mean() < 0.5 * np.abs(ballistic - truth).mean()


def test_rollouts_compile_once_per_batch_shape(oscillator_model):
    prop = Propagator.load(oscillator_model)
    start = harmonic_trajectory(0.008, np.array([1.0, 0.0, 0.0]), n=2)
    prop.run(start.positions[0], start.velocities[0], 30)
    traces = prop.traces
    for n in (7, 130, 64, 1):  # other step counts reuse the compiled chunk
        assert prop.run(start.positions[0], start.velocities[0], n).n_frames == n + 1
    assert prop.traces == traces


def test_a_swallowed_ctrl_c_stops_rollouts_and_streamed_rebuilds(oscillator_model, tmp_path):
    """A Ctrl-C that landed in a C library's callback (kept by the CLI's ``sys.unraisablehook``) is raised by
    the next chunk of a rollout and of a streamed rebuild, not lost until the command's end."""
    from trajsr import get_baseline, upsample
    from trajsr.errors import raise_if_stopped, stops_kept

    class FreedByACallback:
        def __del__(self):
            raise KeyboardInterrupt

    prop = Propagator.load(oscillator_model)
    start = harmonic_trajectory(0.008, np.array([1.0, 0.0, 0.0]), n=2)
    save(harmonic_trajectory(0.008, np.array([1.0, 0.0, 0.0]), n=200), tmp_path / "c.h5")
    for run in (lambda: prop.run(start.positions[0], start.velocities[0], 30),
                lambda: upsample(tmp_path / "c.h5", get_baseline("spline"), tmp_path / "f.h5", factor=2,
                                 progress=False)):
        with stops_kept():  # as the CLI's main runs a command
            FreedByACallback()
            with pytest.raises(KeyboardInterrupt):
                run()
            raise_if_stopped()  # raised once
    assert not (tmp_path / "f.h5").exists()


def test_ase_integrator_advances_many_strides_per_call_between_observers(oscillator_model):
    prop = Propagator.load(oscillator_model)
    start = harmonic_trajectory(0.008, np.array([0.0, 1.0, 0.0]), n=2)
    atoms = ase.Atoms("H2", positions=start.positions[0] * 10)
    atoms.set_velocities(start.velocities[0] / 100 / units.fs)
    seen, calls = [], []
    step = prop.step
    prop.step = lambda *a, **k: calls.append(a[2]) or step(*a, **k)
    dyn = LearnedDynamics(atoms, prop)
    dyn.attach(lambda: seen.append(atoms.get_positions().copy()), interval=10)
    dyn.run(40)
    assert calls == [10, 10, 10, 10]  # one compiled call per observer interval, not one per stride
    reference = prop.run(start.positions[0], start.velocities[0], 40)
    np.testing.assert_allclose(np.array(seen) / 10, reference.positions[::10], atol=1e-6)


def test_cli_console_has_no_tensorflow_noise(tmp_path):
    """No absl/CUDA/CPU-feature lines: neither for --help nor for a command that loads TensorFlow and fails."""
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    save(harmonic_trajectory(0.008, np.ones(3), n=3), tmp_path / "start.h5")
    from .conftest import ROOT
    help_ = subprocess.run([sys.executable, "-m", "trajsr.cli", "--help"], capture_output=True, text=True, env=env)
    assert help_.returncode == 0 and help_.stderr == ""
    proc = subprocess.run([sys.executable, "-m", "trajsr.cli", "propagate", "--model",
                           str(ROOT / "models" / "ethanol-gfn2-f10.keras"), "--start", str(tmp_path / "start.h5"),
                           "--steps", "2", "-o", str(tmp_path / "out.h5")], capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [proc.stderr.strip()], proc.stderr
    assert "super-resolution model" in proc.stderr


def test_learned_spectrum_peaks_at_the_exact_frequency(oscillator_model):
    """NVE with the learned step: the VDOS peak sits at the spring's frequency √(k/μ)/2πc within a bin."""
    from trajsr.observables import vdos
    from trajsr.units import INVERSE_CM_PER_THZ
    prop = Propagator.load(oscillator_model)
    exact = np.sqrt(K_BOND / (MASS / 2)) / (2 * np.pi) * INVERSE_CM_PER_THZ  # ≈ 1500 cm⁻¹
    start = harmonic_trajectory(0.008, np.array([1.0, 1.0, 1.0]), n=2)
    traj = prop.run(start.positions[0], start.velocities[0], 3000)  # 6 ps
    resolution = 40.0
    wavenumber, power = vdos(traj, resolution=resolution)
    assert abs(wavenumber[np.argmax(power)] - exact) <= resolution
    wavenumber, power = vdos(harmonic_trajectory(0.008, np.ones(3), n=6000), resolution=resolution)
    assert abs(wavenumber[np.argmax(power)] - exact) <= resolution  # the reference MD, same measure


def test_shooting_hits_both_ends_of_a_gap(oscillator_model):
    """The learned dynamics joins each gap's kept frames and passes close to the true path between."""
    from trajsr import get_baseline
    from trajsr.interpolation.shooting import ShootingInterpolator
    truth = harmonic_trajectory(0.008, np.array([0.3, 1.0, 0.2]), n=161)
    coarse = truth.stride(8).replace(velocities=None)  # 4 fs gaps, the spring's period is 22 fs
    shooting = ShootingInterpolator.load(oscillator_model)
    kept = coarse.positions
    xs, vs, kept_v = shooting.shoot_through(kept, np.gradient(kept, coarse.dt, axis=0), coarse.dt, 8)
    assert xs.shape == (20, 8, 2, 3)
    np.testing.assert_allclose(xs[:, -1], kept[1:], atol=3e-5)   # every gap lands on its kept frame ...
    np.testing.assert_allclose(vs[:-1, -1], kept_v[1:-1], atol=0.05 * np.abs(kept_v).max())  # ... in stride
    rebuilt = shooting.interpolate(coarse, 8)
    linear = get_baseline("linear").interpolate(coarse, 8)
    error = np.abs(rebuilt.positions - truth.positions).mean()
    assert error < 0.2 * np.abs(linear.positions - truth.positions).mean()
    # with the file's velocities each gap is bridged from both ends: exact at the kept frames, and the
    # learned motion inside the gap beats cubic Hermite on the same data
    kept_v = truth.velocities[::8]
    xs, vs = shooting.bridge(kept, kept_v, coarse.dt, 8)
    np.testing.assert_allclose(xs[::8], kept, atol=1e-6)
    np.testing.assert_allclose(vs[::8], kept_v, atol=1e-6 * np.abs(kept_v).max())
    hermite = get_baseline("hermite").interpolate(truth.stride(8), 8)
    bridged = shooting.interpolate(truth.stride(8), 8)
    np.testing.assert_allclose(bridged.positions, xs)
    assert np.abs(xs - truth.positions).mean() < 0.5 * np.abs(hermite.positions - truth.positions).mean()
    with pytest.raises(TrajsrError, match="Hamiltonian"):
        ShootingInterpolator(type("Step", (), {"family": "lstm"})())
    with pytest.raises(TrajsrError, match="ShootingInterpolator.load"):  # a path, not a loaded step
        ShootingInterpolator(str(oscillator_model))
    for bad in (dict(batch=0), dict(iterations=-1), dict(iterations=2.5)):
        with pytest.raises(TrajsrError, match=f"{next(iter(bad))} must be an integer"):
            ShootingInterpolator(shooting.step, **bad)
    for bad in (dict(tolerance=0), dict(refresh=-1.0), dict(tolerance=float("nan")), dict(refresh="2")):
        with pytest.raises(TrajsrError, match=f"{next(iter(bad))} must be a positive velocity in nm/ps"):
            ShootingInterpolator(shooting.step, **bad)


def test_shooting_jacobian_matches_finite_differences(oscillator_model):
    """The tangent-linear Jacobian of a gap's end state against its start velocity is the path's own; the
    one shooting steers with (at twice the step) is close to it."""
    import tensorflow as tf
    from trajsr.interpolation.shooting import ShootingInterpolator
    shooting = ShootingInterpolator.load(oscillator_model)
    truth = harmonic_trajectory(0.008, np.array([0.3, 1.0, 0.2]), n=9)
    x, v = truth.positions[:3].astype(np.float32), truth.velocities[:3].astype(np.float32)
    path, steering, sub = shooting._solver(0.004, 8)
    n_steps = 8 * sub
    end, jac = (a.numpy() for a in shooting.step.linearize(tf.constant(x), tf.constant(v), 0.004 / n_steps, n_steps))
    coarse = shooting._batched(steering, x, v)[1]
    assert 0 < np.abs(coarse - jac).max() < 0.05 * np.abs(jac).max()
    eps = 0.05  # nm/ps; the spring is nearly linear, so a large step keeps float32 round-off small
    for column in range(6):
        dv = np.zeros_like(v).reshape(3, 6)
        dv[:, column] = eps
        (xp, vp), (xm, vm) = (shooting._batched(path, x, v + sign * dv.reshape(v.shape)) for sign in (1, -1))
        numeric = np.concatenate([(xp - xm)[:, -1].reshape(3, 6), (vp - vm)[:, -1].reshape(3, 6)], 1) / (2 * eps)
        np.testing.assert_allclose(jac[:, :, column], numeric, atol=2e-3 * np.abs(jac).max())
    np.testing.assert_allclose(end[:, :6], shooting._batched(path, x, v)[0][:, -1].reshape(3, 6), atol=1e-6)


def test_shooting_bridges_on_the_paths_multiple_shooting_ended_on():
    """From positions only, each gap's forward half is the path multiple shooting ended on (not run again):
    the same fine trajectory as bridging the velocities it found from scratch, at every frame; and the two
    solves that find them, run side by side, give what each gives alone."""
    from trajsr.interpolation.shooting import ShootingInterpolator
    from .test_wrong_answers import PROPAGATOR
    shooting = ShootingInterpolator.load(PROPAGATOR)
    coarse = load(Path(__file__).parents[1] / "datasets" / "ethanol-gfn2-seed0.h5").stride(10)[:80]
    x, dt = coarse.positions, coarse.dt
    fine_x, fine_v = shooting.fill(x, None, dt, 10)
    v = shooting.shoot_positions(x, dt, 10)[2]
    again_x, again_v = shooting.bridge(x, v, dt, 10)
    assert fine_x.shape == again_x.shape == (791, 9, 3)
    np.testing.assert_allclose(fine_x, again_x, rtol=0, atol=1e-6)  # nm
    np.testing.assert_allclose(fine_v, again_v, rtol=0, atol=1e-4)  # nm/ps
    assert np.abs(fine_x[10::10] - x[1:]).max() < 1e-6  # and it still passes through the kept frames
    # the first frames' backward solve runs beside the whole one (threads): each as it is run alone
    from scipy.interpolate import CubicSpline
    guess = CubicSpline(np.arange(len(x)) * dt, x, axis=0)(np.arange(len(x)) * dt, 1)
    head, keep = 6 * shooting.context, 3 * shooting.context
    backward = shooting.shoot_through(x[:head][::-1], -guess[:head][::-1], dt, 10)[2]
    np.testing.assert_array_equal(v[:keep], -backward[::-1][:keep])
    np.testing.assert_array_equal(v[keep:], shooting.shoot_through(x, guess, dt, 10)[2][keep:])


def test_learned_hessian_written_out_matches_reverse_mode():
    """The chain rule written out (HamiltonianStep.acceleration_and_jacobian) against 3N reverse passes
    through the shipped ethanol propagator's potential, at frames of the shipped trajectory."""
    import tensorflow as tf
    from trajsr.interpolation.shooting import ShootingInterpolator
    from .test_wrong_answers import PROPAGATOR
    step = ShootingInterpolator.load(PROPAGATOR).step
    q = tf.constant(load(Path(__file__).parents[1] / "datasets" / "ethanol-gfn2-seed0.h5").positions[::500], tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(q)
        a = step.acceleration(q)
        flat = tf.reshape(a, (len(q), -1))
    reverse = tape.batch_jacobian(flat, q).numpy().reshape(len(q), 27, 27)
    a_written, jacobian = step.acceleration_and_jacobian(q)
    np.testing.assert_allclose(a_written, a, atol=1e-5 * np.abs(a).max())
    np.testing.assert_allclose(jacobian, reverse, atol=1e-5 * np.abs(reverse).max())
    assert np.abs(reverse).max() > 0


def test_multiple_shooting_step_is_the_least_squares_step():
    """The banded normal equations give the dense least-squares Gauss–Newton step."""
    from trajsr.interpolation.multiple_shooting import ChainNormalEquations
    rng = np.random.default_rng(0)
    gaps, n3, weight, tau = 5, 4, 3.0, 0.005
    jx, jv = rng.normal(size=(gaps, n3, n3)) * tau, np.eye(n3) + rng.normal(size=(gaps, n3, n3)) * 0.1
    miss, jump = rng.normal(size=(gaps, n3)), rng.normal(size=(gaps, n3))
    a = np.zeros((2 * gaps * n3, (gaps + 1) * n3))
    for g in range(gaps):
        rows = slice(2 * g * n3, (2 * g + 1) * n3), slice((2 * g + 1) * n3, (2 * g + 2) * n3)
        a[rows[0], g * n3:(g + 1) * n3] = weight * jx[g]
        a[rows[1], g * n3:(g + 1) * n3] = tau * jv[g]
        a[rows[1], (g + 1) * n3:(g + 2) * n3] = -tau * np.eye(n3)
    dense = np.linalg.lstsq(a, np.stack([miss, jump], 1).ravel(), rcond=None)[0]
    banded = ChainNormalEquations(jx, jv, weight, tau, damping=0.0).step(miss, jump)
    np.testing.assert_allclose(banded.ravel(), dense, rtol=1e-6, atol=1e-9 * np.abs(dense).max())


def test_broyden_update_maps_each_gaps_step_onto_its_change():
    """Each gap's corrected Jacobian reproduces the change its own step caused (the secant condition), is
    unchanged across that step, and a gap that did not move keeps its Jacobian."""
    from trajsr.interpolation.multiple_shooting import broyden_update
    rng = np.random.default_rng(1)
    jacobian, truth = rng.normal(size=(3, 6, 3)), rng.normal(size=(3, 6, 3))
    step = rng.normal(size=(3, 3))
    step[2] = 0.0
    change = np.einsum("gij,gj->gi", truth, step)
    updated = broyden_update(jacobian, step, change)
    np.testing.assert_allclose(np.einsum("gij,gj->gi", updated[:2], step[:2]), change[:2], atol=1e-12)
    across = np.cross(step[0], rng.normal(size=3))  # orthogonal to gap 0's step: the old map there
    np.testing.assert_allclose(updated[0] @ across, jacobian[0] @ across, atol=1e-12)
    np.testing.assert_array_equal(updated[2], jacobian[2])
    assert not np.allclose(updated[:2], jacobian[:2])


def test_forces_read_off_velocity_verlet_frames_are_the_springs():
    from trajsr.propagation.forces import verlet_forces
    traj = harmonic_trajectory(0.01, np.array([0.0, 0.0, 1.0]), n=50)
    x, f = verlet_forces(traj, [MASS, MASS])
    d = x[:, 1] - x[:, 0]
    r = np.linalg.norm(d, axis=-1, keepdims=True)
    exact = -K_BOND * (r - R0) * d / r
    np.testing.assert_allclose(f[:, 1], exact, atol=1e-6 * K_BOND * 0.01)
    with pytest.raises(TrajsrError, match="velocity Verlet"):
        verlet_forces(traj.stride(2), [MASS, MASS])


def test_guard_lets_a_proton_transfer_pass_but_stops_a_hydrogen_that_flies_off():
    """O–H···O: the hydrogen moving to the other oxygen is chemistry (malonaldehyde's enol), not a blow-up."""
    from trajsr.propagation.guard import Guard
    start = np.array([[0.0, 0, 0], [0.098, 0, 0], [0.28, 0, 0]])  # nm: O-H 0.98 Å, O···O 2.8 Å
    guard = Guard(["O", "H", "O"], np.array([16.0, 1.0, 16.0]), start, 300.0)
    v = np.zeros((1, 1, 3, 3))
    transferred = start.copy()
    transferred[1, 0] = 0.185  # 1.9 × the start length from O0, 0.95 Å from O2
    assert guard.check(transferred[None, None], v, 0, 5.0) == (1, None)
    in_flight = start.copy()
    in_flight[1, 0] = 0.185  # 1.85 Å from O0, 1.3 Å from O2 stretched to 3.15 Å: as GFN2-xTB at 700 K
    in_flight[2, 0] = 0.315
    assert guard.check(in_flight[None, None], v, 0, 5.0) == (1, None)
    flown = start.copy()
    flown[1] = [0.1, 0.25, 0.0]  # far from both oxygens
    index, message = guard.check(flown[None, None], v, 0, 5.0)
    assert index == 0 and "bond O0-H1" in message


def test_compiled_rollouts_are_kept_between_runs(tmp_path):
    """A second `trajsr propagate` loads the XLA program the first compiled (kept in
    $XDG_CACHE_HOME/trajsr/xla) and rolls out the same frames."""
    import os
    import subprocess
    import sys

    from trajsr import load
    from .conftest import ROOT

    def propagate(out, home, **settings):
        env = {k: v for k, v in os.environ.items() if k not in ("TF_XLA_FLAGS", "TRAJSR_XLA_CACHE")}
        env.update(XDG_CACHE_HOME=str(home), **settings)
        subprocess.run([sys.executable, "-m", "trajsr.cli", "propagate", "--model",
                        str(ROOT / "models" / "ethanol-gfn2-prop-f10.keras"), "--start",
                        str(ROOT / "datasets" / "ethanol-gfn2-seed0.h5"), "--steps", "1500", "-o", str(out)],
                       check=True, capture_output=True, env=env)  # 1500 strides: rolled out through XLA
        return load(out)

    first = propagate(tmp_path / "a.h5", tmp_path / "home")
    cache = tmp_path / "home" / "trajsr" / "xla"
    kept = sorted(p.name for p in cache.iterdir())
    assert kept and all(name.endswith(".pb") for name in kept)  # no temporary file left
    again = propagate(tmp_path / "b.h5", tmp_path / "home")
    assert sorted(p.name for p in cache.iterdir()) == kept  # loaded, not compiled anew
    np.testing.assert_array_equal(again.positions, first.positions)


def test_kept_programs_are_trimmed_least_recently_used_first(tmp_path, monkeypatch):
    """Every new model or setting adds compiled programs that nothing else removes: the folder is trimmed to
    TRAJSR_XLA_CACHE_MB, the least recently used (read or written) first, and nothing but TensorFlow's own
    entries is touched; a limit that is not a size is one error, from the CLI before the command starts."""
    import os
    import time

    from trajsr.console import keep_compiled_programs
    from .conftest import ROOT, run_cli
    folder, now = tmp_path / "xla", time.time()
    folder.mkdir()
    for day in range(5):  # 0.4 MB each, program 0 written 5 days ago ... program 4 one day ago
        program = folder / f"xla_compile_cache__{day}__0__XLA_CPU_JIT.pb"
        program.write_bytes(bytes(400_000))
        os.utime(program, (now - 86400 * (5 - day),) * 2)
    os.utime(folder / "xla_compile_cache__0__0__XLA_CPU_JIT.pb", (now, now - 86400 * 5))  # but read today
    (folder / "notes.txt").write_bytes(bytes(5_000_000))  # not TensorFlow's: left alone, whatever its size
    monkeypatch.delenv("TF_XLA_FLAGS", raising=False)
    monkeypatch.setenv("TRAJSR_XLA_CACHE", str(folder))
    monkeypatch.setenv("TRAJSR_XLA_CACHE_MB", "1")
    assert keep_compiled_programs() == folder
    assert sorted(p.name.split("__")[1] for p in folder.iterdir() if p.suffix == ".pb") == ["0", "4"]
    assert (folder / "notes.txt").stat().st_size == 5_000_000
    for bad in ("lots", "-1", "nan", "inf"):
        monkeypatch.setenv("TRAJSR_XLA_CACHE_MB", bad)
        fails(run_cli("temperature", ROOT / "datasets" / "ethanol-gfn2-seed0.h5", check=False),
              "TRAJSR_XLA_CACHE_MB", "MB", repr(bad))


def test_xla_cache_folder_is_chosen_or_left_alone(tmp_path, monkeypatch):
    """TRAJSR_XLA_CACHE="" keeps nothing; a user's own TF_XLA_FLAGS cache and an unwritable place are left as
    they are (nothing set, nothing made)."""
    import os

    from trajsr.console import keep_compiled_programs
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TF_XLA_FLAGS", "--tf_xla_auto_jit=0")
    monkeypatch.setenv("TRAJSR_XLA_CACHE", "")
    assert keep_compiled_programs() is None and os.environ["TF_XLA_FLAGS"] == "--tf_xla_auto_jit=0"
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("TRAJSR_XLA_CACHE", str(tmp_path / "file" / "xla"))  # below a file: cannot be made
    assert keep_compiled_programs() is None and os.environ["TF_XLA_FLAGS"] == "--tf_xla_auto_jit=0"
    monkeypatch.setenv("TRAJSR_XLA_CACHE", str(tmp_path / "my cache"))  # TF would split the flag there
    assert keep_compiled_programs() is None and not (tmp_path / "my cache").exists()
    monkeypatch.setenv("TRAJSR_XLA_CACHE", str(tmp_path / "mine"))
    assert keep_compiled_programs() == tmp_path / "mine"
    assert os.environ["TF_XLA_FLAGS"] == f"--tf_xla_auto_jit=0 --tf_xla_persistent_cache_directory={tmp_path / 'mine'}"
    monkeypatch.setenv("TRAJSR_XLA_CACHE", str(tmp_path / "other"))  # the user's own cache flag wins
    assert keep_compiled_programs() is None and not (tmp_path / "other").exists()
    assert not (tmp_path / "home").exists()
