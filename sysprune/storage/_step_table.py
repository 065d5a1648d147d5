"""Per-step metrics, stored with the Optuna study, and :func:`load_step_metrics`, the reader.

Where the rows live depends on the study's storage, and every Optuna storage has a place (none is given an
in-memory stand-in):

* an **RDB storage** (SQLite, PostgreSQL, ...): ``sysprune_step_metrics``, a table of sysprune's own beside
  Optuna's, reached through the same URL, in long form (one row per trial, step and metric) —
  :class:`MetricStore`. Why a table and not trial attributes: Optuna writes each attribute in its own transaction
  (1-5 ms on SQLite), so thirteen metrics per step would cost tens of milliseconds; here a step is one
  transaction, and a new metric needs no schema change.
* **any other storage** (in memory, ``JournalStorage`` — multi-process journal studies included — or a gRPC
  proxy): one trial system attribute per step, ``sysprune:step:<step>`` = ``{metric: value}``, written through the
  storage's public API — :class:`AttrMetricStore`. Every process that opens the journal sees every row.

A metric that could not be measured is stored as ``None`` (``NULL``): "missing" is recorded, not implied. Writes
keep the first value for a (trial, step, metric), as ``optuna.Trial.report`` does. Step ``-1`` is the
pre-training probe (:data:`sysprune.PRETRAIN_STEP`), stored like any step.

Trial identity, one rule: a trial is ``(storage, trial id, start time)`` — the id alone is not enough because
SQLite reuses the trial ids of a deleted study. Optuna deletes a trial's attributes with it, so only the table and
the in-process step cache (:mod:`sysprune.pruners._steps`) need the rule: the first write for a trial in a process
replaces the rows stored under its id (a trial is reported by one process), the cache drops an entry whose start
time differs, and readers keep only rows whose trial id is a current trial of the study with the same number.
"""

from __future__ import annotations

import abc
import datetime
import functools
from dataclasses import dataclass
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from sysprune import _compat
from sysprune._attrs import STEP_ATTR_PREFIX
from sysprune.metrics._format import nan_to_none
from sysprune.metrics._registry import metric_names
from sysprune.storage._open import mask_url, open_existing, shared_engine, tune_engine
from sysprune.storage._open import tune_sqlite_engine  # noqa: F401 - importable from here (tests, benchmarks)
from sysprune.exceptions import NoStepMetrics, StudyNotFound, UnsupportedStorage

if TYPE_CHECKING:
    import optuna
    import pandas as pd

TABLE_NAME = "sysprune_step_metrics"
#: The width of the table's metric column: ``sysprune.report`` refuses a longer metric name.
METRIC_NAME_MAX = 64

