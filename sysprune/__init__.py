"""sysprune: tune ML models so that they fit a machine, with Optuna studies that prune on system metrics.

Public API (everything else lives in private modules, as in Optuna)::

    sysprune.load_step_metrics(study_or_url, study_name)  per-step metrics as a DataFrame
    sysprune.exceptions                                   every error a user can catch
    sysprune.load_spec(path), sysprune.run_study(spec, ...)
    sysprune.METRICS                                      the metric vocabulary
    sysprune.report(trial, step, value, metrics)          one step of any Optuna objective
    sysprune.should_prune(trial)                          ask the pruner (multi-objective studies too)
    sysprune.ResourceBudgetPruner, CurvePruner, CombinedPruner, record_constraints
"""

from sysprune import _compat  # noqa: F401 - warns at import when Optuna/optuna-dashboard/Python is unsupported
from sysprune import exceptions
from sysprune._metrics import METRICS
from sysprune._report import report, should_prune
from sysprune._runner import run_study
from sysprune._spec import SpecError, StudySpec, load_spec
from sysprune._store import load_step_metrics
from sysprune.pruners import CombinedPruner, CurvePruner, ResourceBudgetPruner, budget_constraints, record_constraints

__version__ = "0.1.0"

__all__ = [
    "METRICS",
    "CombinedPruner",
    "CurvePruner",
    "ResourceBudgetPruner",
    "SpecError",
    "StudySpec",
    "__version__",
    "exceptions",
    "budget_constraints",
    "load_spec",
    "load_step_metrics",
    "record_constraints",
    "report",
    "run_study",
    "should_prune",
]
