"""replay: in recorded order it reproduces a live run's prune decisions; compute and false prunes on hand-made
recordings; a recording that is not policy none is refused in one line."""

from __future__ import annotations

import warnings

import optuna
import pytest
from optuna.trial import TrialState

from sysprune.pruners._step_api import report
from sysprune.study._runner import run_study
from sysprune.spec import SpecError
from sysprune.analysis import _replay
from sysprune.analysis._recording import load_recording
from sysprune.pruners import record_constraints
from tests.analysis._helpers import tiny_spec


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A random-sampler recording (policy none) of a tiny study; returns (spec, run_study keywords)."""
    from sysprune.analysis._compare import policy_spec

    tmp = tmp_path_factory.mktemp("replay")
    kw = dict(storage_url=f"sqlite:///{tmp / 'r.db'}", cache_dir=str(tmp / "arrays"))
    spec = tiny_spec(
        steps=4,
        n_trials=8,
        search_space={
            "width": {"type": "int", "low": 8, "high": 256, "log": True},
            "n_layers": 1,
            "batch_size": 128,
            "lr": {"type": "float", "low": 1e-5, "high": 3e-2, "log": True},
        },
    )
    run_study(policy_spec(spec, "none"), study_name="rec", **kw)
    return spec, kw


@pytest.mark.slow  # a recording and five live studies, end to end
@pytest.mark.parametrize("policy", ["median", "budget", "hyperband", "combined", "threshold"])
def test_replay_in_recorded_order_reproduces_a_live_run(policy, recorded):
    from sysprune.analysis._compare import policy_spec

    spec, kw = recorded
    url = kw["storage_url"]
    live = run_study(policy_spec(spec, policy), study_name=f"live.{policy}", **kw).study
    # the step each trial was pruned at, as the pruner recorded it (-1: before training, contract 1)
    decisions = {t.number: t.user_attrs["prune_detail"]["step"] for t in live.trials if t.state == TrialState.PRUNED}
    assert decisions, "the live run pruned nothing: the test would prove nothing"
    rec = load_recording(url, "rec")
    assert [t.params for t in sorted(rec.trials, key=lambda t: t.number)] == [t.params for t in live.trials]
    pruner = _replay.build_policy_pruner(policy, rec)
    result = _replay.simulate(rec, pruner, _replay.orders(rec, 0)[0], tolerance=0.005, study_name=f"live.{policy}")
    assert result.pruned == decisions


def _recording(url: str, curves, *, budgets=None, name="hand"):
    """A policy-none study made by hand: per trial (values per step, n_params, cpu per step)."""
    study = optuna.create_study(storage=url, study_name=name, direction="maximize")
    study.set_user_attr("pruner", {"policy": "none"})
    study.set_user_attr("steps", len(curves[0][0]))
    study.set_user_attr("budgets", budgets or {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["val_accuracy"])
    for values, n_params, cpu in curves:
        trial = study.ask()
        for step, v in enumerate(values):
            report(trial, step, v, {"val_accuracy": v, "n_params": n_params, "cpu_s": cpu * (step + 1)})
        if budgets:
            record_constraints(trial, budgets)
        study.tell(trial, values[-1])
    return study


def test_compute_and_false_prunes_on_a_hand_made_recording(rdb_url):
    import uuid

    name = f"hand-{uuid.uuid4().hex[:8]}"  # PostgreSQL studies share one database
    curves = [
        ([0.5, 0.6, 0.7], 100, 1.0),
        ([0.6, 0.7, 0.8], 9000, 2.0),  # over the n_params budget: budget prunes it at step 0
        ([0.2, 0.4, 0.95], 200, 1.0),  # the truly best feasible: a slow starter that median prunes
        ([0.55, 0.65, 0.75], 300, 1.0),
    ]
    _recording(rdb_url, curves, budgets={"n_params": 1000}, name=name)
    rec = load_recording(rdb_url, name)
    assert rec.best().number == 2 and rec.budgets == {"n_params": 1000}
    order = _replay.orders(rec, 0)[0]
    none = _replay.simulate(rec, _replay.build_policy_pruner("none", rec), order, tolerance=0.0)
    assert none.compute == pytest.approx(3 + 6 + 3 + 3) and none.pruned == {} and none.best_pruned is False
    assert none.ctt == pytest.approx(12.0) and none.best_found == 0.95
    budget = _replay.simulate(rec, _replay.build_policy_pruner("budget", rec), order, tolerance=0.0)
    assert budget.pruned == {1: 0} and budget.compute == pytest.approx(3 + 2 + 3 + 3)
    assert budget.reasons == {"budget": 1} and budget.best_pruned is False and budget.ctt == pytest.approx(8.0)
    from optuna.pruners import MedianPruner

    median = _replay.simulate(rec, MedianPruner(n_startup_trials=2), order, tolerance=0.0)
    assert median.pruned == {2: 0} and median.best_pruned is True and median.ctt is None


def test_structural_readings_at_step_0_follow_the_replayed_pruner_s_request(sqlite_url):
    # as the runner records: n_params at the pre-training probe (-1) and the last step only
    study = optuna.create_study(storage=sqlite_url, study_name="sched", direction="maximize")
    study.set_user_attr("pruner", {"policy": "none"})
    study.set_user_attr("budgets", {"n_params": 1000})
    for n in (100, 9000):
        trial = study.ask()
        report(trial, -1, None, {"n_params": n, "cpu_s": 0.01})
        for step, v in enumerate([0.5, 0.6, 0.7]):
            report(trial, step, v, {"val_accuracy": v, "cpu_s": step + 1.0, **({"n_params": n} if step == 2 else {})})
        record_constraints(trial, {"n_params": 1000})
        study.tell(trial, 0.7)
    rec = load_recording(sqlite_url, "sched")
    order = _replay.orders(rec, 0)[0]
    # threshold ignores step -1 and asks for step 0's reading: lent from the last step, it prunes there (as live)
    threshold = _replay.simulate(rec, _replay.build_policy_pruner("threshold", rec), order, tolerance=0.0)
    assert threshold.pruned == {1: 0} and threshold.compute == pytest.approx(3.0 + 1.0)
    budget = _replay.simulate(rec, _replay.build_policy_pruner("budget", rec), order, tolerance=0.0)
    assert budget.pruned == {1: -1} and budget.compute == pytest.approx(3.0 + 0.01)
    big = next(t for t in rec.trials if t.number == 1)
    row0 = big.steps[1][2]
    assert _replay.first_step_row(big, row0, second=True)["n_params"] == 9000
    assert _replay.first_step_row(big, {**row0, "n_params": 5.0}, second=False)["n_params"] is None  # not asked


def test_replay_over_orders_writes_its_tables(sqlite_url, tmp_path):
    curves = [([0.1 * i, 0.1 * i + 0.05], 100 * i, 1.0 + i) for i in range(1, 7)]
    _recording(sqlite_url, curves, budgets={"n_params": 450})
    rec = load_recording(sqlite_url, "hand")
    res = _replay.replay(rec, ["none", "budget", "median"], n_orders=4)
    assert [len(res.replays[p].results) for p in res.policies] == [5, 5, 5]
    # the same trials in any order: none always spends the same; budget always prunes trials 4, 5 (n_params > 450)
    assert len({round(o.compute, 9) for o in res.replays["none"].results}) == 1
    assert all(set(o.pruned) == {4, 5} for o in res.replays["budget"].results)
    md, csvf = _replay.write_replay(res, tmp_path / "out")
    assert "false prunes" in md.read_text() and len(csvf.read_text().splitlines()) == 1 + 3 * 5


def test_the_step_table_is_split_by_trial_in_step_order():
    """Rows out of order, a trial with a metric the other lacks (NaN), the pre-training probe at step -1."""
    import math

    import pandas as pd

    from sysprune.analysis._recording import _rows_by_trial

    df = pd.DataFrame(
        [(2, 1, 3.0, 9.0), (0, 1, 2.0, math.nan), (2, -1, 0.5, 9.0), (0, 0, 1.0, math.nan), (2, 0, 1.5, 9.0)],
        columns=["trial_number", "step", "cpu_s", "n_params"],
    )
    out = _rows_by_trial(df)
    assert list(out) == [0, 2]
    assert [(r["step"], r["cpu_s"]) for r in out[0]] == [(0, 1.0), (1, 2.0)]
    assert all(math.isnan(r["n_params"]) for r in out[0])
    assert [(r["step"], r["cpu_s"], r["n_params"]) for r in out[2]] == [(-1, 0.5, 9.0), (0, 1.5, 9.0), (1, 3.0, 9.0)]
    assert _rows_by_trial(df.iloc[0:0]) == {}


def test_replay_refuses_a_study_that_was_pruned(sqlite_url):
    study = _recording(sqlite_url, [([0.5, 0.6], 100, 1.0)] * 2)
    study.set_user_attr("pruner", {"policy": "median"})
    with pytest.raises(SpecError, match="policy 'median'; replay needs a recording with policy 'none'"):
        load_recording(sqlite_url, "hand")
    with pytest.raises(SpecError, match="no study 'nope'"):
        load_recording(sqlite_url, "nope")
