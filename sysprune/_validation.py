"""One validation vocabulary: constraints declared once, checked at one entry point, one message format.

After scikit-learn's declared parameter constraints: a constraint (:class:`Integer`, :class:`Real`, :class:`Text`,
:class:`Boolean`) says what is valid and describes it; every failure reads::

    <where>: <name>: value X is invalid; valid: ...

Study files (``sysprune.spec``), library arguments (:func:`check_argument`, raising :class:`InvalidArgument`,
which names the *argument* so the command line can render it with its flag) and the pruners' constructors use
the same constraints and the same :func:`invalid` message.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sysprune.exceptions import SpecError


class InvalidArgument(SpecError):
    """A library function's argument is invalid. ``argument`` names it; :meth:`message_for` renders the same
    message under another name (the command line uses its flag, e.g. ``--n-trials``)."""

    def __init__(self, argument: str, value: Any, valid: str) -> None:
        self.argument, self.value, self.valid = argument, value, valid
        super().__init__(self.message_for(argument))

    def message_for(self, name: str) -> str:
        return invalid(name, self.value, self.valid)


def invalid(field: str, value: Any, valid: str, why: str | None = None) -> str:
    """The one message format: ``field: value X is invalid (why); valid: ...``."""
    shown = value.text if isinstance(value, Shown) else repr(value)
    return f"{field}: value {shown} is invalid{f' ({why})' if why else ''}; valid: {valid}"


@dataclass(frozen=True)
class Shown:
    """A value shown as given (e.g. ``low=32 high=8``) rather than by ``repr``."""

    text: str


# ---------------------------------------------------------------------------------------------------------------
# Declared constraints


def fmt_number(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


@dataclass(frozen=True)
class Integer:
    """An integer (not a boolean) in ``[low, high]``; a bound of None is open-ended."""

    low: int | None = None
    high: int | None = None

    def accepts(self, v: Any) -> bool:
        return (
            not isinstance(v, bool)
            and isinstance(v, int)
            and (self.low is None or v >= self.low)
            and (self.high is None or v <= self.high)
        )

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return f"an integer in [{self.low}, {self.high}]"
        if self.low is not None:
            return f"an integer >= {self.low}"
        if self.high is not None:
            return f"an integer <= {self.high}"
        return "an integer"

    def normalise(self, v: Any) -> int:
        return v


@dataclass(frozen=True)
class Real:
    """A finite number (an integer is accepted) in an interval; ``*_open`` makes a bound exclusive."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def accepts(self, v: Any) -> bool:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return False
        if self.low is not None and (v <= self.low if self.low_open else v < self.low):
            return False
        return self.high is None or (v < self.high if self.high_open else v <= self.high)

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            lb, hb = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"a finite number in {lb}{fmt_number(self.low)}, {fmt_number(self.high)}{hb}"
        if self.low is not None:
            return f"a finite number {'>' if self.low_open else '>='} {fmt_number(self.low)}"
        if self.high is not None:
            return f"a finite number {'<' if self.high_open else '<='} {fmt_number(self.high)}"
        return "a finite number"

    def normalise(self, v: Any) -> float:
        return float(v)


@dataclass(frozen=True)
class Text:
    """A non-empty string (any string with ``empty``), one of ``choices`` when given."""

    choices: tuple[str, ...] | None = None
    empty: bool = False

    def accepts(self, v: Any) -> bool:
        if not isinstance(v, str) or (not v and not self.empty):
            return False
        return self.choices is None or v in self.choices

    def describe(self) -> str:
        if self.choices is not None:
            return ", ".join(self.choices)
        return "a string" if self.empty else "a non-empty string"

    def normalise(self, v: Any) -> str:
        return v


@dataclass(frozen=True)
class Boolean:
    def accepts(self, v: Any) -> bool:
        return isinstance(v, bool)

    def describe(self) -> str:
        return "true or false"

    def normalise(self, v: Any) -> bool:
        return v


Constraint = Integer | Real | Text | Boolean


def check_argument(argument: str, value: Any, constraint: Constraint) -> Any:
    """Validate one library argument against its declared constraint; raise :class:`InvalidArgument`."""
    if not constraint.accepts(value):
        raise InvalidArgument(argument, value, constraint.describe())
    return constraint.normalise(value)
