"""The runner end to end on a real SQLite file: intermediate values and metric rows per step, per-trial peaks,
latency vs width, resuming, failures, multi-objective."""

from __future__ import annotations

import math

import optuna
import pytest
from optuna.trial import TrialState

from sysprune import load_step_metrics
from sysprune.study._runner import run_study
from sysprune.spec import parse_spec

PROCESS_ROW = ("wall_s", "cpu_s", "rss_mb", "peak_rss_mb", "peak_rss_delta_mb")
STRUCTURAL_ROW = ("infer_ms", "infer_ms_lo", "infer_ms_hi", "n_params", "model_bytes", "model_mem_mb")
SYSTEM_ROW = PROCESS_ROW + STRUCTURAL_ROW


def _spec(**over):
    raw = {
        "name": "t",
        "model": "torch_mlp",
        "steps": 3,
        "n_trials": 3,
        "seed": 1,
        "dataset": {"name": "digits"},
        "sampler": {"name": "random"},
        "search_space": {"width": {"type": "int", "low": 8, "high": 64}, "n_layers": 1, "batch_size": 128},
        "trial": {"infer_repeats": 3, "infer_batch_size": 64},
    }
    raw.update(over)
    return parse_spec(raw)


@pytest.fixture
def run(sqlite_url, cache_dir):
    def _run(spec, **kw):
        return run_study(spec, storage_url=sqlite_url, cache_dir=str(cache_dir), **kw)

    return _run


def test_every_trial_has_a_value_and_a_full_metric_row_per_step(run, sqlite_url):
    result = run(_spec())
    study = result.study
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3
    df = load_step_metrics(sqlite_url, "t")
    # step -1: the pre-training probe (model built, nothing trained), then the training steps
    assert list(df[["trial_number", "step"]].itertuples(index=False, name=None)) == [
        (n, s) for n in range(3) for s in range(-1, 3)
    ]
    for t in study.trials:
        assert sorted(t.intermediate_values) == [0, 1, 2]  # Optuna sees the training steps only
        rows = df[(df.trial_number == t.number) & (df.step >= 0)]
        # the reported objective is the stored val_accuracy, step by step
        assert [t.intermediate_values[s] for s in range(3)] == pytest.approx(list(rows.val_accuracy))
        assert rows[list(PROCESS_ROW)].notna().all().all()
        # structural metrics: measured before training and at the last step (no pruner asked for step 0's)
        pre = df[(df.trial_number == t.number) & (df.step == -1)]
        assert pre[list(SYSTEM_ROW)].notna().all().all() and pre.val_accuracy.isna().all()
        assert rows[list(STRUCTURAL_ROW)].notna().all(axis=1).tolist() == [False, False, True]
        assert rows.energy_j.isna().all() and rows.gpu_mem_mb.isna().all()  # no counter here: missing, not 0
        assert list(rows.cpu_s) == sorted(rows.cpu_s) and list(rows.wall_s) == sorted(rows.wall_s)
        # final values on the trial for trials_dataframe() and the dashboard
        last = rows.iloc[-1]
        assert t.user_attrs["peak_rss_mb"] == pytest.approx(last.peak_rss_mb)
        assert t.user_attrs["n_params"] == last.n_params
        assert "energy_j" not in t.user_attrs
        assert t.value == pytest.approx(last.val_accuracy)
    assert "user_attrs_infer_ms" in study.trials_dataframe().columns


def _enqueue(sqlite_url, name, params_list, directions=("maximize",)):
    study = optuna.create_study(storage=sqlite_url, study_name=name, directions=list(directions))
    for p in params_list:
        study.enqueue_trial(p)


@pytest.mark.parametrize(("policy", "second"), [("budget", False), ("threshold", True)])
def test_step_0_is_probed_only_for_a_pruner_that_waits_for_that_reading(run, sqlite_url, policy, second):
    # model_bytes is exact: `budget` decides on it at step -1; `threshold` ignores step -1 and reads step 0
    result = run(_spec(n_trials=2, budgets={"model_bytes": 10**9}, pruner={"policy": policy}))
    assert all(t.state == TrialState.COMPLETE for t in result.study.trials)
    df = load_step_metrics(sqlite_url, "t")
    assert df[df.step == 0].model_bytes.notna().tolist() == [second] * 2
    assert df[df.step == 2].model_bytes.notna().all() and df[df.step == -1].model_bytes.notna().all()


