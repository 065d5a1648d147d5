"""sysprune: tune ML models so that they fit a machine, with Optuna studies that prune on system metrics.

Public API (everything else lives in private modules, as in Optuna)::

    sysprune.load_step_metrics(storage_url, study_name)   per-step metrics as a DataFrame
    sysprune.load_spec(path), sysprune.run_study(spec, ...)
    sysprune.METRICS                                      the metric vocabulary
"""

from sysprune._metrics import METRICS
from sysprune._runner import run_study
from sysprune._spec import SpecError, StudySpec, load_spec
from sysprune._store import load_step_metrics

__version__ = "0.1.0"

__all__ = ["METRICS", "SpecError", "StudySpec", "__version__", "load_spec", "load_step_metrics", "run_study"]
