"""Benchmark: how long a pruning decision takes in a big SQLite study.

Builds a SQLite study with N finished trials (default 10,000: 80 % complete, 20 % pruned, 10 % over budget with a
positive ``budget:wall_s`` constraint; 10 intermediate values each) plus their per-step metrics (10 steps x 4
metrics), written with bulk inserts into Optuna's tables and sysprune's metric table (seconds, not the minutes
``study.add_trials`` would take). Then, for each pruner, runs fresh trials on that storage through the step loop
every objective uses — ``sysprune.report`` then ``sysprune.should_prune`` — and times each decision (the
``should_prune`` call) at steps 3..9, where every pruner does its full work (the curve pruner fits from step 3).
The budgets are generous and the curves promising, so no timed trial is pruned: these are the decisions a study
makes thousands of times. Timed trials end as FAIL so that they leave the study they are timed against unchanged.

Compared: Optuna's MedianPruner (on the same storage), ResourceBudgetPruner (metrics from the in-process cache,
and from the metric store with the cache emptied before each decision; ``infer_ms`` with its lower bound
``infer_ms_lo``, so the noise-aware rule runs), ThresholdBudgetPruner, CurvePruner, and CombinedPruner of
budget + curve. The first decision of each pruner is reported apart ("cold"): Optuna loads the trial list into
its cache and the curve pruner digests every finished trial once.

Then the study's readers (issue 16): ``sysprune.load_step_metrics`` against Optuna's ``trials_dataframe()`` on the
same storage, and the count a worker's slot claim runs under the database lock.

Goals: median <= 10 ms per decision with 10,000 finished trials (issue 3); ``load_step_metrics`` within 2x of
``trials_dataframe()`` (issue 16).
Usage: python benchmarks/bench_pruners.py [--trials 10000] [--trials 100] [--timed-trials 30] [--db DIR]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna
import sqlalchemy as sa

from sysprune import _compat
from _machine import cpu_name
from sysprune.pruners._step_api import report, should_prune
from sysprune.storage._step_table import create_table, step_metrics, tune_sqlite_engine
from sysprune.pruners import CombinedPruner, CurvePruner, ResourceBudgetPruner, ThresholdBudgetPruner, _steps

STEPS = 10
STUDY = "bench"
models = _compat.rdb_models()  # Optuna's ORM models: the study is bulk-inserted
BUDGETS = {"wall_s": 1000.0, "peak_rss_mb": 100_000.0, "infer_ms": 100.0}


def machine() -> str:
    cpu = cpu_name()
    return (
        f"{platform.platform()} | {cpu} | {os.cpu_count()} CPUs | Python {platform.python_version()} | "
        f"optuna {optuna.__version__} | SQLite {sqlite3.sqlite_version}"
    )


def build(url: str, n_trials: int, seed: int = 0) -> float:
    """Create the study and bulk-insert ``n_trials`` finished trials with their step metrics. Returns seconds."""
    t0 = time.perf_counter()
    storage = optuna.storages.RDBStorage(url)
    tune_sqlite_engine(storage.engine)
    study = optuna.create_study(storage=storage, study_name=STUDY, direction="maximize")
    study_id = _compat.study_id(study)
    rng = np.random.default_rng(seed)
    dist_json = optuna.distributions.distribution_to_json(optuna.distributions.FloatDistribution(0.0, 1.0))
    start = datetime.datetime(2026, 1, 1)

    trials, values, inter, params, sysattrs, metric_rows = [], [], [], [], [], []
    FIN = models.TrialValueModel.TrialValueType.FINITE
    IFIN = models.TrialIntermediateValueModel.TrialIntermediateValueType.FINITE
    for number in range(n_trials):
        trial_id = number + 1
        final = float(rng.uniform(0.5, 0.95))
        alpha = float(rng.uniform(0.5, 1.5))
        curve = [final - (final - 0.1) * (s + 1) ** -alpha * (1 - (s + 1) / (STEPS + 1)) for s in range(STEPS)]
        pruned = rng.random() < 0.2
        n_steps = int(rng.integers(2, STEPS)) if pruned else STEPS
        infeasible = rng.random() < 0.1
        state = optuna.trial.TrialState.PRUNED if pruned else optuna.trial.TrialState.COMPLETE
        trials.append(
            dict(
                trial_id=trial_id,
                number=number,
                study_id=study_id,
                state=state,
                datetime_start=start + datetime.timedelta(seconds=number),
                datetime_complete=start + datetime.timedelta(seconds=number + 1),
            )
        )
        values.append(dict(trial_id=trial_id, objective=0, value=curve[n_steps - 1], value_type=FIN))
        inter.extend(
            dict(trial_id=trial_id, step=s, intermediate_value=curve[s], intermediate_value_type=IFIN)
            for s in range(n_steps)
        )
        params.append(
            dict(trial_id=trial_id, param_name="x", param_value=float(rng.random()), distribution_json=dist_json)
        )
        wall = np.cumsum(rng.uniform(0.5, 1.5, n_steps)) + 2.0
        sysattrs.append(
            dict(
                trial_id=trial_id,
                key="constraints:budget:wall_s",
                value_json=json.dumps(float(wall[-1] - (wall[-1] * 0.8 if infeasible else wall[-1] * 1.2))),
            )
        )
        for s in range(n_steps):
            for metric, value in (
                ("wall_s", wall[s]),
                ("cpu_s", wall[s] * 0.9),
                ("peak_rss_mb", 300.0 + s),
                ("infer_ms", 0.5),
            ):
                metric_rows.append(
                    dict(
                        study_name=STUDY,
                        trial_id=trial_id,
                        trial_number=number,
                        step=s,
                        metric=metric,
                        value=float(value),
                    )
                )
    with storage.engine.begin() as conn:
        conn.execute(sa.insert(models.TrialModel.__table__), trials)
        conn.execute(sa.insert(models.TrialValueModel.__table__), values)
        conn.execute(sa.insert(models.TrialIntermediateValueModel.__table__), inter)
        conn.execute(sa.insert(models.TrialParamModel.__table__), params)
        conn.execute(sa.insert(models.TrialSystemAttributeModel.__table__), sysattrs)
    create_table(url)  # sysprune's table (MetricStore creates it only on its first write)
    engine = sa.create_engine(url)
    tune_sqlite_engine(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(step_metrics), metric_rows)
    engine.dispose()
    storage.engine.dispose()
    return time.perf_counter() - t0


def pruners() -> dict[str, optuna.pruners.BasePruner]:
    return {
        "optuna MedianPruner": optuna.pruners.MedianPruner(n_startup_trials=5),
        "ResourceBudgetPruner (cache)": ResourceBudgetPruner(BUDGETS, max_steps=STEPS),
        "ResourceBudgetPruner (store read)": ResourceBudgetPruner(BUDGETS, max_steps=STEPS),
        "ThresholdBudgetPruner (cache)": ThresholdBudgetPruner(BUDGETS),
        "CurvePruner": CurvePruner(max_steps=STEPS),
        "CombinedPruner(budget, curve)": CombinedPruner(
            ResourceBudgetPruner(BUDGETS, max_steps=STEPS), CurvePruner(max_steps=STEPS)
        ),
    }


def time_pruner(
    url: str,
    name: str,
    pruner: optuna.pruners.BasePruner,
    n_timed: int,
    seed: int,
    verbose: bool = False,
    study_name: str = STUDY,
) -> dict:
    study = optuna.load_study(study_name=study_name, storage=url, pruner=pruner)
    tune_sqlite_engine(_compat.rdb_backend(_compat.study_storage(study)).engine)
    t = time.perf_counter()
    study.get_trials(deepcopy=False)  # Optuna's own trial cache, as any long-running worker has it
    load_s = time.perf_counter() - t
    store_read = "store read" in name
    rng = np.random.default_rng(seed)
    decisions, reports, cold, pruned = [], [], None, 0
    for _ in range(n_timed):
        trial = study.ask()
        wall = 2.0
        for step in range(STEPS):
            value = 0.995 - 0.3 * (step + 1) ** -1.0 + float(rng.normal(0, 0.002))  # heading for 0.965
            wall += float(rng.uniform(0.9, 1.1))
            metrics = {
                "wall_s": wall,
                "cpu_s": wall * 0.9,
                "peak_rss_mb": 300.0 + step,
                "infer_ms": 0.5,
                "infer_ms_lo": 0.45,
            }
            t = time.perf_counter()
            report(trial, step, value, metrics)
            reports.append(time.perf_counter() - t)
            if store_read:
                _steps.clear()
            t = time.perf_counter()
            prune = should_prune(trial)
            dt = time.perf_counter() - t
            if step >= 3:
                if cold is None:
                    cold = dt  # the first full decision
                else:
                    decisions.append(dt)
            if prune:
                pruned += 1
                if verbose:
                    print(
                        "   pruned:",
                        _compat.study_storage(study).get_trial_user_attrs(_compat.trial_id(trial)).get("prune_reason"),
                    )
                break
        # Timed trials end as FAIL, so that they do not change the study they are timed against (as COMPLETE
        # trials they would raise the best value the curve pruner compares with).
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    ms = np.array(decisions) * 1e3
    return {
        "name": name,
        "n": len(decisions),
        "median": float(np.median(ms)),
        "p90": float(np.percentile(ms, 90)),
        "max": float(ms.max()),
        "cold": cold * 1e3,
        "report": statistics.median(reports) * 1e3,
        "pruned": pruned,
        "load_s": load_s,
    }


def median_seconds(readers: dict[str, Callable[[], object]], repeats: int) -> list[tuple[str, float]]:
    """(name, median wall seconds over ``repeats`` calls) of each reader, in order."""
    out = []
    for name, read in readers.items():
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            read()
            times.append(time.perf_counter() - t0)
        out.append((name, statistics.median(times)))
    return out


def time_readers(url: str, repeats: int = 3) -> list[tuple[str, float]]:
    """Median seconds of the big study's readers (issue 16): ``load_step_metrics`` against plain Optuna's
    ``trials_dataframe()`` on the same storage (the anchor), and the count a worker's slot claim runs under the
    database lock (``count_in_database``: one indexed query) against counting every trial read from the storage."""
    import sysprune
    from sysprune.study._counting import count, count_in_database

    study = optuna.load_study(study_name=STUDY, storage=url)
    engine = _compat.rdb_backend(_compat.study_storage(study)).engine
    storage, sid = _compat.unwrap_storage(_compat.study_storage(study)), _compat.study_id(study)
    readers = {
        "optuna trials_dataframe()  (anchor)": lambda: optuna.load_study(
            study_name=STUDY, storage=url
        ).trials_dataframe(),
        "sysprune.load_step_metrics": lambda: sysprune.load_step_metrics(url, STUDY),
        "slot claim's count (indexed query)": lambda: count_in_database(engine, sid),
        "the count over get_all_trials": lambda: count(storage.get_all_trials(sid, deepcopy=False)),
    }
    return median_seconds(readers, repeats)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, action="append", help="finished trials in the study (repeatable)")
    parser.add_argument("--timed-trials", type=int, default=30, help="fresh trials per pruner (7 timed steps each)")
    parser.add_argument("--db", default=None, help="directory for the SQLite files (default: a temp dir)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", action="store_true", help="print the reason of any timed trial pruned")
    args = parser.parse_args(argv)
    sizes = args.trials or [10_000]
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(args.db or tmp)
        directory.mkdir(parents=True, exist_ok=True)
        for n in sizes:
            path = directory / f"bench_pruners_{n}.db"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            url = f"sqlite:///{path}"
            build_s = build(url, n, args.seed)
            print(f"\nstudy: {n:,} finished trials, {STEPS} steps each, SQLite (WAL) — built in {build_s:.1f} s")
            print(
                f"{'pruner':<36} {'decisions':>9} {'median ms':>10} {'p90 ms':>8} {'max ms':>8} {'cold ms':>8}"
                f" {'report ms':>10} {'pruned':>6}"
            )
            for i, (name, pruner) in enumerate(pruners().items()):
                _steps.clear()
                r = time_pruner(url, name, pruner, args.timed_trials, args.seed + i, args.verbose)
                print(
                    f"{r['name']:<36} {r['n']:>9} {r['median']:>10.2f} {r['p90']:>8.2f} {r['max']:>8.2f}"
                    f" {r['cold']:>8.1f} {r['report']:>10.2f} {r['pruned']:>6}"
                )
                sys.stdout.flush()
            readers = time_readers(url)
            print(f"\n{'reader (median of 3)':<36} {'s':>8} {'x anchor':>9}")
            for name, sec in readers:
                print(f"{name:<36} {sec:>8.3f} {sec / readers[0][1]:>9.2f}")
            print("goal (issue 16): load_step_metrics within 2x of trials_dataframe()")


if __name__ == "__main__":
    main()
