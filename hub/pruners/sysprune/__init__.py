"""sysprune's pruners as an OptunaHub package: prune Optuna trials on system budgets (memory, latency, size, time)
as well as on learning curves. The classes are sysprune's own (``pip install -r requirements.txt``); this package
re-exports them so that ``optunahub.load_module("pruners/sysprune")`` (or ``load_local_module``) finds them."""

from sysprune import (
    PRETRAIN_STEP,
    CombinedPruner,
    CurvePruner,
    Measurer,
    ResourceBudgetPruner,
    ThresholdBudgetPruner,
    budget_constraints,
    measure,
    record_constraints,
    report,
    should_prune,
)

__all__ = [
    "PRETRAIN_STEP",
    "CombinedPruner",
    "CurvePruner",
    "Measurer",
    "ResourceBudgetPruner",
    "ThresholdBudgetPruner",
    "budget_constraints",
    "measure",
    "record_constraints",
    "report",
    "should_prune",
]
