"""Every error of sysprune a user can catch, in one place (as ``optuna.exceptions`` and ``sklearn.exceptions``).

Each inherits :class:`SyspruneError` and the built-in that says what kind of mistake it is: a ``ValueError`` for
bad input (a study file, a storage URL, a study or dataset name), a ``RuntimeError`` for something that went wrong
while running. Messages are one line naming the field or value and what is valid, ready to show without a
traceback. The modules that raise them re-export the names they raise (``sysprune.spec.SpecError`` is
``sysprune.exceptions.SpecError``).

Hierarchy::

    SyspruneError
    ├── SpecError (ValueError)             a study file or an argument is invalid
    │   └── StudyMismatch                  the database holds that study, defined differently
    ├── StorageError (ValueError)          a storage URL cannot be used (unparsable, unreachable, no driver)
    │   ├── DatabaseNotFound               reading: no database there (nothing was created)
    │   ├── StudyNotFound (also KeyError)  reading: no study of that name in the database
    │   └── NoStepMetrics                  reading: the study holds no step metrics
    ├── UnsupportedStorage (ValueError)    an Optuna storage sysprune cannot keep step metrics in
    ├── DatasetUnavailable (ValueError)    a dataset is neither on disk nor downloadable now
    ├── DashboardError (RuntimeError)      the dashboard cannot serve (address in use, no permission)
    ├── TrialProcessError (RuntimeError)   the training code raised, or the trial process died
    ├── CapExceeded (RuntimeError)         a hard cap was breached; the trial process was killed
    └── CompatError (RuntimeError)         an installed Optuna / optuna-dashboard / Python broke an assumption
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CapExceeded",
    "CompatError",
    "DashboardError",
    "DatabaseNotFound",
    "DatasetUnavailable",
    "NoStepMetrics",
    "SpecError",
    "StorageError",
    "StudyMismatch",
    "StudyNotFound",
    "SyspruneError",
    "TrialProcessError",
    "UnsupportedStorage",
]


class SyspruneError(Exception):
    """Base class of every sysprune error."""


class SpecError(SyspruneError, ValueError):
    """A study file (or an argument overriding one) is invalid. The message is one line, ready for the user."""


class StudyMismatch(SpecError):
    """The database already holds a study of that name, defined differently. ``diffs`` lists
    ``(field, stored, current)`` and ``described`` says the same in words (``seed 0 -> 7``); :meth:`message_for`
    renders the hint with the front end's name for the ``study_name`` argument (the command line's
    ``--study-name``)."""

    argument = "study_name"  # the argument the message names (see sysprune._validation.InvalidArgument)

    def __init__(self, study_name: str, where: str, diffs: list[tuple[str, Any, Any]], described: str) -> None:
        self.study_name, self.where, self.diffs, self.described = study_name, where, diffs, described
        super().__init__(self.message_for("study_name"))

    def message_for(self, study_name_argument: str) -> str:
        return (
            f"study {self.study_name!r} in {self.where} was defined differently: {self.described}; "
            f"to start a new study, give another {study_name_argument}"
        )


class StorageError(SyspruneError, ValueError):
    """The storage URL cannot be used (unparsable, unreachable, missing driver, folder not creatable)."""


class DatabaseNotFound(StorageError):
    """There is no database at the URL given for reading (a missing SQLite file, no Optuna tables)."""


class StudyNotFound(StorageError, KeyError):
    """No study of that name in the database. Also a ``KeyError``, as Optuna's ``load_study`` raises."""

    __str__ = Exception.__str__  # KeyError quotes its message


class NoStepMetrics(StorageError):
    """The study exists but holds no step metrics (no trial reported any through ``sysprune.report``)."""


class UnsupportedStorage(SyspruneError, ValueError):
    """An Optuna storage that sysprune cannot keep step metrics in (refused, never replaced in silence)."""


class DatasetUnavailable(SyspruneError, ValueError):
    """A dataset is neither in the data directory nor downloadable now (one-line message)."""


class DashboardError(SyspruneError, RuntimeError):
    """The dashboard cannot start (address in use, unknown host, no permission): shown as one line, exit status 2."""


class TrialProcessError(SyspruneError, RuntimeError):
    """The training code raised, or the trial process died. The message says which and why."""


class CapExceeded(SyspruneError, RuntimeError):
    """A hard cap was breached; the trial process was killed."""

    def __init__(self, metric: str, value: float, cap: float, step: int) -> None:
        super().__init__(f"{metric} {value:.4g} exceeded the hard cap {cap:.4g} during step {step}")
        self.metric, self.value, self.cap, self.step = metric, value, cap, step


class CompatError(SyspruneError, RuntimeError):
    """An assumption about a private name of Optuna, optuna-dashboard or CPython does not hold in this install."""
