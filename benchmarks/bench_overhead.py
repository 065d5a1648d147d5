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
3. A configuration rejected at the pre-training probe (step -1): the CPU the fork, the model's build and the probe
   cost (the trial process's own total, and the worker's CPU for it), on the digits study's settings.
4. The digits study's search: its total measurement overhead (the parent's samples + the latency probes, which
   now run at step -1 and the last step only) as a share of the trials' compute, beside probing after every step;
   and how far ``infer_ms`` measured once (last step; step -1 on untrained weights) is from the median of an
   every-step probe of the same trial.

Goals: start overhead <= 0.3 s; monitor overhead <= 1 % of step time (issue 2); rejection at step -1 <= 50 ms of
CPU; total measurement overhead <= 2 % of the search's compute, ``infer_ms`` within 5 % of the every-step probe
(issue 9). Prints the machine it ran on and its load (a busy machine inflates every figure).
Usage: python benchmarks/bench_overhead.py [--trials 10] [--steps 8] [--subsample 12000] [--repeats 2] [--configs 6]
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
from typing import Any

from sysprune.datasets import prepare
from _machine import cpu_name
from sysprune.storage._step_table import MetricStore
from sysprune.trial._job import TrialJob
from sysprune.trial._process import TrialProcess
from sysprune.trial._forkserver import _start, warm_up

PARAMS = {"n_layers": 2, "width": 256, "dropout": 0.1, "lr": 1e-3, "weight_decay": 1e-4, "batch_size": 128}


def machine() -> str:
    cpu = cpu_name()
    return f"{platform.node()} | {cpu} | {os.cpu_count()} CPUs | Linux {platform.release()} | Python {platform.python_version()}"


def bench_start(path: str, n: int) -> list[float]:
    job = TrialJob(model="torch_mlp", params=PARAMS, dataset_path=path, seed=0, steps=1)
    out = []
    for _ in range(n):
        tp = TrialProcess(job)
        out.append(tp.ready_s)
        tp.close()
    return out


def fresh_interpreter_s(n: int = 2) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch, sklearn.linear_model"], check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_steps(path: str, steps: int, store: MetricStore) -> dict[str, list[float]]:
    import multiprocessing as mp

    from _bare_child import bare

    # probe_every=1: a latency probe after every step, so its per-probe cost can be printed beside the monitor's
    job = TrialJob(model="torch_mlp", params=PARAMS, dataset_path=path, seed=0, steps=steps, probe_every=1)
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
            if r.step < 0:  # the pre-training probe: the model's build, not a training step
                t_go = t2
                continue
            store.write_step(study_name="bench", trial_id=1, trial_number=0, step=r.step, metrics=r.metrics)
            store_s.append(time.perf_counter() - t2)
            probe.append(tp.last_probe_s)
            train.append(t1 - t_go - tp.last_probe_s - tp.last_sample_s)  # child training + pipe latency
            monitor.append(tp.last_sample_s + (t2 - t1))
            t_go = t2
    return {"bare": bare_times, "train": train, "monitor": monitor, "probe": probe, "store": store_s}


def draw_configs(spec, n: int) -> list[dict]:
    import optuna

    from sysprune.models._space import sample

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=spec.seed))
    return [sample(spec.search_space, study.ask()) for _ in range(n)]


def bench_rejection(path: str, spec, configs: list[dict]) -> dict[str, list[float]]:
    """Start a trial process, take its pre-training probe, reject it (stop) — as a pruner does at step -1."""
    out: dict[str, list[float]] = {"child_cpu": [], "worker_cpu": [], "wall": []}
    for params in configs:
        job = TrialJob(
            model=spec.model,
            params=params,
            dataset_path=path,
            seed=0,
            steps=spec.steps,
            threads=spec.trial.threads,
            infer_batch_size=spec.trial.infer_batch_size,
            infer_repeats=spec.trial.infer_repeats,
        )
        c0, t0 = time.process_time(), time.perf_counter()
        with TrialProcess(job) as tp:
            for r in tp.steps():
                tp.decide(stop=True)  # rejected on its structural metrics: nothing trained
        out["wall"].append(time.perf_counter() - t0)
        out["worker_cpu"].append(time.process_time() - c0)
        out["child_cpu"].append(tp.total_cpu_s)
    return out


