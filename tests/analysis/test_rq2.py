"""RQ2 inference on hand-made runs: paired savings, censored seeds, identical decisions, equal compute, the
summary table's cells, and the Friedman blocks with "not reached" ranked last."""

from __future__ import annotations

import dataclasses
import math

import pytest

from sysprune.analysis import _compare, _rq2, _summary_tables
from sysprune.analysis._plan import Item, StudyOutcome
from tests.analysis._helpers import row, tiny_spec


def _run(policy, seed, rows):
    return _compare.digest(policy, seed, f"s.{policy}.{seed}", rows, "maximize")


def _with(r, **params):
    return dataclasses.replace(r, params=params)


def _result(runs, policies, seeds, n_val=400):
    result = _compare.CompareResult(tiny_spec(), policies, seeds, None, "tpe", "sqlite://", runs, n_val)
    _compare.fill_targets(runs, None, "maximize", n_val=n_val)
    return result


def _three_seeds():
    """none reaches 0.9 after 4 CPU s; budget after 1, 2, 4 s; threshold repeats none's decisions exactly."""
    runs = {}
    for seed, cost in ((0, 1.0), (1, 2.0), (2, 4.0)):
        none_rows = [_with(row(0, value=0.5, compute=2.0), w=1), _with(row(1, value=0.9, compute=2.0), w=2)]
        runs[("none", seed)] = _run("none", seed, none_rows)
        runs[("threshold", seed)] = _run("threshold", seed, list(none_rows))
        runs[("budget", seed)] = _run("budget", seed, [_with(row(0, value=0.9, compute=cost), w=3)])
    return _result(runs, ["none", "budget", "threshold"], [0, 1, 2])


def test_tolerance_is_one_binomial_standard_error_of_the_reference():
    r = _three_seeds()
    assert r.runs[("budget", 0)].tolerance == pytest.approx(math.sqrt(0.9 * 0.1 / 400))
    with pytest.raises(ValueError, match="n_val"):
        _compare.fill_targets(r.runs, None, "maximize")


def test_saving_is_a_geometric_mean_with_a_t_interval_on_the_logs():
    v = _rq2.versus(_three_seeds(), "budget", "none")
    assert (v.seeds, v.reached, v.ref_reached, v.identical) == (3, 3, 3, 0)
    assert v.saving.point == pytest.approx((4.0 * 2.0 * 1.0) ** (1 / 3))  # ratios 4, 2, 1
    assert v.saving.lo < v.saving.point < v.saving.hi and v.saving.p is not None
    assert not v.saving.supported  # three seeds spread 1x-4x support nothing
    # at the cheaper run's end (budget's: 1, 2, 4 s) none has nothing yet, 0.5, then 0.9: differences -, 0.4, 0
    assert v.at_equal.n == 2 and v.at_equal.point == pytest.approx(0.2)


def test_identical_decisions_are_reported_as_such_not_as_a_ratio():
    rows = _summary_tables.rq2_rows([_outcome(_three_seeds())])
    th = next(x for x in rows if x["policy"] == "threshold" and x["reference"] == "none")
    assert th["identical"] == 3 and _summary_tables.ratio_cell(th) == "identical decisions (3/3 seeds)"
    budget = next(x for x in rows if x["policy"] == "budget" and x["reference"] == "none")
    assert _summary_tables.ratio_cell(budget).startswith("2.00x [")
    # Holm over the table's p-values: never smaller than the raw ones
    assert all(x["p_holm"] is None or x["p_holm"] >= x["p"] for x in rows)


def test_a_censored_seed_is_counted_and_left_out_of_the_ratio_not_made_a_number():
    r = _three_seeds()
    r.runs[("budget", 2)] = _run("budget", 2, [_with(row(0, value=0.5, compute=9.0), w=3)])  # never reaches 0.9
    _compare.fill_targets(r.runs, None, "maximize", n_val=400)
    v = _rq2.versus(r, "budget", "none")
    assert (v.reached, v.saving.n, v.censored) == (2, 2, 1)
    cell = _summary_tables.ratio_cell(
        next(x for x in _summary_tables.rq2_rows([_outcome(r)]) if x["policy"] == "budget" and x["reference"] == "none")
    )
    assert "(2/3 both reached)" in cell
    labels, table = _rq2.block_table([r], ["none", "budget", "threshold"])
    assert labels == ["tiny s0", "tiny s1", "tiny s2"] and table[2][1] == math.inf


def test_best_at_reads_the_anytime_curve_at_a_compute():
    curve = [(1.0, None), (2.0, 0.5), (4.0, 0.7)]
    assert [_rq2.best_at(curve, c) for c in (0.5, 1.0, 3.0, 10.0)] == [None, None, 0.5, 0.7]


def test_held_out_difference_and_false_prunes():
    r = _three_seeds()
    for seed, (a, b) in enumerate(((0.95, 0.96), (0.94, 0.94), (0.97, 0.95))):
        r.runs[("budget", seed)].test = {"test_accuracy": a}
        r.runs[("none", seed)].test = {"test_accuracy": b}
    d = _rq2.held_out_difference(r, "budget")
    assert d.n == 3 and d.point == pytest.approx(0.0033333, abs=1e-6)
    fp = _rq2.false_prunes([True, False, False, None])
    assert (fp.n, fp.point, fp.lo) == (3, pytest.approx(1 / 3), pytest.approx(0.0084, abs=1e-4))


def test_overhead_share_is_what_a_replay_does_not_count():
    a = row(0, value=0.9, compute=2.0)
    a.metrics["cpu_s"] = 1.5
    b = row(1, value=0.8, compute=2.0)
    b.metrics["cpu_s"] = 1.5
    run = _run("none", 0, [a, b])
    assert _rq2.overhead_share([run]) == pytest.approx(0.25)
    assert _rq2.live_from_replay(4.0, 0.25) == pytest.approx(1 / (0.75 / 4 + 0.25))
    assert _rq2.live_from_replay(4.0, 0.0) == pytest.approx(4.0)


def test_friedman_across_studies_needs_three_common_policies():
    r = _three_seeds()
    assert _rq2.common_policies([r]) == ["none", "budget", "threshold"]
    fr = _rq2.across_studies([r])
    assert fr is not None and fr.n == 3 and fr.mean_ranks["budget"] == pytest.approx(4 / 3)  # tied with both at seed 2
    two = dataclasses.replace(r, policies=["none", "budget"])
    assert _rq2.across_studies([two]) is None


def _outcome(result):
    return StudyOutcome(
        Item("tiny", 2, 0, "n_params", 0.5, 2, 3), tiny_spec(), {"n_params": 5000.0}, 0.5, {}, 0.0, compare=result
    )


def test_compare_md_states_the_noise_tolerance_in_words():
    from sysprune.analysis._compare_report import tolerance_text

    text = tolerance_text(_three_seeds())
    assert text.startswith("one binomial standard error on the 400 validation examples (0.0150 across seeds)")
    absolute = dataclasses.replace(_three_seeds(), tolerance=0.005)
    assert tolerance_text(absolute) == "0.005 (absolute)"
