"""sysprune: tune ML models so that they fit a machine, with Optuna studies that prune on system metrics.

The public API (listed with an example each in docs/api.md; everything else lives in private modules, as in
Optuna):

Running and reading studies
    load_spec, StudySpec, SpecError, run_study, load_step_metrics(study_or_url, study_name=None, *, params=False)
Errors
    sysprune.exceptions: every error a user can catch (all a SyspruneError), and the warnings
Pruning in any Optuna objective
    report, should_prune, ResourceBudgetPruner, ThresholdBudgetPruner, CurvePruner, CombinedPruner,
    budget_constraints, record_constraints, BudgetMetricWarning
    measure(model=..., batch=...) -> Measurer: the runner's metric dict, measured in one's own objective
Extending (docs/extending.md)
    Trainer, DryRun, Dataset, register_model, register_dataset, register_metric, Metric, METRICS, PRETRAIN_STEP,
    SearchSpace, FloatParam, IntParam, CategoricalParam, FixedParam,
    register_policy (a pruning policy study files can name), sysprune.constraints (declared parameter constraints)
Figures, as optuna.visualization returns them (plotly figures; docs/api.md)
    plot_step_metric(study, metric), plot_what_fits(study, metric), plot_compute(study),
    plot_importances(storage_url, study_name), plot_anytime(study_file, storage_url=...)
Search-level budget, end-of-run summary, analysis (docs/analysis.md)
    ComputeBudget, WorkerCompute, run_summary, sysprune.analysis (compare / replay / RQ1 report)
"""

# First of all: in the ``sysprune`` command, a Ctrl-C or SIGTERM while it imports ends it with one line, not a traceback.
from sysprune import _signals

_signals.early()

import importlib  # noqa: E402
from typing import TYPE_CHECKING, Any  # noqa: E402

# Extension API: registries and the types a model, dataset or metric of one's own uses.
from sysprune.datasets import Dataset, register_dataset
from sysprune.metrics._registry import METRICS, PRETRAIN_STEP, Metric, register_metric
from sysprune.models._space import CategoricalParam, FixedParam, FloatParam, IntParam, SearchSpace
from sysprune.models import DryRun, Trainer, register_model

from sysprune import _compat  # noqa: F401 - warns at import when Optuna/optuna-dashboard/Python is unsupported
from sysprune import exceptions

# Running studies, reporting steps, pruning, reading results: imported on first use (PEP 562), so a process that
# needs only the extension API — the fork server every trial process comes from — does not pay for the runner,
# the storage layer, the pruners, the figures and the analysis (~0.3 s of CPU per worker's fork server).
_LAZY = {
    "Measurer": "sysprune.metrics._measure",
    "measure": "sysprune.metrics._measure",
    "report": "sysprune.pruners._step_api",
    "should_prune": "sysprune.pruners._step_api",
    "run_study": "sysprune.study._runner",
    "SpecError": "sysprune.spec",
    "StudySpec": "sysprune.spec",
    "load_spec": "sysprune.spec",
    "load_step_metrics": "sysprune.storage._step_table",
    "plot_anytime": "sysprune.plot",
    "plot_compute": "sysprune.plot",
    "plot_importances": "sysprune.plot",
    "plot_step_metric": "sysprune.plot",
    "plot_what_fits": "sysprune.plot",
    "ComputeBudget": "sysprune.analysis",
    "WorkerCompute": "sysprune.analysis",
    "run_summary": "sysprune.analysis",
    "CombinedPruner": "sysprune.pruners",
    "CurvePruner": "sysprune.pruners",
    "ResourceBudgetPruner": "sysprune.pruners",
    "budget_constraints": "sysprune.pruners",
    "record_constraints": "sysprune.pruners",
    "BudgetMetricWarning": "sysprune.pruners",
    "ThresholdBudgetPruner": "sysprune.pruners",
    "register_policy": "sysprune.pruners",
    "constraints": "sysprune.constraints",  # a module
}

if TYPE_CHECKING:  # what the names are, for type checkers and readers
    from sysprune import constraints
    from sysprune.analysis import ComputeBudget, WorkerCompute, run_summary
    from sysprune.metrics._measure import Measurer, measure
    from sysprune.plot import plot_anytime, plot_compute, plot_importances, plot_step_metric, plot_what_fits
    from sysprune.pruners import BudgetMetricWarning, CombinedPruner, CurvePruner, ResourceBudgetPruner
    from sysprune.pruners import ThresholdBudgetPruner, budget_constraints, record_constraints, register_policy
    from sysprune.pruners._step_api import report, should_prune
    from sysprune.spec import SpecError, StudySpec, load_spec
    from sysprune.storage._step_table import load_step_metrics
    from sysprune.study._runner import run_study


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'sysprune' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    value = module if module_name == f"sysprune.{name}" else getattr(module, name)
    globals()[name] = value  # once: later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


from sysprune._version import __version__

__all__ = [
    "METRICS",
    "PRETRAIN_STEP",
    "BudgetMetricWarning",
    "CategoricalParam",
    "CombinedPruner",
    "ComputeBudget",
    "CurvePruner",
    "Dataset",
    "DryRun",
    "FixedParam",
    "FloatParam",
    "IntParam",
    "Measurer",
    "Metric",
    "ResourceBudgetPruner",
    "SearchSpace",
    "WorkerCompute",
    "SpecError",
    "StudySpec",
    "ThresholdBudgetPruner",
    "Trainer",
    "__version__",
    "exceptions",
    "budget_constraints",
    "constraints",
    "load_spec",
    "load_step_metrics",
    "plot_anytime",
    "plot_compute",
    "plot_importances",
    "plot_step_metric",
    "plot_what_fits",
    "measure",
    "record_constraints",
    "register_dataset",
    "register_metric",
    "register_model",
    "register_policy",
    "report",
    "run_study",
    "run_summary",
    "should_prune",
]
