"""Checking a study file's tables against their declared constraints (each failure: ``field: ...``)."""

from __future__ import annotations

from typing import Any

from sysprune._validation import Boolean, Constraint, Integer, Real, Text, invalid
from sysprune.exceptions import SpecError

SAMPLERS = ("tpe", "random", "nsgaii")
DIRECTIONS = ("maximize", "minimize")

#: Shared with the library's arguments (run_study's ``n_trials``, ``seed``): one declaration, two entry points.
N_TRIALS = Integer(low=1)
SEED = Integer(low=0)
STEPS = Integer(low=1)
BUDGET = Real(low=0.0)

TOP: dict[str, Constraint] = {
    "name": Text(),
    "description": Text(empty=True),
    "model": Text(),
    "steps": STEPS,
    "n_trials": N_TRIALS,
    "seed": SEED,
}
TABLES = ("dataset", "objective", "sampler", "pruner", "budgets", "search_space", "trial", "study")
TOP_KEYS = (*TOP, *TABLES, "plugins")
DATASET: dict[str, Constraint] = {
    "name": Text(),
    "subsample": Integer(low=10),
    "val_fraction": Real(0.0, 1.0, low_open=True, high_open=True),
    "test_fraction": Real(0.0, 1.0, low_open=True, high_open=True),
}
SAMPLER: dict[str, Constraint] = {"name": Text(SAMPLERS), "n_startup_trials": Integer(low=0)}
TRIAL: dict[str, Constraint] = {
    "threads": Integer(low=1),
    "infer_batch_size": Integer(low=1),
    "infer_repeats": Integer(low=1),
    "max_rss_mb": Real(0.0, low_open=True),
    "max_wall_s": Real(0.0, low_open=True),
}
FLOAT_RANGE: dict[str, Constraint] = {
    "type": Text(),
    "low": Real(),
    "high": Real(),
    "log": Boolean(),
    "step": Real(0.0, low_open=True),
}
INT_RANGE: dict[str, Constraint] = {
    "type": Text(),
    "low": Integer(),
    "high": Integer(),
    "log": Boolean(),
    "step": Integer(low=1),
}
CATEGORICAL_KEYS = ("type", "choices")
PARAM_TYPES = ("float", "int", "categorical")


class Err(SpecError):
    """A field of a study file is invalid (message ``field: ...``, without the file name)."""


def join(table: str, key: str) -> str:
    return f"{table}.{key}" if table else key


def table_of(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Err(invalid(field, value, "a table"))
    return value


def no_unknown(table: dict[str, Any], allowed: tuple[str, ...], field: str) -> None:
    for key in table:
        if key not in allowed:
            raise Err(f"{join(field, key)}: unknown key; valid: {', '.join(allowed)}")


def check(value: Any, constraint: Constraint, field: str) -> Any:
    if not constraint.accepts(value):
        raise Err(invalid(field, value, constraint.describe()))
    return constraint.normalise(value)


def required(table: dict[str, Any], key: str, constraint: Constraint, field: str) -> Any:
    if key not in table:
        raise Err(f"{join(field, key)}: missing (required); valid: {constraint.describe()}")
    return check(table[key], constraint, join(field, key))


def fields(raw: Any, constraints: dict[str, Constraint], field: str) -> dict[str, Any]:
    """The given entries of a table, each checked against its declared constraint (unknown keys refused)."""
    table = table_of(raw, field)
    no_unknown(table, tuple(constraints), field)
    return {k: check(table[k], c, join(field, k)) for k, c in constraints.items() if k in table}
