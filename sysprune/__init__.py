"""sysprune: tune ML models so that they fit a machine, with Optuna studies that prune on system metrics.

Public API (everything else lives in private modules, as in Optuna)::

    sysprune.load_step_metrics(storage_url, study_name)   per-step metrics as a DataFrame
    sysprune.load_spec(path), sysprune.run_study(spec, ...)
    sysprune.METRICS                                      the metric vocabulary
    sysprune.report(trial, step, value, metrics)          one step of any Optuna objective
    sysprune.should_prune(trial)                          ask the pruner (multi-objective studies too)
    sysprune.measure(model=..., batch=...)                the runner's metrics, measured in a plain objective
    sysprune.PRETRAIN_STEP                                step -1: the pre-training probe
    sysprune.ResourceBudgetPruner, CurvePruner, CombinedPruner, record_constraints
"""

from sysprune._measure import Measurer, measure
from sysprune._metrics import METRICS, PRETRAIN_STEP
from sysprune._report import report, should_prune
from sysprune._runner import run_study
from sysprune._spec import SpecError, StudySpec, load_spec
from sysprune._store import load_step_metrics
from sysprune.pruners import CombinedPruner, CurvePruner, ResourceBudgetPruner, budget_constraints, record_constraints

__version__ = "0.1.0"

__all__ = [
    "METRICS",
    "Measurer",
    "PRETRAIN_STEP",
    "CombinedPruner",
    "CurvePruner",
    "ResourceBudgetPruner",
    "SpecError",
    "StudySpec",
    "__version__",
    "budget_constraints",
    "load_spec",
    "load_step_metrics",
    "measure",
    "record_constraints",
    "report",
    "run_study",
    "should_prune",
]