def test_an_estimator_unmeasurable_before_training_gets_its_first_size_reading_at_step_0(run, sqlite_url):
    run(
        _spec(
            n_trials=1,
            model="sklearn_sgd",
            search_space={},
            budgets={"model_bytes": 10**9},
            pruner={"policy": "budget"},
        )
    )
    df = load_step_metrics(sqlite_url, "t").set_index("step")
    assert math.isnan(df.loc[-1, "model_bytes"]) and df.loc[0, "model_bytes"] > 0


@pytest.mark.parametrize("policy", ["plain", "precheck"])
def test_plain_baselines_keep_the_budget_from_the_sampler(run, policy):
    from sysprune.analysis._trials import rows_of
    from sysprune.pruners import budget_constraints

    study = run(_spec(n_trials=2, budgets={"n_params": 10.0}, pruner={"policy": policy})).study  # all over it
    want = TrialState.PRUNED if policy == "precheck" else TrialState.COMPLETE
    assert [t.state for t in study.trials] == [want] * 2
    for t, row in zip(study.trials, rows_of(study)):
        assert t.constraints == {}  # nothing for the sampler, best_trial or the dashboard: a plain Optuna study
        assert budget_constraints(t)["n_params"] > 0 and not row.feasible  # the analyses know
    if policy == "plain":
        assert study.best_trial.number in (0, 1)  # Optuna sees no infeasible trial


def test_peak_memory_belongs_to_each_trial(run, sqlite_url):
    spec = _spec(
        model="tests.workloads.alloc",
        steps=2,
        n_trials=2,
        search_space={"mb": {"type": "categorical", "choices": [300, 30]}, "spin_ms": 5},
    )
    _enqueue(sqlite_url, "t", [{"mb": 300}, {"mb": 30}])
    run(spec)
    df = load_step_metrics(sqlite_url, "t").groupby("trial_number").last()
    big, small = df.loc[0], df.loc[1]
    assert 290 <= big.peak_rss_delta_mb <= 420
    assert 25 <= small.peak_rss_delta_mb <= 140
    assert big.peak_rss_mb - small.peak_rss_mb > 200


def test_inference_latency_grows_with_width(run, sqlite_url):
    spec = _spec(
        steps=1,
        n_trials=2,
        search_space={"width": {"type": "int", "low": 8, "high": 2048}, "n_layers": 3, "batch_size": 256},
        trial={"infer_repeats": 7, "infer_batch_size": 256},
    )
    _enqueue(sqlite_url, "t", [{"width": 16}, {"width": 2048}])
    run(spec)
    df = load_step_metrics(sqlite_url, "t")
    narrow, wide = df[df.trial_number == 0].iloc[0], df[df.trial_number == 1].iloc[0]
    assert wide.n_params > 100 * narrow.n_params
    assert wide.infer_ms > 5 * narrow.infer_ms


def test_resume_tops_up_then_adds_without_duplicates(run, sqlite_url):
    first = run(_spec())
    assert first.n_run == 3
    again = run(_spec())  # the same command again: the study already holds n_trials
    assert again.n_run == 0 and again.n_existing == 3
    more = run(_spec(), n_trials=2)
    assert more.n_run == 2
    study = optuna.load_study(study_name="t", storage=sqlite_url)
    assert [t.number for t in study.trials] == [0, 1, 2, 3, 4]
    assert len(optuna.get_all_study_names(sqlite_url)) == 1
    # a resumed run continues the sampler's sequence instead of replaying the first draws
    widths = [t.params["width"] for t in study.trials]
    assert widths[3:5] != widths[0:2]
    df = load_step_metrics(sqlite_url, "t")
    assert len(df) == 5 * 4 and not df.duplicated(["trial_number", "step"]).any()


