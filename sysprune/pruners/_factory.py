"""Pruning policies as named in study files: validation of their parameters and construction of the pruner.

A policy is one entry in ``_POLICIES``: a function that validates the ``[pruner]`` table's parameters (raising
ValueError naming the key and value) and returns them normalised, and a function that builds the Optuna pruner
from the validated parameters and the study's budgets.
"""

from __future__ import annotations

from typing import Any, Callable

import optuna


def _check_keys(params: dict[str, Any], allowed: tuple[str, ...], policy: str) -> None:
    for key in params:
        if key not in allowed:
            valid = ", ".join(allowed) if allowed else "(none)"
            raise ValueError(f"unknown key {key!r} for policy {policy!r}; valid: {valid}")


def _int_param(params: dict[str, Any], key: str, default: int, *, low: int = 0) -> int:
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{key} must be an integer >= {low}, got {value!r}")
    return value


def _validate_none(params: dict[str, Any], steps: int) -> dict[str, Any]:
    _check_keys(params, (), "none")
    return {}


def _validate_median(params: dict[str, Any], steps: int) -> dict[str, Any]:
    _check_keys(params, ("n_startup_trials", "n_warmup_steps", "interval_steps"), "median")
    return {
        "n_startup_trials": _int_param(params, "n_startup_trials", 5),
        "n_warmup_steps": _int_param(params, "n_warmup_steps", 0),
        "interval_steps": _int_param(params, "interval_steps", 1, low=1),
    }


def _build_none(params: dict[str, Any], budgets: dict[str, float], steps: int) -> optuna.pruners.BasePruner:
    return optuna.pruners.NopPruner()


def _build_median(params: dict[str, Any], budgets: dict[str, float], steps: int) -> optuna.pruners.BasePruner:
    return optuna.pruners.MedianPruner(**params)


Validator = Callable[[dict[str, Any], int], dict[str, Any]]
Builder = Callable[[dict[str, Any], dict[str, float], int], optuna.pruners.BasePruner]

_POLICIES: dict[str, tuple[Validator, Builder]] = {
    "none": (_validate_none, _build_none),
    "median": (_validate_median, _build_median),
}


def policy_names() -> tuple[str, ...]:
    return tuple(_POLICIES)


def validate_policy(policy: Any, params: dict[str, Any], *, steps: int) -> tuple[str, dict[str, Any]]:
    """Check a policy name and its parameters; return them normalised. ValueError names what is wrong."""
    if policy not in _POLICIES:
        raise ValueError(f"unknown policy {policy!r}; valid: {', '.join(_POLICIES)}")
    return policy, _POLICIES[policy][0](dict(params), steps)


def build_pruner(
    policy: str, params: dict[str, Any], *, budgets: dict[str, float], steps: int
) -> optuna.pruners.BasePruner:
    """The Optuna pruner for a validated policy."""
    return _POLICIES[policy][1](params, budgets, steps)
