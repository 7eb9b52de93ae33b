"""``Propagator``: a trained learned step used as a surrogate integrator with long time steps.

>>> prop = Propagator.load("models/ethanol-gfn2-prop-f10.keras")
>>> traj = prop.run(positions, velocities, n_steps=1000)      # nm, nm/ps; one frame per stride

Around the learned step: centre-of-mass momentum is projected back exactly after every stride;
optionally the momenta are rescaled so the total energy of an ASE calculator stays at its start value
(FlashMD's approach), and a Bussi or Langevin thermostat turns it into NVT. A guard stops a rollout
that blows up (non-finite values, a bond stretched or squashed past ``bond_factor``, a runaway
temperature) and keeps the frames before it.
"""
from __future__ import annotations

import warnings

import numpy as np

from .errors import TrajsrError
from .trajectory import Trajectory
from .units import ANGSTROM_PER_NM, FS_PER_PS, KJ_PER_MOL_PER_EV

#: Boltzmann constant in kJ/mol/K
KB = 0.0083144626


class Propagator:
    """A learned propagator loaded from ``.keras`` (see :func:`trajsr.train_propagator.fit_propagator`)."""

    def __init__(self, step, jit_compile: bool = True):
        import tensorflow as tf
        self.layer = step
        self.factor, self.dt_fs = step.factor, step.dt_fs
        self.elements = list(step.metadata.get("elements", []))
        self.masses = np.asarray(step.masses_list)
        self.family = step.family
        # XLA fuses the many small ops of a rollout: about 3.5x faster on CPU for ethanol
        self._advance = tf.function(self._advance_graph, reduce_retracing=True, jit_compile=jit_compile)
        self._plain = tf.function(self._advance_graph, reduce_retracing=True)

    @classmethod
    def load(cls, path, jit_compile: bool = True) -> "Propagator":
        """Load a propagator ``.keras`` file (``safe_mode=True``); ``jit_compile`` runs rollouts through XLA."""
        from . import stepper  # noqa: F401  (registers the layers)
        from .learned import load_model
        model = load_model(path)
        try:
            step = model.get_layer("unroll").step
        except ValueError:
            raise TrajsrError(f"{path}: not a propagator model (made with --task propagate?)") from None
        return cls(step, jit_compile)

    @property
    def stride_fs(self) -> float:
        """Time advanced by one learned step, fs."""
        return self.factor * self.dt_fs

    # -- the graph: k strides with exact COM motion ---------------------------------------------
    def _advance_graph(self, x, v, k):
        import tensorflow as tf
        w = tf.constant(self.masses / self.masses.sum(), tf.float32)
        com_v = tf.einsum("bai,a->bi", v, w)[:, None]
        tau = self.layer.tau
        xs = tf.TensorArray(tf.float32, size=k)
        vs = tf.TensorArray(tf.float32, size=k)
        for i in tf.range(k):
            com_x = tf.einsum("bai,a->bi", x, w)[:, None]
            x_new, v_new = self.layer(x, v)
            # project: the centre of mass moves ballistically with its initial velocity
            x = x_new - tf.einsum("bai,a->bi", x_new, w)[:, None] + com_x + com_v * tau
            v = v_new - tf.einsum("bai,a->bi", v_new, w)[:, None] + com_v
            xs = xs.write(i, x)
            vs = vs.write(i, v)
        return xs.stack(), vs.stack()

    def step(self, positions, velocities, n: int = 1):
        """Advance (B, N, 3) positions (nm) and velocities (nm/ps) by ``n`` strides; returns the
        (n, B, N, 3) states after each stride."""
        import tensorflow as tf
        x0, v0 = np.asarray(positions, np.float64), np.asarray(velocities, np.float64)
        args = (tf.constant(x0, tf.float32), tf.constant(v0, tf.float32), tf.constant(int(n)))
        try:
            xs, vs = self._advance(*args)
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError):
            self._advance = self._plain  # no XLA kernel for some op here: run the plain graph
            xs, vs = self._advance(*args)
        xs, vs = xs.numpy().astype(np.float64), vs.numpy().astype(np.float64)
        # the graph projects in float32; redo it in float64 so momentum is conserved to round-off
        w = self.masses / self.masses.sum()
        com = lambda a: np.einsum("...ai,a->...i", a, w)[..., None, :]  # noqa: E731
        t = (np.arange(1, n + 1) * self.layer.tau)[:, None, None, None]
        vs = vs - com(vs) + com(v0)[None]
        xs = xs - com(xs) + com(x0)[None] + com(v0)[None] * t
        return xs, vs

    # -- the run loop ------------------------------------------------------------------------------
    def run(self, positions, velocities, n_steps: int, *, thermostat: str | None = None,
            temperature: float | None = None, thermostat_time_fs: float = 100.0, friction_per_fs: float = 0.01,
            rescale_energy_with=None, guard: bool = True, bond_factor: float = 1.8, chunk: int = 50,
            seed: int = 0, progress: bool = False):
        """Roll the learned dynamics forward ``n_steps`` strides.

        Parameters
        ----------
        positions, velocities : ndarray, shape (N, 3) or (replicas, N, 3)
            Start state in nm and nm/ps.
        n_steps : int
            Learned steps (strides of :attr:`stride_fs` fs).
        thermostat : {None, "bussi", "langevin"}
            NVT around the learned step at ``temperature`` (K): Bussi stochastic velocity rescaling with
            time constant ``thermostat_time_fs``, or Langevin with ``friction_per_fs``.
        rescale_energy_with : ase.calculators.calculator.Calculator, optional
            Rescale the internal momenta after each stride so that E_pot (this calculator) + E_kin
            stays at its start value.
        guard : bool
            Stop at the first non-finite value, bond beyond ``bond_factor`` × (or below 1/``bond_factor``
            ×) its start length, or temperature above 10× the start (or thermostat) temperature + 1000 K.
            One replica failing stops all of them.

        Returns
        -------
        Trajectory or list of Trajectory
            ``n_steps + 1`` frames (fewer if the guard stopped it; ``info["guard"]`` says why), with
            velocities; one per replica for batched input.
        """
        x = np.asarray(positions, np.float64)
        v = np.asarray(velocities, np.float64)
        single = x.ndim == 2
        x, v = np.atleast_3d(x[None] if single else x), np.atleast_3d(v[None] if single else v)
        if x.shape != v.shape or x.shape[1:] != (len(self.masses), 3):
            raise TrajsrError(f"start state has shape {x.shape[1:]} / {v.shape[1:]}; the model is for "
                              f"{len(self.masses)} atoms, 3 coordinates")
        if thermostat and temperature is None:
            raise TrajsrError("a thermostat needs a temperature (K)")
        rng = np.random.default_rng(seed)
        per_stride = thermostat is not None or rescale_energy_with is not None
        target_energy = None
        if rescale_energy_with is not None:
            target_energy = self._potential(rescale_energy_with, x) + self._kinetic(v)
        bonds, lengths = _bonds(self.elements, x[0])
        t0_temp = max(self.temperature(v).max(), temperature or 0.0)
        frames_x, frames_v, message = [x[None]], [v[None]], None
        from tqdm import tqdm
        bar = tqdm(total=n_steps, unit="step", disable=not progress, desc="propagating")
        done = 0
        while done < n_steps:
            k = 1 if per_stride else min(chunk, n_steps - done)
            xs, vs = self.step(x, v, k)
            if per_stride:
                if thermostat:
                    vs[-1] = self._thermostat(thermostat, vs[-1], temperature, thermostat_time_fs,
                                              friction_per_fs, rng)
                if target_energy is not None:
                    vs[-1] = self._rescale(vs[-1], target_energy - self._potential(rescale_energy_with, xs[-1]))
            if guard:
                bad, message = self._check(xs, vs, bonds, lengths, t0_temp, done, bond_factor)
                if message:
                    frames_x.append(xs[:bad])
                    frames_v.append(vs[:bad])
                    bar.update(bad)
                    break
            frames_x.append(xs)
            frames_v.append(vs)
            x, v = xs[-1], vs[-1]
            done += k
            bar.update(k)
        bar.close()
        if message:
            warnings.warn(message, stacklevel=2)
        xs, vs = np.concatenate(frames_x), np.concatenate(frames_v)
        time = np.arange(len(xs)) * self.stride_fs / FS_PER_PS
        out = [Trajectory(positions=xs[:, r], velocities=vs[:, r], time=time, elements=self.elements,
                          info=dict(method=f"trajsr {self.family} propagator, {self.stride_fs:g} fs steps",
                                    **({"guard": message} if message else {})),
                          source=f"propagator replica {r}") for r in range(xs.shape[1])]
        return out[0] if single else out

    # -- helpers -----------------------------------------------------------------------------------
    def _kinetic(self, v):
        return 0.5 * np.einsum("a,bai->b", self.masses, v * v)

    def temperature(self, v) -> np.ndarray:
        """Instantaneous temperature (K) of each replica, 3N − 3 degrees of freedom."""
        internal = v - np.einsum("bai,a->bi", v, self.masses / self.masses.sum())[:, None]
        return 2 * self._kinetic(internal) / (KB * (3 * len(self.masses) - 3))

    def _potential(self, calc, x):
        from ase import Atoms
        energies = []
        for frame in np.atleast_3d(x):
            atoms = Atoms(self.elements, positions=frame * ANGSTROM_PER_NM)
            atoms.calc = calc
            energies.append(atoms.get_potential_energy() * KJ_PER_MOL_PER_EV)
        return np.array(energies)

    def _split(self, v):
        com = np.einsum("bai,a->bi", v, self.masses / self.masses.sum())[:, None]
        return v - com, com

    def _rescale(self, v, kinetic_target):
        internal, com = self._split(v)
        k_com, k_int = self._kinetic(np.broadcast_to(com, v.shape)), self._kinetic(internal)
        want = kinetic_target - k_com
        scale = np.where((want > 0) & (k_int > 0), np.sqrt(np.maximum(want, 0) / np.maximum(k_int, 1e-12)), 1.0)
        return internal * scale[:, None, None] + com

    def _thermostat(self, kind, v, temperature, tau_fs, friction_per_fs, rng):
        internal, com = self._split(v)
        dt = self.stride_fs
        if kind == "langevin":
            c = np.exp(-friction_per_fs * dt)
            sigma = np.sqrt(KB * temperature / self.masses)[None, :, None]
            noise = rng.normal(size=v.shape) * sigma
            noise -= np.einsum("bai,a->bi", noise, self.masses / self.masses.sum())[:, None]
            return c * internal + np.sqrt(1 - c * c) * noise + com
        if kind != "bussi":
            raise TrajsrError(f"unknown thermostat {kind!r}; choose bussi or langevin")
        n_f = 3 * len(self.masses) - 3
        k, k_target = self._kinetic(internal), 0.5 * n_f * KB * temperature
        frozen = k < 1e-12
        if frozen.any():  # nothing to rescale: start those replicas from Maxwell-Boltzmann velocities
            draw = rng.normal(size=v[frozen].shape) * np.sqrt(KB * temperature / self.masses)[None, :, None]
            draw -= np.einsum("bai,a->bi", draw, self.masses / self.masses.sum())[:, None]
            internal[frozen] = draw
            k = self._kinetic(internal)
        c = np.exp(-dt / tau_fs)
        r1 = rng.normal(size=len(v))
        rest = rng.chisquare(n_f - 1, size=len(v))
        alpha2 = c + k_target / (n_f * k) * (1 - c) * (r1 ** 2 + rest) + 2 * r1 * np.sqrt(c * k_target / (n_f * k)
                                                                                            * (1 - c))
        return internal * np.sqrt(alpha2)[:, None, None] + com

    def _check(self, xs, vs, bonds, lengths, t0_temp, done, bond_factor):
        for i in range(len(xs)):
            when = f"at step {done + i + 1} (t = {(done + i + 1) * self.stride_fs:g} fs)"
            if not (np.isfinite(xs[i]).all() and np.isfinite(vs[i]).all()):
                return i, f"rollout stopped {when}: non-finite positions or velocities"
            if len(bonds):
                r = np.linalg.norm(xs[i][:, bonds[:, 0]] - xs[i][:, bonds[:, 1]], axis=-1) / lengths
                if (r > bond_factor).any() or (r < 1 / bond_factor).any():
                    b = np.unravel_index(np.argmax(np.abs(np.log(r))), r.shape)[1]
                    a, c = bonds[b]
                    length = np.linalg.norm(xs[i][:, a] - xs[i][:, c], axis=-1).max() * ANGSTROM_PER_NM
                    return i, (f"rollout stopped {when}: bond {self.elements[a]}{a}-{self.elements[c]}{c} at "
                               f"{length:.2f} Å, start {lengths[b] * ANGSTROM_PER_NM:.2f} Å")
            temp = self.temperature(vs[i]).max()
            if temp > 10 * t0_temp + 1000:
                return i, f"rollout stopped {when}: temperature ran away to {temp:.0f} K"
        return len(xs), None


def _bonds(elements, positions):
    """Bonded pairs (covalent radii on the start geometry) and their start lengths (nm)."""
    from .metrics import bonds_of
    bonds = bonds_of(Trajectory(positions=positions, elements=elements))
    lengths = np.linalg.norm(positions[bonds[:, 0]] - positions[bonds[:, 1]], axis=-1) if len(bonds) else []
    return bonds, np.asarray(lengths)