def test_resume_refuses_a_study_defined_differently(run):
    from sysprune.study._runner import StudyMismatch

    run(_spec(n_trials=1))
    with pytest.raises(StudyMismatch, match='defined differently: model "torch_mlp" -> "sklearn_sgd"'):
        run(_spec(model="sklearn_sgd", search_space={}))


def test_a_failing_trial_is_marked_fail_and_the_study_goes_on(run, sqlite_url):
    spec = _spec(
        model="tests.workloads.alloc",
        steps=3,
        n_trials=3,
        search_space={"fail_at": {"type": "categorical", "choices": [-1, 1]}, "mb": 1, "spin_ms": 1},
    )
    _enqueue(sqlite_url, "t", [{"fail_at": -1}, {"fail_at": 1}, {"fail_at": -1}])
    study = run(spec).study
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    failed = study.trials[1]
    assert failed.user_attrs["error"] == "RuntimeError: planned failure at step 1"
    df = load_step_metrics(sqlite_url, "t")
    assert list(df[df.trial_number == 1].step) == [-1, 0]  # what it measured before failing is kept


def test_median_pruning_records_a_reason(run, sqlite_url):
    spec = _spec(
        steps=4,
        n_trials=8,
        pruner={"policy": "median", "n_startup_trials": 2, "n_warmup_steps": 0},
        search_space={"lr": {"type": "float", "low": 1e-5, "high": 3e-2, "log": True}, "width": 32},
    )
    study = run(spec).study
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned, "with lr down to 1e-5 some trials fall below the median"
    for t in pruned:
        assert "prune_reason" in t.user_attrs
        last = max(t.intermediate_values)
        df = load_step_metrics(sqlite_url, "t")
        assert df[df.trial_number == t.number].step.max() == last  # the child stopped at the pruned step


def test_multi_objective_study_runs_and_stores(run, sqlite_url):
    spec = _spec(
        objective={"metric": ["val_accuracy", "infer_ms"], "direction": ["maximize", "minimize"]},
        sampler={"name": "nsgaii"},
    )
    study = run(spec).study
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    for t in study.trials:
        assert t.state == TrialState.COMPLETE
        assert len(t.values) == 2 and all(math.isfinite(v) for v in t.values)
        assert t.values[1] == pytest.approx(t.user_attrs["infer_ms"])
    assert len(load_step_metrics(sqlite_url, "t")) == 3 * 4  # step -1 and three training steps


def test_multi_objective_study_prunes_on_a_budget(run, sqlite_url):
    """Optuna refuses trial.report with several objectives; sysprune's step loop still prunes on budgets."""
    spec = _spec(
        objective={"metric": ["val_accuracy", "infer_ms"], "direction": ["maximize", "minimize"]},
        sampler={"name": "random"},
        steps=4,
        n_trials=2,
        pruner={"policy": "budget"},
        budgets={"n_params": 5000},
        search_space={"width": {"type": "int", "low": 8, "high": 512}, "n_layers": 1},
    )
    _enqueue(sqlite_url, "t", [{"width": 8}, {"width": 512}], directions=("maximize", "minimize"))
    study = run(spec).study
    small, big = study.trials
    assert small.state == TrialState.COMPLETE and len(small.values) == 2
    assert big.state == TrialState.PRUNED
    detail = big.user_attrs["prune_detail"]
    # pruned on the pre-training probe: before its first epoch
    assert detail["metric"] == "n_params" and detail["step"] == -1 and detail["value"] > 5000
    assert big.constraints == {"budget:n_params": pytest.approx(detail["value"] - 5000)}  # infeasible
    assert small.constraints["budget:n_params"] <= 0
    assert [t.number for t in study.best_trials] == [0]
    df = load_step_metrics(sqlite_url, "t")
    assert list(df[df.trial_number == 1].step) == [-1]  # no training step recorded
    assert big.intermediate_values == {}


def test_process_totals_cover_more_than_the_training(run):
    study = run(_spec(n_trials=1)).study
    t = study.trials[0]
    # the process totals are stored to 4 decimals (0.09 for a training's 0.09000000000000001)
    assert t.user_attrs["process_cpu_s"] >= t.user_attrs["cpu_s"] - 1e-4
    assert t.user_attrs["process_wall_s"] >= t.user_attrs["wall_s"] - 1e-4


