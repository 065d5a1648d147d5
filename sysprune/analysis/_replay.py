"""``sysprune replay``: the real pruners over a recorded study, in the recorded order and in shuffled orders.

A recording is a study run with policy ``none``: every trial's full curve and metrics are in the step table. For
each policy and order, a fresh in-memory Optuna study (same name and directions as the recording, unless told
otherwise, since Hyperband assigns brackets from the study name and trial number) is fed the recorded trials one by
one through the very calls the runner makes — ``ask``, then per step ``sysprune.report`` (the step -1 pre-training
row first, when the recording has one) and ``sysprune.should_prune``, then the budget constraints and ``tell`` — so
a replay in recorded order reproduces the decisions a live run of that policy would take on the same trials (the
runner, too, decides on the step's stored values; the structural metrics of step 0 follow the replayed pruner's
request at step -1, as the runner's probe schedule does: :func:`first_step_row`). With a random sampler the pruner's effect is then separated
from the sampler's: the trials are the same whatever the pruner does.

Counterfactual compute of a trial is its recorded cumulative training CPU (``cpu_s``, cumulative since the trial
process started) at the step where it stops — the pruned step, its last step if it runs to the end, the
pre-training row's ``cpu_s`` if pruned there — so it is exact for the training work and leaves out what the
recording measured outside ``cpu_s`` (process start, latency probes, the worker). A **false prune** is an order in
which the truly best feasible trial of the recording (best COMPLETE trial whose final metrics are within every
budget) is pruned.
"""

from __future__ import annotations

import csv
import math
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from sysprune import _attrs, _compat
from sysprune.metrics._registry import PRETRAIN_STEP, metric_names
from sysprune.spec import SpecError
from sysprune.analysis import _stats
from sysprune.pruners._base import wants_second_reading
from sysprune.pruners._step_api import report, should_prune
from sysprune.pruners import build_pruner, record_constraints, validate_policy
from sysprune.analysis._compare import DEFAULT_PARAMS
from sysprune.analysis._recording import RecordedTrial, Recording
from sysprune.analysis._page import write_page
from sysprune.metrics._format import fmt, fmt_budgets


@dataclass
class OrderResult:
    """One policy over one order of the recorded trials."""

    order: int  # 0 = recorded order
    pruned: dict[int, int]  # recorded trial number → step it was pruned at
    reasons: Counter
    compute: float
    best_pruned: bool | None  # the truly best feasible trial was pruned (None: there is none)
    best_found: float | None  # best feasible final value among the trials not pruned
    ctt: float | None  # compute until a kept feasible trial is within tolerance of the true best


def first_step_row(t: RecordedTrial, row: dict[str, float | None], *, second: bool) -> dict[str, float | None]:
    """Step 0's metrics as a live run of the replayed policy would have them. Live, the structural metrics are
    measured after step 0 only when the pruner asks at step -1 (:meth:`DecidingPruner.wants_second_reading`): without
    the request they are missing; with it, a recording that did not measure them there lends the trial's last
    reading of each — an independent probe of the same, unchanged structure, as the live step-0 probe would be
    (recordings made with probes at step 0 keep their own). A trial whose last step is step 0 keeps its row."""
    if not t.steps or t.steps[-1][0] == 0:
        return row
    structural = set(metric_names("structural"))
    out = dict(row)
    if not second:
        for name in structural & set(row):
            out[name] = None
        return out
    for name in structural:
        if out.get(name) is None:
            later = [m.get(name) for s, _, m in t.steps if s > 0 and m.get(name) is not None]
            if later:
                out[name] = later[-1]
    return out


