"""Scaling on this machine: training with one and two workers, and data generation with 1..N processes.

    python bench/scaling.py

Training throughput (windows per second, second epoch, same model and data) for: one process on one
core, one process on two cores, and two MultiWorkerMirroredStrategy workers on localhost pinned to one
core each (TF_CONFIG). Data generation: GFN2-xTB ethanol steps per second with 1 and 2 processes.
Writes bench/results/scaling.md and scaling.json. Two local workers share one machine's memory
bandwidth and talk through gRPC: expect them to lose to one process on both cores.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"

TRAIN = """
import sys, time, keras
from trajsr.console import import_tensorflow; import_tensorflow()
from trajsr import load, fit
from trajsr.datasets import shipped_path
class Clock(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None): self.t = time.perf_counter()
    def on_epoch_end(self, epoch, logs=None): self.last = time.perf_counter() - self.t
t = load(shipped_path("ethanol-gfn2"))
clock = Clock()
strategy = sys.argv[1]
net, h = fit([t[:4000]], architecture="bilstm", factor=10, context=4, width=64, epochs=2, batch_size=256,
             window_step=1, verbose=0, strategy=strategy, callbacks=[clock], output=sys.argv[2] if len(sys.argv) > 2 else None)
windows = net.get_layer("gap_interpolator").metadata["training"]["windows"]
print("throughput", windows / clock.last)
"""


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_training(cores, workers):
    env = dict(os.environ, TF_NUM_INTRAOP_THREADS=str(len(cores[0])), TF_NUM_INTEROP_THREADS="1",
               TF_CPP_MIN_LOG_LEVEL="3")
    tmp = Path(tempfile.mkdtemp())
    if workers == 1:
        out = subprocess.run(["taskset", "-c", ",".join(map(str, cores[0])), sys.executable, "-c", TRAIN, "default"],
                             capture_output=True, text=True, env=env)
        return _throughput(out.stdout, out.stderr)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(workers)]}
    procs = []
    for i in range(workers):
        env_i = dict(env, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}))
        procs.append(subprocess.Popen(["taskset", "-c", ",".join(map(str, cores[i])), sys.executable, "-c", TRAIN,
                                       "multiworker", str(tmp / "m.keras")], env=env_i, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    outs = [p.communicate() for p in procs]
    return _throughput(*outs[0])  # every worker sees the global batch; the chief's clock


def _throughput(stdout, stderr):
    for line in stdout.splitlines():
        if line.startswith("throughput"):
            return float(line.split()[1])
    raise RuntimeError(stderr[-2000:])


def generation(processes, steps=2000):
    from trajsr.datasets import make
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        make("ethanol-gfn2", seeds=list(range(1, 1 + 2 * processes)), md_steps=steps, out_dir=tmp,
             processes=processes, progress=False)
        seconds = time.perf_counter() - t0
    total = 2 * processes * (steps + 2000)  # 1 ps of Langevin equilibration (2000 steps) precedes each run
    return total / seconds


def main():
    n = os.cpu_count()
    r = {"cores": n, "training_windows_per_s": {}, "generation_steps_per_s": {}}
    r["training_windows_per_s"]["1 process, 1 core"] = run_training([[0]], 1)
    r["training_windows_per_s"][f"1 process, {n} cores"] = run_training([list(range(n))], 1)
    r["training_windows_per_s"]["2 workers, 1 core each"] = run_training([[0], [1 % n]], 2)
    for p in sorted({1, n}):
        r["generation_steps_per_s"][f"{p} process{'es' if p > 1 else ''}"] = generation(p)
    base_t = r["training_windows_per_s"]["1 process, 1 core"]
    base_g = r["generation_steps_per_s"]["1 process"]
    from trajsr.card import command_line
    command = command_line("bench/scaling.py")
    lines = ["# Scaling (bench/scaling.py)", "", f"Command: `{command}`. "
             f"{n}-core machine. Training: Bi-LSTM width 64, factor 10, "
             "4000 frames of the shipped ethanol trajectory, second-epoch throughput.", "",
             "| training | windows/s | vs 1 core |", "|---|---|---|"]
    lines += [f"| {k} | {v:,.0f} | {v / base_t:.2f}x |" for k, v in r["training_windows_per_s"].items()]
    lines += ["", "| GFN2-xTB data generation | MD steps/s | vs 1 process |", "|---|---|---|"]
    lines += [f"| {k} | {v:,.0f} | {v / base_g:.2f}x |" for k, v in r["generation_steps_per_s"].items()]
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scaling.md").write_text(text + "\n")
    (RESULTS / "scaling.json").write_text(json.dumps(r, indent=1) + "\n")


if __name__ == "__main__":
    main()
