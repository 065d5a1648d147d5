"""sysprune: tune ML models so that they fit a machine, with Optuna studies that prune on system metrics.

Public API (everything else lives in private modules, as in Optuna)::

    sysprune.load_step_metrics(storage_url, study_name)   per-step metrics as a DataFrame
    sysprune.load_spec(path), sysprune.run_study(spec, ...)
    sysprune.METRICS                                      the metric vocabulary
    sysprune.report(trial, step, value, metrics)          one step of any Optuna objective
    sysprune.should_prune(trial)                          ask the pruner (multi-objective studies too)
    sysprune.ResourceBudgetPruner, CurvePruner, CombinedPruner, record_constraints
    sysprune.ComputeBudget(max_compute_s), run_summary(study)   search-level budget; end-of-run summary
    sysprune.analysis                                     compare / replay / RQ1 report of stored studies
"""

from sysprune._metrics import METRICS
from sysprune._report import report, should_prune
from sysprune._runner import run_study
from sysprune._spec import SpecError, StudySpec, load_spec
from sysprune._store import load_step_metrics
from sysprune.analysis import ComputeBudget, WorkerCompute, run_summary
from sysprune.pruners import CombinedPruner, CurvePruner, ResourceBudgetPruner, budget_constraints, record_constraints

__version__ = "0.1.0"

__all__ = [
    "METRICS",
    "CombinedPruner",
    "ComputeBudget",
    "CurvePruner",
    "ResourceBudgetPruner",
    "WorkerCompute",
    "SpecError",
    "StudySpec",
    "__version__",
    "budget_constraints",
    "load_spec",
    "load_step_metrics",
    "record_constraints",
    "report",
    "run_study",
    "run_summary",
    "should_prune",
]
