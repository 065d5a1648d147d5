"""The ``threshold`` baseline: prune when one measured value from a training step crosses its budget."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from sysprune import _compat
from sysprune.metrics._registry import metric_kind
from sysprune.pruners import _steps
from sysprune.pruners._budget import UnreportedWarner
from sysprune.pruners._measured import MeasuredBudgetPruner
from sysprune.pruners._noise import confident_breach, readings_of
from sysprune.pruners._reasons import PruneDecision

if TYPE_CHECKING:
    import optuna


class ThresholdBudgetPruner(MeasuredBudgetPruner):
    """Pruner that stops a trial as soon as one measured value from a training step exceeds its budget.

    The behaviour of Ray Tune's stoppers and of most hand-written checks (``if latency > budget: raise
    optuna.TrialPruned()``): no forecast, no allowance for measurement noise, and no decision before training —
    readings of the pre-training probe (step -1) are ignored, so an oversized configuration costs at least one
    training step. It is the baseline that :class:`~sysprune.ResourceBudgetPruner` (which decides before training,
    forecasts, and waits for a confident breach of a noisy metric) must beat.

    Like the budget pruner it books a pruned trial as infeasible (constraint ``budget:<metric>`` = value − budget
    for every metric over budget), works in multi-objective studies through :func:`sysprune.should_prune`, and
    warns once per budgeted metric that is never reported.

    Args:
        budgets: Metric name → upper limit (finite, >= 0). At least one.
    """

    policy_label = "threshold"
    verb = "measured "

    def __init__(self, budgets: Mapping[str, float]) -> None:
        super().__init__(budgets)
        self._unreported = UnreportedWarner(self._budgets)

    def wants_second_reading(self, pretrain: Mapping[str, float | None]) -> bool:
        """Yes for a budget on a structural metric: this policy ignores step -1, so its first reading of one must
        come from the first training step."""
        return any(metric_kind(m) == "structural" for m in self._budgets)

    def _decide(self, study: "optuna.study.Study", trial: "optuna.trial.FrozenTrial") -> PruneDecision | None:
        steps = _steps.trial_steps(_compat.study_storage(study), _compat.trial_id(trial), trial.datetime_start)
        step = max(steps, default=-1)
        if not steps and trial.last_step is not None and trial.last_step >= 0:  # plain trial.report, no metrics
            self._unreported.check(steps, trial.number, trial.last_step)
        if step < 0:
            return None
        self._unreported.check(steps, trial.number, step)
        over: dict[str, tuple[float, int]] = {}
        for metric, budget in self._budgets.items():
            readings = readings_of(steps, metric, min_step=0)
            if confident_breach(readings, budget, None) is not None:
                worst = max(readings, key=lambda r: r.value)
                over[metric] = (worst.value, worst.step)
        if not over:
            return None
        return self._breach(step, over, "at step {at}")
