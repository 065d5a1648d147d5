"""Throughput with several workers, and what co-located workers do to a trial's measured wall_s and infer_ms.

1. Trials per minute on the digits study (studies/digits_mlp.toml, ``n_trials`` cut to ``--trials``) with 1, 2
   and 4 workers, on SQLite and PostgreSQL (``SYSPRUNE_BENCH_POSTGRES_URL``, else ``SYSPRUNE_TEST_POSTGRES_URL``;
   left out when neither is set), as local worker processes (``--workers N``, ``--oversubscribe`` beyond the cores)
   and as Ray tasks on a local cluster of ``os.cpu_count()`` CPUs (left out without ray). The rate is taken from
   the trials' own start/complete times in the database (first start to last completion): worker start-up (an
   interpreter and a fork server each) is not in it.
2. One fixed configuration (digits MLP, width 256, 2 layers) run ``--repeats`` times alone, then with 2 workers
   side by side (each pinned to its own core), then alone again: the ratio of the medians of the per-trial final
   ``wall_s`` and ``infer_ms`` with 2 workers to alone (goal: within 10 %).

Prints the machine and its load average before and after. ``make bench-load``; 6-10 minutes on 2 cores (worker
start-up, an interpreter and a fork server per worker, dominates each run's end-to-end time).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

import optuna

REPO = Path(__file__).resolve().parents[1]
FIXED = {"width": 256, "n_layers": 2, "lr": 0.01, "dropout": 0.1, "weight_decay": 1e-5, "batch_size": 64}


def _machine() -> str:
    return (
        f"{platform.node()} · {platform.processor() or platform.machine()} · {os.cpu_count()} cores "
        f"(affinity {len(os.sched_getaffinity(0))}) · Python {platform.python_version()} · "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )


def _rate(url: str, name: str) -> tuple[int, float]:
    trials = [
        t
        for t in optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)
        if t.datetime_complete is not None
    ]
    first = min(t.datetime_start for t in trials)
    last = max(t.datetime_complete for t in trials)
    return len(trials), len(trials) / max((last - first).total_seconds(), 1e-9) * 60.0


def _run(spec, url: str, name: str, *, workers: int, ray: bool, cache_dir: str) -> float:
    from sysprune.study._runner import run_study

    t = time.perf_counter()
    run_study(
        spec,
        storage_url=url,
        study_name=name,
        workers=workers,
        cache_dir=cache_dir,
        oversubscribe=True,
        ray_address="" if ray else None,
    )
    return time.perf_counter() - t


def throughput(spec, urls: dict[str, str], executors: list[str], counts: list[int], cache_dir: str) -> None:
    print(
        f"\n1. trials per minute, digits study ({spec.n_trials} trials x {spec.steps} steps, pruner "
        f"{spec.pruner.policy}); rate from the trials' own times, end-to-end seconds beside it"
    )
    print(f"   {'storage':<11} {'executor':<9} {'workers':>7} {'trials':>6} {'trials/min':>10} {'end-to-end s':>12}")
    for storage, url in urls.items():
        for executor in executors:
            for n in counts:
                name = f"bench_load_{uuid.uuid4().hex[:8]}"
                wall = _run(spec, url, name, workers=n, ray=executor == "ray", cache_dir=cache_dir)
                done, rate = _rate(url, name)
                print(f"   {storage:<11} {executor:<9} {n:>7} {done:>6} {rate:>10.1f} {wall:>12.1f}", flush=True)


def _fixed_metrics(spec, url: str, *, workers: int, repeats: int, cache_dir: str) -> tuple[list, list]:
    name = f"bench_load_fixed_{uuid.uuid4().hex[:8]}"
    _run(replace(spec, n_trials=repeats * workers), url, name, workers=workers, ray=False, cache_dir=cache_dir)
    trials = optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)
    return [t.user_attrs["wall_s"] for t in trials], [t.user_attrs["infer_ms"] for t in trials]


def co_location(spec, url: str, repeats: int, cache_dir: str) -> None:
    from sysprune.models._space import FixedParam

    spec = replace(
        spec,
        search_space={k: FixedParam(v) for k, v in FIXED.items()},
        pruner=replace(spec.pruner, policy="none", params={}),
    )
    runs = {}
    for label, workers in (("alone", 1), ("2 workers", 2), ("alone again", 1)):
        runs[label] = _fixed_metrics(spec, url, workers=workers, repeats=repeats, cache_dir=cache_dir)
    alone_wall = statistics.median(runs["alone"][0] + runs["alone again"][0])
    alone_infer = statistics.median(runs["alone"][1] + runs["alone again"][1])
    print(f"\n2. one fixed configuration {FIXED}, {spec.steps} steps, {repeats} trials per worker (SQLite)")
    print(f"   {'':<12} {'wall_s median':>13} {'infer_ms median':>15}  (min..max)")
    for label, (wall, infer) in runs.items():
        print(
            f"   {label:<12} {statistics.median(wall):>13.4f} {statistics.median(infer):>15.6f}  "
            f"({min(wall):.4f}..{max(wall):.4f} s; {min(infer):.6f}..{max(infer):.6f} ms)"
        )
    pair_wall, pair_infer = (statistics.median(x) for x in runs["2 workers"])
    print(
        f"   ratio 2 workers / alone: wall_s {pair_wall / alone_wall:.3f}, infer_ms {pair_infer / alone_infer:.3f}"
        f"  (goal: within 10 %, i.e. <= 1.10)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=10, help="trials per throughput run (default 10)")
    ap.add_argument("--repeats", type=int, default=4, help="trials of the fixed configuration per worker (default 4)")
    ap.add_argument("--workers", default="1,2,4", help="worker counts (default 1,2,4)")
    args = ap.parse_args()

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    from sysprune.spec import load_spec

    spec = load_spec(REPO / "studies" / "digits_mlp.toml")
    spec = replace(spec, n_trials=args.trials)
    print("bench-load:", _machine())
    tmp = Path(tempfile.mkdtemp(prefix="sysprune-bench-load-"))
    cache_dir = str(tmp / "cache")
    urls = {"sqlite": f"sqlite:///{tmp / 'load.db'}"}
    pg = os.environ.get("SYSPRUNE_BENCH_POSTGRES_URL") or os.environ.get("SYSPRUNE_TEST_POSTGRES_URL")
    if pg:
        urls["postgresql"] = pg
    else:
        print("   (PostgreSQL left out: set SYSPRUNE_BENCH_POSTGRES_URL)")
    executors = ["local"]
    try:
        import ray

        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level="WARNING")
        executors.append("ray")
    except ImportError:
        print("   (Ray left out: pip install 'sysprune[ray]')")
    try:
        throughput(spec, urls, executors, [int(n) for n in args.workers.split(",")], cache_dir)
    finally:
        if "ray" in executors:
            ray.shutdown()
    co_location(spec, f"sqlite:///{tmp / 'fixed.db'}", args.repeats, cache_dir)
    print("\nafter:", _machine())


if __name__ == "__main__":
    main()
