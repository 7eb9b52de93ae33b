"""How far two pooled spectra part by chance: each run's spectrum once, pooled over random sets of runs.

Under a global thermostat (Bussi's), and in NVE, a run keeps for many picoseconds the share of energy each
vibrational mode had at its start: a 10 ps GFN2-xTB run of ethanol may hold twice another's intensity in
its O-H stretch. A spectrum pooled over a few runs therefore moves by chance from one set of runs to
another, and one comparison of two sets is one draw of that chance. The helpers below draw it many times:
the reference against itself (two disjoint random halves: its floor) and as many model runs against a
random half of the reference (equal sizes, so equal chance), and the interval of a band's ratio when both
sides' runs are resampled (bootstrap). Used by bench/filled.py and bench/potential_anatomy.py.

A pooled spectrum here weighs each run alike (the mean of the runs' unit-area spectra); equal-length runs
at one temperature make this :func:`trajsr.spectra.spectrum` of the list to within the runs' spread in
temperature.
"""
import dataclasses

import numpy as np

from trajsr.spectra import compare, spectrum


def per_run(trajs, source="velocities"):
    """Each trajectory's own spectrum (:func:`trajsr.spectra.spectrum`)."""
    return [spectrum(t, source) for t in trajs]


def pooled(spectra):
    """One spectrum of several runs' spectra (same molecule and frame spacing), each run weighing alike."""
    first = spectra[0]
    return dataclasses.replace(first, label=f"{len(spectra)} runs", segments=sum(s.segments for s in spectra),
                               intensity=np.mean([s.intensity for s in spectra], axis=0),
                               partial=np.mean([s.partial for s in spectra], axis=0))


def figures(mine, theirs) -> dict:
    """Overlap and band ratios of the pooled ``mine`` against the pooled ``theirs`` (lists of spectra)."""
    c = compare(pooled(mine), pooled(theirs))
    return dict(overlap=c["overlap"], range_cm1=c["range_cm1"],
                bands={b: v["ratio"] for b, v in c["bands"].items() if v["ratio"] is not None})


def band_shares(spec) -> dict:
    """Each band's share of ``spec``'s area over the compared range (300-4000 cm⁻¹ or its Nyquist limit)."""
    c = compare(spec, spec)
    return {b: float(v["reference_share"]) for b, v in c["bands"].items() if v.get("reference_share") is not None}


def floor_draws(reference, draws: int, rng) -> list:
    """The reference against itself: ``draws`` random splits of its runs into two disjoint halves."""
    k = len(reference) // 2
    out = []
    for _ in range(draws):
        order = rng.permutation(len(reference))
        out.append(figures([reference[i] for i in order[:k]], [reference[i] for i in order[k:2 * k]]))
    return out


def model_draws(model, reference, draws: int, rng) -> list:
    """Half the reference's number of model runs (drawn without replacement) against a random half of the
    reference, ``draws`` times: the same sizes as :func:`floor_draws`."""
    k = len(reference) // 2
    out = []
    for _ in range(draws):
        mine = rng.choice(len(model), size=k, replace=False)
        theirs = rng.choice(len(reference), size=k, replace=False)
        out.append(figures([model[i] for i in mine], [reference[i] for i in theirs]))
    return out


def bootstrap(model, reference, draws: int, rng, paired: bool = False) -> list:
    """All model runs against all reference runs, each side's runs resampled with replacement; ``paired``:
    runs paired one to one (each model run started from its reference twin's state), resampled as pairs."""
    out = []
    for _ in range(draws):
        if paired:
            mine = theirs = rng.integers(len(reference), size=len(reference))
        else:
            mine, theirs = rng.integers(len(model), size=len(model)), rng.integers(len(reference), size=len(reference))
        out.append(figures([model[i] for i in mine], [reference[i] for i in theirs]))
    return out


def spread(values) -> dict:
    """Median and the 5th and 95th percentiles."""
    low, median, high = np.percentile(np.asarray(values, float), [5, 50, 95])
    return dict(median=float(median), p5=float(low), p95=float(high))


def summarize(draws: list) -> dict:
    """Spread of the overlap and of each band's ratio over a list of :func:`figures`."""
    bands = draws[0]["bands"]
    return dict(overlap=spread([d["overlap"] for d in draws]),
                bands={b: spread([d["bands"][b] for d in draws]) for b in bands})


def cell(s: dict, digits: int = 2) -> str:
    """``median [p5-p95]`` of a :func:`spread`."""
    return f"{s['median']:.{digits}f} [{s['p5']:.{digits}f}-{s['p95']:.{digits}f}]"
