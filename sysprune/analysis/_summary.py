"""The end-of-run summary ``sysprune run`` prints: what the search spent, what happened to its trials, and the
compute that pruning cut.

The cut is an estimate of the training the pruned trials did not do: for each pruned trial, the steps it did not
run times its per-step training cost — its own (``cpu_s`` at its last step / steps run) when it ran at least one
step, else the median per-step cost of the completed trials (a trial pruned before training).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping

import optuna
from optuna.trial import TrialState

from sysprune import _compat
from sysprune._attrs import STUDY_STEPS
from sysprune.analysis._trials import TrialRow, rows_of
from sysprune.metrics._format import fmt, nan_to_none
from sysprune.storage._step_table import store_for


def _step_costs(study: optuna.Study) -> dict[int, tuple[int, float | None]]:
    """trial number → (last training step, cumulative cpu_s at it), from the step table."""

    trial_ids = {_compat.trial_id(t): t.number for t in study.get_trials(deepcopy=False)}
    df = store_for(_compat.study_storage(study)).load(study.study_name, trial_ids)
    out: dict[int, tuple[int, float | None]] = {}
    if df.empty:
        return out
    df = df[df["step"] >= 0]
    for number, g in df.groupby("trial_number"):
        last = g.loc[g["step"].idxmax()]
        cpu = last.get("cpu_s")
        out[int(number)] = (int(last["step"]), nan_to_none(cpu))
    return out


def pruning_cut(
    rows: list[TrialRow], steps_of: Mapping[int, tuple[int, float | None]], n_steps: int
) -> tuple[float | None, int]:
    """(estimated CPU seconds of training not run, steps not run) over the pruned trials. ``None`` seconds when
    a pruned trial's per-step cost cannot be estimated (nothing measured, no completed trial)."""
    rates = [
        cpu / (last + 1)
        for r in rows
        if r.state == "COMPLETE" and r.number in steps_of
        for last, cpu in [steps_of[r.number]]
        if cpu is not None
    ]
    fallback = statistics.median(rates) if rates else None
    seconds: float | None = 0.0
    skipped = 0
    for r in rows:
        if r.state != "PRUNED":
            continue
        last, cpu = steps_of.get(r.number, (-1, None))
        not_run = max(0, n_steps - (last + 1))
        skipped += not_run
        rate = cpu / (last + 1) if last >= 0 and cpu is not None else fallback
        if rate is None:
            seconds = None
        elif seconds is not None:
            seconds += rate * not_run
    return seconds, skipped


def outcome_lines(study: optuna.Study, shown_url: str) -> list[str]:
    """What the study holds now: its trials by state, the best trial (or the Pareto front), where it is stored
    (``shown_url``: the storage URL as messages show it, its password masked)."""
    trials = study.get_trials(deepcopy=False)
    n = Counter(t.state for t in trials)
    lines = [
        f"study {study.study_name!r}: {len(trials)} trials ({n[TrialState.COMPLETE]} complete, "
        f"{n[TrialState.PRUNED]} pruned, {n[TrialState.FAIL]} failed)"
    ]
    try:
        if len(study.directions) == 1:
            bt = study.best_trial
            lines.append(f"best trial #{bt.number}: {fmt(bt.value)}  params {bt.params}")
        else:
            lines.append(f"pareto front: trials {[t.number for t in study.best_trials]}")
    except ValueError:
        lines.append("no feasible completed trial yet")
    lines.append(
        f"results: {shown_url}  (per-step metrics: sysprune.load_step_metrics({shown_url!r}, {study.study_name!r}))"
    )
    return lines


def run_summary(study: optuna.Study, n_steps: int | None = None) -> list[str]:
    """The summary lines (compute, trials by state and prune reason, pruning's cut)."""
    rows = rows_of(study)
    n_steps = n_steps if n_steps is not None else study.user_attrs.get(STUDY_STEPS)
    finished = [r for r in rows if r.finished]  # a WAITING retry has spent nothing yet; a RUNNING one is not done
    proc = [r.process_cpu for r in finished if r.process_cpu is not None]
    work = [r.worker_cpu for r in finished if r.worker_cpu is not None]
    total = sum(proc) + sum(work)
    # Every trial that ran a process has its compute (its worker's figures, or a lost trial's last known ones):
    # only a trial that never got one going (the fork server failed, lost before its first step) has none.
    unmeasured = len(finished) - len(proc)
    lines = [
        f"compute: {total:.3g} CPU s (trial processes {sum(proc):.3g} + worker {sum(work):.3g}) over "
        f"{len(finished)} trials"
        + (f"; {unmeasured} without a measured process (none started, or lost before a step)" if unmeasured else "")
    ]
    states = Counter(r.state for r in rows)
    reasons = Counter(r.rule for r in rows if r.state == "PRUNED")
    why = f" ({', '.join(f'{k} {v}' for k, v in sorted(reasons.items()))})" if reasons else ""
    lines.append(
        f"trials: {states.get('COMPLETE', 0)} complete, {states.get('PRUNED', 0)} pruned{why}, "
        f"{states.get('FAIL', 0)} failed"
    )
    if states.get("PRUNED") and isinstance(n_steps, int):
        seconds, skipped = pruning_cut(rows, _step_costs(study), n_steps)
        if seconds is None:
            lines.append(f"pruning cut {skipped} of {n_steps * len(rows)} training steps (their cost: not measured)")
        else:
            share = seconds / (seconds + total) if seconds + total > 0 else 0.0
            lines.append(
                f"pruning cut ~{seconds:.3g} CPU s of training ({skipped} steps not run): ~{share:.0%} of "
                "what running every trial to the end would have cost"
            )
    return lines
