"""report (RQ1): pruned and failed trials included at the steps they reached, per-step costs not totals, a noise
floor; single- and multi-objective studies."""

from __future__ import annotations

import math
import random

import optuna
import pytest
from optuna.trial import TrialState

from sysprune.pruners._step_api import report
from sysprune.analysis import _figures
from sysprune.analysis import _rq1 as _report
from sysprune.analysis._stats import NA


def _study(url: str, name: str, directions: list[str], n: int = 30):
    """width drives n_params and the per-step cpu cost; lr decides how long a trial runs (it is pruned early when
    lr is small) — so cumulative cpu totals would credit lr, per-step costs must credit width."""
    rng = random.Random(0)
    study = optuna.create_study(storage=url, study_name=name, directions=directions)
    for i in range(n):
        t = study.ask()
        width = t.suggest_int("width", 8, 512, log=True)
        lr = t.suggest_float("lr", 1e-4, 1e-1, log=True)
        steps = 5 if lr > 1e-2 else 1
        for step in range(steps):
            report(
                t,
                step,
                None,
                {
                    "n_params": width * 100.0,
                    "cpu_s": 0.01 * width * (step + 1),
                    "infer_ms": 0.001 * width * rng.uniform(0.9, 1.1),
                },
            )
        if i % 10 == 9:
            study.tell(t, state=TrialState.FAIL)
        elif steps < 5:
            study.tell(t, state=TrialState.PRUNED)
        else:
            study.tell(t, [0.5] * len(directions))
    return study


@pytest.mark.parametrize("directions", [["maximize"], ["maximize", "minimize"]])
def test_importance_credits_what_drives_each_metric_with_pruned_and_failed_trials(sqlite_url, directions, tmp_path):
    study = _study(sqlite_url, "rq1", directions)
    states = {s.name: sum(t.state == s for t in study.trials) for s in (TrialState.PRUNED, TrialState.FAIL)}
    assert states["PRUNED"] > 5 and states["FAIL"] == 3
    rep = _report.build_report(sqlite_url, "rq1", n_permutations=3)
    by = {m.metric: m for m in rep.metrics}
    assert set(by) == {"n_params", "cpu_s", "infer_ms"}
    for m in by.values():
        assert m.n == 30  # every trial, complete, pruned and failed alike
    cpu = by["cpu_s"]
    assert cpu.label == "cpu_s per step"
    assert cpu.target[0] == pytest.approx(0.01 * study.trials[0].params["width"])  # per step, not the total
    for metric in ("cpu_s", "n_params", "infer_ms"):
        imp = by[metric].importance
        assert imp["width"] > 0.8 and imp["width"] > by[metric].floor, metric
        assert imp["lr"] < by[metric].floor, metric  # lr only decides when trials stop: noise here
    files = _report.write_report(rep, tmp_path / "out")
    md = files[0].read_text()
    assert "noise floor" in md and "log cpu_s per step" in md  # the importances are of the logarithm
    assert {f.name for f in files} >= {"rq1.md", "rq1_importance.html", "rq1_cpu_s.html"}


def test_the_metric_figure_shows_every_trial(sqlite_url):
    _study(sqlite_url, "rq1f", ["maximize"])
    rep = _report.build_report(sqlite_url, "rq1f", n_permutations=0)
    m = next(m for m in rep.metrics if m.metric == "cpu_s")
    from sysprune.storage._step_table import MetricStore

    study = optuna.load_study(study_name="rq1f", storage=sqlite_url)
    fig = _report._metric_figure(rep, m, MetricStore(sqlite_url).load("rq1f"), {t.number: t for t in study.trials})
    lines = [tr for tr in fig.data if tr.mode == "lines+markers"]
    curves = {c[0] for tr in lines for c in tr.customdata if c is not None}
    slices = [c[0] for tr in fig.data if tr.mode == "markers" for c in tr.customdata]
    assert curves == set(range(30)) and sorted(slices) == sorted(list(range(30)) * 2)  # width and lr panels
    # one line trace per state, not one per trial
    assert sorted(tr.name for tr in lines) == sorted({t.state.name.lower() for t in study.trials})


