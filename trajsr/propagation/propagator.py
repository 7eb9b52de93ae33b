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
from dataclasses import dataclass

import numpy as np

from ..errors import TrajsrError, raise_if_stopped
from ..geometry import center_of_mass
from ..physics import kinetic_energy, temperature
from ..trajectory import Trajectory
from ..units import FS_PER_PS
from .guard import Guard
from ..physics import potential_energies
from .rescale import calculator_from, rescale_to_kinetic
from .thermostats import THERMOSTATS, apply_thermostat, draws, vibrational_degrees_of_freedom


#: strides per compiled call: the rollout is compiled once per batch shape and called in a loop
CHUNK_STRIDES = 64
#: a start state hotter than this (K) is taken as velocities in the wrong unit (no trained model has seen it)
MAX_START_TEMPERATURE = 5000.0
#: rollouts of at least this many strides go through XLA: ~5x faster per stride, ~2 s more to compile
XLA_FROM_STRIDES = 1500


@dataclass(frozen=True)
class CompiledThermostat:
    """A thermostat applied inside the compiled rollout, every ``every`` strides over ``dt_fs`` (fs) each, at
    ``temperature`` (K); ``n_f``: the vibrational degrees of freedom Bussi rescales."""

    kind: str
    every: int
    temperature: float
    dt_fs: float
    tau_fs: float
    friction_per_fs: float
    n_f: int

    def update(self, v, x, masses, draw):
        from .thermostats import bussi_tf, langevin_tf
        if self.kind == "bussi":
            return bussi_tf(v, x, masses, self.temperature, self.dt_fs, self.tau_fs, self.n_f, draw)
        return langevin_tf(v, masses, self.temperature, self.dt_fs, self.friction_per_fs, draw)