def simulate(
    rec: Recording,
    pruner: optuna.pruners.BasePruner,
    order: list[RecordedTrial],
    *,
    tolerance: float,
    study_name: str | None = None,
    order_index: int = 0,
) -> OrderResult:
    """Feed ``order`` through ``pruner`` on an in-memory study, exactly as the runner does live."""

    study = optuna.create_study(
        storage=optuna.storages.InMemoryStorage(),
        sampler=optuna.samplers.RandomSampler(0),
        pruner=pruner,
        study_name=study_name or rec.study_name,
        directions=rec.directions,
    )
    best = rec.best()
    single = len(rec.directions) == 1
    sign = 1 if rec.directions[0] == "maximize" else -1
    pruned: dict[int, int] = {}
    reasons: Counter = Counter()
    compute, best_found, ctt = 0.0, None, None
    for t in order:
        trial = study.ask()
        stop = None
        last: dict[str, float | None] = {}
        second = False  # whether the pruner asked at step -1 for a structural reading after step 0
        for step, value, metrics in t.steps:
            if step == 0 and t.steps[0][0] == PRETRAIN_STEP:  # recorded by the runner: its probe schedule
                metrics = first_step_row(t, metrics, second=second)
            last = metrics
            report(trial, step, value if (single and step >= 0) else None, metrics)
            if should_prune(trial):
                stop = step
                break
            if step == PRETRAIN_STEP:
                second = wants_second_reading(pruner, metrics)
        if rec.budgets:
            record_constraints(trial, rec.budgets, last)
        if stop is not None:
            pruned[t.number] = stop
            detail = (
                _compat.study_storage(study).get_trial_user_attrs(_compat.trial_id(trial)).get(_attrs.PRUNE_DETAIL)
                or {}
            )
            reasons[detail.get("rule", "unknown")] += 1
            study.tell(trial, state=TrialState.PRUNED)
            compute += t.cost_at(stop)
            continue
        compute += t.cost_at(None)
        if t.values is None:  # a hard-capped trial of the recording: it ended pruned there too
            study.tell(trial, state=TrialState.PRUNED)
            continue
        study.tell(trial, t.values if not single else t.values[0])
        if single and rec.feasible(t) and (best_found is None or sign * t.values[0] > sign * best_found):
            best_found = t.values[0]
            if (
                ctt is None
                and best is not None
                and _stats.within(best_found, best.first_value(), tolerance, rec.directions[0])
            ):
                ctt = compute
    return OrderResult(
        order_index, pruned, reasons, compute, None if best is None else best.number in pruned, best_found, ctt
    )


def orders(rec: Recording, k: int, seed: int = 0) -> list[list[RecordedTrial]]:
    """The recorded order (by trial number) and ``k`` shuffled ones (reproducible from ``seed``)."""
    base = sorted(rec.trials, key=lambda t: t.number)
    rng = random.Random(seed)
    out = [base]
    for _ in range(k):
        o = list(base)
        rng.shuffle(o)
        out.append(o)
    return out


@dataclass
class PolicyReplay:
    policy: str
    results: list[OrderResult] = field(default_factory=list)
    seconds: float = 0.0  # CPU-ish: the sum of its simulations' durations, whichever process ran them


@dataclass
class ReplayResult:
    recording: Recording
    policies: list[str]
    n_orders: int
    tolerance: float
    replays: dict[str, PolicyReplay]
    seconds: float


def build_policy_pruner(policy: str, rec: Recording) -> optuna.pruners.BasePruner:

    try:
        policy, params = validate_policy(
            policy,
            dict(DEFAULT_PARAMS.get(policy, {})),
            steps=rec.steps,
            budgets=rec.budgets,
            directions=rec.directions,
        )
        return build_pruner(policy, params, budgets=rec.budgets, steps=rec.steps)
    except SpecError as e:
        raise e.within(f"--policies {policy}") from None
    except ValueError as e:  # a policy of one's own whose pruner refused its arguments in its own words
        raise SpecError(f"--policies {policy}: {e}") from None


_JOB: dict[str, Any] = {}


def _one(task: tuple[str, int]) -> tuple[str, int, OrderResult, float]:
    """One (policy, order) simulation in a pool worker (the recording and orders come from ``_JOB``)."""
    policy, i = task
    t = time.perf_counter()
    rec = _JOB["rec"]
    res = simulate(
        rec,
        build_policy_pruner(policy, rec),
        _JOB["orders"][i],
        tolerance=_JOB["tolerance"],
        study_name=_JOB["study_name"],
        order_index=i,
    )
    return policy, i, res, time.perf_counter() - t


