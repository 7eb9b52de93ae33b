"""Make every data folder the benchmarks and the shipped models' recipes read, from the recorded seeds.

    python bench/make_data.py                          # everything missing (~5 h of GFN2-xTB on 2 cores)
    python bench/make_data.py 'ethanol-test*' ethanol  # only these folders (shell-style patterns)
    python bench/make_data.py --list                   # folders, seeds and what is already there
    python bench/make_data.py 'ethanol-calib/*' --data /tmp/d --md-steps 400 --equilibration-fs 20   # a quick look

``data/`` is not in git (hundreds of MB). Each trajectory is one ``trajsr datasets make`` call with one
OpenMP thread, into ``data/parts/FOLDER-SEED``; ``--processes`` of them run at once. Then each folder is
merged from its parts with ``trajsr datasets merge`` (a manifest listing every file). The recipes are
deterministic: a seed made again gives the same trajectory, so the cards' test figures can be re-checked.
Files already in ``data/FOLDER`` are not made again.
"""
import argparse
import fnmatch
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
NVE = ["--md-steps", "20000"]                                                 # 10 ps, every 0.5 fs step kept
NVT = ["--thermostat", "bussi", "--save-every", "10", "--md-steps", "50000"]  # 25 ps Bussi, every 5 fs
NVT_FINE = ["--thermostat", "bussi", "--md-steps", "50000"]                   # 25 ps Bussi, every 0.5 fs step
LANGEVIN_FINE = ["--thermostat", "langevin", "--tau-fs", "500", "--md-steps", "50000"]  # 25 ps at 2/ps, every step


def span(lo, hi):
    return list(range(lo, hi + 1))


