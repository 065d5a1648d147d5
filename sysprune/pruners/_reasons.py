"""Why a trial was pruned: the decision a pruner returns, and the one function that writes it on the trial.

Pruners decide; they never write. A sysprune pruner (:class:`~sysprune.pruners._base.DecidingPruner`) computes a
:class:`PruneDecision` in ``_decide(study, trial)`` and its ``prune()`` only answers ``True``/``False`` — as
Optuna's ``BasePruner`` contract says, the trial is not modified — while handing the decision to whoever is
listening (:func:`collect`). :func:`sysprune.should_prune` listens, and when the study's pruner says "prune" it
calls :func:`record_decision`, the one place that writes:

* user attr ``prune_reason`` — one readable line (:data:`sysprune._attrs.PRUNE_REASON`);
* user attr ``prune_detail`` — a dict ``{rule, pruner, metric, value, budget, step, predicted, infeasible, ...}``;
* for a budget breach, the constraint ``budget:<metric>`` = value − budget (> 0: infeasible), through Optuna's
  ``Trial.set_constraint``, so samplers and ``study.best_trial`` treat the trial as infeasible.

The runner's hard-cap branch calls the same function with :func:`hard_cap_decision`. A pruner of Optuna's own
(median, hyperband, ...) gives no reason: :func:`builtin_decision` describes its verdict from the trial's last
intermediate value. Wrappers compose: ``PatientPruner(ResourceBudgetPruner(...))`` records the budget decision
when the wrapper prunes, and nothing when it does not.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sysprune._attrs import PRUNE_DETAIL, PRUNE_REASON
from sysprune.metrics._format import finite_or_none, fmt
from sysprune.pruners._constraints import write_constraints

if TYPE_CHECKING:
    import optuna

    from sysprune.exceptions import CapExceeded

__all__ = ["PruneDecision", "builtin_decision", "collect", "fmt", "hard_cap_decision", "offer", "record_decision"]

#: ``prune_detail["rule"]`` values.
RULE_BUDGET = "budget"  # a measured or predicted budget breach: infeasible
RULE_CURVE = "curve"  # the learning curve will not beat the best feasible trial: feasible but unpromising
RULE_INTERMEDIATE = "intermediate"  # an Optuna built-in pruner (median, hyperband, ...) on intermediate values
RULE_HARD_CAP = "hard_cap"  # the trial process breached a hard cap and was killed: infeasible


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
    #: Who relayed the decision (``"CombinedPruner member 1"``), or ``None``.
    via: str | None = None
    #: Keep the constraints from the sampler: write them to the user attr ``sysprune:budget_constraints`` instead
    #: of Optuna's constraints (the plain-Optuna baselines; see :func:`sysprune.pruners.record_constraints`).
    hidden: bool = False

    @property
    def infeasible(self) -> bool:
        return any(v > 0 for v in self.constraints.values())

    def relayed(self, via: str) -> "PruneDecision":
        """The same decision, relayed by ``via`` (a combining pruner names the member that decided)."""
        return dataclasses.replace(self, via=via)

    def detail(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rule": self.rule,
            "pruner": self.pruner,
            "metric": self.metric,
            "value": finite_or_none(self.value),
            "budget": finite_or_none(self.budget),
            "step": self.step,
            "predicted": self.predicted,
            "infeasible": self.infeasible,
        }
        if self.via is not None:
            out["via"] = self.via
        out.update({k: finite_or_none(v) if isinstance(v, float) else v for k, v in self.extra.items()})
        return out

    def reason(self) -> str:
        return f"{self.via}: {self.message}" if self.via else self.message


def record_decision(trial: "optuna.trial.Trial", decision: PruneDecision) -> None:
    """Write a decision to prune on the running trial: reason, detail and, for a budget breach, its constraints.

    The only writer of prune bookkeeping. Constraints already set on the trial are kept (Optuna keeps the first
    value per key). Public Optuna API only: the ``Trial`` object shows the attributes at once.
    """

    trial.set_user_attr(PRUNE_REASON, decision.reason())
    trial.set_user_attr(PRUNE_DETAIL, decision.detail())
    if decision.constraints:
        write_constraints(trial, decision.constraints, hidden=decision.hidden)


def builtin_decision(pruner: "optuna.pruners.BasePruner", trial: "optuna.trial.FrozenTrial") -> PruneDecision:
    """The decision of an Optuna pruner (which says only yes or no), described from the trial's last report."""
    step = trial.last_step
    value = trial.intermediate_values.get(step) if step is not None else None
    name = type(pruner).__name__
    said = f"intermediate value {fmt(value)} at step {step}" if step is not None else "no intermediate value"
    return PruneDecision(
        rule=RULE_INTERMEDIATE,
        pruner=name,
        step=step,
        message=f"{name}: {said} is not promising",
        value=value,
    )


def hard_cap_decision(error: "CapExceeded") -> PruneDecision:
    """The decision behind a hard cap the trial process breached: infeasible on the capped metric."""
    return PruneDecision(
        rule=RULE_HARD_CAP,
        pruner="TrialProcess",
        step=error.step,
        message=str(error),
        metric=error.metric,
        value=error.value,
        budget=error.cap,
        constraints={error.metric: error.value - error.cap},
    )


# ------------------------------------------------------------------ handing decisions out of BasePruner.prune()

_listener: contextvars.ContextVar[list[PruneDecision] | None] = contextvars.ContextVar(
    "sysprune_prune_decisions", default=None
)


@contextlib.contextmanager
def collect() -> Iterator[list[PruneDecision]]:
    """Collect the decisions sysprune pruners make inside the block (in this thread), in the order made."""
    decisions: list[PruneDecision] = []
    token = _listener.set(decisions)
    try:
        yield decisions
    finally:
        _listener.reset(token)


def offer(decision: PruneDecision) -> None:
    """Hand a decision to the enclosing :func:`collect`, if any (``prune()`` called by Optuna alone: nobody)."""
    decisions = _listener.get()
    if decisions is not None:
        decisions.append(decision)
