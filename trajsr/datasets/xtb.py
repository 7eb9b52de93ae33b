"""Reference trajectories from GFN2-xTB or GFN1-xTB (tblite) through ASE.

Recipe: Maxwell–Boltzmann velocities at T, Langevin at T (friction 0.01/fs) to equilibrate, then NVE
velocity Verlet; every NVE step is saved with velocities and potential energy. With
``thermostat="bussi"`` the production run is NVT under the Bussi–Donadio–Parrinello thermostat instead
(the converged reference a propagator's spectrum and temperatures are judged against): the molecule's
rotation is stopped first and the thermostat rescales its vibrations (3N − 6 degrees of freedom), as
``trajsr propagate --thermostat bussi`` does; ``save_every`` keeps every n-th step.
"""
from __future__ import annotations

import os
import warnings

import numpy as np

from ..errors import TrajsrError, raise_if_stopped
from ..trajectory import Trajectory
from ..units import KJ_PER_MOL_PER_EV, NM_PER_ANGSTROM, NM_PER_PS_PER_ANGSTROM_PER_FS, PS_PER_FS


#: the levels of theory tblite offers, by the name trajsr's options use
XTB_METHODS = {"gfn2": "GFN2-xTB", "gfn1": "GFN1-xTB"}


def xtb_calculator(method: str = "gfn2", charge: int = 0, multiplicity: int = 1):
    """A GFN2-xTB or GFN1-xTB (``method``) ASE calculator (tblite), quiet; ``multiplicity`` 2S + 1."""
    from tblite.ase import TBLite
    if method not in XTB_METHODS:
        raise TrajsrError(f"unknown xTB method {method!r}; choose {' or '.join(XTB_METHODS)}")
    return TBLite(method=XTB_METHODS[method], verbosity=0, charge=charge, multiplicity=multiplicity)


def gfn2_calculator(charge: int = 0, multiplicity: int = 1):
    """A GFN2-xTB ASE calculator (tblite), quiet; ``multiplicity`` 2S + 1."""
    return xtb_calculator("gfn2", charge, multiplicity)