def bench_search(path: str, spec, configs: list[dict], probe_every: int) -> dict[str, Any]:
    """Run each configuration for the study's steps; sum what measuring cost and keep each step's infer_ms."""
    monitor = probes = compute = 0.0
    infer: list[dict[int, float]] = []
    for params in configs:
        job = TrialJob(
            model=spec.model,
            params=params,
            dataset_path=path,
            seed=0,
            steps=spec.steps,
            threads=spec.trial.threads,
            infer_batch_size=spec.trial.infer_batch_size,
            infer_repeats=spec.trial.infer_repeats,
            probe_every=probe_every,
        )
        seen: dict[int, float] = {}
        with TrialProcess(job) as tp:
            for r in tp.steps():
                monitor += tp.last_sample_s
                probes += tp.last_probe_s
                if r.metrics.get("infer_ms") is not None:
                    seen[r.step] = r.metrics["infer_ms"]
                tp.decide(stop=False)
        compute += tp.total_wall_s
        infer.append(seen)
    return {"monitor": monitor, "probes": probes, "compute": compute, "infer": infer}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--subsample", type=int, default=12000)
    ap.add_argument("--repeats", type=int, default=2, help="interleaved bare/monitored runs per dataset")
    ap.add_argument("--configs", type=int, default=6, help="digits-study configurations for parts 3 and 4")
    args = ap.parse_args()

    print(f"machine: {machine()}")
    print(
        f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
        f"(other work on this machine inflates every figure below)"
    )
    warm = warm_up()
    print(f"fork server start (once per worker): {warm:.2f} s")
    digits = str(prepare("digits", seed=0))
    starts = bench_start(digits, args.trials)
    fresh = fresh_interpreter_s()
    print(f"\n1. per-trial process start overhead ({args.trials} trials, fork server warm):")
    print(
        f"   median {statistics.median(starts) * 1e3:.1f} ms, max {max(starts) * 1e3:.1f} ms"
        f"  (goal <= 300 ms; a fresh interpreter importing torch + scikit-learn: {fresh:.2f} s)"
    )

    datasets = [("digits", digits)]
    try:
        datasets.append((f"mnist ({args.subsample})", str(prepare("mnist", seed=0, subsample=args.subsample))))
    except Exception as e:  # no MNIST on this machine: report digits only
        print(f"   (mnist unavailable: {e})")
    print(
        f"\n2. monitor overhead per step (torch_mlp {PARAMS['n_layers']}x{PARAMS['width']}, 1 thread, "
        f"{args.steps} steps; medians):"
    )
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
            print(
                f"   {name:<16} bare step {bare * 1e3:8.1f} ms | monitored step {train * 1e3:8.1f} ms | "
                f"monitor {mon * 1e3:6.2f} ms = {100 * mon / bare:5.2f} % of a step (goal <= 1 %) | "
                f"latency probe {probe * 1e3:6.1f} ms (excluded from wall_s/cpu_s) | "
                f"SQLite row write {store_ms:.2f} ms (overlaps the next step)"
            )

    search_part(args.configs)
    print(f"\nload average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def search_part(n_configs: int) -> None:
    from sysprune.spec import load_spec

    spec = load_spec(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "studies", "digits_mlp.toml"))
    d = spec.dataset
    path = str(prepare(d.name, seed=spec.seed, val_fraction=d.val_fraction, test_fraction=d.test_fraction))
    configs = draw_configs(spec, n_configs)

    rej = bench_rejection(path, spec, configs)
    print(
        f"\n3. a configuration rejected at the pre-training probe (digits study, {len(configs)} configurations, "
        f"fork + build + probe, nothing trained; medians):"
    )
    print(
        f"   trial process CPU {statistics.median(rej['child_cpu']) * 1e3:.1f} ms (max "
        f"{max(rej['child_cpu']) * 1e3:.1f}) + worker CPU {statistics.median(rej['worker_cpu']) * 1e3:.1f} ms = "
        f"{statistics.median([a + b for a, b in zip(rej['child_cpu'], rej['worker_cpu'])]) * 1e3:.1f} ms "
        f"(goal <= 50 ms) | wall {statistics.median(rej['wall']) * 1e3:.1f} ms"
    )

    once = bench_search(path, spec, configs, probe_every=0)
    every = bench_search(path, spec, configs, probe_every=1)
    print(
        f"\n4. the digits study's search ({len(configs)} configurations x {spec.steps} steps, "
        f"infer_repeats {spec.trial.infer_repeats}, batch {spec.trial.infer_batch_size}):"
    )
    for name, r in (("structural at step -1 + last step", once), ("probe after every step (before)", every)):
        share = (r["monitor"] + r["probes"]) / r["compute"]
        print(
            f"   {name:<34} monitor {r['monitor'] * 1e3:7.1f} ms + probes {r['probes'] * 1e3:7.1f} ms of "
            f"{r['compute']:.2f} s trial-process wall = {100 * share:5.2f} % (goal <= 2 %)"
        )
    last_err, pre_err = [], []
    for seen in every["infer"]:
        ref = statistics.median(v for s, v in seen.items() if s >= 0)
        last_err.append(abs(seen[max(seen)] / ref - 1))
        pre_err.append(abs(seen[-1] / ref - 1))
    print(
        f"   infer_ms measured once vs the median of an every-step probe (same trial): last step "
        f"median {100 * statistics.median(last_err):.1f} %, max {100 * max(last_err):.1f} % | step -1 (untrained) "
        f"median {100 * statistics.median(pre_err):.1f} %, max {100 * max(pre_err):.1f} % (goal <= 5 %)"
    )


if __name__ == "__main__":
    main()
