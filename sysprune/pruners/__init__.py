"""sysprune's pruners (Optuna ``BasePruner`` subclasses), their bookkeeping, and the policies study files name.

* :class:`ResourceBudgetPruner` — prunes on measured and predicted budget breaches (infeasible trials);
* :class:`CurvePruner` — learning-curve extrapolation against the best feasible trial (unpromising trials);
* :class:`CombinedPruner` — prunes when any member does;
* :class:`ThresholdBudgetPruner` — the baseline: one measured value from a training step over budget prunes;
* :class:`PrecheckPruner` — the plain-Optuna baseline: one reading before training, nothing later;
* :func:`record_constraints` — the budget constraints of a finishing trial;
* :func:`register_policy` — a pruning policy study files can name (one registration; :func:`get_policy`,
  :func:`policy_names` read the registry); :func:`build_pruner` / :func:`validate_policy` — the ``[pruner]``
  table of a study file.
"""

from sysprune.exceptions import BudgetMetricWarning
from sysprune.pruners._budget import ResourceBudgetPruner
from sysprune.pruners._combined import CombinedPruner
from sysprune.pruners._constraints import (
    BUDGET,
    BUDGETS,
    budget_constraints,
    check_budgets,
    constraint_key,
    record_constraints,
)
from sysprune.pruners._curve import CurvePruner
from sysprune.pruners._factory import budget_bound, build_pruner, validate_policy
from sysprune.pruners._precheck import PrecheckPruner
from sysprune.pruners._reasons import PruneDecision
from sysprune.pruners._registry import Policy, get_policy, policy_names, reference_groups, register_policy
from sysprune.pruners._threshold import ThresholdBudgetPruner

__all__ = [
    "BUDGET",
    "BUDGETS",
    "BudgetMetricWarning",
    "CombinedPruner",
    "CurvePruner",
    "Policy",
    "PrecheckPruner",
    "PruneDecision",
    "ResourceBudgetPruner",
    "ThresholdBudgetPruner",
    "budget_bound",
    "budget_constraints",
    "build_pruner",
    "check_budgets",
    "constraint_key",
    "get_policy",
    "policy_names",
    "record_constraints",
    "reference_groups",
    "register_policy",
    "validate_policy",
]