def run_gfn2_md(atoms, *, steps: int, seed: int, temperature: float = 500.0, dt_fs: float = 0.5,
                equilibration_fs: float = 1000.0, friction_per_fs: float = 0.01, progress: bool = True,
                name: str = "gfn2", charge: int = 0, multiplicity: int = 1, thermostat: str | None = None,
                tau_fs: float = 100.0, save_every: int = 1, method: str = "gfn2") -> Trajectory:
    """Run GFN2-xTB (or ``method="gfn1"``: GFN1-xTB) MD with the recipe in the module docstring.

    Parameters
    ----------
    atoms : ase.Atoms
        Starting geometry (Å), no calculator needed.
    steps : int
        NVE steps to save (the trajectory has ``steps + 1`` frames).
    seed : int
        Seeds the Maxwell–Boltzmann velocities and the Langevin noise.
    temperature : float
        Temperature in K for the initial velocities and the Langevin thermostat.
    dt_fs : float
        Time step in fs.
    equilibration_fs : float
        Length of the Langevin equilibration in fs.
    charge, multiplicity : int
        Total charge (e) and spin multiplicity 2S + 1 for GFN2-xTB.
    thermostat : {None, "bussi", "langevin"}
        None: NVE production run; ``"bussi"``: NVT with the Bussi thermostat (time constant ``tau_fs``, fs);
        ``"langevin"``: NVT with ASE's Langevin at friction 1/``tau_fs``.
    save_every : int
        Keep every ``save_every``-th step (``steps`` must be a multiple of it).

    Returns
    -------
    Trajectory
        Positions in nm, velocities in nm/ps, time in ps, potential energy in kJ/mol, forces in kJ/mol/nm.
    """
    from ase import units
    from ase.calculators.calculator import CalculationFailed
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary, ZeroRotation
    from ase.md.verlet import VelocityVerlet
    from tqdm import tqdm

    if thermostat not in (None, "bussi", "langevin"):
        raise TrajsrError(f"{name}: unknown thermostat {thermostat!r}; xTB runs take 'bussi' or 'langevin' (or none: "
                          "NVE)")
    if save_every < 1 or steps % save_every:
        raise TrajsrError(f"{name}: steps ({steps}) must be a positive multiple of save_every ({save_every})")

    atoms = atoms.copy()
    atoms.calc = xtb_calculator(method, charge, multiplicity)
    level = XTB_METHODS[method]
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():  # ASE suggests thermalize_momenta; this call keeps every seed's data as made
        warnings.simplefilter("ignore", DeprecationWarning)
        MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
    Stationary(atoms)
    ZeroRotation(atoms)
    n_eq = int(round(equilibration_fs / dt_fs))
    bar = tqdm(total=n_eq + steps, desc=f"{name} seed {seed}", unit="step", disable=None if progress else True,
               mininterval=2.0)
    if n_eq:
        langevin = Langevin(atoms, dt_fs * units.fs, temperature_K=temperature,
                            friction=friction_per_fs / units.fs, rng=rng, fixcm=False)
        langevin.attach(lambda: bar.update(1), interval=1)
        langevin.attach(raise_if_stopped, interval=1)
        try:
            langevin.run(n_eq)
        except CalculationFailed as err:
            raise TrajsrError(f"{name} seed {seed}: {level} failed during equilibration ({err})") from None
    Stationary(atoms)  # Langevin noise leaves a little centre-of-mass drift
    n = len(atoms)
    saved = steps // save_every + 1
    positions = np.empty((saved, n, 3))
    velocities = np.empty((saved, n, 3))
    energy = np.empty(saved)
    forces = np.empty((saved, n, 3))
    frame = [0]

    def record():
        i = frame[0]
        positions[i] = atoms.get_positions()
        velocities[i] = atoms.get_velocities() * units.fs  # Å/fs
        energy[i] = atoms.get_potential_energy()
        forces[i] = atoms.get_forces()  # eV/Å, computed with the energy
        frame[0] += 1
        if i:
            bar.update(save_every)

    if thermostat == "bussi":
        # a global rescaling only scales the angular momentum: stop the rotation so that every run samples
        # the same ensemble (else each keeps the rotational energy the equilibration left it)
        from .vibrational_bussi import VibrationalBussi
        ZeroRotation(atoms)
        dynamics = VibrationalBussi(atoms, dt_fs * units.fs, temperature_K=temperature, taut=tau_fs * units.fs,
                                    rng=rng)
        ensemble = (f"NVT Bussi thermostat on the vibrations (3N - 6 degrees of freedom, rotation stopped), "
                    f"tau {tau_fs:g} fs, velocity Verlet")
    elif thermostat == "langevin":  # friction 1/tau (GROMACS's tau-t of its stochastic-dynamics integrator)
        dynamics = Langevin(atoms, dt_fs * units.fs, temperature_K=temperature, friction=1.0 / (tau_fs * units.fs),
                            rng=rng, fixcm=False)
        ensemble = f"NVT Langevin, friction 1/({tau_fs:g} fs) = {1000 / tau_fs:g}/ps (ASE)"
    else:
        dynamics = VelocityVerlet(atoms, dt_fs * units.fs)
        ensemble = "NVE velocity Verlet"
    dynamics.attach(record, interval=save_every)
    dynamics.attach(raise_if_stopped, interval=1)  # a Ctrl-C that tblite's callbacks swallowed
    try:
        dynamics.run(steps)  # ASE calls observers once before the first step as well
    except CalculationFailed as err:
        raise TrajsrError(f"{name} seed {seed}: {level} failed at production frame {frame[0]} ({err})") from None
    finally:
        bar.close()
    return Trajectory(positions=positions * NM_PER_ANGSTROM,
                      velocities=velocities * NM_PER_PS_PER_ANGSTROM_PER_FS,
                      time=np.arange(saved) * save_every * dt_fs * PS_PER_FS,
                      elements=atoms.get_chemical_symbols(),
                      potential_energy=energy * KJ_PER_MOL_PER_EV,
                      forces=forces * KJ_PER_MOL_PER_EV / NM_PER_ANGSTROM,
                      info=dict(method=f"{level} (tblite) via ASE, {ensemble}",
                                temperature_K=float(temperature), seed=int(seed),
                                dt_fs=float(dt_fs * save_every), md_step_fs=float(dt_fs),
                                charge=int(charge), multiplicity=int(multiplicity),
                                equilibration="Langevin %g fs, friction %g/fs" % (equilibration_fs,
                                                                                  friction_per_fs)),
                      source=f"{name} seed {seed}")


def single_threaded():
    """Pin BLAS/OpenMP to one thread: trajectories are generated one process per core."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
