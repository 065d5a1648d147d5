"""Every error of sysprune a user can catch, in one place (as ``optuna.exceptions`` and ``sklearn.exceptions``),
and its warnings.

Each error inherits :class:`SyspruneError` and the built-in that says what kind of mistake it is: a ``ValueError``
for bad input (a study file, an argument, a storage URL, a study or dataset name), a ``RuntimeError`` for something
that went wrong while running. Messages are one line naming the field or value and what is valid, ready to show
without a traceback: the command line catches :class:`SyspruneError` and prints the line. The modules that raise
them re-export the names they raise (``sysprune.spec.SpecError`` is ``sysprune.exceptions.SpecError``).

An invalid value reads the same wherever it is given — a study file, a library argument, a pruner's constructor,
a model's parameters (:class:`InvalidArgument`)::

    <where>: <name>: value X is invalid; valid: ...

Hierarchy::

    SyspruneError
    ├── SpecError (ValueError)             a study file or an argument is invalid
    │   ├── InvalidArgument (TypeError)    one value (an argument, a parameter, a field), named, is invalid
    │   ├── StudyMismatch                  the database holds that study, defined differently
    │   ├── PluginError                    a plugin module named by a study cannot be imported
    │   ├── TooManyWorkers                 more workers than cores for one trial each (no --oversubscribe)
    │   └── RayUnavailable                 --ray without ray installed
    ├── MissingDependency (ValueError)     an optional dependency (an extra) is not installed
    ├── StorageError (ValueError)          a storage URL cannot be used (unparsable, unreachable, no driver)
    │   ├── DatabaseNotFound               reading: no database there (nothing was created)
    │   ├── StudyNotFound (also KeyError)  reading: no study of that name in the database
    │   └── NoStepMetrics                  reading: the study holds no step metrics
    ├── UnsupportedStorage (ValueError)    an Optuna storage sysprune cannot keep step metrics in
    ├── DatabaseFault (RuntimeError)       the database failed while in use (server gone past the retry window,
    │                                      disk full, file deleted, replaced or corrupt); nothing more was written
    ├── DatasetUnavailable (ValueError)    a dataset is neither on disk nor downloadable now
    ├── DashboardError (RuntimeError)      the dashboard cannot serve (address in use, no permission)
    ├── TrialProcessError (RuntimeError)   the training code raised, or the trial process died
    ├── CapExceeded (RuntimeError)         a hard cap was breached; the trial process was killed
    ├── WorkerFailed (RuntimeError)        a worker process ended with an error
    └── CompatError (RuntimeError)         an installed Optuna / optuna-dashboard / Python broke an assumption

    SyspruneWarning (UserWarning)
    ├── BudgetMetricWarning                a budgeted metric was never reported: the budget has nothing to act on
    └── CompatWarning                      an installed Optuna / optuna-dashboard / Python is not a tested version

Not here, on purpose: control flow that is not an error (``KeyboardInterrupt``'s SIGTERM twin in
``sysprune._signals.Terminated``, which ``except Exception`` must not catch; the private ``_NoSlot`` and
``_Stop`` that end a worker's or the dashboard's loop and never leave their module).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BudgetMetricWarning",
    "CapExceeded",
    "CompatError",
    "CompatWarning",
    "DashboardError",
    "DatabaseFault",
    "DatabaseNotFound",
    "DatasetUnavailable",
    "InvalidArgument",
    "MissingDependency",
    "NoStepMetrics",
    "PluginError",
    "RayUnavailable",
    "SpecError",
    "StorageError",
    "StudyMismatch",
    "StudyNotFound",
    "SyspruneError",
    "SyspruneWarning",
    "TooManyWorkers",
    "TrialProcessError",
    "UnsupportedStorage",
    "WorkerFailed",
]


class SyspruneError(Exception):
    """Base class of every sysprune error."""


class SpecError(SyspruneError, ValueError):
    """A study file (or an argument overriding one) is invalid. The message is one line, ready for the user."""

    def within(self, where: str) -> "SpecError":
        """The same error with ``where`` in front (a study file's name before its field)."""
        return SpecError(f"{where}: {self}")


def format_invalid(name: str, shown: str, valid: str, why: str | None = None) -> str:
    """The one message format: ``name: value X is invalid (why); valid: ...`` (``shown``: the value as written)."""
    return f"{name}: value {shown} is invalid{f' ({why})' if why else ''}; valid: {valid}"


class InvalidArgument(SpecError, TypeError):
    """One value is invalid: a library function's argument, a pruner's or a model's parameter, a study file's
    field. The message is ``[<where>: ]<name>: value X is invalid[ (why)]; valid: ...`` — or, for a key that is not
    one, ``<name>: unknown key; valid: ...`` — the same for the same mistake whichever way it was given.

    Also a ``TypeError`` (as scikit-learn's ``InvalidParameterError``): a value of the wrong type is one of these.

    Attributes: ``where`` (the prefix: a file, a class, a model; None for a library argument), ``argument`` (the
    name: ``n_trials``, ``pruner.probability``, ``budgets.infer_ms``), ``value``, ``valid`` (what is valid, in
    words), ``why`` (an optional reason) and ``problem`` (what is wrong, when it is not the value: ``unknown key``).
    :meth:`message_for` renders the same message under another name (the command line uses its flag,
    ``--n-trials``); :meth:`within` prefixes another ``where`` (a study file's name).
    """

    def __init__(
        self,
        argument: str,
        value: Any,
        valid: str,
        *,
        why: str | None = None,
        where: str | None = None,
        problem: str | None = None,
        shown: str | None = None,
    ) -> None:
        self.argument, self.value, self.valid, self.why = argument, value, valid, why
        self.where, self.problem, self.shown = where, problem, repr(value) if shown is None else shown
        super().__init__(self.message_for(argument))

    def message_for(self, name: str) -> str:
        if self.problem is not None:
            text = f"{name}: {self.problem}; valid: {self.valid}"
        else:
            text = format_invalid(name, self.shown, self.valid, self.why)
        return f"{self.where}: {text}" if self.where else text

    def within(self, where: str) -> "InvalidArgument":
        """The same error, with ``where`` in front of its own (``s.toml`` before ``pruner.probability``)."""
        return InvalidArgument(**{**self._fields(), "where": f"{where}: {self.where}" if self.where else where})

    def _fields(self) -> dict[str, Any]:
        return {
            "argument": self.argument,
            "value": self.value,
            "valid": self.valid,
            "why": self.why,
            "where": self.where,
            "problem": self.problem,
            "shown": self.shown,
        }

    def __reduce__(self) -> tuple[Any, ...]:  # pickled whole (a process pool's worker raises it to its parent)
        return (_rebuild, (type(self), self._fields()))


def first_line(error: BaseException) -> str:
    """An exception as one line: the first line of its message, else its class name."""
    text = str(error).strip()
    return text.splitlines()[0].strip() if text else type(error).__name__


def _rebuild(cls: type, fields: dict[str, Any]) -> Any:
    return cls(**fields)


class PluginError(SpecError):
    """A plugin module named by a study cannot be imported (one line naming the module and why)."""


class TooManyWorkers(SpecError):
    """More workers asked for than the machine has cores for one trial each (without --oversubscribe)."""


class RayUnavailable(SpecError):
    """``--ray`` was asked for but ray is not installed."""


class MissingDependency(SyspruneError, ValueError):
    """An optional dependency (an extra) is not installed; the message names the pip command that installs it."""


class StudyMismatch(SpecError):
    """The database already holds a study of that name, defined differently. ``diffs`` lists
    ``(field, stored, current)`` and ``described`` says the same in words (``seed 0 -> 7``); :meth:`message_for`
    renders the hint with the front end's name for the ``study_name`` argument (the command line's
    ``--study-name``)."""

    argument = "study_name"  # the argument the message names (see InvalidArgument)

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


class DatabaseFault(SyspruneError, RuntimeError):
    """The database failed while a study used it: a server that stayed away past the retry window, a full disk, an
    SQLite file deleted, replaced or corrupt. The message names the cause and what to do; the study is kept as it
    was last written. ``kind`` says which fault: ``full``,
    ``corrupt``, ``readonly``, ``io``, ``locked``, ``lost`` (the server), ``deleted``, ``replaced``."""

    def __init__(self, message: str, kind: str = "database") -> None:
        super().__init__(message)
        self.kind = kind


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


class WorkerFailed(SyspruneError, RuntimeError):
    """A worker process ended with an error (its own message was printed by it)."""


class CompatError(SyspruneError, RuntimeError):
    """An assumption about a private name of Optuna, optuna-dashboard or CPython does not hold in this install."""


class SyspruneWarning(UserWarning):
    """Base class of sysprune's warnings (``warnings.simplefilter("error", SyspruneWarning)`` turns them all into
    errors)."""


class BudgetMetricWarning(SyspruneWarning):
    """A budgeted metric was not reported (or only as missing) by the step a budget pruner first decided at: the
    budget has nothing to act on. Usually a misspelt name (``infer_msec``) or ``trial.report`` without metrics."""


class CompatWarning(SyspruneWarning):
    """An installed Optuna, optuna-dashboard or Python is outside the versions sysprune is tested with."""
