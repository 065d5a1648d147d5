"""The plan of ``make results`` as data: every item loads, names registered policies and a recording of the plan; the
whole grid is in RQ1 and every dataset family has a live RQ2 comparison with the seeds issue 18 needs; the estimate
fits the time the plan is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from sysprune.analysis import _results
from sysprune.analysis._plan import BUILTIN, FULL, QUICK, Item, apply, estimate_minutes
from sysprune.pruners import reference_groups
from sysprune.spec import SpecError, load_spec

STUDIES = Path(__file__).resolve().parents[2] / "studies"


def _spec(it: Item):
    return apply(it, load_spec(STUDIES / f"{it.study}.toml"))


@pytest.mark.parametrize("plan", [FULL, QUICK], ids=["full", "quick"])
def test_every_item_loads_names_registered_policies_and_a_recording_of_the_plan(plan):
    names = [it.study for it in plan]
    assert len(names) == len(set(names))
    for it in plan:
        spec = _spec(it)
        assert _results.policies_of(it)
        if it.recording is not None:
            source = next(i for i in plan if i.study == it.recording)
            assert source.records and source.record_trials > 0
            s = _spec(source)  # a shared recording: the same model, data, space and steps
            assert (s.model, s.dataset, s.search_space, s.steps) == (
                spec.model,
                spec.dataset,
                spec.search_space,
                spec.steps,
            )
        if it.live:
            assert it.budget_metric is not None and "none" in it.policies


def test_the_whole_grid_is_in_rq1_with_fifty_random_trials_each():
    grid = {
        (s.model, s.dataset.name)
        for p in STUDIES.glob("*.toml")
        if not p.name.startswith("rq2_")
        for s in [load_spec(p)]
    }
    recorded = {(s.model, s.dataset.name): it.record_trials for it in FULL if it.records for s in [_spec(it)]}
    assert grid <= set(recorded), grid - set(recorded)
    assert min(recorded.values()) >= 50


def test_rq2_live_covers_every_dataset_family_with_the_seeds_its_claims_need():
    live = {it.study: _spec(it) for it in FULL if it.live}
    family = {"digits": "digits", "mnist": "mnist", "fashion_mnist": "fashion"}
    covered = {family.get(s.dataset.name, "pmlb" if s.dataset.name.startswith("pmlb:") else "?") for s in live.values()}
    assert covered >= {"digits", "mnist", "fashion", "pmlb"}
    digits = [it for it in FULL if it.live and _spec(it).dataset.name == "digits"]
    assert {it.budget_metric for it in digits} == {"model_bytes", "cpu_s", "peak_rss_delta_mb", "infer_ms"}
    assert all(it.seeds >= 10 and {"none", "budget", "threshold", "combined"} <= set(it.policies) for it in digits)
    assert any(it.seeds >= 5 for it in FULL if it.live and _spec(it).dataset.name == "mnist")


def test_the_built_in_pruners_come_from_the_policy_registry():
    assert set(reference_groups()["builtin"]) <= set(BUILTIN)


def test_an_unknown_policy_in_the_plan_is_refused_with_the_valid_ones():
    with pytest.raises(SpecError, match=r"plan item x: unknown policies nope; valid: none, "):
        _results.policies_of(Item("x", policies=("none", "nope")))


def test_the_full_plan_is_estimated_within_its_150_minutes():
    total = sum(estimate_minutes(it, _spec(it), len(_results.policies_of(it)) if it.live else 0) for it in FULL)
    assert 30 < total <= 150
    spec = _spec(QUICK[0])  # torch_mlp on digits: 0.043 CPU s per step, 0.15 s per trial
    assert estimate_minutes(Item("x", record_trials=10), spec, 0) == pytest.approx(
        10 * (spec.steps * 0.043 + 0.15) / 60
    )
    assert estimate_minutes(Item("x", record_trials=10, compare_trials=4, seeds=2), spec, 3) == pytest.approx(
        (10 + 3 * 2 * 5) * (spec.steps * 0.043 + 0.15) / 60
    )
