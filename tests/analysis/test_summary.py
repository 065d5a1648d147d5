"""End-of-run summary, the worker's own CPU per trial, and the search-level compute budget."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from sysprune.pruners._step_api import report
from sysprune.spec import SpecError, parse_spec
from sysprune.analysis import ComputeBudget, WorkerCompute, run_summary
from sysprune.analysis._summary import pruning_cut
from tests.analysis._helpers import row


def test_pruning_cut_uses_each_trials_own_step_cost_or_the_completed_median():
    rows = [row(0), row(1), row(2, "PRUNED", rule="budget"), row(3, "PRUNED", rule="budget"), row(4, "FAIL")]
    steps_of = {0: (3, 4.0), 1: (3, 8.0), 2: (1, 1.0)}  # trial 3 was pruned before any training step
    seconds, skipped = pruning_cut(rows, steps_of, n_steps=4)
    # trial 2: 2 steps not run at 0.5 s each; trial 3: 4 steps at the completed median (1.0 and 2.0 -> 1.5)
    assert skipped == 2 + 4
    assert seconds == pytest.approx(2 * 0.5 + 4 * 1.5)
    assert pruning_cut(rows[2:4], {2: (1, None)}, 4) == (None, 6)  # nothing to estimate from: not a number


def test_worker_compute_writes_the_workers_cpu_on_every_trial():
    study = optuna.create_study()

    def objective(trial):
        x = sum(i * i for i in range(20000))  # some worker CPU
        return float(x % 7)

    wrapped = WorkerCompute(objective)
    wrapped.start()
    study.optimize(wrapped, n_trials=3)
    assert all(t.user_attrs["worker_cpu_s"] > 0 for t in study.trials)

    def failing(trial):
        raise optuna.TrialPruned()

    study.optimize(WorkerCompute(failing), n_trials=1)
    assert study.trials[-1].state == TrialState.PRUNED and "worker_cpu_s" in study.trials[-1].user_attrs


def test_an_objective_that_charges_its_worker_cpu_writes_it_with_its_attrs_and_the_wrapper_adds_no_write():
    study = optuna.create_study()
    writes = []

    class Objective:
        charge = None

        def __call__(self, trial):
            sum(i * i for i in range(20000))
            cpu = self.charge()
            writes.append(cpu)
            trial.set_user_attr("worker_cpu_s", cpu)  # one write with the trial's other attrs, in sysprune
            return 0.0

    inner = Objective()
    wrapped = WorkerCompute(inner)
    inner.charge = wrapped.charge
    calls = []
    real = optuna.trial.Trial.set_user_attr

    def spy(trial, key, value):
        calls.append(key)
        real(trial, key, value)

    optuna.trial.Trial.set_user_attr = spy
    try:
        wrapped.start()
        study.optimize(wrapped, n_trials=2)
    finally:
        optuna.trial.Trial.set_user_attr = real
    assert calls == ["worker_cpu_s", "worker_cpu_s"]  # the objective's own writes only
    assert [t.user_attrs["worker_cpu_s"] for t in study.trials] == writes and all(w > 0 for w in writes)


def test_compute_budget_stops_the_study_once_spent():
    study = optuna.create_study()

    def objective(trial):
        trial.set_user_attr("process_cpu_s", 1.0)
        trial.set_user_attr("worker_cpu_s", 0.25)
        return 0.0

    budget = ComputeBudget(3.0)
    study.optimize(objective, n_trials=10, callbacks=[budget])
    assert len(study.trials) == 3 and budget.spent == pytest.approx(3.75) and budget.stopped
    for bad in (0, -1, float("nan"), float("inf"), True, "5"):
        with pytest.raises(ValueError, match="max_compute_s must be"):
            ComputeBudget(bad)


def test_run_summary_lines():
    study = optuna.create_study(study_name="s", direction="maximize")
    study.set_user_attr("steps", 4)
    for i, prune_at in enumerate([None, None, 1]):
        t = study.ask()
        t.set_user_attr("process_cpu_s", 2.0)
        t.set_user_attr("worker_cpu_s", 0.5)
        for step in range(4 if prune_at is None else prune_at + 1):
            report(t, step, 0.5, {"cpu_s": 0.5 * (step + 1)})
        if prune_at is None:
            study.tell(t, 0.5)
        else:
            t.set_user_attr("prune_detail", {"rule": "budget"})
            study.tell(t, state=TrialState.PRUNED)
    lines = run_summary(study)
    assert lines[0].startswith("compute: 7.5 CPU s (trial processes 6 + worker 1.5) over 3 trials")
    assert lines[1] == "trials: 2 complete, 1 pruned (budget 1), 0 failed"
    assert lines[2].startswith("pruning cut ~1 CPU s of training (2 steps not run)")


def test_study_max_compute_s_in_the_study_file():
    base = {"model": "torch_mlp", "dataset": "digits"}
    assert parse_spec(base).max_compute_s is None
    assert parse_spec({**base, "study": {"max_compute_s": 60}}).max_compute_s == 60.0
    with pytest.raises(SpecError, match="study.max_compute_s: value -1 is invalid; valid: a finite number > 0"):
        parse_spec({**base, "study": {"max_compute_s": -1}})
    with pytest.raises(SpecError, match="study.budget: unknown key; valid: max_compute_s"):
        parse_spec({**base, "study": {"budget": 1}})


def test_run_study_rejects_a_bad_max_compute_s():
    from sysprune.study._runner import run_study
    from tests.analysis._helpers import tiny_spec

    with pytest.raises(SpecError, match="max_compute_s: value -2 is invalid; valid: a finite number > 0"):
        run_study(tiny_spec(), storage_url="sqlite://", max_compute_s=-2)
