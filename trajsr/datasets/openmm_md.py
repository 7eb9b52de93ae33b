"""Reference trajectories from OpenMM: alanine dipeptide in vacuum and a periodic TIP3P water box.

Recipe: Maxwell–Boltzmann velocities at T, Langevin (friction 10/ps = 0.01/fs) for the equilibration,
then NVE velocity Verlet at 0.5 fs (a CustomIntegrator, so velocities are on-step, unlike OpenMM's
leap-frog VerletIntegrator); every step saved with velocities and potential energy.
"""
from __future__ import annotations


import numpy as np

from ..trajectory import Trajectory
from ..units import PS_PER_FS
from ..resources import shipped_folder

PDB = shipped_folder("datasets") / "alanine-dipeptide.pdb"


def velocity_verlet(dt_ps: float):
    """Velocity Verlet with constraints (OpenMM's documented CustomIntegrator recipe)."""
    import openmm
    integrator = openmm.CustomIntegrator(dt_ps)
    integrator.addPerDofVariable("x1", 0)
    integrator.addUpdateContextState()
    integrator.addComputePerDof("v", "v+0.5*dt*f/m")
    integrator.addComputePerDof("x", "x+dt*v")
    integrator.addComputePerDof("x1", "x")
    integrator.addConstrainPositions()
    integrator.addComputePerDof("v", "v+0.5*dt*f/m+(x-x1)/dt")
    integrator.addConstrainVelocities()
    return integrator


def run_openmm_md(topology, system, positions, *, steps, seed, temperature, dt_fs=0.5,
                  equilibration_fs=1000.0, name="openmm", method="", progress=True) -> Trajectory:
    """Equilibrate with Langevin, then save ``steps`` NVE velocity-Verlet steps (nm, nm/ps, ps, kJ/mol)."""
    import openmm
    from openmm import unit
    from tqdm import tqdm
    platform = openmm.Platform.getPlatformByName("CPU")
    props = {"Threads": "1"}
    dt = dt_fs * PS_PER_FS
    langevin = openmm.LangevinMiddleIntegrator(temperature, 10.0, dt)
    langevin.setRandomNumberSeed(seed + 1)
    context = openmm.Context(system, langevin, platform, props)
    context.setPositions(positions)
    context.setVelocitiesToTemperature(temperature, seed + 1)
    n_eq = int(round(equilibration_fs / dt_fs))
    langevin.step(n_eq)
    state = context.getState(getPositions=True, getVelocities=True)
    integrator = velocity_verlet(dt)
    context = openmm.Context(system, integrator, platform, props)
    context.setState(state)
    n = topology.getNumAtoms()
    pos = np.empty((steps + 1, n, 3))
    vel = np.empty((steps + 1, n, 3))
    energy = np.empty(steps + 1)
    box = np.empty((steps + 1, 3, 3))
    for i in tqdm(range(steps + 1), desc=f"{name} seed {seed}", unit="step", disable=None if progress else True,
                  mininterval=2.0):
        if i:
            integrator.step(1)
        s = context.getState(getPositions=True, getVelocities=True, getEnergy=True)
        pos[i] = s.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
        vel[i] = s.getVelocities(asNumpy=True).value_in_unit(unit.nanometer / unit.picosecond)
        energy[i] = s.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        box[i] = s.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer)
    import mdtraj
    md_top = mdtraj.Topology.from_openmm(topology)
    periodic = system.usesPeriodicBoundaryConditions()
    return Trajectory(positions=pos, velocities=vel, time=np.arange(steps + 1) * dt,
                      elements=[a.element.symbol for a in md_top.atoms], potential_energy=energy,
                      unitcell_vectors=box if periodic else None, topology=md_top,
                      info=dict(method=method, temperature_K=float(temperature), seed=int(seed),
                                dt_fs=float(dt_fs), equilibration=f"Langevin {equilibration_fs:g} fs, 10/ps"),
                      source=f"{name} seed {seed}")


def alanine_dipeptide(seed: int, steps: int, temperature: float = 300.0, progress: bool = True,
                      equilibration_fs: float = 1000.0):
    """ACE-ALA-NME in vacuum, amber14-all.xml, no cutoff, no constraints, from datasets/alanine-dipeptide.pdb."""
    from openmm import app
    pdb = app.PDBFile(str(PDB))
    ff = app.ForceField("amber14-all.xml")
    system = ff.createSystem(pdb.topology, nonbondedMethod=app.NoCutoff, constraints=None)
    return run_openmm_md(pdb.topology, system, pdb.positions, steps=steps, seed=seed,
                         temperature=temperature, name="alanine-dipeptide-amber", progress=progress,
                         equilibration_fs=equilibration_fs,
                         method="OpenMM amber14-all.xml, vacuum, no cutoff, NVE velocity Verlet 0.5 fs")


def water_box(seed: int, steps: int, temperature: float = 300.0, progress: bool = True, box_nm: float = 1.2,
              equilibration_fs: float = 1000.0):
    """A cubic TIP3P box (edge ``box_nm`` nm), PME with a 0.55 nm cutoff, rigid waters (SETTLE)."""
    import openmm
    from openmm import app, unit
    ff = app.ForceField("amber14-all.xml", "amber14/tip3p.xml")
    modeller = app.Modeller(app.Topology(), [])
    modeller.addSolvent(ff, model="tip3p", boxSize=openmm.Vec3(box_nm, box_nm, box_nm) * unit.nanometer)
    system = ff.createSystem(modeller.topology, nonbondedMethod=app.PME,
                             nonbondedCutoff=0.55 * unit.nanometer, rigidWater=True)
    integrator = openmm.VerletIntegrator(0.001)
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("CPU"))
    context.setPositions(modeller.positions)
    openmm.LocalEnergyMinimizer.minimize(context, 10.0, 500)
    positions = context.getState(getPositions=True).getPositions()
    return run_openmm_md(modeller.topology, system, positions, steps=steps, seed=seed,
                         temperature=temperature, name="water-tip3p", progress=progress,
                         equilibration_fs=equilibration_fs,
                         method="OpenMM TIP3P box, PME 0.55 nm, NVE velocity Verlet 0.5 fs")
