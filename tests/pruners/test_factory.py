from __future__ import annotations

import tomllib

import optuna
import pytest

from sysprune.exceptions import InvalidArgument
from sysprune.pruners import (
    CombinedPruner,
    CurvePruner,
    ResourceBudgetPruner,
    ThresholdBudgetPruner,
    build_pruner,
    policy_names,
    validate_policy,
)

STEPS = 10


def test_policy_names() -> None:
    assert policy_names() == (
        "none",
        "median",
        "hyperband",
        "budget",
        "curve",
        "combined",
        "threshold",
        "plain",
        "precheck",
    )


@pytest.mark.parametrize(
    "policy, expected",
    [
        ("none", {}),
        ("median", {"n_startup_trials": 5, "n_warmup_steps": 0, "interval_steps": 1}),
        ("hyperband", {"min_resource": 1, "max_resource": STEPS, "reduction_factor": 3, "bootstrap_count": 0}),
        ("budget", {"predict": True, "n_warmup_steps": 0, "confidence": 0.95}),
        ("threshold", {}),
        (
            "curve",
            {
                "n_warmup_steps": 1,
                "interval_steps": 1,
                "probability": 0.05,
                "n_startup_trials": 1,
                "families": ["pow", "exp", "log"],
                "study_gains": True,
            },
        ),
    ],
)
def test_defaults(policy: str, expected: dict) -> None:
    assert validate_policy(policy, {}, steps=STEPS) == (policy, expected)


def test_combined_normalises_its_members() -> None:
    raw = {"members": ["budget", "curve"], "curve": {"probability": 0.1}}
    policy, params = validate_policy("combined", raw, steps=STEPS)
    assert policy == "combined"
    assert params["members"] == ["budget", "curve"]
    assert params["budget"] == {"predict": True, "n_warmup_steps": 0, "confidence": 0.95}
    assert params["curve"]["probability"] == 0.1


_MEMBERS = "a list of 2 or more distinct values from: median, hyperband, budget, curve"
_FAMILIES = "a non-empty list of distinct values from: pow, exp, log"


