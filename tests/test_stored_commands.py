"""``sysprune studies --storage``, ``sysprune trials`` and ``sysprune best``: what a study database holds, read as
``optuna studies`` / ``optuna best-trial`` read it, through the real command line."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import IntDistribution
from optuna.trial import TrialState, create_trial

from sysprune._attrs import ERROR, HIDDEN_CONSTRAINTS, PRUNE_REASON, STUDY_BUDGETS, STUDY_PRUNER
from sysprune.analysis._table import fit_widths, text_table
from tests._cli import run_in_process as sysprune

BUDGET = 1000.0


def _trial(state, value, width, model_bytes, **attrs):
    return create_trial(
        state=state,
        value=value if state == TrialState.COMPLETE else None,
        intermediate_values={0: value} if value is not None and state != TrialState.COMPLETE else {},
        params={"width": width},
        distributions={"width": IntDistribution(8, 512)},
        user_attrs={"model_bytes": model_bytes, HIDDEN_CONSTRAINTS: {"model_bytes": model_bytes - BUDGET}, **attrs},
    )


@pytest.fixture
def db(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(storage=url, study_name="size", direction="maximize")
    study.set_user_attr(STUDY_BUDGETS, {"model_bytes": BUDGET})
    study.set_user_attr(STUDY_PRUNER, {"policy": "budget"})
    study.add_trial(_trial(TrialState.COMPLETE, 0.9, 16, 800.0))
    study.add_trial(_trial(TrialState.COMPLETE, 0.99, 512, 5000.0))  # the best value, but over the budget
    study.add_trial(_trial(TrialState.PRUNED, 0.5, 256, 3000.0, **{PRUNE_REASON: "budget: model_bytes over"}))
    study.add_trial(_trial(TrialState.FAIL, None, 32, 900.0, **{ERROR: "RuntimeError: boom"}))
    other = optuna.create_study(storage=url, study_name="plain", directions=["maximize", "minimize"])
    other.add_trial(create_trial(state=TrialState.COMPLETE, values=[0.5, 2.0]))
    return url


def test_studies_lists_the_stored_studies(db):
    r = sysprune("studies", "--storage", db)
    assert r.returncode == 0, r.stderr
    header, rule, *rows = r.stdout.splitlines()
    assert header.split() == ["study", "trials", "best", "dir", "policy", "budgets"]
    assert [row.split()[0] for row in rows] == ["plain", "size"]
    plain, size = rows
    assert "1 complete" in plain and "pareto front 1" in plain and "max,min" in plain
    # The best *feasible* value: trial 1 is better but over its budget.
    assert "2 complete · 1 pruned · 1 fail" in size and "0.9 (#0)" in size and "0.99" not in size
    assert "budget" in size and "model_bytes <= 1000" in size


def test_trials_shows_params_budgeted_metrics_and_why(db):
    r = sysprune("trials", "size", "--storage", db)
    assert r.returncode == 0, r.stderr
    header, _, *rows = r.stdout.splitlines()
    assert header.split() == ["#", "state", "value", "width", "model_bytes", "why"]
    assert len(rows) == 4
    assert rows[2].split()[:5] == ["2", "pruned", "0.5", "256", "3000"] and rows[2].endswith("budget: model_bytes over")
    assert rows[3].endswith("RuntimeError: boom")
    pruned = sysprune("trials", "size", "--state", "pruned,fail", "--last", "1", "--storage", db)
    assert [row.split()[0] for row in pruned.stdout.splitlines()[2:]] == ["3"]


def test_best_is_the_best_feasible_trial(db):
    r = sysprune("best", "size", "--storage", db)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "best trial of 'size': #0"
    assert "value    0.9 (maximize)" in r.stdout and "params   width=16" in r.stdout
    assert "model_bytes  800 B (budget 1000 B)" in r.stdout
    front = sysprune("best", "plain", "--storage", db)
    assert front.stdout.startswith("pareto front of 'plain': 1 trial(s)")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("best", "szie"), "no study 'szie' in sqlite:///"),
        (("best", "szie"), "did you mean 'size'?"),
        (("trials",), "holds 2 studies (plain, size); name one"),
        (("trials", "studies/size.toml"), "pass the study's name in the database, not its file"),
    ],
)
def test_a_wrong_study_is_one_line_with_a_suggestion(db, args, expected):
    r = sysprune(*args, "--storage", db)
    assert r.returncode == 2 and expected in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_a_missing_database_is_one_line_and_not_created(tmp_path):
    r = sysprune("studies", "--storage", f"sqlite:///{tmp_path / 'none.db'}")
    assert r.returncode == 2 and "no study database at" in r.stderr
    assert not (tmp_path / "none.db").exists()


def test_tables_fit_the_terminal_by_cutting_the_widest_column():
    rows = [["1", "complete", "x" * 60], ["2", "pruned", "short"]]
    lines = text_table(("#", "state", "why"), rows, width=40)
    assert max(map(len, lines)) <= 40 and lines[2].endswith("…") and lines[3].endswith("short")
    assert text_table(("#", "state", "why"), rows, width=None)[2].endswith("x" * 60)  # a pipe gets whole lines
    assert fit_widths([3, 50], 20) == [3, 15] and fit_widths([30, 30], 10) == [6, 6]  # never below 6
