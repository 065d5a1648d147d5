"""sysprune in optuna-dashboard: per-step system metrics, budgets and prune reasons beside each study and trial.

* :class:`DashboardPublisher` — an Optuna-style callback the runner calls after every finished trial.
* :func:`publish_study` — the same for every finished trial of an existing study at once.
* ``sysprune dashboard`` (:mod:`._command`) — serves optuna-dashboard on a study database.

See ``docs/dashboard.md``.
"""

from sysprune.dashboard._figures import FIGURE_ID_PREFIX, figure_id
from sysprune.dashboard._notes import NOTE_HEADING, artifact_filename
from sysprune.dashboard._publish import STUDY_BUDGETS_ATTR, DashboardPublisher, default_artifact_dir, publish_study

__all__ = [
    "DashboardPublisher",
    "FIGURE_ID_PREFIX",
    "NOTE_HEADING",
    "STUDY_BUDGETS_ATTR",
    "artifact_filename",
    "default_artifact_dir",
    "figure_id",
    "publish_study",
]
