"""A study file's ``[search_space]``: each entry checked against the model's declared space (type and sign) and
against the values the model accepts at all (its ``bounds``: a dropout above 0.99, a learning rate of 1e6)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sysprune.models import get_model
from sysprune.models._space import CategoricalParam, FixedParam, FloatParam, IntParam, Param
from sysprune.exceptions import SpecError
from sysprune.spec._fields import (
    CATEGORICAL_KEYS,
    FLOAT_RANGE,
    INT_RANGE,
    PARAM_TYPES,
    no_unknown,
    required,
    table_of,
)
from sysprune._validation import Constraint, Shown, check_table, fmt_number, invalid


@dataclass(frozen=True)
class Domain:
    """The values a model's hyperparameter takes, read from its declared space entry: a type (``int``,
    ``float``, ``str``, ``bool``, or ``any``) and a sign (``low`` 1: counts and sizes; 0: non-negative)."""

    kind: str
    low: int | None = None
    declared: str = ""

    def accepts(self, v: Any) -> bool:
        if isinstance(v, bool):
            return self.kind in ("bool", "any")
        if isinstance(v, str):
            return self.kind in ("str", "any")
        if isinstance(v, int):
            ok = self.kind in ("int", "float", "any")
        elif isinstance(v, float):
            ok = self.kind in ("float", "any") and math.isfinite(v)
        else:
            return False
        return ok and (self.low is None or v >= self.low)

    def describe(self) -> str:
        base = {
            "int": "an integer",
            "float": "a finite number",
            "str": "a string",
            "bool": "true or false",
            "any": "a string, a finite number or a boolean",
        }[self.kind]
        return base + (f" >= {self.low}" if self.low is not None else "")

    def range_types(self) -> tuple[str, ...]:
        return {"int": ("int", "categorical"), "float": ("float", "categorical")}.get(
            self.kind, PARAM_TYPES if self.kind == "any" else ("categorical",)
        )


def _sign(values: list[Any], *, counts: bool) -> int | None:
    if counts and all(v >= 1 for v in values):
        return 1
    return 0 if all(v >= 0 for v in values) else None


def _value_kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, str):
        return "str"
    if isinstance(v, int):
        return "int"
    return "float" if isinstance(v, float) else "any"


def declared_domain(param: Param, model: str = "", name: str = "") -> Domain:
    """The domain of a model's declared parameter: its type, and its sign (an int parameter whose declared
    values are all >= 1 takes values >= 1; a parameter whose declared values are all >= 0 takes values >= 0).
    A fixed entry of ``SPACE`` declares only its type."""
    declared = f"{model} declares {name} as {param.describe()}" if model else ""
    if isinstance(param, IntParam):
        return Domain("int", _sign([param.low], counts=True), declared)
    if isinstance(param, FloatParam):
        return Domain("float", _sign([param.low], counts=False), declared)
    if isinstance(param, CategoricalParam):
        kinds = {_value_kind(c) for c in param.choices}
        if kinds == {"int"}:
            return Domain("int", _sign(list(param.choices), counts=True), declared)
        if kinds <= {"int", "float"}:
            return Domain("float", _sign(list(param.choices), counts=False), declared)
        return Domain(kinds.pop() if len(kinds) == 1 else "any", None, declared)
    return Domain(_value_kind(param.value), None, declared)


_ANY = Domain("any")


def _in_domain(value: Any, domain: Domain, field: str) -> None:
    if not domain.accepts(value):
        note = f" ({domain.declared})" if domain.declared else ""
        raise invalid(field, value, domain.describe() + note)


def _choice_group(v: Any) -> str:
    return "number" if _value_kind(v) in ("int", "float") else _value_kind(v)


def parse_param(value: Any, field: str, domain: Domain = _ANY) -> Param:
    """One search-space entry: a table with ``type`` (float/int/categorical), or a plain value (fixed), checked
    against the model's declared ``domain`` of that parameter."""
    if not isinstance(value, dict):
        if isinstance(value, (list, tuple)):
            raise invalid(field, value, 'a plain value, or {type = "categorical", choices = [...]} for a list')
        _in_domain(value, domain, field)
        return FixedParam(value)
    kind = value.get("type")
    note = f" ({domain.declared})" if domain.declared else ""
    if kind not in PARAM_TYPES or kind not in domain.range_types():
        raise invalid(f"{field}.type", kind, ", ".join(domain.range_types()) + note)
    if kind == "categorical":
        no_unknown(value, CATEGORICAL_KEYS, field)
        choices = value.get("choices")
        if not isinstance(choices, list) or not choices:
            raise invalid(f"{field}.choices", choices, "a non-empty list")
        groups = {_choice_group(c) for c in choices}
        if not groups <= {"str", "number", "bool"} or len(groups) != 1:
            raise (
                invalid(f"{field}.choices", choices, "choices of one type: all strings, all numbers or all booleans")
            )
        for i, c in enumerate(choices):
            _in_domain(c, domain, f"{field}.choices[{i}]")
        distinct = {(type(c) is bool, c) for c in choices}
        if len(distinct) != len(choices):
            raise invalid(f"{field}.choices", choices, "distinct choices")
        return CategoricalParam(tuple(choices))
    table = check_table(value, FLOAT_RANGE if kind == "float" else INT_RANGE, field)
    bound = FLOAT_RANGE["low"] if kind == "float" else INT_RANGE["low"]
    low, high = required(value, "low", bound, field), required(value, "high", bound, field)
    for key, v in (("low", low), ("high", high)):
        _in_domain(v, domain, f"{field}.{key}")
    log: bool = table.get("log", False)
    step: Any = table.get("step", None if kind == "float" else 1)
    shown = Shown(f"low={fmt_number(low)} high={fmt_number(high)}")
    if low >= high:
        raise invalid(field, shown, "low < high")
    if log and low <= 0:
        raise invalid(field, Shown(f"log=true low={fmt_number(low)}"), "low > 0 on a log scale")
    if log and (step is not None if kind == "float" else step != 1):
        raise invalid(field, Shown(f"log=true step={fmt_number(step)}"), "either log or step, not both")
    return FloatParam(low, high, log, step) if kind == "float" else IntParam(low, high, log, step)


