"""Analyses of stored studies: policy comparisons (``compare``), offline replay of pruners over recorded trials
(``replay``), the RQ1 report of how hyperparameters drive system metrics (``report``), the end-of-run summary,
and ``make results``. Everything here reads the database; nothing reads live objects.

Low-level pieces the runner uses (:mod:`._compute`) import nothing heavy; the rest import plotly lazily.
"""

from sysprune.analysis._compare import collect as collect_compare
from sysprune.analysis._compare import compare_study_name, run_compare
from sysprune.analysis._compare_report import write_compare
from sysprune.study._compute import ComputeBudget, WorkerCompute, trial_compute
from sysprune.analysis._recording import load_recording
from sysprune.analysis._replay import replay, write_replay
from sysprune.analysis._rq1 import build_report, write_report
from sysprune.analysis._summary import outcome_lines, run_summary

__all__ = [
    "ComputeBudget",
    "WorkerCompute",
    "build_report",
    "collect_compare",
    "compare_study_name",
    "load_recording",
    "outcome_lines",
    "replay",
    "run_compare",
    "run_summary",
    "trial_compute",
    "write_compare",
    "write_replay",
    "write_report",
]
