"""sysprune's pruners (Optuna ``BasePruner`` subclasses), their bookkeeping, and the study-file policy factory.

* :class:`ResourceBudgetPruner` — prunes on measured and predicted budget breaches (infeasible trials);
* :class:`CurvePruner` — learning-curve extrapolation against the best feasible trial (unpromising trials);
* :class:`CombinedPruner` — prunes when any member does;
* :class:`ThresholdBudgetPruner` — the baseline: one measured value from a training step over budget prunes;
* :class:`PrecheckPruner` — the plain-Optuna baseline: one reading before training, nothing later;
* :func:`record_constraints` — the budget constraints of a finishing trial;
* :func:`build_pruner` / :func:`validate_policy` — the ``[pruner]`` table of a study file.
"""

from sysprune.pruners._budget import BudgetMetricWarning, ResourceBudgetPruner
from sysprune.pruners._combined import CombinedPruner
from sysprune.pruners._constraints import budget_constraints, constraint_key, record_constraints
from sysprune.pruners._curve import CurvePruner
from sysprune.pruners._factory import PLAIN_POLICIES, build_pruner, policy_names, validate_policy
from sysprune.pruners._precheck import PrecheckPruner
from sysprune.pruners._reasons import PruneDecision
from sysprune.pruners._threshold import ThresholdBudgetPruner

__all__ = [
    "BudgetMetricWarning",
    "CombinedPruner",
    "CurvePruner",
    "PLAIN_POLICIES",
    "PrecheckPruner",
    "PruneDecision",
    "ResourceBudgetPruner",
    "ThresholdBudgetPruner",
    "budget_constraints",
    "build_pruner",
    "constraint_key",
    "policy_names",
    "record_constraints",
    "validate_policy",
]
