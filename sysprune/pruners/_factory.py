"""Pruning policies as named in study files: validation of their parameters and construction of the pruner.

A policy is one entry in ``_POLICIES``: a function that validates the ``[pruner]`` table's parameters (raising
ValueError naming the key and value) and returns them normalised, and a function that builds the Optuna pruner
from the validated parameters and the study's budgets.

Policies (``[pruner] policy = "..."``; every other key of the table is a parameter, unknown keys are errors):

``none``       no pruning.
``median``     :class:`optuna.pruners.MedianPruner` — ``n_startup_trials`` (5), ``n_warmup_steps`` (0),
               ``interval_steps`` (1).
``hyperband``  :class:`optuna.pruners.HyperbandPruner` — ``min_resource`` (1), ``max_resource`` (the study's
               ``steps``, or ``"auto"``), ``reduction_factor`` (3), ``bootstrap_count`` (0).
``budget``     :class:`sysprune.ResourceBudgetPruner` on the study's ``[budgets]`` — ``predict`` (true),
               ``n_warmup_steps`` (0), ``confidence`` (0.95); ``max_steps`` is the study's ``steps``.
``curve``      :class:`sysprune.CurvePruner` — ``n_warmup_steps`` (3), ``interval_steps`` (1), ``probability``
               (0.05), ``n_startup_trials`` (1), ``families`` (["pow", "exp", "log"]); ``max_steps`` = ``steps``.
``threshold``  :class:`sysprune.ThresholdBudgetPruner` on the study's ``[budgets]`` (no parameters): prunes when one
               value measured at a training step (step >= 0) is over its budget; no forecast, no noise allowance,
               no decision on the pre-training probe — the baseline of Ray Tune's stoppers and hand-written checks.
``plain``      no pruning, and the sampler is not told about the budgets: the trials carry no Optuna constraints
               (the runner keeps them where only the analyses read them) — a plain Optuna study, the "no pruning"
               of a user without sysprune. A baseline for ``sysprune compare``.
``precheck``   :class:`sysprune.pruners.PrecheckPruner` on the study's ``[budgets]`` (no parameters), with the
               sampler not told about budgets, as ``plain``: one reading of each budgeted structural metric at the
               pre-training probe, nothing later — the hand-written pre-check of a savvy plain-Optuna user.
``combined``   :class:`sysprune.CombinedPruner` — ``members`` (two or more distinct names of budget, curve,
               median, hyperband; ``budget``, if present, first), and one optional sub-table per member with that
               member's parameters, e.g. ``[pruner.curve] probability = 0.1``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Callable

import optuna

from sysprune.pruners._forecast import CURVE_FAMILIES
from sysprune.pruners._budget import ResourceBudgetPruner
from sysprune.pruners._threshold import ThresholdBudgetPruner
from sysprune.pruners._precheck import PrecheckPruner
from sysprune.pruners._curve import CurvePruner
from sysprune.pruners._combined import CombinedPruner

#: Policies that can be members of ``combined``.
MEMBER_POLICIES = ("budget", "curve", "median", "hyperband")
#: Policies that prune on the study's ``[budgets]`` (they need at least one).
BUDGET_POLICIES = ("budget", "threshold", "precheck")
#: Plain-Optuna baselines: their trials' budget constraints are kept from the sampler (``hidden``).
PLAIN_POLICIES = ("plain", "precheck")
#: Policies that judge the learning curve (Optuna's intermediate values): single-objective studies only.
CURVE_POLICIES = ("curve", "median", "hyperband")


def _check_keys(params: dict[str, Any], allowed: tuple[str, ...], policy: str) -> None:
    for key in params:
        if key not in allowed:
            valid = ", ".join(allowed) if allowed else "(none)"
            raise ValueError(f"unknown key {key!r} for policy {policy!r}; valid: {valid}")


def _int_param(params: dict[str, Any], key: str, default: int, *, low: int = 0, prefix: str = "") -> int:
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{prefix}{key} must be an integer >= {low}, got {value!r}")
    return value


def _float_param(
    params: dict[str, Any], key: str, default: float, *, low: float, high: float, closed_low: bool, prefix: str = ""
) -> float:
    value = params.get(key, default)
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and not math.isnan(value)
    if ok:
        ok = (value >= low if closed_low else value > low) and value < high
    if not ok:
        interval = f"{'[' if closed_low else '('}{low:g}, {high:g})"
        raise ValueError(f"{prefix}{key} must be a number in {interval}, got {value!r}")
    return float(value)


def _bool_param(params: dict[str, Any], key: str, default: bool, *, prefix: str = "") -> bool:
    value = params.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"{prefix}{key} must be true or false, got {value!r}")
    return value


def _warmup_param(params: dict[str, Any], default: int, steps: int, prefix: str) -> int:
    value = _int_param(params, "n_warmup_steps", default, prefix=prefix)
    if value >= steps:
        raise ValueError(f"{prefix}n_warmup_steps must be < steps ({steps}) or the pruner never acts, got {value}")
    return value


def _validate_none(params: dict[str, Any], steps: int, prefix: str = "") -> dict[str, Any]:
    _check_keys(params, (), "none")
    return {}


def _validate_median(params: dict[str, Any], steps: int, prefix: str = "") -> dict[str, Any]:
    _check_keys(params, ("n_startup_trials", "n_warmup_steps", "interval_steps"), "median")
    return {
        "n_startup_trials": _int_param(params, "n_startup_trials", 5, prefix=prefix),
        "n_warmup_steps": _int_param(params, "n_warmup_steps", 0, prefix=prefix),
        "interval_steps": _int_param(params, "interval_steps", 1, low=1, prefix=prefix),
    }


def _validate_hyperband(params: dict[str, Any], steps: int, prefix: str = "") -> dict[str, Any]:
    _check_keys(params, ("min_resource", "max_resource", "reduction_factor", "bootstrap_count"), "hyperband")
    min_resource = _int_param(params, "min_resource", 1, low=1, prefix=prefix)
    max_resource = params.get("max_resource", steps)
    if max_resource != "auto":
        max_resource = _int_param(params, "max_resource", steps, low=1, prefix=prefix)
        if max_resource > steps:
            raise ValueError(f'{prefix}max_resource must be <= steps ({steps}) or "auto", got {max_resource}')
        if min_resource > max_resource:
            raise ValueError(
                f"{prefix}min_resource must be <= max_resource, got min_resource={min_resource} "
                f"max_resource={max_resource}"
            )
    reduction_factor = _int_param(params, "reduction_factor", 3, low=2, prefix=prefix)
    bootstrap_count = _int_param(params, "bootstrap_count", 0, prefix=prefix)
    if bootstrap_count > 0 and max_resource == "auto":
        raise ValueError(f'{prefix}bootstrap_count > 0 needs an integer max_resource, got max_resource="auto"')
    return {
        "min_resource": min_resource,
        "max_resource": max_resource,
        "reduction_factor": reduction_factor,
        "bootstrap_count": bootstrap_count,
    }


def _validate_budget(params: dict[str, Any], steps: int, prefix: str = "") -> dict[str, Any]:
    _check_keys(params, ("predict", "n_warmup_steps", "confidence"), "budget")
    return {
        "predict": _bool_param(params, "predict", True, prefix=prefix),
        "n_warmup_steps": _warmup_param(params, 0, steps, prefix),
        "confidence": _float_param(params, "confidence", 0.95, low=0.5, high=1.0, closed_low=True, prefix=prefix),
    }


def _validate_threshold(params: dict[str, Any], steps: int, prefix: str = "") -> dict[str, Any]:
    _check_keys(params, (), "threshold")
    return {}


def _validate_plain(params: dict[str, Any], steps: int, prefix: str = "") -> dict[str, Any]:
    _check_keys(params, (), "plain")
    return {}


def _validate_precheck(params: dict[str, Any], steps: int, prefix: str = "") -> dict[str, Any]:
    _check_keys(params, (), "precheck")
    return {}


def _validate_curve(params: dict[str, Any], steps: int, prefix: str = "") -> dict[str, Any]:
    _check_keys(params, ("n_warmup_steps", "interval_steps", "probability", "n_startup_trials", "families"), "curve")
    families = params.get("families", list(CURVE_FAMILIES))
    if not isinstance(families, list) or not families:
        raise ValueError(f"{prefix}families must be a non-empty list of {', '.join(CURVE_FAMILIES)}, got {families!r}")
    for family in families:
        if family not in CURVE_FAMILIES:
            raise ValueError(f"{prefix}families: unknown family {family!r}; valid: {', '.join(CURVE_FAMILIES)}")
    if len(set(families)) != len(families):
        raise ValueError(f"{prefix}families must be distinct, got {families!r}")
    return {
        "n_warmup_steps": _warmup_param(params, min(3, steps - 1), steps, prefix),
        "interval_steps": _int_param(params, "interval_steps", 1, low=1, prefix=prefix),
        "probability": _float_param(params, "probability", 0.05, low=0.0, high=1.0, closed_low=False, prefix=prefix),
        "n_startup_trials": _int_param(params, "n_startup_trials", 1, low=1, prefix=prefix),
        "families": list(families),
    }


def _validate_combined(params: dict[str, Any], steps: int, prefix: str = "") -> dict[str, Any]:
    _check_keys(params, ("members", *MEMBER_POLICIES), "combined")
    members = params.get("members")
    if not isinstance(members, list) or len(members) < 2:
        raise ValueError(
            f"members must be a list of two or more of {', '.join(MEMBER_POLICIES)}, got {members!r}"
            ' (e.g. members = ["budget", "curve"])'
        )
    for m in members:
        if m not in MEMBER_POLICIES:
            raise ValueError(f"members: unknown member {m!r}; valid: {', '.join(MEMBER_POLICIES)}")
    if len(set(members)) != len(members):
        raise ValueError(f"members must be distinct, got {members!r}")
    if "budget" in members and members[0] != "budget":
        raise ValueError(
            f'members: "budget" must come first (a budget breach makes a trial infeasible and must win over a '
            f"learning-curve prune), got {members!r}"
        )
    out: dict[str, Any] = {"members": list(members)}
    for key in MEMBER_POLICIES:
        if key in params and key not in members:
            raise ValueError(f"{key}: parameters given for {key!r}, which is not in members {members!r}")
    for m in members:
        sub = params.get(m, {})
        if not isinstance(sub, dict):
            raise ValueError(f"{m} must be a table of {m!r} parameters, got {sub!r}")
        out[m] = _POLICIES[m][0](dict(sub), steps, f"{m}.")
    return out


def _build_none(params: dict[str, Any], budgets: dict[str, float], steps: int) -> optuna.pruners.BasePruner:
    return optuna.pruners.NopPruner()


def _build_median(params: dict[str, Any], budgets: dict[str, float], steps: int) -> optuna.pruners.BasePruner:
    return optuna.pruners.MedianPruner(**params)


def _build_hyperband(params: dict[str, Any], budgets: dict[str, float], steps: int) -> optuna.pruners.BasePruner:
    return optuna.pruners.HyperbandPruner(**params)


def _build_budget(params: dict[str, Any], budgets: dict[str, float], steps: int) -> optuna.pruners.BasePruner:

    if not budgets:
        raise ValueError(_no_budgets("budget"))
    return ResourceBudgetPruner(budgets, max_steps=steps, **params)


def _build_threshold(params: dict[str, Any], budgets: dict[str, float], steps: int) -> optuna.pruners.BasePruner:

    if not budgets:
        raise ValueError(_no_budgets("threshold"))
    return ThresholdBudgetPruner(budgets, **params)


def _build_precheck(params: dict[str, Any], budgets: dict[str, float], steps: int) -> optuna.pruners.BasePruner:

    if not budgets:
        raise ValueError(_no_budgets("precheck"))
    return PrecheckPruner(budgets)


def _build_curve(params: dict[str, Any], budgets: dict[str, float], steps: int) -> optuna.pruners.BasePruner:

    return CurvePruner(max_steps=steps, **params)


def _build_combined(params: dict[str, Any], budgets: dict[str, float], steps: int) -> optuna.pruners.BasePruner:

    return CombinedPruner(*(_POLICIES[m][1](params[m], budgets, steps) for m in params["members"]))


def _no_budgets(policy: str) -> str:
    return f"policy {policy!r} needs a [budgets] table naming at least one metric"


Validator = Callable[..., dict[str, Any]]  # (params, steps, prefix="") -> normalised params
Builder = Callable[[dict[str, Any], dict[str, float], int], optuna.pruners.BasePruner]

_POLICIES: dict[str, tuple[Validator, Builder]] = {
    "none": (_validate_none, _build_none),
    "median": (_validate_median, _build_median),
    "hyperband": (_validate_hyperband, _build_hyperband),
    "budget": (_validate_budget, _build_budget),
    "curve": (_validate_curve, _build_curve),
    "combined": (_validate_combined, _build_combined),
    "threshold": (_validate_threshold, _build_threshold),
    "plain": (_validate_plain, _build_none),
    "precheck": (_validate_precheck, _build_precheck),
}


def policy_names() -> tuple[str, ...]:
    return tuple(_POLICIES)


def _parts(policy: str, params: dict[str, Any]) -> list[str]:
    return list(params["members"]) if policy == "combined" else [policy]


def validate_policy(
    policy: Any,
    params: dict[str, Any],
    *,
    steps: int,
    budgets: dict[str, float] | None = None,
    directions: Sequence[str] | None = None,
) -> tuple[str, dict[str, Any]]:
    """Check a policy name and its parameters; return them normalised. ValueError names what is wrong.

    With ``budgets`` (the study's validated ``[budgets]``), a policy using ``budget`` or ``threshold`` must have at
    least one. With ``directions`` (one per objective), a multi-objective study may only use ``none``, ``plain``,
    ``budget``, ``threshold`` and ``precheck``: the
    learning-curve pruners need Optuna's intermediate values, which exist for a single objective only.
    """
    if policy not in _POLICIES:
        raise ValueError(f"unknown policy {policy!r}; valid: {', '.join(_POLICIES)}")
    params = _POLICIES[policy][0](dict(params), steps)
    parts = _parts(policy, params)
    if budgets is not None and not budgets:
        for part in parts:
            if part in BUDGET_POLICIES:
                raise ValueError(_no_budgets(part))
    if directions is not None and len(directions) > 1:
        bad = [p for p in parts if p in CURVE_POLICIES]
        if bad:
            raise ValueError(
                f"policy {policy!r} uses {', '.join(bad)}, which needs a single-objective study; this study has "
                f"{len(directions)} objectives (use 'budget', 'threshold' or 'none')"
            )
    return policy, params


def build_pruner(
    policy: str, params: dict[str, Any], *, budgets: dict[str, float], steps: int
) -> optuna.pruners.BasePruner:
    """The Optuna pruner for a validated policy. ValueError if a budget policy has no budgets."""
    return _POLICIES[policy][1](params, budgets, steps)
