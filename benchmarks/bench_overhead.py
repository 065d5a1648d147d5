"""Benchmark: what measuring costs.

1. Per-trial process start overhead: from asking for a trial process to the child being ready (fork server
   warm), beside what a fresh interpreter would cost (``python -c "import torch, sklearn"``).
2. Monitor overhead per step: the same training (same model, data, seed, threads) run
   (a) bare, in a fork-server process that only trains and times its steps, and
   (b) under the full sysprune step protocol: parent samples cpu/rss/peak/energy, writes the step row to SQLite,
       and answers; the latency probe is timed separately (its cost is excluded from the trial's wall_s/cpu_s).
   Overhead = the parent's per-step work while the child waits (sample + round trip), relative to the bare step
   time; the store write overlaps the child's next step, as in the runner. Both runs' step times are printed
   (their difference includes run-to-run noise).

Goals (issue 2): start overhead <= 0.3 s; monitor overhead <= 1 % of step time. Prints the machine it ran on.
Usage: python benchmarks/bench_overhead.py [--trials 20] [--steps 8] [--subsample 12000]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

from sysprune._data import prepare
from sysprune._store import MetricStore
from sysprune._trial_process import TrialJob, TrialProcess, _start, warm_up

PARAMS = {"n_layers": 2, "width": 256, "dropout": 0.1, "lr": 1e-3, "weight_decay": 1e-4, "batch_size": 128}


def machine() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "?")
    except OSError:
        cpu = platform.processor()
    return f"{platform.node()} | {cpu} | {os.cpu_count()} CPUs | Linux {platform.release()} | Python {platform.python_version()}"


def bench_start(path: str, n: int) -> list[float]:
    job = TrialJob(model="torch_mlp", params=PARAMS, dataset_path=path, seed=0, steps=1)
    out = []
    for _ in range(n):
        tp = TrialProcess(job)
        out.append(tp.ready_s)
        tp.close()
    return out


def fresh_interpreter_s(n: int = 3) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch, sklearn.linear_model"], check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_steps(path: str, steps: int, store: MetricStore) -> dict[str, list[float]]:
    import multiprocessing as mp

    from _bare_child import bare

    job = TrialJob(model="torch_mlp", params=PARAMS, dataset_path=path, seed=0, steps=steps)
    # (a) bare: the same training in the same kind of process, nobody measuring
    parent, child = mp.get_context("forkserver").Pipe()
    p = _start(bare, child, job)
    child.close()
    bare_times = parent.recv()
    p.join()
    # (b) the sysprune step protocol: child trains; parent samples, probes, stores, answers
    train, monitor, probe, store_s = [], [], [], []
    with TrialProcess(job) as tp:
        it = tp.steps()
        t_go = time.perf_counter()  # when the child was last told to train (its step starts then)
        while True:
            try:
                r = next(it)
            except StopIteration:
                break
            t1 = time.perf_counter()
            tp.decide(stop=False)  # as the runner does: the child trains on while the parent stores the row
            t2 = time.perf_counter()
            store.write_step(study_name="bench", trial_id=1, trial_number=0, step=r.step, metrics=r.metrics)
            store_s.append(time.perf_counter() - t2)
            probe.append(tp.last_probe_s)
            train.append(t1 - t_go - tp.last_probe_s - tp.last_sample_s)  # child training + pipe latency
            monitor.append(tp.last_sample_s + (t2 - t1))
            t_go = t2
    return {"bare": bare_times, "train": train, "monitor": monitor, "probe": probe, "store": store_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--subsample", type=int, default=12000)
    ap.add_argument("--repeats", type=int, default=3, help="interleaved bare/monitored runs per dataset")
    args = ap.parse_args()

    print(f"machine: {machine()}")
    warm = warm_up()
    print(f"fork server start (once per worker): {warm:.2f} s")
    digits = str(prepare("digits", seed=0))
    starts = bench_start(digits, args.trials)
    fresh = fresh_interpreter_s()
    print(f"\n1. per-trial process start overhead ({args.trials} trials, fork server warm):")
    print(f"   median {statistics.median(starts) * 1e3:.1f} ms, max {max(starts) * 1e3:.1f} ms"
          f"  (goal <= 300 ms; a fresh interpreter importing torch + scikit-learn: {fresh:.2f} s)")  # fmt: skip

    datasets = [("digits", digits)]
    try:
        datasets.append((f"mnist ({args.subsample})", str(prepare("mnist", seed=0, subsample=args.subsample))))
    except Exception as e:  # no MNIST on this machine: report digits only
        print(f"   (mnist unavailable: {e})")
    print(f"\n2. monitor overhead per step (torch_mlp {PARAMS['n_layers']}x{PARAMS['width']}, 1 thread, "
          f"{args.steps} steps; medians):")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        store = MetricStore(f"sqlite:///{tmp}/bench.db")
        for name, path in datasets:
            # Interleaved repeats (bare, monitored, bare, monitored, ...) so drift and warm-up hit both alike;
            # step 0 includes one-off set-up in both runs and is left out.
            runs = [bench_steps(path, args.steps, store) for _ in range(args.repeats)]
            pool = {k: [x for r in runs for x in r[k][1:]] for k in runs[0]}
            bare = statistics.median(pool["bare"])
            train = statistics.median(pool["train"])
            mon = statistics.median(pool["monitor"])
            probe = statistics.median(pool["probe"])
            store_ms = statistics.median(pool["store"]) * 1e3
            print(f"   {name:<16} bare step {bare * 1e3:8.1f} ms | monitored step {train * 1e3:8.1f} ms | "
                  f"monitor {mon * 1e3:6.2f} ms = {100 * mon / bare:5.2f} % of a step (goal <= 1 %) | "
                  f"latency probe {probe * 1e3:6.1f} ms (excluded from wall_s/cpu_s) | "
                  f"SQLite row write {store_ms:.2f} ms (overlaps the next step)")  # fmt: skip


if __name__ == "__main__":
    main()
