"""The progress display: counts by state, the best value, why the last trial was pruned or failed."""

from __future__ import annotations

import io
import re
import time

import pytest

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from sysprune.study._progress import Progress, eta_seconds, fmt_duration, notify_step


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
    assert re.match(r"\[1/3\] complete 1 · pruned 0 · failed 0 · best 0.8 \(#0\) · \d+s · eta \d+s · ", lines[0])
    assert lines[0].endswith("last #0 complete 0.8")
    assert "[2/3] complete 1 · pruned 1 · failed 0" in lines[1]
    assert lines[1].endswith("last #1 pruned (budget: infer_ms measured 0.5 ms > budget 0.2 ms)")
    assert lines[2].endswith("last #2 fail (RuntimeError: boom)") and "failed 1" in lines[2]


def _segments(text: str) -> list[str]:
    """What a terminal shows line by line: the text split at carriage returns and newlines."""
    return [seg for seg in re.split(r"[\r\n]", text) if seg.strip()]


@pytest.mark.parametrize("ncols", [60, 80, 200])
def test_one_line_on_a_terminal_as_wide_as_it_is(ncols):
    """On a terminal: one line rewritten in place (carriage returns, a single newline at the end), never wider
    than the terminal, with the running trial's step, the ETA and the best value."""
    study = optuna.create_study(direction="maximize")
    out = io.StringIO()
    progress = Progress(2, stream=out, tty=True, ncols=ncols)
    try:
        for number, value in enumerate((0.9, 0.8)):
            for step in (-1, 0, 1, 2, 3):
                notify_step(number, step, 4)
                time.sleep(0.21)  # tqdm redraws at most every 0.2 s
            progress(study, _add(study, TrialState.COMPLETE, value))
    finally:
        progress.close()
    text = out.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    segments = _segments(text)
    assert max(len(s) for s in segments) <= ncols
    assert any(re.search(r"\[0/2\] .*\| 00:0\d<00:\d\d, #0 step 3/4", s) for s in segments), segments
    assert segments[-1].startswith("[2/2] ")
    if ncols >= 80:
        assert any("best 0.9 (#0)" in s for s in segments)
    if ncols == 200:
        assert "last #1 complete 0.8 · best 0.9 (#0) · 2 complete · 0 pruned" in segments[-1]


def test_multi_objective_shows_the_pareto_front():
    study = optuna.create_study(directions=["maximize", "minimize"])
    out = io.StringIO()
    progress = Progress(2, stream=out, tty=True, ncols=120)
    for v in ([0.9, 2.0], [0.8, 1.0]):
        study.add_trial(create_trial(state=TrialState.COMPLETE, values=v))
        progress(study, study.trials[-1])
    assert "pareto front 2" in out.getvalue()


def test_steps_reach_only_live_displays_on_a_terminal():
    out = io.StringIO()
    plain = Progress(3, stream=io.StringIO(), tty=False)
    live = Progress(3, stream=out, tty=True, ncols=100)
    notify_step(0, 1, 4)
    assert live.running == {0: 0.5} and plain.running == {}
    live.close()
    plain.close()
    live.close()  # twice is fine
    notify_step(0, 2, 4)
    assert live.running == {0: 0.5}  # no longer listening


def test_eta_from_this_runs_rate():
    assert eta_seconds(0, 10, 5.0) is None  # nothing done yet: unknown, not zero
    assert eta_seconds(2, 10, 10.0) == pytest.approx(40.0)  # 5 s per trial, 8 left
    assert eta_seconds(6, 10, 10.0, start=4) == pytest.approx(20.0)  # resumed at 4: 2 in 10 s, 4 left
    assert eta_seconds(2.5, 10, 10.0) == pytest.approx(30.0)  # half a trial's steps count
    assert eta_seconds(10, 10, 3.0) == 0.0
    assert [fmt_duration(s) for s in (None, 4.4, 65, 3725)] == ["—", "4s", "1m05s", "1h02m"]


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


def test_compare_labels_each_study_and_counts_what_it_holds(tmp_path, capsys):
    from sysprune.analysis._progress import StudyBars

    url = f"sqlite:///{tmp_path / 'c.db'}"
    half = optuna.create_study(storage=url, study_name="d.compare.median.s1", direction="maximize")
    full = optuna.create_study(storage=url, study_name="d.compare.none.s1", direction="maximize")
    for study, n in ((half, 2), (full, 4)):
        for i in range(n):
            _add(study, TrialState.COMPLETE, 0.5 + 0.1 * i)
    bars = StudyBars(3, 4, url)
    assert bars.callbacks("d.compare.none.s1") == []  # nothing to run there: no bar
    (progress,) = bars.callbacks("d.compare.median.s1")
    assert progress.start == 2 and progress.label == "median s1 (2/3)"
    progress(half, _add(half, TrialState.COMPLETE, 0.9))
    bars.log("  d.compare.median.s1: 3 trials")
    (fresh,) = bars.callbacks("d.compare.budget.s1")  # not stored yet
    assert fresh.start == 0
    bars.close()
    captured = capsys.readouterr()
    assert captured.out == "  d.compare.median.s1: 3 trials\n"
    assert captured.err.startswith("[median s1 (2/3) 3/4] complete 3 · pruned 0 · failed 0 · best 0.9 (#2)")