@pytest.mark.parametrize(
    "policy, params, message",
    [
        (
            "bogus",
            {},
            "pruner.policy: value 'bogus' is invalid; valid: none, median, hyperband, budget, curve, combined, "
            "threshold, plain, precheck",
        ),
        ("threshold", {"confidence": 0.9}, "pruner.confidence: unknown key; valid: (none)"),
        ("none", {"x": 1}, "pruner.x: unknown key; valid: (none)"),
        ("budget", {"warmup": 1}, "pruner.warmup: unknown key; valid: predict, n_warmup_steps, confidence"),
        ("budget", {"predict": "yes"}, "pruner.predict: value 'yes' is invalid; valid: true or false"),
        ("budget", {"n_warmup_steps": -1}, "pruner.n_warmup_steps: value -1 is invalid; valid: an integer >= 0"),
        (
            "budget",
            {"n_warmup_steps": STEPS},
            "pruner.n_warmup_steps: value 10 is invalid (the pruner could never act: the study has steps = 10); "
            "valid: an integer in [0, 9]",
        ),
        ("budget", {"confidence": 1.0}, "pruner.confidence: value 1.0 is invalid; valid: a finite number in [0.5, 1)"),
        (
            "budget",
            {"confidence": "high"},
            "pruner.confidence: value 'high' is invalid; valid: a finite number in [0.5, 1)",
        ),
        ("curve", {"probability": 0}, "pruner.probability: value 0 is invalid; valid: a finite number in (0, 1)"),
        ("curve", {"interval_steps": 0}, "pruner.interval_steps: value 0 is invalid; valid: an integer >= 1"),
        ("curve", {"n_startup_trials": 0}, "pruner.n_startup_trials: value 0 is invalid; valid: an integer >= 1"),
        ("curve", {"families": "pow"}, f"pruner.families: value 'pow' is invalid; valid: {_FAMILIES}"),
        (
            "curve",
            {"families": ["pow", "spline"]},
            "pruner.families[1]: value 'spline' is invalid; valid: pow, exp, log",
        ),
        (
            "curve",
            {"families": ["log", "log"]},
            f"pruner.families: value ['log', 'log'] is invalid ('log' twice); valid: {_FAMILIES}",
        ),
        ("hyperband", {"reduction_factor": 1}, "pruner.reduction_factor: value 1 is invalid; valid: an integer >= 2"),
        (
            "hyperband",
            {"max_resource": 11},
            'pruner.max_resource: value 11 is invalid; valid: an integer in [1, 10] (the study\'s steps) or "auto"',
        ),
        (
            "hyperband",
            {"max_resource": "big"},
            "pruner.max_resource: value 'big' is invalid; valid: an integer >= 1 or \"auto\"",
        ),
        (
            "hyperband",
            {"min_resource": 5, "max_resource": 4},
            "pruner.min_resource: value 5 is invalid; valid: an integer in [1, 4] (max_resource)",
        ),
        (
            "hyperband",
            {"max_resource": "auto", "bootstrap_count": 1},
            "pruner.bootstrap_count: value 1 is invalid (a bootstrap needs an integer max_resource); valid: 0 "
            'with max_resource = "auto"',
        ),
        ("combined", {}, f"pruner.members: missing (required); valid: {_MEMBERS}"),
        ("combined", {"members": ["budget"]}, f"pruner.members: value ['budget'] is invalid; valid: {_MEMBERS}"),
        (
            "combined",
            {"members": ["budget", "ranking"]},
            "pruner.members[1]: value 'ranking' is invalid; valid: median, hyperband, budget, curve",
        ),
        (
            "combined",
            {"members": ["curve", "curve"]},
            f"pruner.members: value ['curve', 'curve'] is invalid ('curve' twice); valid: {_MEMBERS}",
        ),
        (
            "combined",
            {"members": ["curve", "budget"]},
            "pruner.members: value ['curve', 'budget'] is invalid (a budget breach makes a trial infeasible and must "
            "win over a learning-curve prune); valid: the members that prune on budgets first (budget, curve)",
        ),
        (
            "combined",
            {"members": ["budget", "curve"], "median": {}},
            "pruner.median: value {} is invalid (median is not in members); valid: parameters of a member "
            "(budget, curve)",
        ),
        (
            "combined",
            {"members": ["budget", "curve"], "curve": 0.1},
            "pruner.curve: value 0.1 is invalid; valid: a table",
        ),
        (
            "combined",
            {"members": ["budget", "curve"], "curve": {"probability": 2}},
            "pruner.curve.probability: value 2 is invalid; valid: a finite number in (0, 1)",
        ),
        (
            "combined",
            {"members": ["budget", "median"], "median": {"patience": 2}},
            "pruner.median.patience: unknown key; valid: n_startup_trials, n_warmup_steps, interval_steps",
        ),
        (
            "combined",
            {"members": ["budget", "curve"], "extra": 1},
            "pruner.extra: unknown key; valid: members, median, hyperband, budget, curve",
        ),
    ],
)
def test_invalid_parameters_are_named(policy: str, params: dict, message: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        validate_policy(policy, params, steps=STEPS)
    assert str(e.value) == message


def test_budget_policies_need_budgets() -> None:
    with pytest.raises(ValueError, match=r"policy 'budget' needs a \[budgets\] table naming at least one metric"):
        validate_policy("budget", {}, steps=STEPS, budgets={})
    with pytest.raises(ValueError, match=r"policy 'budget' needs a \[budgets\] table"):
        validate_policy("combined", {"members": ["budget", "median"]}, steps=STEPS, budgets={})
    validate_policy("curve", {}, steps=STEPS, budgets={})
    _, params = validate_policy("budget", {}, steps=STEPS)
    with pytest.raises(ValueError, match=r"policy 'budget' needs a \[budgets\] table"):
        build_pruner("budget", params, budgets={}, steps=STEPS)
    with pytest.raises(ValueError, match=r"policy 'threshold' needs a \[budgets\] table naming at least one metric"):
        validate_policy("threshold", {}, steps=STEPS, budgets={})
    with pytest.raises(ValueError, match=r"policy 'threshold' needs a \[budgets\] table"):
        build_pruner("threshold", {}, budgets={}, steps=STEPS)


@pytest.mark.parametrize(
    "policy, params",
    [("curve", {}), ("median", {}), ("hyperband", {}), ("combined", {"members": ["budget", "median"]})],
)
def test_multi_objective_studies_refuse_learning_curve_policies(policy: str, params: dict) -> None:
    with pytest.raises(ValueError, match=r"needs a single-objective study; this study has 2 objectives"):
        validate_policy(policy, params, steps=STEPS, directions=["maximize", "minimize"])


@pytest.mark.parametrize("policy", ["none", "budget", "threshold"])
def test_multi_objective_studies_accept_budget_and_none(policy: str) -> None:
    validate_policy(policy, {}, steps=STEPS, budgets={"wall_s": 1.0}, directions=["maximize", "minimize"])


def test_build_each_policy() -> None:
    budgets = {"wall_s": 60.0}

    def build(policy: str, params: dict) -> optuna.pruners.BasePruner:
        return build_pruner(policy, validate_policy(policy, params, steps=STEPS)[1], budgets=budgets, steps=STEPS)

    assert isinstance(build("none", {}), optuna.pruners.NopPruner)
    assert isinstance(build("median", {}), optuna.pruners.MedianPruner)
    hyperband = build("hyperband", {"reduction_factor": 2})
    assert isinstance(hyperband, optuna.pruners.HyperbandPruner)
    assert (hyperband._max_resource, hyperband._reduction_factor) == (STEPS, 2)

    budget = build("budget", {"n_warmup_steps": 2, "predict": False})
    assert isinstance(budget, ResourceBudgetPruner)
    assert budget.budgets == budgets
    assert (budget._max_steps, budget._n_warmup_steps, budget._predict) == (STEPS, 2, False)

    threshold = build("threshold", {})
    assert isinstance(threshold, ThresholdBudgetPruner) and threshold.budgets == budgets

    curve = build("curve", {"probability": 0.2, "families": ["pow"]})
    assert isinstance(curve, CurvePruner)
    assert (curve._max_steps, curve._probability, curve._families) == (STEPS, 0.2, ("pow",))

    combined = build("combined", {"members": ["budget", "curve", "median"], "median": {"n_startup_trials": 2}})
    assert isinstance(combined, CombinedPruner)
    assert [type(p).__name__ for p in combined.pruners] == ["ResourceBudgetPruner", "CurvePruner", "MedianPruner"]
    assert combined.pruners[2]._n_startup_trials == 2


from sysprune.spec import ObjectiveSpec  # noqa: E402

_SINGLE = ObjectiveSpec(("val_accuracy",), ("maximize",))

STUDY_FILE_PRUNERS = {
    "none": 'pruner = "none"',
    "median": '[pruner]\npolicy = "median"\nn_startup_trials = 5\nn_warmup_steps = 2',
    "hyperband": '[pruner]\npolicy = "hyperband"\nmin_resource = 1\nreduction_factor = 3',
    "budget": '[pruner]\npolicy = "budget"\nn_warmup_steps = 2\nconfidence = 0.9',
    "curve": '[pruner]\npolicy = "curve"\nprobability = 0.05\nfamilies = ["pow", "exp"]',
    "threshold": 'pruner = "threshold"',
    "combined": (
        '[pruner]\npolicy = "combined"\nmembers = ["budget", "curve"]\n\n'
        "[pruner.budget]\npredict = true\n\n[pruner.curve]\nn_warmup_steps = 4\n"
    ),
}


@pytest.mark.parametrize("policy", list(STUDY_FILE_PRUNERS))
def test_study_file_syntax(policy: str) -> None:
    # The [pruner] table as a study file writes it, through the spec's own entry point.
    from sysprune.spec._parse import _pruner

    raw = tomllib.loads(STUDY_FILE_PRUNERS[policy])["pruner"]
    spec = _pruner(raw, STEPS, {"wall_s": 60.0}, _SINGLE)
    assert spec.policy == policy
    build_pruner(spec.policy, spec.params, budgets={"wall_s": 60.0}, steps=STEPS)


def test_study_file_errors_name_the_field() -> None:
    from sysprune.spec._parse import _pruner

    raw = tomllib.loads('[pruner]\npolicy = "combined"\nmembers = ["budget", "curve"]\n[pruner.curve]\nprobability = 2')
    with pytest.raises(InvalidArgument) as e:
        _pruner(raw["pruner"], STEPS, {"wall_s": 60.0}, _SINGLE)
    assert str(e.value) == "pruner.curve.probability: value 2 is invalid; valid: a finite number in (0, 1)"


@pytest.mark.parametrize("policy", list(STUDY_FILE_PRUNERS))
def test_every_policy_runs_the_step_loop_and_explains_its_prunes(policy: str) -> None:
    from sysprune._attrs import PRUNE_REASON
    from sysprune.spec._parse import _pruner

    from ._helpers import run_trial, series

    spec = _pruner(tomllib.loads(STUDY_FILE_PRUNERS[policy])["pruner"], STEPS, {"wall_s": 60.0}, _SINGLE)
    pruner = build_pruner(spec.policy, spec.params, budgets={"wall_s": 60.0}, steps=STEPS)
    sampler = optuna.samplers.RandomSampler(seed=0)
    study = optuna.create_study(direction="maximize", pruner=pruner, sampler=sampler)
    for i in range(12):
        top = 0.9 - 0.07 * i  # each trial worse than the last; the last ones also slower
        cost = 1.0 if i < 8 else 10.0
        walls = [cost * (s + 1) for s in range(STEPS)]
        run_trial(study, series(wall_s=walls), values=[top - 0.3 / (s + 1) for s in range(STEPS)])
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert all(PRUNE_REASON in t.user_attrs for t in pruned)
    assert (len(pruned) == 0) == (policy == "none")
