"""The ``precheck`` baseline: the few lines a savvy plain-Optuna user writes before training.

::

    model = build(trial.params)
    if n_params(model) > BUDGET:   # or its size, or one timing of its untrained forward pass
        raise optuna.TrialPruned()
    train(model)                   # nothing is checked after this point

Run by the sysprune runner with policy ``precheck`` it sees the pre-training probe (step -1) and nothing later,
decides on one reading of each budgeted *structural* metric (no allowance for measurement noise, no forecast, no
training-time metric), and — like a plain Optuna study — its trials carry no Optuna constraints: the sampler learns
only that a pruned trial without intermediate values was bad (the runner keeps the budget constraints where only
the analyses read them; :func:`sysprune.pruners.record_constraints` with ``hidden=True``). It is the reference that
the ``budget`` policy must beat in ``sysprune compare``: issue 9's "hand-written pre-check".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from sysprune import _compat
from sysprune.metrics._registry import PRETRAIN_STEP, metric_kind
from sysprune.pruners import _steps
from sysprune.pruners._measured import MeasuredBudgetPruner
from sysprune.pruners._reasons import PruneDecision

if TYPE_CHECKING:
    import optuna


class PrecheckPruner(MeasuredBudgetPruner):
    """Pruner that rejects a configuration before training when one reading of a structural metric (``n_params``,
    ``model_bytes``, ``infer_ms``, ...) taken at the pre-training probe is over its budget; never later.

    Budgets on other metrics (time, memory, energy) are accepted and ignored: a pre-check cannot see them. The
    decision's constraints are hidden from the sampler (a plain study has none); see the module docstring.

    Args:
        budgets: Metric name → upper limit (finite, >= 0). At least one.
    """

    policy_label = "precheck"

    def __init__(self, budgets: Mapping[str, float]) -> None:
        super().__init__(budgets)
        self._checked = {m: b for m, b in self._budgets.items() if metric_kind(m) == "structural"}

    def _decide(self, study: "optuna.study.Study", trial: "optuna.trial.FrozenTrial") -> PruneDecision | None:
        steps = _steps.trial_steps(_compat.study_storage(study), _compat.trial_id(trial), trial.datetime_start)
        if max(steps, default=None) != PRETRAIN_STEP:
            return None  # only before training
        row = steps[PRETRAIN_STEP]
        over: dict[str, tuple[float, int]] = {}
        for metric, budget in self._checked.items():
            value = row.get(metric)
            if value is not None and value == value and value > budget:
                over[metric] = (float(value), PRETRAIN_STEP)
        if not over:
            return None
        # a plain study has no constraints: kept where only the analyses read them
        return self._breach(PRETRAIN_STEP, over, "before training", hidden=True)