class Propagator:
    """A learned propagator loaded from ``.keras`` (see :func:`trajsr.propagation.train.fit_propagator`)."""

    def __init__(self, step, jit_compile: bool = True):
        self.layer = step
        self.factor, self.dt_fs = step.factor, step.dt_fs
        self.elements = list(step.metadata.get("elements", []))
        self.masses = np.asarray(step.masses_list)
        self.family = step.family
        self.jit_compile = jit_compile
        self._graphs = {}
        #: how many times a rollout graph was traced (once per batch shape, length and compiler)
        self.traces = 0

    @classmethod
    def load(cls, path, jit_compile: bool = True) -> "Propagator":
        """Load a propagator ``.keras`` file (``safe_mode=True``); ``jit_compile`` runs rollouts through XLA."""
        from ..modelfile import load_model
        from .model import propagator_step
        model = load_model(path, expect="propagate")
        try:
            step = propagator_step(model)
        except ValueError:
            raise TrajsrError(f"{path}: not a propagator model (made with 'trajsr train --task propagate'?)") \
                from None
        return cls(step, jit_compile)

    @property
    def stride_fs(self) -> float:
        """Time advanced by one learned step, fs."""
        return self.factor * self.dt_fs

    # -- the graph: a fixed number of strides with exact COM motion, compiled once and looped ------------
    def _graph(self, length: int, xla: bool, thermostat: CompiledThermostat | None = None):
        """The compiled rollout of ``length`` strides: one per (length, compiler, thermostat), traced once per
        batch shape."""
        key = (length, xla, thermostat)
        if key not in self._graphs:
            import tensorflow as tf

            def advance(x, v, noise=None):
                self.traces += 1  # runs only while tracing
                return self._advance_graph(x, v, length, thermostat, noise)
            self._graphs[key] = tf.function(advance, jit_compile=xla)
        return self._graphs[key]

    def _advance_graph(self, x, v, length, thermostat=None, noise=None):
        import tensorflow as tf

        from ..geometry import center_of_mass_tf
        com = lambda a: center_of_mass_tf(a, self.masses.astype(np.float32))  # noqa: E731
        com_v = com(v)
        stride_ps = self.layer.stride_ps
        xs = tf.TensorArray(tf.float32, size=length)
        vs = tf.TensorArray(tf.float32, size=length)
        for i in tf.range(length):
            com_x = com(x)
            x_new, v_new = self.layer(x, v)
            # project: the centre of mass moves ballistically with its initial velocity
            x = x_new - com(x_new) + com_x + com_v * stride_ps
            v = v_new - com(v_new) + com_v
            if thermostat is not None:  # after every ``every``-th stride, with that update's random numbers
                j = (i + 1) // thermostat.every - 1
                v = tf.cond(tf.equal((i + 1) % thermostat.every, 0),
                            lambda: thermostat.update(v, x, self.masses, tf.gather(noise, j)), lambda: v)
            xs = xs.write(i, x)
            vs = vs.write(i, v)
        return xs.stack(), vs.stack()

    def uses_xla(self, n_strides: int) -> bool:
        """XLA for rollouts long enough to repay its compile time (several seconds on 2 cores)."""
        return self.jit_compile and n_strides >= XLA_FROM_STRIDES

    def step(self, positions, velocities, n: int = 1, xla: bool | None = None, pad: bool = False,
             thermostat: CompiledThermostat | None = None, noise=None):
        """Advance (B, N, 3) positions (nm) and velocities (nm/ps) by ``n`` strides; returns the
        (n, B, N, 3) states after each stride.

        The strides run through compiled graphs of ``CHUNK_STRIDES`` strides and, for the rest, of
        powers of two (each traced once per batch shape); ``pad`` instead rounds ``n`` up to whole
        chunks (so that any ``n`` reuses one graph). ``xla`` picks the compiler (default: by ``n``).
        With a ``thermostat``, the ``n`` strides (a multiple of its ``every``) are one graph that updates
        the velocities every ``every`` strides with the random numbers ``noise`` (:func:`.thermostats.draws`).
        """
        import tensorflow as tf
        _check_count(n, "n")
        xla = self.uses_xla(n) if xla is None else xla
        x0, v0 = np.asarray(positions, np.float64), np.asarray(velocities, np.float64)
        rest = n % CHUNK_STRIDES
        lengths = [CHUNK_STRIDES] * (n // CHUNK_STRIDES)
        if rest:
            lengths += [CHUNK_STRIDES] if pad else [1 << b for b in range(rest.bit_length()) if rest >> b & 1]
        args = ()
        if thermostat is not None:
            lengths, args = [n], (tf.constant(noise, tf.float32),)
        x, v, parts_x, parts_v = tf.constant(x0, tf.float32), tf.constant(v0, tf.float32), [], []
        for length in lengths:
            try:
                xs, vs = self._graph(length, xla, thermostat)(x, v, *args)
            except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError):
                if not xla:
                    raise
                xla, self.jit_compile = False, False  # no XLA kernel for some op here: the plain graph
                xs, vs = self._graph(length, False, thermostat)(x, v, *args)
            parts_x.append(xs)
            parts_v.append(vs)
            x, v = xs[-1], vs[-1]
        xs = np.concatenate([p.numpy() for p in parts_x])[:n].astype(np.float64)
        vs = np.concatenate([p.numpy() for p in parts_v])[:n].astype(np.float64)
        # the graph projects in float32; redo it in float64 so momentum is conserved to round-off
        com = lambda a: center_of_mass(a, self.masses)  # noqa: E731
        t = (np.arange(1, n + 1) * self.layer.stride_ps)[:, None, None, None]
        vs = vs - com(vs) + com(v0)[None]
        xs = xs - com(xs) + com(x0)[None] + com(v0)[None] * t
        return xs, vs

    # -- the run loop ------------------------------------------------------------------------------
    def run(self, positions, velocities, n_steps: int, *, thermostat: str | None = None,
            temperature_K: float | None = None, thermostat_time_fs: float = 100.0, friction_per_fs: float = 0.01,
            thermostat_every: int = 1, rescale_energy_with=None, guard: bool = True, bond_factor: float = 1.8,
            chunk: int = CHUNK_STRIDES, seed: int = 0, progress: bool = False, temperature: float | None = None):
        """Roll the learned dynamics forward ``n_steps`` strides.

        Parameters
        ----------
        positions, velocities : ndarray, shape (N, 3) or (replicas, N, 3)
            Start state in nm and nm/ps.
        n_steps : int
            Learned steps (strides of :attr:`stride_fs` fs).
        thermostat : {None, "bussi", "langevin"}
            NVT around the learned step at ``temperature_K``: Bussi stochastic velocity rescaling with
            time constant ``thermostat_time_fs`` (on the vibrations: the rigid rotation is kept, 3N − 6
            degrees of freedom), or Langevin with ``friction_per_fs``. A temperature without a
            thermostat asks for Bussi (as ``trajsr propagate --temperature`` does); neither: NVE.
        temperature_K : float, optional
            The thermostat's temperature (K); ``temperature`` is its earlier spelling.
        thermostat_every : int
            Strides between thermostat updates, each over that interval (GROMACS's ``nsttcouple``); keep
            the interval well below the thermostat's time constant. The updates run inside the compiled
            chunk of strides (their random numbers drawn from ``seed`` in NumPy), so NVT costs about what
            NVE does.
        rescale_energy_with : ase.calculators.calculator.Calculator or "gfn2", optional
            Rescale the internal momenta after each stride so that E_pot (this calculator) + E_kin
            stays at its start value. Costs one reference energy per stride (GFN2-xTB: about 20×
            slower than the learned step alone). NVE only: refused together with a thermostat.
        guard : bool
            Stop at the first non-finite value, bond beyond ``bond_factor`` × (or below 1/``bond_factor``
            ×) its start length (unless it is a hydrogen's and the hydrogen is that close to another heavy
            atom: a proton transfer), or temperature above 10× the start (or thermostat) temperature +
            1000 K. One replica failing stops all of them.

        Returns
        -------
        Trajectory or list of Trajectory
            ``n_steps + 1`` frames (fewer if the guard stopped it; ``info["guard"]`` says why), with
            velocities; one per replica for batched input.
        """
        from ..spelling import renamed
        temperature = renamed("temperature_K", temperature_K, "temperature", temperature)
        _check_count(n_steps, "n_steps")
        _check_count(chunk, "chunk")
        _check_count(thermostat_every, "thermostat_every")
        x = np.asarray(positions, np.float64)
        v = np.asarray(velocities, np.float64)
        if x.size == 0 or x.ndim not in (2, 3):
            raise TrajsrError(f"start positions must have shape (N, 3) or (replicas, N, 3), got {x.shape}")
        if temperature is not None:
            _check_positive(temperature, "temperature_K", "K")
        _check_positive(thermostat_time_fs, "thermostat_time_fs", "fs")
        _check_positive(friction_per_fs, "friction_per_fs", "1/fs")
        _check_positive(bond_factor, "bond_factor", "")
        if not bond_factor > 1:
            raise TrajsrError(f"bond_factor must be > 1, got {bond_factor}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise TrajsrError(f"seed must be a non-negative integer, got {seed!r}")
        if not (np.isfinite(x).all() and np.isfinite(v).all()):
            raise TrajsrError("the start positions or velocities are not finite (NaN or inf)")
        single = x.ndim == 2
        x, v = np.atleast_3d(x[None] if single else x), np.atleast_3d(v[None] if single else v)
        if x.shape != v.shape or x.shape[1:] != (len(self.masses), 3):
            raise TrajsrError(f"start state has shape {x.shape[1:]} / {v.shape[1:]}; the model is for "
                              f"{len(self.masses)} atoms, 3 coordinates")
        self.check_start(x, v)
        if thermostat is None and temperature is not None:  # a temperature asks for NVT: never a silent NVE
            thermostat = "bussi"
        if thermostat and temperature is None:
            raise TrajsrError("a thermostat needs a temperature (K)")
        if thermostat and thermostat not in THERMOSTATS:
            raise TrajsrError(f"unknown thermostat {thermostat!r}; choose {' or '.join(THERMOSTATS)}")
        if thermostat and rescale_energy_with is not None:
            raise TrajsrError("rescale_energy_with holds the total energy at its start value (NVE) and a thermostat "
                              "changes it (NVT): use one or the other")
        rng = np.random.default_rng(seed)
        every = thermostat_every if thermostat else 1
        compiled = None  # a thermostat runs inside the compiled chunk (energy rescaling needs Python per stride)
        if thermostat:
            compiled = CompiledThermostat(thermostat, every, float(temperature), every * self.stride_fs,
                                          float(thermostat_time_fs), float(friction_per_fs),
                                          vibrational_degrees_of_freedom(x[0], self.masses))
            if thermostat == "bussi":  # a replica without vibrations starts from Maxwell-Boltzmann ones (dt 0)
                v = apply_thermostat("bussi", v, self.masses, temperature, 0.0, positions=x, rng=rng)
        per_stride = rescale_energy_with is not None
        calc = target_energy = None
        if rescale_energy_with is not None:
            calc = calculator_from(rescale_energy_with)
            target_energy = potential_energies(calc, self.elements, x) + kinetic_energy(v, self.masses)
        watch = Guard(self.elements, self.masses, x[0], max(self.temperature(v).max(), temperature or 0.0),
                      bond_factor)
        frames_x, frames_v, message = [x[None]], [v[None]], None
        xla = self.uses_xla(n_steps * len(x)) and not per_stride
        from tqdm import tqdm
        bar = tqdm(total=n_steps, unit="step", disable=None if progress else True, desc="propagating")
        done = 0
        while done < n_steps:
            raise_if_stopped()  # a Ctrl-C a C library's callback swallowed (tblite, in --rescale-energy-with)
            remaining = n_steps - done
            if compiled is not None and remaining >= every:  # whole thermostat intervals, compiled
                k = min(every * max(1, chunk // every), remaining - remaining % every)
                xs, vs = self.step(x, v, k, xla=xla, thermostat=compiled,
                                   noise=draws(thermostat, rng, k // every, len(x), len(self.masses), compiled.n_f))
            else:
                k = min(every if per_stride or compiled else chunk, remaining)
                xs, vs = self.step(x, v, k, xla=xla, pad=not (per_stride or compiled))
                if compiled is not None:  # the last, shorter interval
                    vs[-1] = apply_thermostat(thermostat, vs[-1], self.masses, temperature, k * self.stride_fs,
                                              positions=xs[-1], tau_fs=thermostat_time_fs,
                                              friction_per_fs=friction_per_fs, rng=rng)
                if target_energy is not None:
                    vs[-1] = rescale_to_kinetic(vs[-1], self.masses, target_energy - potential_energies(
                        calc, self.elements, xs[-1]))
            if guard:
                bad, message = watch.check(xs, vs, done, self.stride_fs)
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
                                    ensemble=f"NVT, {thermostat} at {temperature:g} K" if thermostat else
                                    "NVE" + (", energy rescaled to the start's" if per_stride else ""),
                                    **({"guard": message} if message else {})),
                          source=f"propagator replica {r}") for r in range(xs.shape[1])]
        return out[0] if single else out

    def check_start(self, positions, velocities, bond_factor: float = 1.8) -> None:
        """One-line errors for start states (replicas, N, 3) the model cannot have been trained near (nm,
        nm/ps): a bond ``bond_factor`` × longer or shorter than in the model's reference geometry (positions
        in Å read as nm, another molecule, another atom order), or a start temperature above
        ``MAX_START_TEMPERATURE`` (velocities in another unit)."""
        reference = np.asarray(self.layer.reference_list)
        if self.elements:
            problem = Guard(self.elements, self.masses, reference, 0.0, bond_factor).describe_bonds(
                positions, label="in the model's training geometry")
            if problem:
                raise TrajsrError(f"start geometry unlike the model's molecule: {problem} "
                                  "(positions in Å where nm are expected? another atom order?)")
        start = float(self.temperature(velocities).max())
        if start > MAX_START_TEMPERATURE:
            raise TrajsrError(f"start temperature {start:.0f} K (3N-3 degrees of freedom) is above "
                              f"{MAX_START_TEMPERATURE:g} K: velocities in another unit? (nm/ps expected; Å/fs "
                              "read as nm/ps is 100x)")

    def temperature(self, v) -> np.ndarray:
        """Instantaneous temperature (K) of each replica (B, N, 3) nm/ps, 3N − 3 degrees of freedom."""
        return temperature(v, self.masses)


def _check_positive(value, name, unit):
    """A positive, finite number (not a string, not a bool), else one clear error naming the unit."""
    if isinstance(value, (bool, str)) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not (np.isfinite(value) and value > 0):
        raise TrajsrError(f"{name} must be a positive, finite number{f' ({unit})' if unit else ''}, got {value!r}")


def _check_count(value, name):
    """A positive integer count, else one clear error (2.5 steps or 0 chunks are refused, not rounded)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise TrajsrError(f"{name} must be a positive integer, got {value!r}")
