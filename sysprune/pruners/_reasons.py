"""Why a trial was pruned: the decision object every sysprune pruner returns, and how it is written on the trial.

A sysprune pruner splits :meth:`~optuna.pruners.BasePruner.prune` in two: ``_decide(study, trial)`` looks at the
data and returns a :class:`PruneDecision` (or ``None``) without writing anything, and ``prune`` records the
decision and returns ``True``. :class:`~sysprune.CombinedPruner` asks its members to decide and records only the
decision that wins, naming the member.

Recording writes through the study's storage, by trial id (``storage.set_trial_user_attr`` /
``set_trial_system_attr``), because a pruner only receives a ``FrozenTrial``. Optuna's ``BasePruner`` docstring
says a pruner must not modify the trial; sysprune's pruners deliberately do, at the moment they decide to prune
and only then:

* user attr ``prune_reason`` — one readable line (:data:`sysprune._attrs.PRUNE_REASON`);
* user attr ``prune_detail`` — a dict ``{rule, pruner, metric, value, budget, step, predicted, ...}``;
* for a budget breach, the constraint ``budget:<metric>`` = value − budget (> 0: infeasible), in Optuna 5's
  constraint attributes, so samplers and ``study.best_trial`` treat the trial as infeasible.

A prune decision is therefore final: a trial whose pruner said "prune" carries the reason (and, for a budget, the
infeasibility) even if the objective chose to go on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sysprune._attrs import PRUNE_DETAIL, PRUNE_REASON

if TYPE_CHECKING:
    import optuna

#: ``prune_detail["rule"]`` values.
RULE_BUDGET = "budget"  # a measured or predicted budget breach: infeasible
RULE_CURVE = "curve"  # the learning curve will not beat the best feasible trial: feasible but unpromising
RULE_INTERMEDIATE = "intermediate"  # an Optuna built-in pruner (median, hyperband, ...) on intermediate values


@dataclass(frozen=True)
class PruneDecision:
    """One decision to prune, with everything the reason attributes need."""

    rule: str
    pruner: str
    step: int | None
    message: str
    metric: str | None = None
    value: float | None = None
    budget: float | None = None
    predicted: bool = False
    #: Budget constraints to set now: ``metric -> value - budget`` (> 0). Empty for a feasible prune.
    constraints: Mapping[str, float] = field(default_factory=dict)
    #: More fields for ``prune_detail`` (JSON-serialisable).
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def infeasible(self) -> bool:
        return any(v > 0 for v in self.constraints.values())

    def detail(self, *, via: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rule": self.rule,
            "pruner": self.pruner,
            "metric": self.metric,
            "value": _json_float(self.value),
            "budget": _json_float(self.budget),
            "step": self.step,
            "predicted": self.predicted,
            "infeasible": self.infeasible,
        }
        if via is not None:
            out["via"] = via
        out.update({k: _json_float(v) if isinstance(v, float) else v for k, v in self.extra.items()})
        return out

    def reason(self, *, via: str | None = None) -> str:
        return f"{via}: {self.message}" if via else self.message


def _json_float(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def record_decision(
    study: "optuna.study.Study", trial: "optuna.trial.FrozenTrial", decision: PruneDecision, *, via: str | None = None
) -> None:
    """Write the decision on the trial (reason, detail and, for a budget breach, its constraints)."""
    from sysprune.pruners._constraints import set_constraints

    storage = study._storage
    storage.set_trial_user_attr(trial._trial_id, PRUNE_REASON, decision.reason(via=via))
    storage.set_trial_user_attr(trial._trial_id, PRUNE_DETAIL, decision.detail(via=via))
    if decision.constraints:
        set_constraints(storage, trial._trial_id, decision.constraints)


def fmt(value: float | None) -> str:
    """A number for a reason line: 4 significant digits, ``missing`` for ``None``."""
    return "missing" if value is None else f"{value:.4g}"
