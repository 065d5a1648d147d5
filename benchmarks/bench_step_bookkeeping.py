"""Benchmark: the parent's bookkeeping per step — ``sysprune.report`` + ``sysprune.should_prune`` — as the runner's
step loop calls them (SQLite in WAL mode, a ResourceBudgetPruner within budget, 13 metrics per step).

Prints the median and p90 per step over ``--trials`` x ``--steps`` steps, and the machine. Run it with
``PYTHONPATH`` pointing at two checkouts to compare them. Usage:
    python benchmarks/bench_step_bookkeeping.py [--trials 20] [--steps 20] [--storage sqlite|memory|journal]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
import warnings

import optuna

import sysprune
from sysprune.metrics._registry import METRIC_NAMES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--storage", choices=("sqlite", "memory", "journal"), default="sqlite")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore")  # heartbeats outside Study.optimize: as the runner uses them, on purpose
    with tempfile.TemporaryDirectory() as tmp:
        if args.storage == "sqlite":
            from sysprune.study._open import make_storage

            storage = make_storage(f"sqlite:///{tmp}/b.db")
        elif args.storage == "journal":
            from optuna.storages import JournalStorage
            from optuna.storages.journal import JournalFileBackend

            storage = JournalStorage(JournalFileBackend(f"{tmp}/j.log"))
        else:
            storage = optuna.storages.InMemoryStorage()
        pruner = sysprune.ResourceBudgetPruner({"wall_s": 1e9, "peak_rss_mb": 1e9}, max_steps=args.steps)
        study = optuna.create_study(storage=storage, direction="maximize", pruner=pruner)
        times = []
        for _ in range(args.trials):
            trial = study.ask()
            for step in range(args.steps):
                metrics = {m: float(step + 1) for m in METRIC_NAMES}
                t = time.perf_counter()
                sysprune.report(trial, step, metrics["val_accuracy"] / 100, metrics)
                pruned = sysprune.should_prune(trial)
                times.append(time.perf_counter() - t)
                assert not pruned
            study.tell(trial, 0.5)
    times.sort()
    print(
        f"{args.storage}: report+should_prune per step over {len(times)} steps: median "
        f"{1e3 * statistics.median(times):.3f} ms, p90 {1e3 * times[int(0.9 * len(times))]:.3f} ms "
        f"({platform.node()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f})"
    )


if __name__ == "__main__":
    main()
