"""How close a Hamiltonian propagator's learned potential is to GFN2-xTB, and where its spectrum parts from it.

    python bench/potential_anatomy.py      # models/ethanol-gfn2-prop-f10.keras, the held-out data/ethanol-test runs

Where a spectrum of the learned dynamics parts from GFN2-xTB's, three things can be at fault, and this
separates them (bench/filled.py judges the thermostatted spectrum itself):

- the forces: mean absolute error of the learned forces against GFN2-xTB's over their RMS, on every 50th
  frame of the held-out runs;
- the harmonic frequencies (cm⁻¹): GFN2-xTB's finite-difference Hessian (ASE, tblite) at its minimum from
  the first run's first frame, against the learned potential's exact Hessian at the same geometry;
- the dynamics without a thermostat: the learned NVE from each held-out run's own first frame (same state,
  same energy) for as long as the run, filled to 0.5 fs by the same dynamics, its pooled VDOS against the
  run's, band by band (the sharpest comparison: each learned run has its GFN2-xTB twin's start), with the
  interval from resampling the pairs; and half of the runs against the other half, over random halves
  (mostly their different temperatures and each run's own share of energy among its modes, for scale).

Writes bench/results/potential-anatomy.{md,json}.
"""
import argparse
import glob
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from trajsr import ShootingInterpolator, load
from trajsr.adapt import force_error
from trajsr.card import command_line
from trajsr.datasets.xtb import gfn2_calculator
from trajsr.observables import kinetic_temperature
from trajsr.physics import masses_of
from trajsr.propagation.propagator import Propagator
from trajsr.report import table
from trajsr.units import ANGSTROM_PER_NM, INVERSE_CM_PER_THZ

from spectral_sampling import bootstrap, cell, floor_draws, model_draws, per_run, summarize  # bench/ beside this

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
#: random draws of the runs behind each spectral comparison
DRAWS = 400


def gfn2_frequencies(elements, positions_nm):
    """GFN2-xTB's harmonic frequencies (cm⁻¹, the 3N − 6 largest) and its minimum (nm), from ``positions_nm``."""
    from ase import Atoms
    from ase.optimize import BFGS
    from ase.vibrations import Vibrations
    atoms = Atoms(elements, positions=positions_nm * ANGSTROM_PER_NM)
    atoms.calc = gfn2_calculator()
    BFGS(atoms, logfile=None).run(fmax=1e-4, steps=500)
    with tempfile.TemporaryDirectory() as cache:  # ASE's displaced-geometry files
        vib = Vibrations(atoms, name=str(Path(cache) / "vib"), delta=0.005)
        vib.run()
        frequencies = np.sort(np.real(vib.get_frequencies()))[6:]
    return frequencies, atoms.get_positions() / ANGSTROM_PER_NM


def learned_frequencies(step, elements, positions_nm):
    """The learned potential's harmonic frequencies (cm⁻¹, the 3N − 6 largest) at ``positions_nm``."""
    import tensorflow as tf
    _, jacobian = step.acceleration_and_jacobian(tf.constant(positions_nm[None], tf.float32))
    root_m = np.sqrt(np.repeat(masses_of(elements), 3))
    weighted = root_m[:, None] * -jacobian.numpy()[0].astype(np.float64) / root_m[None, :]  # M^-1/2 H M^-1/2
    omega2 = np.sort(np.linalg.eigvalsh(0.5 * (weighted + weighted.T)))[6:]  # 1/ps²
    return np.sign(omega2) * np.sqrt(np.abs(omega2)) / (2 * np.pi) * INVERSE_CM_PER_THZ  # 1/ps = THz


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(ROOT / "models" / "ethanol-gfn2-prop-f10.keras"))
    p.add_argument("--runs", default=str(ROOT / "data" / "ethanol-test" / "*" / "*.h5"), help="held-out NVE runs")
    args = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # tblite beside TensorFlow
    files = sorted(glob.glob(args.runs))
    refs = [load(f) for f in files]
    n = min(r.n_frames for r in refs)
    refs = [r[:n] for r in refs]
    prop = Propagator.load(args.model)
    step = prop.layer
    forces = force_error(step, [r[::50] for r in refs])
    reference, minimum = gfn2_frequencies(refs[0].elements, refs[0].positions[0])
    learned = learned_frequencies(step, refs[0].elements, minimum)
    runs = prop.run(np.stack([r.positions[0] for r in refs]), np.stack([r.velocities[0] for r in refs]),
                    (n - 1) // prop.factor)
    filled = [ShootingInterpolator(step).interpolate(r, prop.factor) for r in runs]
    learned_spectra, reference_spectra = per_run(filled), per_run(refs)
    rng = np.random.default_rng(0)
    comparisons = {
        "learned NVE (filled to 0.5 fs) against GFN2-xTB, each run with its twin (pairs resampled)":
            summarize(bootstrap(learned_spectra, reference_spectra, DRAWS, rng, paired=True)),
        "GFN2-xTB against itself: half of the runs against the other half (random halves)":
            summarize(floor_draws(reference_spectra, DRAWS, rng)),
        "learned half against GFN2-xTB half (random halves)":
            summarize(model_draws(learned_spectra, reference_spectra, DRAWS, rng))}
    result = dict(command=command_line("bench/potential_anatomy.py"), model=Path(args.model).name,
                  runs=[Path(f).name for f in files], ps_per_run=float(refs[0].time[-1] - refs[0].time[0]),
                  run_temperatures_K=[kinetic_temperature(r, "velocities")["vibrational_temperature_K"] for r in refs],
                  force_mae_over_rms=forces, frequencies_cm1=dict(gfn2=reference.tolist(), learned=learned.tolist()),
                  nve=comparisons)
    names = list(next(iter(comparisons.values()))["bands"])
    rows = [[label, cell(c["overlap"], 3), *[cell(c["bands"][b]) for b in names]] for label, c in comparisons.items()]
    ratio = learned / reference
    lines = [f"# The learned potential against GFN2-xTB: `{result['model']}`", "",
             f"Command: `{result['command']}`. {len(refs)} held-out GFN2-xTB NVE runs of {result['ps_per_run']:g} ps "
             f"at {min(result['run_temperatures_K']):.0f}-{max(result['run_temperatures_K']):.0f} K (vibrational "
             "kinetic temperature, measured).",
             "", f"Forces: mean absolute error {forces:.2%} of the forces' RMS (every 50th frame).", "",
             "Harmonic frequencies at GFN2-xTB's minimum (cm⁻¹), learned over GFN2-xTB: "
             f"{ratio.min():.3f}-{ratio.max():.3f}; above 2500 cm⁻¹ (the X-H stretches) "
             f"{ratio[reference > 2500].min():.3f}-{ratio[reference > 2500].max():.3f}.", "",
             table(["mode", "GFN2-xTB", "learned", "ratio"],
                   [[i + 1, f"{r:.1f}", f"{m:.1f}", f"{m / r:.3f}"] for i, (r, m) in enumerate(zip(reference, learned))]),
             "", "NVE from each run's own first frame, pooled VDOS over 300-4000 cm⁻¹ (band intensity relative "
             f"to the second spectrum); median [5th-95th percentile] over {DRAWS} random draws of the runs "
             "(bench/spectral_sampling.py: in NVE each run keeps its modes' shares of energy for ps, so which "
             "runs are pooled matters):", "", table(["spectra", "overlap", *[f"{b} band" for b in names]], rows)]
    text = "\n".join(lines)
    print(text)
    (RESULTS / "potential-anatomy.md").write_text(text + "\n")
    (RESULTS / "potential-anatomy.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
