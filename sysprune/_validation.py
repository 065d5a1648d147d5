"""One validation vocabulary: constraints declared once, checked at one entry point, one message format.

After scikit-learn's declared parameter constraints (``_parameter_constraints``): a constraint (:class:`Integer`,
:class:`Real`, :class:`Text`, :class:`Boolean`, :class:`OneOf`, :class:`Exactly`, :class:`InstanceOf`,
:class:`AnyOf`, :class:`ListOf`, :class:`MappingOf`) says what is valid and describes it; every failure is one
:class:`~sysprune.exceptions.InvalidArgument` whose message reads::

    <where>: <name>: value X is invalid; valid: ...

(``<name>: unknown key; valid: ...`` for a key a table does not have). A table of constraints is declared once —
a study file's ``[trial]`` table (``sysprune.spec``), a pruner's ``_parameter_constraints``, a model's
``CONSTRAINTS``, a policy's parameters — and checked by :func:`check_table` (a whole table: unknown keys refused)
or :func:`check_params` (a function's arguments); one value by :func:`check`. Study files, ``run_study``'s
arguments, the pruners' constructors, the policy factory and the models all raise the same error for the same
mistake; the command line renders an argument's name as its flag (``--n-trials``).

Public as ``sysprune.constraints`` (a pruning policy of one's own declares its parameters with it).
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sysprune.exceptions import InvalidArgument


@dataclass(frozen=True)
class Shown:
    """A value shown as given (e.g. ``low=32 high=8``) rather than by ``repr``."""

    text: str


def shown(value: Any) -> str:
    return value.text if isinstance(value, Shown) else repr(value)


def invalid(field: str, value: Any, valid: str, why: str | None = None) -> InvalidArgument:
    """The error to raise for ``value`` of ``field`` (a :class:`Shown` value is written as given): its message is
    the one format, ``field: value X is invalid (why); valid: ...``."""
    return InvalidArgument(field, value, valid, why=why, shown=shown(value))


def join(table: str, key: str) -> str:
    """The name of ``key`` inside ``table`` (``budgets.infer_ms``; just ``key`` at the top)."""
    return f"{table}.{key}" if table else key


def fmt_number(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


# ---------------------------------------------------------------------------------------------------------------
# Declared constraints


class Constraint:
    """What a value must be. A subclass says whether it :meth:`accepts` a value and :meth:`describe` s what is valid;
    :meth:`check` raises :class:`InvalidArgument` naming the value (a compound constraint names the part that is
    wrong: ``families[1]``, ``budgets.wall_s``) and returns it normalised (an integer given for a number is a
    float)."""

    def accepts(self, v: Any) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def normalise(self, v: Any) -> Any:
        return v

    def check(self, v: Any, name: str) -> Any:
        if not self.accepts(v):
            raise InvalidArgument(name, v, self.describe(), shown=shown(v))
        return self.normalise(v)


def _integral(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, numbers.Integral)


@dataclass(frozen=True)
class Integer(Constraint):
    """An integer (not a boolean; numpy's integers too) in ``[low, high]``; a bound of None is open-ended."""

    low: int | None = None
    high: int | None = None

    def accepts(self, v: Any) -> bool:
        return _integral(v) and (self.low is None or v >= self.low) and (self.high is None or v <= self.high)

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return f"an integer in [{self.low}, {self.high}]"
        if self.low is not None:
            return f"an integer >= {self.low}"
        if self.high is not None:
            return f"an integer <= {self.high}"
        return "an integer"

    def normalise(self, v: Any) -> int:
        return int(v)


@dataclass(frozen=True)
class Real(Constraint):
    """A number (an integer is accepted) in an interval; ``*_open`` makes a bound exclusive. Finite unless
    ``finite=False`` (then infinity is accepted, NaN too)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    finite: bool = True

    def accepts(self, v: Any) -> bool:
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            return False
        if not math.isfinite(v):
            return not self.finite and self.low is None and self.high is None
        if self.low is not None and (v <= self.low if self.low_open else v < self.low):
            return False
        return self.high is None or (v < self.high if self.high_open else v <= self.high)

    def describe(self) -> str:
        what = "a finite number" if self.finite else "a number"
        if self.low is not None and self.high is not None:
            lb, hb = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"{what} in {lb}{fmt_number(self.low)}, {fmt_number(self.high)}{hb}"
        if self.low is not None:
            return f"{what} {'>' if self.low_open else '>='} {fmt_number(self.low)}"
        if self.high is not None:
            return f"{what} {'<' if self.high_open else '<='} {fmt_number(self.high)}"
        return what

    def normalise(self, v: Any) -> float:
        return float(v)


@dataclass(frozen=True)
class Text(Constraint):
    """A non-empty string (any string with ``empty``) of at most ``max_len`` characters, one of ``choices`` when
    given (a tuple, or a function returning one: a registry's current names)."""

    choices: tuple[str, ...] | Callable[[], Iterable[str]] | None = None
    empty: bool = False
    max_len: int | None = None

    def names(self) -> tuple[str, ...] | None:
        return tuple(self.choices()) if callable(self.choices) else self.choices

    def accepts(self, v: Any) -> bool:
        if not isinstance(v, str) or (not v and not self.empty):
            return False
        if self.max_len is not None and len(v) > self.max_len:
            return False
        names = self.names()
        return names is None or v in names

    def describe(self) -> str:
        names = self.names()
        if names is not None:
            return ", ".join(names)
        what = "a string" if self.empty else "a non-empty string"
        return what + (f" of at most {self.max_len} characters" if self.max_len is not None else "")


@dataclass(frozen=True)
class Matches(Constraint):
    """A string matching ``pattern`` in full, described as ``text``."""

    pattern: str
    text: str

    def accepts(self, v: Any) -> bool:
        return isinstance(v, str) and re.fullmatch(self.pattern, v) is not None

    def describe(self) -> str:
        return self.text


@dataclass(frozen=True)
class Boolean(Constraint):
    def accepts(self, v: Any) -> bool:
        return isinstance(v, bool)

    def describe(self) -> str:
        return "true or false"


@dataclass(frozen=True)
class OneOf(Constraint):
    """One of a few values of any type (``kernel_size``: 1, 3, 5, 7); a boolean is not taken for 1 or 0."""

    choices: tuple[Any, ...]

    def accepts(self, v: Any) -> bool:
        return any(v == c and isinstance(v, bool) == isinstance(c, bool) for c in self.choices)

    def describe(self) -> str:
        return ", ".join(str(c) for c in self.choices)


@dataclass(frozen=True)
class Exactly(Constraint):
    """Exactly this value (``None``, ``"auto"``), described as ``text`` (default: its ``repr``; ``"auto"`` reads
    as in a study file)."""

    value: Any
    text: str | None = None

    def accepts(self, v: Any) -> bool:
        return v is self.value if self.value is None or isinstance(self.value, bool) else v == self.value

    def describe(self) -> str:
        if self.text is not None:
            return self.text
        return f'"{self.value}"' if isinstance(self.value, str) else repr(self.value)


@dataclass(frozen=True)
class InstanceOf(Constraint):
    """An instance of ``cls``, described as ``text`` (a wrong one is shown by its type, not its repr)."""

    cls: type | tuple[type, ...]
    text: str

    def accepts(self, v: Any) -> bool:
        return isinstance(v, self.cls)

    def describe(self) -> str:
        return self.text

    def check(self, v: Any, name: str) -> Any:
        if not self.accepts(v):
            raise InvalidArgument(name, v, self.text, shown=f"of type {type(v).__name__}")
        return v


@dataclass(frozen=True)
class AnyOf(Constraint):
    """A value any of ``options`` accepts (normalised by the first that does): ``max_steps`` is an integer >= 1
    or None."""

    options: tuple[Constraint, ...]

    def accepts(self, v: Any) -> bool:
        return any(c.accepts(v) for c in self.options)

    def describe(self) -> str:
        return " or ".join(c.describe() for c in self.options)

    def normalise(self, v: Any) -> Any:
        return next(c for c in self.options if c.accepts(v)).normalise(v)

    def check(self, v: Any, name: str) -> Any:
        others = [c for c in self.options if not (isinstance(c, Exactly) and c.value is None)]
        if v is not None and len(others) == 1 and type(others[0]).check is not Constraint.check:
            return others[0].check(v, name)  # "a list ... or None", given a list: name the bad item in it
        return super().check(v, name)


@dataclass(frozen=True)
class ListOf(Constraint):
    """A list (or tuple; not a string) of ``min_len`` or more items, each valid for ``item`` (a bad one is named:
    ``families[1]``), all different with ``distinct``. Normalised to a list."""

    item: Constraint
    min_len: int = 1
    distinct: bool = False

    def _is_list(self, v: Any) -> bool:
        return isinstance(v, Sequence) and not isinstance(v, (str, bytes))

    def accepts(self, v: Any) -> bool:
        return (
            self._is_list(v)
            and len(v) >= self.min_len
            and all(self.item.accepts(x) for x in v)
            and (not self.distinct or _distinct(v))
        )

    def describe(self) -> str:
        head = "a non-empty list of" if self.min_len == 1 else f"a list of {self.min_len} or more"
        head = "a list of" if self.min_len == 0 else head
        if self.distinct:
            head += " distinct"
        names = self.item.names() if isinstance(self.item, Text) else None
        if names is not None:
            return f"{head} values from: {', '.join(names)}"
        return f"{head} items, each {self.item.describe()}"

    def normalise(self, v: Any) -> list[Any]:
        return [self.item.normalise(x) for x in v]

    def check(self, v: Any, name: str) -> list[Any]:
        if not self._is_list(v) or len(v) < self.min_len:
            raise InvalidArgument(name, v, self.describe(), shown=shown(v))
        out = [self.item.check(x, f"{name}[{i}]") for i, x in enumerate(v)]
        if self.distinct and not _distinct(v):
            twice = next(x for i, x in enumerate(v) if x in list(v)[:i])
            raise InvalidArgument(name, v, self.describe(), why=f"{twice!r} twice", shown=shown(v))
        return out


def _distinct(v: Sequence[Any]) -> bool:
    return all(x not in list(v)[:i] for i, x in enumerate(v))


@dataclass(frozen=True)
class MappingOf(Constraint):
    """A mapping (a study file's table) of at least ``min_len`` entries, each key valid for ``keys`` and each value
    for ``values``; a bad entry is named ``<name>.<key>``. ``what`` names the keys (``system metric``): a key that
    is not one reads ``budgets.ram: unknown system metric; valid: ...``."""

    keys: Text
    values: Constraint
    what: str = "key"
    min_len: int = 0

    def accepts(self, v: Any) -> bool:
        return (
            isinstance(v, Mapping)
            and len(v) >= self.min_len
            and all(self.keys.accepts(k) and self.values.accepts(x) for k, x in v.items())
        )

    def describe(self) -> str:
        least = {0: "", 1: ", at least one entry"}.get(self.min_len, f", at least {self.min_len} entries")
        return f"a table whose keys are {self.what}s and values {self.values.describe()}{least}"

    def check(self, v: Any, name: str) -> dict[str, Any]:
        if not isinstance(v, Mapping) or len(v) < self.min_len:
            raise InvalidArgument(name, v, self.describe(), shown=shown(v))
        keys, values = self.keys.accepts, self.values
        if all(keys(k) and values.accepts(x) for k, x in v.items()):  # the common case: no names built
            return {k: values.normalise(x) for k, x in v.items()}
        out = {}
        for k, x in v.items():
            if not self.keys.accepts(k):
                if isinstance(k, str) and k and self.keys.names() is not None:
                    raise InvalidArgument(join(name, k), k, self.keys.describe(), problem=f"unknown {self.what}")
                raise InvalidArgument(name, k, self.keys.describe(), problem=f"{self.what} {k!r} is invalid")
            out[k] = self.values.check(x, join(name, k))
        return out


# ---------------------------------------------------------------------------------------------------------------
# Entry points


def check(value: Any, constraint: Constraint, name: str, *, where: str | None = None) -> Any:
    """``value`` checked against its declared constraint, normalised; :class:`InvalidArgument` names it."""
    try:
        return constraint.check(value, name)
    except InvalidArgument as e:
        raise (e.within(where) if where else e) from None


def check_argument(argument: str, value: Any, constraint: Constraint) -> Any:
    """Validate one library argument against its declared constraint (``run_study``'s ``n_trials``)."""
    return check(value, constraint, argument)


def unknown_key(name: str, valid: Iterable[str], *, where: str | None = None) -> InvalidArgument:
    """The error for a key a table does not have: ``<name>: unknown key; valid: a, b`` (``(none)`` for none)."""
    return InvalidArgument(name, name, ", ".join(valid) or "(none)", where=where, problem="unknown key")


def check_table(
    raw: Any, constraints: Mapping[str, Constraint], name: str = "", *, where: str | None = None
) -> dict[str, Any]:
    """The entries given in table ``raw``, each checked against its declared constraint and normalised, in the
    declared order. A key without a constraint is refused (``<name>.<key>: unknown key; valid: ...``), and so is a
    ``raw`` that is not a table."""
    if not isinstance(raw, Mapping):
        raise InvalidArgument(name, raw, "a table", where=where)
    for key in raw:
        if key not in constraints:
            raise unknown_key(join(name, str(key)), constraints, where=where)
    return {k: check(raw[k], c, join(name, k), where=where) for k, c in constraints.items() if k in raw}


def check_params(where: str, constraints: Mapping[str, Constraint], values: Mapping[str, Any]) -> dict[str, Any]:
    """A function's arguments checked against its declared constraints, e.g. in a constructor::

        _parameter_constraints = {"probability": Real(0.0, 1.0, low_open=True, high_open=True), ...}

        def __init__(self, *, probability=0.05, ...):
            args = check_params(type(self).__name__, self._parameter_constraints, locals())

    Every constrained name found in ``values`` is checked (others are ignored); returns them normalised. The error
    reads ``<where>: <name>: value X is invalid; valid: ...``."""
    return {k: check(values[k], c, k, where=where) for k, c in constraints.items() if k in values}
