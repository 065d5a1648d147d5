"""The progress display: counts by state, the best value, why the last trial was pruned or failed."""

from __future__ import annotations

import io

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from sysprune.study._progress import Progress


def _add(study, state, value=None, **attrs):
    study.add_trial(
        create_trial(
            state=state,
            value=value,
            params={"x": 0.5},
            distributions={"x": FloatDistribution(0, 1)},
            user_attrs=attrs,
            intermediate_values={0: 0.1} if state == TrialState.PRUNED else None,
        )
    )
    return study.trials[-1]


def test_one_line_per_trial_off_a_terminal():
    study = optuna.create_study(direction="maximize")
    out = io.StringIO()
    progress = Progress(3, stream=out, tty=False)
    progress(study, _add(study, TrialState.COMPLETE, 0.8))
    progress(study, _add(study, TrialState.PRUNED, prune_reason="budget: infer_ms measured 0.5 ms > budget 0.2 ms"))
    progress(study, _add(study, TrialState.FAIL, error="RuntimeError: boom"))
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("[1/3] complete 1 · pruned 0 · failed 0 · best 0.8 (#0)")
    assert lines[0].endswith("last #0 complete 0.8")
    assert "[2/3] complete 1 · pruned 1 · failed 0" in lines[1]
    assert lines[1].endswith("last #1 pruned (budget: infer_ms measured 0.5 ms > budget 0.2 ms)")
    assert lines[2].endswith("last #2 fail (RuntimeError: boom)") and "failed 1" in lines[2]


def test_rewrites_one_line_on_a_terminal():
    study = optuna.create_study(directions=["maximize", "minimize"])
    out = io.StringIO()
    progress = Progress(2, stream=out, tty=True)
    for v in ([0.9, 2.0], [0.8, 1.0]):
        study.add_trial(create_trial(state=TrialState.COMPLETE, values=v))
        progress(study, study.trials[-1])
    text = out.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n") and text.count("\n") == 1
    assert "pareto front 2" in text


def test_totals_are_the_studys_own_with_several_workers():
    """Trials finished by other workers count (the line reads the study); a lost trial is shown apart and does
    not count toward the target, since its configuration runs again."""
    study = optuna.create_study(direction="maximize")
    out = io.StringIO()
    progress = Progress(4, stream=out, tty=False)
    _add(study, TrialState.COMPLETE, 0.7)  # another worker's
    _add(study, TrialState.FAIL, error="worker lost")
    _add(study, TrialState.WAITING)  # its retry, not run yet
    progress(study, _add(study, TrialState.COMPLETE, 0.9))
    line = out.getvalue().strip()
    assert line.startswith("[2/4] complete 2 · pruned 0 · failed 0 · lost 1 · best 0.9 (#3)"), line