def test_the_curves_are_one_line_per_state_broken_between_trials():
    """Rows out of order, trials of two states interleaved, one trial the study does not know: each state's
    trials in number order, each trial's steps in order, a None point between two trials of the same line."""
    import pandas as pd
    from types import SimpleNamespace

    rows = [(3, 1, 3.1), (0, 1, 0.1), (0, 0, 0.0), (1, 0, 1.0), (3, 0, 3.0), (2, 0, 2.0), (7, 0, 7.0)]
    sub = pd.DataFrame(rows, columns=["trial_number", "step", "cpu_s"])
    state = {0: TrialState.COMPLETE, 1: TrialState.PRUNED, 2: TrialState.COMPLETE, 3: TrialState.COMPLETE}
    trials = {n: SimpleNamespace(state=s) for n, s in state.items()}
    out = _figures.curves_by_state(sub, "cpu_s", trials)
    assert list(out) == ["COMPLETE", "PRUNED", "?"]
    xs, ys, cd = out["COMPLETE"]
    assert xs == [0, 1, None, 0, None, 0, 1]
    assert ys == [0.0, 0.1, None, 2.0, None, 3.0, 3.1]
    assert cd == [[0, "COMPLETE"]] * 2 + [None, [2, "COMPLETE"], None] + [[3, "COMPLETE"]] * 2
    assert out["PRUNED"] == ([0], [1.0], [[1, "PRUNED"]])
    assert out["?"] == ([0], [7.0], [[7, "?"]])


def test_importances_are_of_the_logarithm_when_every_value_is_positive(sqlite_url):
    _study(sqlite_url, "rq1log", ["maximize"])
    rep = _report.build_report(sqlite_url, "rq1log", n_permutations=0)
    cpu = next(m for m in rep.metrics if m.metric == "cpu_s")
    assert cpu.log_scale and cpu.scaled_label == "log cpu_s per step" and cpu.label == "cpu_s per step"
    study = optuna.load_study(study_name="rq1log", storage=sqlite_url)
    used = _report.usable([t for t in study.trials if t.state.is_finished()], cpu.target)
    logs = [math.log(cpu.target[t.number]) for t in used]
    assert cpu.importance == _report.fanova(used, logs, 0, trees=64)  # exactly fANOVA on log(target)
    assert cpu.importance != _report.fanova(used, [cpu.target[t.number] for t in used], 0, trees=64)


@pytest.mark.parametrize(
    "values, log",
    [
        ([1.0, 10.0, 100.0], True),
        ([0.5, 2.0], True),
        ([0.0, 1.0], False),
        ([-1.0, 3.0], False),
        ([], False),
        ([1.0, math.inf], False),
    ],  # fmt: skip
)
def test_the_log_scale_only_where_every_value_is_positive(values, log):
    out, is_log = _report.on_log_scale(values)
    assert is_log is log
    assert out == ([math.log(v) for v in values] if log else values)


def test_too_few_trials_report_no_importance(sqlite_url):
    _study(sqlite_url, "few", ["maximize"], n=3)
    rep = _report.build_report(sqlite_url, "few")
    assert all(m.importance == {} and m.floor is None for m in rep.metrics)
    assert all(v == NA for r in _report.importance_table(rep) for k, v in r.items() if k in ("width", "lr"))


def test_targets_compare_trials_at_comparable_steps_including_the_pretraining_probe():
    import pandas as pd

    nan = float("nan")
    df = pd.DataFrame(
        {
            "trial_number": [0, 0, 0, 1, 2, 2],
            "step": [-1, 0, 1, -1, 0, 1],
            "cpu_s": [0.01, 1.0, 2.0, 0.01, 3.0, 6.0],
            "n_params": [100.0, 100.0, 100.0, 50.0, 70.0, 70.0],
            "peak_rss_mb": [nan, 10.0, 12.0, nan, 20.0, 25.0],
        }
    )
    assert _report.targets(df, "cpu_s") == {0: 1.0, 2: 3.0}  # per training step; trial 1 never trained
    assert _report.targets(df, "n_params") == {0: 100.0, 1: 50.0, 2: 70.0}  # the probe counts for trial 1
    assert _report.targets(df, "peak_rss_mb") == {0: 10.0, 2: 20.0}  # at step 0, reached by every trained trial
    assert _report.targets(df, "energy_j") == {}
