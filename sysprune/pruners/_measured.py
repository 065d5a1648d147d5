"""What the two baselines that prune on one measured value share: their budgets and how a breach reads.

``threshold`` (any training step) and ``precheck`` (the pre-training probe only) differ in *when* they look; once
they have found readings over budget they decide alike: the worst breach (relative to its budget) is the reason,
every breach is a constraint (``value - budget`` > 0, infeasible).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

from sysprune._validation import Constraint, check_params
from sysprune.pruners._base import DecidingPruner
from sysprune.pruners._budget import _ratio, _unit_suffix
from sysprune.pruners._constraints import PRUNER_BUDGETS
from sysprune.pruners._reasons import RULE_BUDGET, PruneDecision, fmt

if TYPE_CHECKING:
    import optuna  # noqa: F401


class MeasuredBudgetPruner(DecidingPruner):
    """A pruner on measured readings against ``budgets`` (metric name → upper limit, finite, >= 0; at least one)."""

    supports_multi_objective = True
    _parameter_constraints: ClassVar[Mapping[str, Constraint]] = {"budgets": PRUNER_BUDGETS}
    #: The policy's name at the start of a reason line, and the word before the value (``"measured "`` or none).
    policy_label: ClassVar[str] = ""
    verb: ClassVar[str] = ""

    def __init__(self, budgets: Mapping[str, float]) -> None:
        self._budgets: dict[str, float] = check_params(
            type(self).__name__, self._parameter_constraints, {"budgets": budgets}
        )["budgets"]

    @property
    def budgets(self) -> dict[str, float]:
        return dict(self._budgets)

    def _breach(
        self, step: int, over: Mapping[str, tuple[float, int]], describe: str, *, hidden: bool = False
    ) -> PruneDecision:
        """The decision for readings ``over`` their budgets (metric → (value, step measured)), decided at ``step``;
        ``describe`` ends the reason line (``"at step {at}"``-style text, formatted with ``at``)."""
        metric = max(over, key=lambda m: _ratio(over[m][0], self._budgets[m]))
        value, at = over[metric]
        unit = _unit_suffix(metric)
        name = self.policy_label
        return PruneDecision(
            rule=RULE_BUDGET,
            pruner=type(self).__name__,
            step=step,
            message=(
                f"{name}: {metric} {self.verb}{fmt(value)}{unit} > budget {fmt(self._budgets[metric])}{unit}"
                f" {describe.format(at=at)}"
            ),
            metric=metric,
            value=value,
            budget=self._budgets[metric],
            predicted=False,
            constraints={m: v - self._budgets[m] for m, (v, _) in over.items()},
            extra={"measured_step": at},
            hidden=hidden,
        )
