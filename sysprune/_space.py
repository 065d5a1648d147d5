"""Search-space parameters as plain data, and their mapping to Optuna's ``suggest_*`` calls."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

import optuna


@dataclass(frozen=True)
class FloatParam:
    low: float
    high: float
    log: bool = False
    step: float | None = None

    def suggest(self, trial: optuna.Trial, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=self.log, step=self.step)

    def describe(self) -> str:
        return f"float[{self.low:g}, {self.high:g}]" + (" log" if self.log else "")


@dataclass(frozen=True)
class IntParam:
    low: int
    high: int
    log: bool = False
    step: int = 1

    def suggest(self, trial: optuna.Trial, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high, log=self.log, step=self.step)

    def describe(self) -> str:
        return f"int[{self.low}, {self.high}]" + (" log" if self.log else "")


@dataclass(frozen=True)
class CategoricalParam:
    choices: tuple[Any, ...]

    def suggest(self, trial: optuna.Trial, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.choices))

    def describe(self) -> str:
        return "{" + ", ".join(map(str, self.choices)) + "}"


@dataclass(frozen=True)
class FixedParam:
    """A parameter held constant: not sampled, passed to the model as is (recorded as a trial user attr)."""

    value: Any

    def suggest(self, trial: optuna.Trial, name: str) -> Any:
        return self.value

    def describe(self) -> str:
        return f"= {self.value!r}"


Param = Union[FloatParam, IntParam, CategoricalParam, FixedParam]


def sample(space: dict[str, Param], trial: optuna.Trial) -> dict[str, Any]:
    """Draw every parameter of ``space`` for ``trial`` (fixed ones are returned unchanged)."""
    return {name: p.suggest(trial, name) for name, p in space.items()}
