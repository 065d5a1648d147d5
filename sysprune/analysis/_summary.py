"""The end-of-run summary ``sysprune run`` prints: what the search spent, what happened to its trials, and the
compute that pruning cut.

The cut is an estimate of the training the pruned trials did not do: for each pruned trial, the steps it did not
run times its per-step training cost — its own (``cpu_s`` at its last step / steps run) when it ran at least one
step, else the median per-step cost of the completed trials (a trial pruned before training). One rule, shared
with the dashboard's compute figure: :func:`sysprune.dashboard._fits.steps_not_run`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import optuna
from optuna.trial import TrialState

from sysprune import _compat
from sysprune._attrs import STUDY_STEPS
from sysprune.analysis._trials import TrialRow, rows_of
from sysprune.dashboard._fits import StepCost, steps_not_run
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
    a pruned trial's per-step cost cannot be estimated (nothing measured, no completed trial). The rule is
    :func:`sysprune.dashboard._fits.steps_not_run`, which the dashboard's compute figure draws too."""
    cut = steps_not_run([StepCost(r.state, *steps_of.get(r.number, (-1, None))) for r in rows], n_steps)
    seconds = None if any(s is None for _, s in cut) else sum(s or 0.0 for _, s in cut)
    return seconds, sum(n for n, _ in cut)


def outcome_lines(study: optuna.Study, shown_url: str, paste: str | None = None) -> list[str]:
    """What the study holds now: its trials by state (every worker's: running and waiting ones too), the best trial
    (or the Pareto front), where it is stored (``shown_url``: the storage URL as messages show it, credentials
    masked; ``paste``: the URL as a Python expression a user may paste, by default ``repr(shown_url)``)."""
    trials = study.get_trials(deepcopy=False)
    n = Counter(t.state for t in trials)
    others = [f"{n[s]} {s.name.lower()}" for s in (TrialState.RUNNING, TrialState.WAITING) if n[s]]
    lines = [
        f"study {study.study_name!r}: {len(trials)} trials ({n[TrialState.COMPLETE]} complete, "
        f"{n[TrialState.PRUNED]} pruned, {n[TrialState.FAIL]} failed{''.join(', ' + o for o in others)})"
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
        f"results: {shown_url}  (per-step metrics: sysprune.load_step_metrics({paste or repr(shown_url)}, "
        f"{study.study_name!r}))"
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
