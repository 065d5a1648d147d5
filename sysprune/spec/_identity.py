"""Study identity: what a resumed study must share with the run that created it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from sysprune.models._space import CategoricalParam, FloatParam, IntParam, Param
from sysprune.spec._model import StudySpec

IDENTITY_VERSION = 2


#: Compared on resume (dotted paths below these name what differs). Safe to change on resume, and recorded in the
#: study's run history instead: ``n_trials``, ``sampler``, ``name``, ``description``.
IDENTITY_KEYS = ("model", "dataset", "objective", "steps", "seed", "budgets", "pruner", "search_space", "trial")


def param_identity(p: Param) -> dict[str, Any]:
    """A search-space entry as plain data: type, bounds, log, step, choices (or the fixed value)."""
    if isinstance(p, FloatParam):
        return {
            "type": "float",
            "low": float(p.low),
            "high": float(p.high),
            "log": bool(p.log),
            "step": None if p.step is None else float(p.step),
        }
    if isinstance(p, IntParam):
        return {"type": "int", "low": int(p.low), "high": int(p.high), "log": bool(p.log), "step": int(p.step)}
    if isinstance(p, CategoricalParam):
        return {"type": "categorical", "choices": list(p.choices)}
    return {"type": "fixed", "value": p.value}


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def study_identity(spec: StudySpec, seed: int | None = None) -> dict[str, Any]:
    """The stored definition of a study run with ``seed`` (default: the file's): JSON-ready plain data."""
    return _plain(
        {
            "version": IDENTITY_VERSION,
            "model": spec.model,
            "dataset": asdict(spec.dataset),
            "objective": asdict(spec.objective),
            "steps": spec.steps,
            "seed": spec.seed if seed is None else seed,
            "budgets": dict(spec.budgets),
            "pruner": {"policy": spec.pruner.policy, "params": spec.pruner.params},
            "search_space": {name: param_identity(p) for name, p in spec.search_space.items()},
            "trial": asdict(spec.trial),
        }
    )


ABSENT = object()


def _flatten(value: Any, path: str, out: dict[str, Any]) -> dict[str, Any]:
    if isinstance(value, Mapping):  # an empty table has no leaves: {} -> {"wall_s": 5} reads budgets.wall_s
        for k, v in value.items():
            _flatten(v, f"{path}.{k}", out)
    else:
        out[path] = value
    return out


def identity_diff(stored: Mapping[str, Any], current: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(field, stored value, current value)`` for every leaf that differs, over the keys ``stored`` has of
    :data:`IDENTITY_KEYS` (a study written before a key was stored is not judged on it)."""
    diffs = []
    for key in IDENTITY_KEYS:
        if key not in stored:
            continue
        old = _flatten(_plain(stored[key]), key, {})
        new = _flatten(_plain(current.get(key)), key, {})
        for path in dict.fromkeys([*old, *new]):
            o, n = old.get(path, ABSENT), new.get(path, ABSENT)
            if show_json(o) != show_json(n):  # JSON spelling: true != 1, 1 != 1.0
                diffs.append((path, o, n))
    return diffs


def describe_diff(diffs: list[tuple[str, Any, Any]]) -> str:
    """``seed 0 -> 7; search_space.lr.log false -> true`` (JSON spelling, as in the stored identity)."""
    return "; ".join(f"{path} {show_json(o)} -> {show_json(n)}" for path, o, n in diffs)


def show_json(v: Any) -> str:
    return "(absent)" if v is ABSENT else json.dumps(v, sort_keys=True)
