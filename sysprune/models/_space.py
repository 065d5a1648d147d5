"""Search spaces as plain data, and their mapping to Optuna's ``suggest_*`` calls.

A :data:`SearchSpace` maps parameter names to :class:`FloatParam`, :class:`IntParam`, :class:`CategoricalParam` or
:class:`FixedParam`. A model declares its space once; a study file may narrow, replace or fix any entry. Each
parameter may carry a ``default``: the value :func:`fill_params` uses when a direct ``create()`` call leaves the
parameter out (a study always passes every parameter of its space).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

import optuna

from sysprune._validation import InvalidArgument, unknown_key


@dataclass(frozen=True)
class FloatParam:
    """A float in ``[low, high]`` (log scale or a grid of ``step`` if given)."""

    low: float
    high: float
    log: bool = False
    step: float | None = None
    default: float | None = None

    def suggest(self, trial: optuna.Trial, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=self.log, step=self.step)

    def describe(self) -> str:
        return f"float[{self.low:g}, {self.high:g}]" + (" log" if self.log else "")


@dataclass(frozen=True)
class IntParam:
    """An integer in ``[low, high]`` (log scale or a grid of ``step``)."""

    low: int
    high: int
    log: bool = False
    step: int = 1
    default: int | None = None

    def suggest(self, trial: optuna.Trial, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high, log=self.log, step=self.step)

    def describe(self) -> str:
        return f"int[{self.low}, {self.high}]" + (" log" if self.log else "")


@dataclass(frozen=True)
class CategoricalParam:
    """One of ``choices`` (strings, numbers or booleans)."""

    choices: tuple[Any, ...]
    default: Any = None

    def suggest(self, trial: optuna.Trial, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.choices))

    def describe(self) -> str:
        return "{" + ", ".join(map(str, self.choices)) + "}"


@dataclass(frozen=True)
class FixedParam:
    """A parameter held constant: not sampled, passed to the model as is (recorded as a trial user attr)."""

    value: Any

    @property
    def default(self) -> Any:
        return self.value

    def suggest(self, trial: optuna.Trial, name: str) -> Any:
        return self.value

    def describe(self) -> str:
        return f"= {self.value!r}"


Param = Union[FloatParam, IntParam, CategoricalParam, FixedParam]
#: A model's search space: parameter name -> parameter.
SearchSpace = Mapping[str, Param]


def sample(space: SearchSpace, trial: optuna.Trial) -> dict[str, Any]:
    """Draw every parameter of ``space`` for ``trial`` (fixed ones are returned unchanged)."""
    return {name: p.suggest(trial, name) for name, p in space.items()}


def fill_params(params: Mapping[str, Any], space: SearchSpace, model: str) -> dict[str, Any]:
    """``params`` completed with the space's defaults.

    Raises :class:`~sysprune.exceptions.InvalidArgument` naming the model and the key for a parameter the space
    does not have (``torch_mlp: colour: unknown key; valid: ...``), or one left out that has no default.
    """
    for name in params:
        if name not in space:
            raise unknown_key(str(name), space, where=model)
    out = {}
    for name, p in space.items():
        if name in params:
            out[name] = params[name]
        elif p.default is not None:
            out[name] = p.default
        else:
            raise InvalidArgument(
                name,
                None,
                f"a value in {p.describe()}",
                problem="missing (its search space has no default)",
                where=model,
            )
    return out