def molecule(name, dataset, train, test=(2001, 2002), nvt=None, options=NVE):
    """Folders of one molecule at 300, 500 and 700 K, seeds offset by T: training and validation in
    NAME-tT (``train`` + T: 1301... at 300 K), tests in NAME-test/tT (``test`` + T: 2301, 2302 at 300 K)
    and, given ``nvt``, Bussi NVT references in NAME-nvt-vib/tT (``nvt`` + T/100·1000: 3201... at 300 K)."""
    out = []
    for t in (300, 500, 700):
        out.append((f"{name}-t{t}", dataset, t, [s + t for s in train], options))
        out.append((f"{name}-test/t{t}", dataset, t, [s + t for s in test], options))
        if nvt:
            out.append((f"{name}-nvt-vib/t{t}", dataset, t, [s + t // 100 * 1000 for s in nvt], NVT))
    return out


#: (folder under data/, dataset, temperature K, seeds, ``datasets make`` options)
FOLDERS = [
    ("ethanol", "ethanol-gfn2", 500, span(1, 16) + [101, 102, 103], NVE),
    ("ethanol-test/t300", "ethanol-gfn2", 300, span(301, 304), NVE),
    ("ethanol-test/t500", "ethanol-gfn2", 500, [104], NVE),
    ("ethanol-test/t700", "ethanol-gfn2", 700, span(701, 704), NVE),
    ("ethanol-test/t1000", "ethanol-gfn2", 1000, [1001, 1002], NVE),  # hotter than any training data
    ("ethanol-valid/t300", "ethanol-gfn2", 300, [351], NVE),
    ("ethanol-valid/t300b", "ethanol-gfn2", 300, [352], NVE),
    ("ethanol-valid/t500", "ethanol-gfn2", 500, [551], NVE),
    ("ethanol-valid/t700", "ethanol-gfn2", 700, [751], NVE),
    ("ethanol-valid/t700b", "ethanol-gfn2", 700, [752, 753], NVE),
    *[(f"ethanol-more/t{t}", "ethanol-gfn2", t, span(4001 + t, 4027 + t), NVE) for t in (300, 500, 700)],
    *[(f"ethanol-nvt-vib/t{t}", "ethanol-gfn2", t, span(t // 100 * 1000 + 101, t // 100 * 1000 + 116), NVT)
      for t in (300, 500, 700)],
    ("ethanol-nvt-fine/t500", "ethanol-gfn2", 500, span(5101, 5132), NVT_FINE),   # spectra up to 4000 cm⁻¹
    ("ethanol-nvt-langevin/t500", "ethanol-gfn2", 500, span(5151, 5158), LANGEVIN_FINE),  # modes' energy reshuffled
    # never trained on, never tested on: what shooting's uncertainty is calibrated on (bench/uncertainty.py)
    *[(f"ethanol-calib/t{t}", "ethanol-gfn2", t, [9001 + t, 9002 + t], NVE) for t in (300, 500, 700)],
    *[(f"ethanol-gfn1/t{t}", "ethanol-gfn1", t, [7001 + t, 7002 + t], NVE) for t in (300, 500, 700)],  # another level
    # thermostatted production runs, as AIMD users often have: Langevin at 2/ps and CSVR (Bussi) at 100 fs
    ("ethanol-langevin/t500", "ethanol-gfn2", 500, span(8501, 8503), ["--thermostat", "langevin", "--tau-fs", "500",
                                                                      "--md-steps", "20000"]),
    ("ethanol-csvr/t500", "ethanol-gfn2", 500, span(8511, 8513), ["--thermostat", "bussi", "--tau-fs", "100",
                                                                  "--md-steps", "20000"]),
    *molecule("malonaldehyde", "malonaldehyde-gfn2", span(1001, 1005), nvt=span(201, 216)),
    *molecule("uracil", "uracil-gfn2", span(1001, 1004)),
    *molecule("aspirin", "aspirin-gfn2", span(1001, 1004)),
    *molecule("alanine", "alanine-dipeptide-amber", span(1001, 1004), options=["--md-steps", "40000"]),
]


def ranges(seeds):
    """'1-16, 101-103' for [1, ..., 16, 101, 102, 103]."""
    runs = []
    for s in seeds:
        if runs and s == runs[-1][1] + 1:
            runs[-1][1] = s
        else:
            runs.append([s, s])
    return ", ".join(f"{a}-{b}" if b > a else f"{a}" for a, b in runs)


def file_name(dataset, seed):
    return f"{dataset}-seed{seed}.h5"


def shortened(options, md_steps=None, equilibration_fs=None):
    """A recipe's ``datasets make`` options with its length (MD steps) and equilibration replaced."""
    out = list(options)
    for flag, value in (("--md-steps", md_steps), ("--equilibration-fs", equilibration_fs)):
        if value is not None:
            if flag in out:
                out[out.index(flag) + 1] = f"{value:g}"
            else:
                out += [flag, f"{value:g}"]
    return out


def make_one(data, folder, dataset, temperature, seed, options):
    """One trajectory into DATA/parts/; returns (part folder, error text or None)."""
    part = data / "parts" / f"{folder.replace('/', '_')}-{seed}"
    if (part / file_name(dataset, seed)).exists() and (part / "manifest.json").exists():
        return part, None
    command = ["trajsr", "datasets", "make", dataset, "--seed", str(seed), "--temperature", f"{temperature:g}",
               "--processes", "1", "-o", str(part), "--force", *options]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    print(f"{'made' if done.returncode == 0 else 'FAILED'} {folder} seed {seed}", flush=True)
    return part, (done.stderr.strip().splitlines() or ["?"])[-1] if done.returncode else None


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folders", nargs="*", default=["*"], help="shell-style patterns of folders under data/")
    p.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="trajectories made at once")
    p.add_argument("--list", action="store_true", help="only list the folders, their seeds and what exists")
    p.add_argument("--data", type=Path, default=DATA, help="where the folders go (default: data/ in the repository)")
    p.add_argument("--md-steps", type=int, help="a quick look: every trajectory this many 0.5 fs MD steps long "
                   "(not the recorded recipes; the benchmarks and cards need the full length)")
    p.add_argument("--equilibration-fs", type=float, help="a quick look: this much Langevin equilibration (fs)")
    args = p.parse_args()
    data = args.data.resolve()
    chosen = [f for f in FOLDERS if any(fnmatch.fnmatch(f[0], pat) for pat in args.folders)]
    if not chosen:
        raise SystemExit(f"no data folder matches {' '.join(args.folders)}; see --list")
    if args.processes < 1:
        raise SystemExit(f"--processes must be at least 1, got {args.processes}")
    if args.md_steps is not None and args.md_steps < 1 or args.equilibration_fs is not None and \
            not args.equilibration_fs >= 0:
        raise SystemExit(f"--md-steps must be at least 1 and --equilibration-fs at least 0 (fs), got "
                         f"{args.md_steps} and {args.equilibration_fs}")
    jobs = []
    for folder, dataset, temperature, seeds, options in chosen:
        options = shortened(options, args.md_steps, args.equilibration_fs)
        missing = [s for s in seeds if not (data / folder / file_name(dataset, s)).exists()]
        print(f"{data / folder}: {dataset} {temperature} K, seeds {ranges(seeds)}, "
              f"{len(seeds) - len(missing)} of {len(seeds)} there, {' '.join(options)}")
        jobs += [(folder, dataset, temperature, s, options) for s in missing]
    if args.list or not jobs:
        return
    print(f"making {len(jobs)} trajectories, {args.processes} at a time", flush=True)
    with ThreadPoolExecutor(args.processes) as pool:
        results = list(pool.map(lambda job: make_one(data, *job), jobs))
    failed = [(job, err) for job, (_, err) in zip(jobs, results) if err]
    for folder in dict.fromkeys(job[0] for job in jobs):
        parts = sorted(str(part) for job, (part, err) in zip(jobs, results) if job[0] == folder and not err)
        if parts:
            subprocess.run(["trajsr", "datasets", "merge", *parts, "-o", str(data / folder), "--force"], check=True,
                           capture_output=True)
    for (folder, _, _, seed, _), err in failed:
        print(f"{data / folder} seed {seed}: {err}", file=sys.stderr)
    if failed:
        raise SystemExit(f"{len(failed)} of {len(jobs)} trajectories failed")


if __name__ == "__main__":
    main()