_meta = sa.MetaData()
step_metrics = sa.Table(
    TABLE_NAME,
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("study_name", sa.String(512), nullable=False),
    sa.Column("trial_id", sa.Integer, nullable=False),
    sa.Column("trial_number", sa.Integer, nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("metric", sa.String(METRIC_NAME_MAX), nullable=False),
    sa.Column("value", sa.Float, nullable=True),
    sa.UniqueConstraint("trial_id", "step", "metric", name="uq_sysprune_step_metric"),
    sa.Index("ix_sysprune_step_metrics_study", "study_name", "trial_number"),
)

Steps = dict[int, dict[str, float | None]]
_DELETE_TRIAL = sa.delete(step_metrics).where(step_metrics.c.trial_id == sa.bindparam("trial_id"))


def _engine(url: str) -> sa.Engine:
    """The engine of the study's own storage where this process opened one on ``url`` (one pool per database), else
    one of the table's own."""
    shared = shared_engine(url)
    return shared if shared is not None else _own_engine(url)


@functools.lru_cache(maxsize=16)
def _own_engine(url: str) -> sa.Engine:
    engine = sa.create_engine(url, pool_pre_ping=True)
    tune_engine(engine)
    return engine


#: URLs whose table this process has made sure of (created if missing).
_created: set[str] = set()
#: (url, trial id, trial start) of the trials this process has written: see MetricStore.write_step.
_claimed: set[tuple[str, int, Any]] = set()


def create_table(url: str) -> None:
    """Create ``sysprune_step_metrics`` in the database of ``url`` if it is not there yet. The runner calls it under
    the database lock, so that N workers starting on a new database do not race to create it at their first step;
    it keeps no connection open (the process that calls it may never write a step)."""
    if url in _created:
        return
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    tune_engine(engine)
    try:
        _meta.create_all(engine, checkfirst=True)
    finally:
        engine.dispose()
    _created.add(url)


def _wide(long: "pd.DataFrame") -> "pd.DataFrame":
    """Long rows ``(trial_number, step, metric, value)`` → one row per (trial_number, step), one column per metric
    (the vocabulary's, then custom ones by name; ``NaN`` = missing or not recorded)."""
    import pandas as pd

    extra = sorted(set(long["metric"]) - set(names := metric_names()))
    columns = list(names) + extra
    if long.empty:
        return pd.DataFrame(columns=["trial_number", "step", *columns]).astype(
            {"trial_number": "int64", "step": "int64", **{c: "float64" for c in columns}}
        )
    # set_index+unstack keeps only (trial, step) pairs that exist and NULL values as NaN
    # (pivot_table(dropna=False) would invent the full trial x step product).
    wide = long.set_index(["trial_number", "step", "metric"])["value"].astype("float64").unstack("metric")
    wide = wide.reindex(columns=columns).sort_index().reset_index()
    wide.columns.name = None
    return wide.astype({"trial_number": "int64", "step": "int64"})


@dataclass(frozen=True)
class _StepKey:
    """Which step of which trial a write is for."""

    study_name: str
    trial_id: int
    trial_number: int
    step: int
    trial_start: datetime.datetime | None


class _StepStore(abc.ABC):
    """What both stores share: one step's metrics written at once, NaN stored as missing, the first value per
    metric kept (as ``optuna.Trial.report`` does)."""

    def write_step(
        self,
        *,
        study_name: str,
        trial_id: int,
        trial_number: int,
        step: int,
        metrics: Mapping[str, float | None],
        trial_start: datetime.datetime | None = None,
    ) -> None:
        """Write one step's metrics in one transaction or storage call (the first value per metric wins).

        ``trial_start`` (the trial's ``datetime_start``) completes the trial's identity: a study deleted and
        re-created in this process reuses trial ids, and its trials must not keep the old trials' rows.
        """
        values = {name: nan_to_none(value) for name, value in metrics.items()}
        if values:
            self._write(_StepKey(study_name, trial_id, trial_number, int(step), trial_start), values)

    @abc.abstractmethod
    def _write(self, key: _StepKey, values: dict[str, float | None], intermediate: float | None = None) -> None:
        """Store ``values`` of the step ``key`` names, keeping any value already stored (and, where the store
        supports it, Optuna's ``intermediate`` value of the step in the same transaction)."""


class MetricStore(_StepStore):
    """Per-step metrics in the ``sysprune_step_metrics`` table of the database behind one SQLAlchemy URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine = _engine(url)
        # INSERT ... ON CONFLICT DO NOTHING on SQLite and PostgreSQL; elsewhere a plain insert (duplicates raise)
        self._stmt = _compat.insert_ignore_statement(self._engine.dialect.name, step_metrics)

    def _has_table(self) -> bool:
        if self.url in _created:
            return True
        with self._engine.connect() as conn:
            if not sa.inspect(conn).has_table(TABLE_NAME):
                return False
        _created.add(self.url)  # it exists: nothing to create, nothing to look up again
        return True

    def _ensure_table(self) -> None:
        if self.url not in _created:
            _meta.create_all(self._engine, checkfirst=True)
            _created.add(self.url)

    def write_step_and_value(
        self,
        *,
        study_name: str,
        trial_id: int,
        trial_number: int,
        step: int,
        metrics: Mapping[str, float | None],
        value: float,
        trial_start: datetime.datetime | None = None,
        user_attrs: Mapping[str, Any] | None = None,
        earlier: Mapping[int, Mapping[str, float | None]] | None = None,
    ) -> None:
        """:meth:`write_step` and Optuna's intermediate ``value`` of the step (what ``Trial.report`` stores), in
        one transaction: one write per step; with ``user_attrs`` (the last step's) the trial's user attributes in it
        too (what ``Trial.set_user_attr`` stores). The trial must be running (else Optuna's
        ``UpdateFinishedTrialError``, and nothing is written); the caller updates the trial's cached copy
        (``_compat.remember_intermediate_value``, ``_compat.remember_user_attrs``). ``earlier``: rows of earlier
        steps (``{step: metrics}``) not stored yet (the runner's step -1), stored in the same transaction."""
        values = {name: nan_to_none(v) for name, v in metrics.items()}
        key = _StepKey(study_name, trial_id, trial_number, int(step), trial_start)
        before = {int(s): {n: nan_to_none(v) for n, v in row.items()} for s, row in (earlier or {}).items()}
        self._write(key, values, float(value), user_attrs=user_attrs, earlier=before)

    def _write(
        self,
        key: _StepKey,
        values: dict[str, float | None],
        intermediate: float | None = None,
        *,
        user_attrs: Mapping[str, Any] | None = None,
        earlier: Mapping[int, Mapping[str, float | None]] | None = None,
    ) -> None:
        where = {"study_name": key.study_name, "trial_id": key.trial_id, "trial_number": key.trial_number}
        rows = [
            {**where, "step": step, "metric": name, "value": value}
            for step, row in {**(earlier or {}), key.step: values}.items()
            for name, value in row.items()
        ]
        self._ensure_table()
        claim = (self.url, key.trial_id, key.trial_start)
        with self._engine.begin() as conn:
            if intermediate is not None:
                _compat.check_running(conn, key.trial_id)
                _compat.write_intermediate_value(conn, key.trial_id, key.step, intermediate)
            if user_attrs:
                if intermediate is None:
                    _compat.check_running(conn, key.trial_id)
                _compat.upsert_user_attrs(conn, key.trial_id, user_attrs)
            if claim not in _claimed:
                # The trial-identity rule (module docstring): rows under this id that this process did not
                # write belong to a deleted study's trial.
                conn.execute(_DELETE_TRIAL, {"trial_id": key.trial_id})
            if rows:
                # One statement for every row, compiled once per process: ``insert().values(rows)`` built a new
                # multi-row statement each step, and compiling it cost ~5 ms of the worker's CPU per step.
                conn.execute(self._stmt, rows)
        _claimed.add(claim)

    def trial_steps(self, trial_id: int) -> Steps:
        """All stored steps of one trial: ``{step: {metric: value}}``."""
        out: Steps = {}
        if not self._has_table():
            return out
        q = sa.select(step_metrics.c.step, step_metrics.c.metric, step_metrics.c.value).where(
            step_metrics.c.trial_id == trial_id
        )
        with self._engine.connect() as conn:
            for step, metric, value in conn.execute(q):
                out.setdefault(step, {})[metric] = value
        return out

    def load(self, study_name: str, trial_ids: Mapping[int, int] | None = None) -> "pd.DataFrame":
        """One row per (trial_number, step), one column per metric; ``trial_ids`` (``{trial id: number}``, the
        study's current trials) drops the rows of a deleted study's trials."""
        import pandas as pd

        rows: Sequence[Any] = []
        if self._has_table():
            q = sa.select(
                step_metrics.c.trial_id,
                step_metrics.c.trial_number,
                step_metrics.c.step,
                step_metrics.c.metric,
                step_metrics.c.value,
            ).where(step_metrics.c.study_name == study_name)
            with self._engine.connect() as conn:
                rows = conn.execute(q).all()
        long = pd.DataFrame(rows, columns=["trial_id", "trial_number", "step", "metric", "value"])
        if trial_ids is not None:
            long = long[long["trial_id"].map(trial_ids).eq(long["trial_number"])]
        return _wide(long.drop(columns="trial_id"))


class AttrMetricStore(_StepStore):
    """Per-step metrics as trial system attributes (``sysprune:step:<step>``), for every storage but an RDB one.

    One storage call per step, through Optuna's public storage API, so whatever the storage shares (a journal
    file read by several processes) the rows share too.
    """

    def __init__(self, storage: "optuna.storages.BaseStorage") -> None:
        self.storage = storage

    def _write(self, key: _StepKey, values: dict[str, float | None], intermediate: float | None = None) -> None:
        attr = f"{STEP_ATTR_PREFIX}{key.step}"
        old = self.storage.get_trial_system_attrs(key.trial_id).get(attr) or {}
        merged = {**values, **old}
        if merged != old:
            self.storage.set_trial_system_attr(key.trial_id, attr, merged)

    def trial_steps(self, trial_id: int) -> Steps:
        return _steps_of(self.storage.get_trial_system_attrs(trial_id))

    def load(self, study_name: str, trial_ids: Mapping[int, int] | None = None) -> "pd.DataFrame":
        """As :meth:`MetricStore.load` (``trial_ids`` is ignored: attributes go with their trial)."""
        import pandas as pd

        study_id = self.storage.get_study_id_from_name(study_name)
        records = [
            (t.number, step, metric, value)
            for t in self.storage.get_all_trials(study_id, deepcopy=False)
            for step, row in _steps_of(t.system_attrs).items()
            for metric, value in row.items()
        ]
        long = pd.DataFrame(records, columns=["trial_number", "step", "metric", "value"])
        return _wide(long.astype({"value": "float64"}))


def _steps_of(system_attrs: Mapping[str, Any]) -> Steps:
    out: Steps = {}
    for key, row in system_attrs.items():
        if key.startswith(STEP_ATTR_PREFIX) and isinstance(row, Mapping):
            out[int(key[len(STEP_ATTR_PREFIX) :])] = {m: None if v is None else float(v) for m, v in row.items()}
    return dict(sorted(out.items()))


def store_for(storage: Any) -> MetricStore | AttrMetricStore:
    """Where the step metrics of a study on ``storage`` (an Optuna storage object or an RDB URL) live.

    Raises:
        UnsupportedStorage: ``storage`` is neither a URL nor an Optuna storage.
    """
    import optuna

    if isinstance(storage, str):
        return MetricStore(storage)
    backend = _compat.rdb_backend(storage)
    if backend is not None:
        return MetricStore(backend.url)
    if not isinstance(storage, optuna.storages.BaseStorage):
        raise UnsupportedStorage(
            f"storage must be an Optuna storage or a database URL to keep step metrics in, but got {storage!r}"
        )
    return AttrMetricStore(storage)


def load_step_metrics(
    study_or_url: "optuna.Study | str", study_name: str | None = None, *, params: bool = False
) -> "pd.DataFrame":
    """Per-step metrics of a study as a :class:`pandas.DataFrame`.

    One row per ``(trial_number, step)`` (step ``-1``: the pre-training probe), then ``state`` (the trial's state
    now, ``"COMPLETE"``, ``"PRUNED"``, ``"FAIL"``, ``"RUNNING"``, ...), then one ``float64`` column per metric of
    the vocabulary (``NaN`` where a metric was missing or not recorded) and any custom metric an objective reported.
    With ``params=True``, one ``params_<name>`` column per parameter of the study follows ``state`` (named as
    :meth:`optuna.Study.trials_dataframe` names them; missing where a trial did not sample that parameter), so the
    rows need no join. Works for finished and for running studies. Reads only; creates nothing.

    Args:
        study_or_url:
            An :class:`optuna.Study` (any storage) or the URL of a study database.
        study_name:
            The study, when a URL is given; may be left out when the database holds one study. Must be
            :obj:`None` or the study's own name when a study is given.
        params:
            Add the trials' parameters, one column each.

    Raises:
        DatabaseNotFound: no database at the URL (a missing SQLite file, no Optuna tables).
        StudyNotFound: no study of that name there (also a ``KeyError``), or no name given and several studies.
        NoStepMetrics: the study holds no step metrics.
        StorageError: the URL cannot be used.
    """
    import optuna

    if isinstance(study_or_url, optuna.Study):
        study = study_or_url
        if study_name is not None and study_name != study.study_name:
            raise ValueError(
                f"study_name must be None or the study's own name {study.study_name!r} when a study is given, "
                f"but got {study_name=}."
            )
        storage = _compat.study_storage(study)
        name, sid, where = study.study_name, _compat.study_id(study), "its storage"
    elif isinstance(study_or_url, str):
        storage = open_existing(study_or_url)
        where = mask_url(study_or_url)
        name = study_name if study_name is not None else _only_study(storage, where)
        try:
            sid = storage.get_study_id_from_name(name)
        except KeyError:
            names = sorted(s.study_name for s in storage.get_all_studies())
            raise StudyNotFound(
                f"no study {name!r} in {where}; studies there: {', '.join(map(repr, names)) or 'none'}"
            ) from None
    else:
        raise TypeError(f"study_or_url must be an optuna.Study or a database URL, but got {study_or_url!r}.")

    trials = storage.get_all_trials(sid, deepcopy=False)
    numbers = {_compat.trial_id(t): t.number for t in trials}
    wide = store_for(storage).load(name, numbers)
    if wide.empty:
        raise NoStepMetrics(
            f"study {name!r} in {where} has no step metrics ({len(trials)} trials); "
            "they are recorded by sysprune.report(trial, step, value, metrics)"
        )
    states = {t.number: t.state.name for t in trials}
    wide.insert(2, "state", wide["trial_number"].map(states).astype("string"))
    if params:
        _insert_params(wide, trials)
    return wide


def _insert_params(wide: "pd.DataFrame", trials: "Sequence[optuna.trial.FrozenTrial]") -> None:
    """Insert one ``params_<name>`` column per parameter (sorted by name) after ``state``, in place."""
    names = sorted({name for t in trials for name in t.params})
    by_number = {t.number: t.params for t in trials}
    for i, name in enumerate(names):
        values = wide["trial_number"].map(lambda n, name=name: by_number.get(n, {}).get(name))
        wide.insert(3 + i, f"params_{name}", values.infer_objects())


def _only_study(storage: "optuna.storages.BaseStorage", where: str) -> str:
    names = sorted(s.study_name for s in storage.get_all_studies())
    if len(names) == 1:
        return names[0]
    if not names:
        raise StudyNotFound(f"no study in {where}")
    raise StudyNotFound(f"{where} holds {len(names)} studies ({', '.join(map(repr, names))}); pass study_name")