@pytest.mark.data
@pytest.mark.parametrize(
    "model, dataset",
    [
        ("torch_mlp", "fashion_mnist"),
        ("torch_cnn", "mnist"),
        ("sklearn_sgd", "pmlb:adult"),
        ("torch_mlp", "pmlb:letter"),
    ],
)
def test_a_short_trial_of_each_family_on_real_data(data_dir, cache_dir, sqlite_url, model, dataset):
    spec = parse_spec(
        {
            "name": "real",
            "model": model,
            "steps": 2,
            "n_trials": 1,
            "seed": 0,
            "dataset": {"name": dataset, "subsample": 3000},
            "sampler": {"name": "random"},
            "trial": {"infer_repeats": 3, "infer_batch_size": 64},
        }
    )
    study = run_study(spec, storage_url=sqlite_url, data_dir=str(data_dir), cache_dir=str(cache_dir)).study
    (t,) = study.trials
    assert t.state == TrialState.COMPLETE, t.user_attrs.get("error")
    df = load_step_metrics(sqlite_url, "real")
    assert list(df.step) == [-1, 0, 1] and df[list(PROCESS_ROW)].notna().all().all()
    assert df[list(STRUCTURAL_ROW)].iloc[-1].notna().all()
    chance = 0.5 if dataset == "pmlb:adult" else 1 / 26 if dataset == "pmlb:letter" else 0.1
    assert df.val_accuracy.iloc[-1] > chance + 0.1


def test_a_hard_cap_prunes_with_its_reason_and_an_infeasible_constraint(run):
    spec = _spec(
        model="tests.workloads.alloc",
        steps=5,
        n_trials=1,
        trial={"max_wall_s": 0.5},
        budgets={"wall_s": 100.0},
        search_space={"mb": 1, "spin_ms": 300},
    )
    (t,) = run(spec).study.trials
    assert t.state == TrialState.PRUNED
    assert t.user_attrs["prune_detail"]["rule"] == "hard_cap" and t.user_attrs["prune_detail"]["metric"] == "wall_s"
    assert (
        t.user_attrs["prune_reason"].startswith("wall_s ")
        and "exceeded the hard cap 0.5" in t.user_attrs["prune_reason"]
    )
    # the cap's positive constraint, not the last step's (within the 100 s budget) one
    assert t.constraints["budget:wall_s"] > 0


def test_a_time_budget_is_decided_at_step_minus_1_from_a_dry_run_once_trials_bore_it_out(run, sqlite_url):
    # five narrow nets finish well within 2 CPU s and teach the pruner how their dry runs predicted; a wide one
    # whose dry run predicts far more is then pruned before training, its reason naming the dry run
    spec = _spec(
        steps=3,
        n_trials=6,
        search_space={"width": {"type": "int", "low": 8, "high": 4096}, "n_layers": 2, "batch_size": 32},
        budgets={"cpu_s": 2.0},
        pruner={"policy": "budget"},
    )
    _enqueue(sqlite_url, "t", [{"width": w} for w in (8, 9, 10, 11, 12, 4096)])
    study = run(spec).study
    df = load_step_metrics(sqlite_url, "t")
    seen = df[["trial_number", "step", "cpu_s", "pred_cpu_s"]].to_string()
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 5 + [TrialState.PRUNED], seen
    wide = study.trials[5]
    reason = wide.user_attrs["prune_reason"]
    assert "dry run" in reason and reason.endswith("decided at step -1"), (reason, seen)
    assert df[df.trial_number == 5].step.tolist() == [-1]  # nothing after the pre-training decision
    pre = df[df.step == -1].set_index("trial_number")
    assert pre.pred_cpu_s.notna().all() and (pre.dry_run_cpu_s > 0).all()
    assert pre.loc[5, "pred_cpu_s"] > 10 * pre.loc[0, "pred_cpu_s"]
    # the compute of the pruned trial holds its set-up, probe and dry run: all its processes used
    assert wide.user_attrs["process_cpu_s"] >= pre.loc[5, "cpu_s"] + pre.loc[5, "dry_run_cpu_s"] - 0.01