def _values_to_check(param: Param) -> list[tuple[str, Any]]:
    """``(key, value)`` pairs that decide whether ``param`` stays within bounds: a range's ends (the bounds are
    intervals or sets, so its ends inside means every value inside), every choice, a fixed value."""
    if isinstance(param, (FloatParam, IntParam)):
        return [("low", param.low), ("high", param.high)]
    if isinstance(param, CategoricalParam):
        return [(f"choices[{i}]", c) for i, c in enumerate(param.choices)]
    return [("", param.value)]


def check_bounds(param: Param, bound: Constraint | None, field: str, model: str) -> None:
    """Refuse ``param`` (one parsed entry, at ``field``) if a value it can take is outside ``bound``, the values the
    model accepts: ``search_space.dropout.high: value 1.5 is invalid; valid: a finite number in [0, 0.99]
    (torch_mlp accepts no other)``. Pure."""
    if bound is None:
        return
    for key, value in _values_to_check(param):
        if not bound.accepts(value):
            where = f"{field}.{key}" if key else field
            raise invalid(where, value, f"{bound.describe()} ({model} accepts no other)")


def parse_search_space(model: str, raw: Any, field: str = "search_space") -> dict[str, Param]:
    """The model's default space, with the file's entries replacing or fixing parameters by name; each entry within
    the model's bounds."""

    family = get_model(model)
    space = dict(family.space)
    table = table_of(raw, field)
    for name, value in table.items():
        if name not in space:
            raise SpecError(f"{field}.{name}: unknown parameter for model {model}; valid: {', '.join(space)}")
        space[name] = parse_param(value, f"{field}.{name}", declared_domain(space[name], model, name))
        check_bounds(space[name], family.bounds.get(name), f"{field}.{name}", model)
    return space
