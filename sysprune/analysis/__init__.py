"""Analyses of stored studies: policy comparisons (``compare``), offline replay of pruners over recorded trials
(``replay``), the RQ1 report of how hyperparameters drive system metrics (``report``), the end-of-run summary,
and ``make results``. Everything here reads the database; nothing reads live objects.

Low-level pieces the runner uses (:mod:`._compute`) import nothing heavy; the rest import plotly lazily.
"""

from sysprune.analysis._compute import ComputeBudget, WorkerCompute, trial_compute
from sysprune.analysis._summary import run_summary

__all__ = ["ComputeBudget", "WorkerCompute", "run_summary", "trial_compute"]
