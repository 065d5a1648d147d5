"""The plain-Optuna example (no sysprune runner) runs as is and books budget prunes as infeasible."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from sysprune._attrs import PRUNE_DETAIL

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "plain_optuna_budget.py"


@pytest.mark.slow
def test_plain_optuna_example_runs(sqlite_url: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), "--n-trials", "6", "--steps", "4", "--storage", sqlite_url],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    # With seed 0 the first (random) trial is a 76-wide, 3-deep MLP: 565 kB, over the 150 kB size budget at step 0.
    assert "budget: model_bytes measured" in proc.stdout
    assert "pruned for a budget:" in proc.stdout

    (summary,) = optuna.get_all_study_summaries(sqlite_url)
    study = optuna.load_study(study_name=summary.study_name, storage=sqlite_url)
    assert len(study.trials) == 6
    for t in study.trials:
        if t.user_attrs.get(PRUNE_DETAIL, {}).get("rule") == "budget":
            assert t.state == optuna.trial.TrialState.PRUNED
            assert max(t.constraints.values()) > 0  # infeasible
    complete = study.get_trials(states=[optuna.trial.TrialState.COMPLETE])
    if complete:
        assert all(v <= 0 for v in study.best_trial.constraints.values())
