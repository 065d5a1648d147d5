"""compare: totals equal the sums over the stored trials; every policy gets the same seed and first trial;
compute-to-target against none / the best built-in on hand-made runs; the figures hold every trial."""

from __future__ import annotations

import csv

import optuna
import pytest

from sysprune.spec import SpecError
from sysprune.analysis import _compare, _compare_report, _figures
from sysprune.analysis._stats import NA, NOT_REACHED
from tests.analysis._helpers import row, tiny_spec

POLICIES = ["none", "median", "budget"]
SEEDS = [1, 2]


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compare")
    url = f"sqlite:///{tmp / 'c.db'}"
    spec = tiny_spec()
    cache = str(tmp / "arrays")
    _compare.run_compare(spec, POLICIES, SEEDS, storage_url=url, log=lambda s: None, cache_dir=cache)
    result = _compare.collect(spec, POLICIES, SEEDS, storage_url=url)
    _compare.add_test_scores(result, tmp / "out" / "tiny" / "test_scores.json", cache_dir=cache, log=lambda s: None)
    files = _compare_report.write_compare(result, tmp / "out" / "tiny")
    return spec, url, result, files, cache


@pytest.mark.slow
def test_totals_equal_the_sums_over_the_stored_trials(compared):
    spec, url, result, files, _ = compared
    with open(files[1]) as f:
        csv_rows = {(r["policy"], int(r["seed"])): r for r in csv.DictReader(f)}
    for (p, s), run in result.runs.items():
        trials = optuna.load_study(study_name=_compare.compare_study_name("tiny", p, s), storage=url).trials
        assert len(trials) == 4
        proc = sum(t.user_attrs["process_cpu_s"] for t in trials)
        work = sum(t.user_attrs["worker_cpu_s"] for t in trials)
        assert all(t.user_attrs["worker_cpu_s"] > 0 for t in trials)  # every trial carries the worker's own
        assert run.process_cpu == pytest.approx(proc) and run.worker_cpu == pytest.approx(work)
        assert run.compute == pytest.approx(proc + work)
        assert float(csv_rows[(p, s)]["compute_cpu_s"]) == pytest.approx(proc + work, abs=1e-3)
        states = [t.state.name for t in trials]
        assert (run.n_complete, run.n_pruned, run.n_failed) == (
            states.count("COMPLETE"),
            states.count("PRUNED"),
            states.count("FAIL"),
        )
        over = sum(t.state.name == "COMPLETE" and t.user_attrs["n_params"] > 5000 for t in trials)
        assert run.over_budget_complete == over
    # the budget policy lets no over-budget trial run to the end; none lets every one
    assert all(result.runs[("budget", s)].over_budget_complete == 0 for s in SEEDS)
    assert sum(result.runs[("none", s)].over_budget_complete for s in SEEDS) > 0


@pytest.mark.slow
def test_every_policy_got_the_same_seed_and_first_trial(compared):
    spec, url, result, _, _ = compared
    for s in SEEDS:
        firsts = []
        for p in POLICIES:
            st = optuna.load_study(study_name=_compare.compare_study_name("tiny", p, s), storage=url)
            assert st.user_attrs["pruner"]["policy"] == p
            firsts.append(st.trials[0].params)
        assert all(f == firsts[0] for f in firsts)
    a = optuna.load_study(study_name="tiny.compare.none.s1", storage=url).trials[0].params
    b = optuna.load_study(study_name="tiny.compare.none.s2", storage=url).trials[0].params
    assert a != b  # seeds differ between seeds, not between policies


@pytest.mark.slow
def test_resuming_runs_nothing_more(compared):
    spec, url, result, _, cache = compared
    log = []
    _compare.run_compare(spec, POLICIES, SEEDS, storage_url=url, log=log.append, cache_dir=cache)
    assert all("(0 run now)" in line for line in log) and len(log) == len(POLICIES) * len(SEEDS)


@pytest.mark.slow
def test_the_figures_contain_every_trial(compared):
    _, _, result, _, _ = compared
    n = sum(len(r.rows) for r in result.runs.values())

    def ids(fig):
        return sorted((c[0], c[1]) for tr in fig.data if tr.customdata is not None for c in tr.customdata)

    every = sorted((r.study_name, t.number) for r in result.runs.values() for t in r.rows)
    assert len(every) == n
    assert ids(_figures.anytime_figure(result, dots=True)) == every
    assert ids(_figures.what_fits_figure(result, "n_params")) == every


@pytest.mark.slow
def test_test_score_is_of_the_best_feasible_configuration(compared):
    _, _, result, files, _ = compared
    for run in result.runs.values():
        if run.best is None:
            assert run.test is None
        else:
            assert 0.0 <= run.test["test_accuracy"] <= 1.0
    assert "test score" in files[0].read_text()


def _run(policy, seed, rows):
    return _compare.digest(policy, seed, f"s.{policy}.{seed}", rows, "maximize")