def replay(
    rec: Recording,
    policies: list[str],
    *,
    n_orders: int = 20,
    tolerance: float = 0.005,
    seed: int = 0,
    study_name: str | None = None,
    jobs: int | None = None,
) -> ReplayResult:
    """Every policy over the recorded order and ``n_orders`` shuffled ones (a fresh pruner and study per order).

    ``jobs`` processes share the (policy, order) simulations (default: one per CPU; 1 = in this process). Each
    simulation is independent and deterministic, so the result does not depend on ``jobs``.
    """
    import os

    if isinstance(n_orders, bool) or not isinstance(n_orders, int) or n_orders < 0:
        raise SpecError(f"--orders must be an integer >= 0, got {n_orders!r}")
    for p in policies:
        build_policy_pruner(p, rec)  # validate every policy before any work
    t0 = time.perf_counter()
    _JOB.update(rec=rec, orders=orders(rec, n_orders, seed), tolerance=tolerance, study_name=study_name)
    tasks = [(p, i) for p in policies for i in range(n_orders + 1)]
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(tasks)))
    try:
        if jobs == 1:
            done = [_one(t) for t in tasks]
        else:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(jobs, mp_context=mp.get_context("fork")) as pool:
                done = list(pool.map(_one, tasks, chunksize=max(1, len(tasks) // (4 * jobs))))
    finally:
        _JOB.clear()
    out = {p: PolicyReplay(p) for p in policies}
    for p, i, res, seconds in sorted(done, key=lambda d: (d[0], d[1])):
        out[p].results.append(res)
        out[p].seconds += seconds
    return ReplayResult(rec, policies, n_orders, tolerance, out, time.perf_counter() - t0)


# ------------------------------------------------------------------------------------------------------ output


def replay_table(res: ReplayResult) -> list[dict[str, str]]:
    none = res.replays.get("none")
    rows = []
    for p in res.policies:
        r = res.replays[p]
        comp = [o.compute for o in r.results]
        row = {
            "policy": p,
            "compute, recorded order (CPU s)": f"{r.results[0].compute:.3g}",
            "compute over orders (CPU s)": _stats.spread(comp).fmt(),
        }
        if none is not None:
            ratios = [n.compute / o.compute if o.compute > 0 else math.inf for n, o in zip(none.results, r.results)]
            sp = _stats.spread(ratios)
            row["saving vs none"] = f"{_stats.times(sp.median)} [{_stats.times(sp.q1)}, {_stats.times(sp.q3)}]"
            row["compute-to-target saving vs none"] = _stats.summarise_savings(
                [_stats.saving(n.ctt, o.ctt) for n, o in zip(none.results, r.results)]
            ).fmt()
        row["pruned (by reason)"] = _stats.spread([len(o.pruned) for o in r.results]).fmt() + _reasons(r.results)
        flags = [o.best_pruned for o in r.results if o.best_pruned is not None]
        row["false prunes of the best feasible"] = (
            f"{sum(flags)}/{len(flags)} orders ({sum(flags) / len(flags):.0%})" if flags else _stats.NA
        )
        row["recorded order: best pruned"] = {True: "yes", False: "no", None: _stats.NA}[r.results[0].best_pruned]
        found = [o.best_found for o in r.results]
        lost = sum(f is None for f in found)
        row["best feasible kept"] = _stats.spread(found).fmt(4) + (f"; none kept in {lost} orders" if lost else "")
        rows.append(row)
    return rows


def _reasons(results: list[OrderResult]) -> str:
    keys = sorted({k for o in results for k in o.reasons})
    if not keys:
        return ""
    return " (" + ", ".join(f"{k} {_stats.spread([o.reasons.get(k, 0) for o in results]).fmt()}" for k in keys) + ")"


def write_replay(res: ReplayResult, out_dir: Path) -> list[Path]:

    out_dir.mkdir(parents=True, exist_ok=True)
    rec = res.recording
    best = rec.best()
    csv_path = out_dir / "replay.csv"
    with csv_path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "policy",
                "order",
                "compute_cpu_s",
                "n_pruned",
                "best_pruned",
                "best_found",
                "compute_to_target_cpu_s",
                "pruned_trials",
            ]
        )
        for p in res.policies:
            for o in res.replays[p].results:
                w.writerow(
                    [
                        p,
                        o.order,
                        round(o.compute, 4),
                        len(o.pruned),
                        "" if o.best_pruned is None else int(o.best_pruned),
                        "" if o.best_found is None else o.best_found,
                        "" if o.ctt is None else round(o.ctt, 4),
                        " ".join(f"{n}@{s}" for n, s in sorted(o.pruned.items())),
                    ]
                )
    n_feasible = sum(rec.feasible(t) for t in rec.trials if t.values is not None)
    truly_best = f"trial #{best.number} ({fmt(best.first_value())})" if best else "none"
    intro = (
        f"{len(rec.trials)} recorded trials x {rec.steps} steps (policy none), budgets: {fmt_budgets(rec.budgets)} — "
        f"{n_feasible} of {sum(t.values is not None for t in rec.trials)} complete trials feasible. "
        f"Truly best feasible: {truly_best}. Orders: the recorded one and {res.n_orders} shuffled; median [IQR] "
        f"over all {res.n_orders + 1}. Compute = recorded cumulative training CPU (`cpu_s`) up to where each trial "
        f"stops. Compute-to-target: until a kept feasible trial is within {res.tolerance:g} of the truly best. "
        f"Replayed in {res.seconds:.2f} s."
    )
    title = f"{rec.study_name}: pruners replayed over the recording"
    return [write_page(out_dir / "replay.md", title, intro, replay_table(res)), csv_path]
