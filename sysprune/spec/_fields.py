"""A study file's tables and their declared constraints; the helpers that check a table against them (each failure
an :class:`~sysprune.exceptions.InvalidArgument`: ``field: value X is invalid; valid: ...``)."""

from __future__ import annotations

from typing import Any

from sysprune._validation import (
    Boolean,
    Constraint,
    Integer,
    Matches,
    Real,
    Text,
    check,
    join,
    unknown_key,
)
from sysprune.exceptions import InvalidArgument

SAMPLERS = ("tpe", "random", "nsgaii")
DIRECTIONS = ("maximize", "minimize")

#: Shared with the library's arguments (run_study's ``n_trials``, ``seed``): one declaration, two entry points
#: (a budget's upper limit, ``BUDGET``, is the pruners' own: sysprune.pruners).
N_TRIALS = Integer(low=1)
SEED = Integer(low=0)
STEPS = Integer(low=1)
#: A study's name (a file's ``name``, ``--study-name``): it is data in a database, never a path (the analyses make a
#: folder name of it: sysprune.analysis._paths), but it is shown in messages and tables, one line each; 400
#: characters leave room for the names ``compare`` derives from it within Optuna's 512.
STUDY_NAME = Matches(
    r"(?=.*\S)[^\x00-\x1f\x7f]{1,400}",
    "1 to 400 characters, not all blank, without a newline, tab or other control character",
)

TOP: dict[str, Constraint] = {
    "name": STUDY_NAME,
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


def table_of(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidArgument(field, value, "a table")
    return value


def no_unknown(table: dict[str, Any], allowed: tuple[str, ...], field: str) -> None:
    for key in table:
        if key not in allowed:
            raise unknown_key(join(field, key), allowed)


def required(table: dict[str, Any], key: str, constraint: Constraint, field: str) -> Any:
    if key not in table:
        raise InvalidArgument(join(field, key), None, constraint.describe(), problem="missing (required)")
    return check(table[key], constraint, join(field, key))