def test_compute_to_target_and_savings_on_hand_made_runs():
    # seed 0: none reaches 0.9 after 4 trials (compute 4); budget gets 0.897 (within 0.005) after 1;
    # median reaches it after 2, hyperband never. Seed 1: none finds nothing feasible -> no target.
    runs = {
        ("none", 0): _run("none", 0, [row(0, value=0.5), row(1, value=0.6), row(2, value=0.7), row(3, value=0.9)]),
        ("budget", 0): _run("budget", 0, [row(0, value=0.897), row(1, "PRUNED", value=0.1, rule="budget")]),
        ("median", 0): _run("median", 0, [row(0, value=0.5), row(1, value=0.95)]),
        ("hyperband", 0): _run("hyperband", 0, [row(0, value=0.5), row(1, value=0.6)]),
        ("none", 1): _run("none", 1, [row(0, value=0.9, infeasible=True)]),
        ("budget", 1): _run("budget", 1, [row(0, value=0.8)]),
        ("median", 1): _run("median", 1, [row(0, value=0.8)]),
        ("hyperband", 1): _run("hyperband", 1, [row(0, value=0.8)]),
    }
    _compare.fill_targets(runs, 0.005, "maximize")
    assert runs[("none", 0)].ctt == 4.0 and runs[("budget", 0)].ctt == 1.0 and runs[("median", 0)].ctt == 2.0
    assert runs[("hyperband", 0)].ctt is None
    assert runs[("budget", 0)].savings == {"none": 4.0, "builtin": 2.0}  # best built-in = median here
    assert runs[("hyperband", 0)].savings["none"] == NOT_REACHED
    assert runs[("budget", 1)].ctt is None and runs[("budget", 1)].savings["none"] == NA
    assert runs[("budget", 0)].pruned == {"budget": 1}


def test_the_ceiling_frees_none_s_over_budget_trials_and_nothing_else():
    # none: two over-budget trials (compute 3 each) before its best feasible one; free, target costs 1 + 1
    none = [
        row(0, value=0.5),
        row(1, value=0.99, compute=3.0, infeasible=True),
        row(2, value=0.98, compute=3.0, infeasible=True),
        row(3, value=0.9),
    ]
    runs = {
        ("none", 0): _run("none", 0, none),
        ("budget", 0): _run("budget", 0, [row(0, value=0.9, compute=4.0)]),
        ("none", 1): _run("none", 1, [row(0, value=0.9)]),
        ("budget", 1): _run("budget", 1, [row(0, value=0.9)]),
    }
    _compare.fill_targets(runs, 0.005, "maximize")
    assert runs[("none", 0)].ctt == 8.0 and runs[("none", 0)].ceiling_ctt == 2.0
    assert runs[("none", 1)].ceiling_ctt == runs[("none", 1)].ctt == 1.0  # nothing over budget: no saving
    assert runs[("budget", 0)].ceiling_ctt is None  # a property of none's trials only
    result = _compare.CompareResult(tiny_spec(), ["none", "budget"], [0, 1], 0.005, "tpe", "sqlite://", runs)
    assert _compare_report.ceiling_savings(result) == [4.0, 1.0]
    table = _compare_report.policy_table(result)
    assert [r["policy"] for r in table] == ["none", _compare_report.CEILING, "budget"]
    assert table[1]["saving vs none"] == "2.50x [1.75x, 3.25x] (2/2 reached)"


def test_savings_against_the_plain_baselines_and_plain_s_ceiling():
    plain = [row(0, value=0.99, compute=4.0, infeasible=True), row(1, value=0.9)]  # ctt 5; over-budget free: 1
    runs = {
        ("none", 0): _run("none", 0, [row(0, value=0.9, compute=2.0)]),
        ("plain", 0): _run("plain", 0, plain),
        ("precheck", 0): _run("precheck", 0, [row(0, "PRUNED", compute=0.1, rule="budget"), row(1, value=0.9)]),
        ("budget", 0): _run("budget", 0, [row(0, value=0.9, compute=0.5)]),
    }
    _compare.fill_targets(runs, 0.005, "maximize")
    assert runs[("budget", 0)].savings == {"none": 4.0, "plain": 10.0, "precheck": pytest.approx(2.2)}
    assert runs[("plain", 0)].ceiling_ctt == 1.0
    result = _compare.CompareResult(
        tiny_spec(), ["none", "plain", "precheck", "budget"], [0], 0.005, "tpe", "sqlite://", runs
    )
    table = _compare_report.policy_table(result)
    assert [r["policy"] for r in table] == [
        "none",
        _compare_report.CEILING,
        "plain",
        _compare_report.ceiling_label("plain"),
        "precheck",
        "budget",
    ]
    assert table[3]["vs plain"] == "5.00x (1/1 reached)"
    assert table[-1]["vs plain"] == "10.00x (1/1 reached)" and table[-1]["vs precheck"] == "2.20x (1/1 reached)"


def test_policy_names_and_bad_input_are_one_line_errors():
    assert _compare.parse_policies("none, median") == ["none", "median"]
    with pytest.raises(SpecError, match=r"^--policies: value 'bogus' is invalid; valid: none, "):
        _compare.parse_policies("none,bogus")
    with pytest.raises(SpecError, match="each policy once"):
        _compare.parse_policies("none,none")
    with pytest.raises(SpecError, match="needs a \\[budgets\\] table"):
        _compare.policy_spec(tiny_spec(budgets={}), "budget")
    with pytest.raises(SpecError, match="--seeds must be an integer >= 1"):
        _compare.seeds_of(tiny_spec(), 0)
    multi = tiny_spec(objective={"metric": ["val_accuracy", "infer_ms"]})
    with pytest.raises(SpecError, match="single-objective"):
        _compare.collect(multi, ["none"], [1], storage_url="sqlite://")
