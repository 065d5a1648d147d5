"""Every use of a private name of Optuna, optuna-dashboard or CPython, in one place.

Everything else in sysprune uses public API, or calls one of the functions here. Each assumption is checked by
``tests/test_compat.py`` against the installed versions, so an upgrade that breaks one fails those tests by name
instead of failing in silence somewhere else; the functions also raise :class:`~sysprune.exceptions.CompatError`
when a name they rely on is gone.

Supported versions are :data:`SUPPORTED`. At import, :func:`check_versions` *warns* (:class:`CompatWarning`) when
an installed version is outside them rather than refusing: most of sysprune uses public API only, the private
names below are few and each fails loudly on its own when it breaks, and an error at ``import sysprune`` would
stop someone who only reads results from a study with a newer Optuna.

Why each private name is kept rather than a public equivalent (measured on the 2-core VM, 2026-11-29):

* ``Trial._trial_id`` / ``FrozenTrial._trial_id``, ``Study._storage``, ``Study._study_id``: Optuna has no public
  trial id or storage handle; its own pruners, ``upload_artifact`` and optuna-dashboard use these.
* ``Trial._get_latest_trial()``: what ``Trial.should_prune`` passes to the pruner, built from the trial's cache with
  no query; the public road (``storage.get_trial``) is one more query per step (~1 ms on SQLite) on the step loop.
* ``optuna.storages._cached_storage._CachedStorage._backend``: ``create_study(storage=URL)`` wraps the
  RDBStorage; the step table lives beside the RDB's URL and engine, which only the wrapped object has. Its
  ``_studies`` / ``_add_trials_to_cache`` (:func:`cache_new_trial`): a trial a worker's claim created in its own
  transaction (:func:`insert_running_trial`: the ``trials``, ``trial_user_attributes`` and ``trial_heartbeats``
  rows, the study's row locked as Optuna locks it) is put in the cache as ``create_new_trial`` puts it — one
  transaction per claim instead of three (2026-12-08; ``tests/test_claim.py``).
* ``optuna.storages._rdb.models`` tables: (1) "has a trial finished since?" is one indexed ``count`` on the
  ``trials`` table (< 1 ms at 10,000 trials) where ``study.get_trials()`` costs ~10 ms on SQLite; (2) replacing a
  dashboard figure group in one transaction on ``study_system_attributes``: ~18 ms per trial against 0.8-1.6 s
  through optuna-dashboard's ``save_plotly_graph_object`` + ``save_note``, which validate a plotly ``Figure`` and
  write every 2 kB chunk in its own transaction (docs/dashboard.md; re-measured with
  ``tests/dashboard/bench_publish.py --trials 40 --steps 10`` at load ~6: 41 ms median against 670 ms).
* optuna-dashboard's key layout (notes, figures, artifact records in the study's system attributes, chunks of
  :data:`DASHBOARD_CHUNK` characters): needed by the one-transaction writer above. Artifacts: Optuna's public
  ``upload_artifact`` cannot attach a file to a trial that has finished (the storage refuses the write) and makes a
  new id on each call, so republishing would add copies; the publisher runs after the trial finished.
* CPython's ``multiprocessing.popen_forkserver.Popen._launch`` (3.11): copied without the re-import of the caller's
  ``__main__`` in every trial process (see :func:`popen_class`).
* CPython's ``multiprocessing.forkserver._forkserver._forkserver_pid``: whether the fork server runs, so the trial
  process module hands it the stderr capture file only when it starts (:func:`forkserver_pid`).
* CPython's ``multiprocessing.forkserver.ForkServer`` and its ``_forkserver_pid``, ``_forkserver_address``,
  ``_forkserver_alive_fd``: the fork server a launch's workers are forked from (:func:`new_forkserver`,
  :func:`forkserver_state`, :func:`kill_forkserver`, :func:`forget_inherited_forkserver`).
"""

from __future__ import annotations

import copy
import functools
import re
import sys
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sysprune.exceptions import CompatError, CompatWarning

if TYPE_CHECKING:
    import optuna
    import sqlalchemy as sa
    from optuna.storages._cached_storage import _CachedStorage

#: ``{distribution: (lowest supported version, first unsupported version)}``; Python as ``"python"``.
SUPPORTED: dict[str, tuple[str, str]] = {
    "python": ("3.11", "3.12"),
    "optuna": ("5.0", "5.1"),
    "optuna-dashboard": ("0.21", "0.22"),
}


def _version_tuple(text: str) -> tuple[int, ...]:
    """``"5.0.0"`` → ``(5, 0, 0)``; a pre-release or local suffix is ignored (``"5.1.0.dev0"`` → ``(5, 1, 0)``)."""
    match = re.match(r"\d+(?:\.\d+)*", text)
    return tuple(int(p) for p in match.group(0).split(".")) if match else ()


def supported(name: str, version: str) -> bool:
    """Whether ``version`` of ``name`` is within :data:`SUPPORTED` (lowest included, upper bound excluded)."""
    low, high = SUPPORTED[name]
    v = _version_tuple(version)
    return _version_tuple(low) <= v < _version_tuple(high)


def installed_versions() -> dict[str, str | None]:
    """The installed version of each name of :data:`SUPPORTED` (``None``: not installed)."""
    from importlib import metadata

    out: dict[str, str | None] = {"python": ".".join(map(str, sys.version_info[:3]))}
    for name in SUPPORTED:
        if name == "python":
            continue
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def check_versions(versions: dict[str, str | None] | None = None) -> list[str]:
    """Warn (:class:`CompatWarning`) for each installed version outside :data:`SUPPORTED`; return the messages."""
    versions = installed_versions() if versions is None else versions
    problems = []
    for name, version in versions.items():
        if version is None or supported(name, version):
            continue
        low, high = SUPPORTED[name]
        problems.append(
            f"sysprune is tested with {name} >={low},<{high}, but {name} {version} is installed; "
            "tests/test_compat.py checks the private names it relies on"
        )
    for message in problems:
        warnings.warn(message, CompatWarning, stacklevel=3)
    return problems


# ------------------------------------------------------------------------------------------------------ Optuna


def trial_id(trial: "optuna.trial.Trial | optuna.trial.FrozenTrial") -> int:
    """The storage's id of a trial (unique in the storage; ``number`` is unique in the study only)."""
    try:
        return trial._trial_id
    except AttributeError:
        raise CompatError(f"{type(trial).__name__} has no _trial_id in this Optuna") from None


def study_storage(study: "optuna.study.Study") -> "optuna.storages.BaseStorage":
    """The storage object of a study (for a URL, Optuna's caching wrapper around an RDBStorage)."""
    try:
        return study._storage
    except AttributeError:
        raise CompatError("optuna.Study has no _storage in this Optuna") from None


def study_id(study: "optuna.study.Study") -> int:
    """The storage's id of a study."""
    try:
        return study._study_id
    except AttributeError:
        raise CompatError("optuna.Study has no _study_id in this Optuna") from None


def latest_trial(trial: "optuna.trial.Trial") -> "optuna.trial.FrozenTrial":
    """The trial's current ``FrozenTrial``, as ``Trial.should_prune`` hands it to the pruner (no query)."""
    try:
        get = trial._get_latest_trial
    except AttributeError:
        raise CompatError("optuna.Trial has no _get_latest_trial in this Optuna") from None
    return get()


def forget_cached_trials(study: "optuna.study.Study") -> None:
    """Drop the study's per-thread copy of its trial list, as ``Study.ask`` does before it builds a trial (inside
    ``optimize`` the sampler reads that copy): a study that creates its trials itself, to claim them under a lock
    without running the sampler there (``sysprune.study._workers.ClaimingStudy``), must do the same."""
    local = getattr(study, "_thread_local", None)
    if local is None or not hasattr(local, "cached_all_trials"):
        raise CompatError("optuna.Study has no _thread_local.cached_all_trials in this Optuna")
    local.cached_all_trials = None


@functools.cache
def _cached_storage_class() -> type[_CachedStorage]:
    try:
        from optuna.storages._cached_storage import _CachedStorage
    except ImportError:
        raise CompatError("optuna.storages._cached_storage._CachedStorage is gone in this Optuna") from None
    return _CachedStorage


def unwrap_storage(storage: Any) -> Any:
    """The storage behind Optuna's ``_CachedStorage`` wrapper (which ``create_study(storage=URL)`` adds)."""
    if isinstance(storage, _cached_storage_class()):
        try:
            return storage._backend
        except AttributeError:
            raise CompatError("optuna's _CachedStorage has no _backend in this Optuna") from None
    return storage


def without_trial_heartbeat(storage: Any) -> Any:
    """``storage`` as ``Study.optimize`` should see it when the caller beats for its trials itself: the same cache
    and backend (a shallow copy of Optuna's ``_CachedStorage``), but reporting no heartbeat interval, so Optuna starts
    no heartbeat thread per trial and runs no stale-trial query before each one (``study._heartbeat``). Any other
    storage is returned as it is."""
    if not isinstance(storage, _cached_storage_class()):
        return storage
    twin = copy.copy(storage)  # its __getstate__ leaves out the cache's lock; the twin must share it too
    if hasattr(storage, "_lock"):
        twin._lock = storage._lock
    twin.get_heartbeat_interval = lambda: None  # type: ignore[method-assign]
    return twin


def rdb_backend(storage: Any) -> "optuna.storages.RDBStorage | None":
    """The :class:`optuna.storages.RDBStorage` behind ``storage``, or ``None`` for any other storage."""
    import optuna

    backend = unwrap_storage(storage)
    return backend if isinstance(backend, optuna.storages.RDBStorage) else None


def rdb_models() -> Any:
    """``optuna.storages._rdb.models``, Optuna's ORM models (the benchmarks bulk-load 10,000-trial studies)."""
    try:
        from optuna.storages._rdb import models
    except ImportError:
        raise CompatError("optuna.storages._rdb.models is gone in this Optuna") from None
    return models


#: Optuna's table of each private table name this module hands out (``optuna.storages._rdb.models``).
_RDB_MODELS = {
    "trials": "TrialModel",
    "trial_intermediate_values": "TrialIntermediateValueModel",
    "study_system_attributes": "StudySystemAttributeModel",
    "trial_user_attributes": "TrialUserAttributeModel",
    "trial_heartbeats": "TrialHeartbeatModel",
    "studies": "StudyModel",
}


def rdb_table(name: str) -> "sa.Table":
    """Optuna's SQLAlchemy table of that name (one of :data:`_RDB_MODELS`' keys; Optuna 5)."""
    models = rdb_models()
    try:
        table = getattr(models, _RDB_MODELS[name]).__table__
    except AttributeError:
        raise CompatError(f"optuna.storages._rdb.models has no {_RDB_MODELS[name]} in this Optuna") from None
    if table.name != name:
        raise CompatError(f"optuna's {_RDB_MODELS[name]} maps to table {table.name!r}, not {name!r}")
    return table


@functools.cache
def _upsert_statement(insert: Any, table: "sa.Table") -> Any:
    stmt = insert(table)
    return stmt.on_conflict_do_update(
        index_elements=[table.c.trial_id, table.c.key], set_={"value_json": stmt.excluded.value_json}
    )


def upsert_user_attrs(conn: Any, trial_id: int, attrs: Mapping[str, Any]) -> None:
    """Insert or replace ``attrs`` of a trial in ``trial_user_attributes`` (JSON values, as Optuna stores them): one
    statement on SQLite and PostgreSQL (their ``ON CONFLICT DO UPDATE``), an update-then-insert per key elsewhere."""
    import json

    import sqlalchemy as sa

    table = rdb_table("trial_user_attributes")
    rows = [{"trial_id": trial_id, "key": k, "value_json": json.dumps(v)} for k, v in attrs.items()]
    insert = _dialect_insert(conn.dialect.name)
    if insert is not None:
        conn.execute(_upsert_statement(insert, table), rows)  # executemany: compiled once, not per call
        return
    for row in rows:  # pragma: no cover - MySQL and others: what Optuna's own fallback does, per key
        where = (table.c.trial_id == trial_id) & (table.c.key == row["key"])
        if conn.execute(sa.update(table).where(where).values(value_json=row["value_json"])).rowcount == 0:
            conn.execute(sa.insert(table).values(row))


def set_finished_trial_user_attr(storage: Any, trial_id: int, key: str, value: Any) -> None:
    """Set a user attr of a *finished* trial, which Optuna's API refuses (``UpdateFinishedTrialError``): the reason
    of a trial failed by the heartbeat or by a restart ("worker lost") is written after Optuna failed it. RDB
    storages only (the table ``trial_user_attributes``, JSON values as Optuna stores them)."""
    backend = rdb_backend(storage)
    if backend is None:
        raise CompatError(f"cannot set an attr of a finished trial in a {type(storage).__name__}")
    with backend.engine.begin() as conn:
        upsert_user_attrs(conn, trial_id, {key: value})


def check_running(conn: Any, trial_id: int) -> None:
    """Raise as Optuna's storage does when a trial cannot be written to: ``KeyError`` (no such trial),
    ``UpdateFinishedTrialError`` (finished). For writes made in a transaction of sysprune's own."""
    import optuna
    import sqlalchemy as sa

    trials = rdb_table("trials")
    row = conn.execute(sa.select(trials.c.state, trials.c.number).where(trials.c.trial_id == trial_id)).one_or_none()
    if row is None:
        raise KeyError(f"No trial with trial_id {trial_id} exists.")
    if row.state.is_finished():  # Optuna's BaseStorage.check_trial_is_updatable, and its message
        raise optuna.exceptions.UpdateFinishedTrialError(
            f"Trial#{row.number} has already finished and can not be updated."
        )


def reported_steps(trial: "optuna.trial.Trial") -> Any:
    """The steps whose intermediate value the running trial has reported (``Trial.report`` ignores a second)."""
    try:
        return trial._cached_frozen_trial.intermediate_values
    except AttributeError:
        raise CompatError("optuna.Trial has no _cached_frozen_trial in this Optuna") from None


def write_intermediate_value(conn: Any, trial_id: int, step: int, value: float) -> None:
    """Store a running trial's intermediate value on ``conn`` — what ``Trial.report`` stores (Optuna's table
    ``trial_intermediate_values``, its encoding of inf and NaN; the first value of a step wins) — so that
    :func:`sysprune.report` writes a step's metric rows and its objective value in **one** transaction: Optuna's
    ``set_trial_intermediate_value`` is an ORM session of its own (a trial lookup, an existing-value lookup, an
    insert, a commit), 1.5-7 ms of the worker's CPU per step on SQLite (2026-12-07). Call
    :func:`remember_intermediate_value` once the transaction is committed. The caller checks the trial is
    running (:func:`check_running`)."""
    table = rdb_table("trial_intermediate_values")
    model = rdb_models().TrialIntermediateValueModel
    stored, kind = model.intermediate_value_to_stored_repr(float(value))
    row = {"trial_id": trial_id, "step": int(step), "intermediate_value": stored, "intermediate_value_type": kind}
    conn.execute(insert_ignore_statement(conn.dialect.name, table), [row])


def remember_intermediate_value(trial: "optuna.trial.Trial", step: int, value: float) -> None:
    """Update the trial's cached copy after :func:`write_intermediate_value`, as ``Trial.report`` does."""
    reported_steps(trial)[int(step)] = float(value)


@functools.cache
def insert_ignore_statement(dialect: str, table: "sa.Table") -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL (a plain insert elsewhere), compiled once."""
    insert = _dialect_insert(dialect)
    if insert is None:  # pragma: no cover - other databases
        return table.insert()
    return insert(table).on_conflict_do_nothing()


def _dialect_insert(dialect: str) -> Any:
    """SQLAlchemy's ``insert`` with ``ON CONFLICT`` for SQLite and PostgreSQL; None for other databases."""
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgres_insert

        return postgres_insert
    return None


def set_trial_user_attrs(trial: "optuna.trial.Trial", attrs: Mapping[str, Any]) -> None:
    """``trial.set_user_attr(key, value)`` for each of ``attrs``, in one transaction on an RDB storage.

    Optuna writes each attribute in its own transaction (an ORM session: a trial lookup, an upsert, a commit:
    ~1.4 ms of the worker's CPU each on SQLite, 2026-12-07); a sysprune trial sets ~18 of them. Here: one lookup of
    the trial's state (a finished trial is refused as Optuna refuses it) and one multi-row upsert. The trial's
    cached copy (``Trial._cached_frozen_trial``, what ``trial.user_attrs`` reads) is updated as
    ``Trial.set_user_attr`` updates it. Any other storage: one ``set_user_attr`` per key.
    """
    if not attrs:
        return
    backend = rdb_backend(study_storage(trial.study))
    try:
        cached = trial._cached_frozen_trial
    except AttributeError:
        raise CompatError("optuna.Trial has no _cached_frozen_trial in this Optuna") from None
    if backend is None:
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return
    tid = trial_id(trial)
    with backend.engine.begin() as conn:
        check_running(conn, tid)  # KeyError / UpdateFinishedTrialError, as Trial.set_user_attr raises them
        upsert_user_attrs(conn, tid, attrs)
    cached.user_attrs.update(attrs)


def remember_user_attrs(trial: "optuna.trial.Trial", attrs: Mapping[str, Any]) -> None:
    """Update the trial's cached copy after :func:`upsert_user_attrs` in a transaction of the caller's, as
    ``Trial.set_user_attr`` does."""
    try:
        trial._cached_frozen_trial.user_attrs.update(attrs)
    except AttributeError:
        raise CompatError("optuna.Trial has no _cached_frozen_trial in this Optuna") from None


@functools.cache
def _new_trial_statement() -> Any:
    """``INSERT INTO trials`` of a RUNNING trial numbered by how many trials its study had before it, compiled once."""
    import optuna
    import sqlalchemy as sa

    trials = rdb_table("trials")
    sid: Any = sa.bindparam("sid")
    number = sa.select(sa.func.count()).select_from(trials).where(trials.c.study_id == sid).scalar_subquery()
    return (
        sa.insert(trials)
        .values(
            number=number, study_id=sid, state=optuna.trial.TrialState.RUNNING, datetime_start=sa.bindparam("start")
        )
        .returning(trials.c.trial_id, trials.c.number)
    )


def lock_study_row(conn: Any, study_id: int) -> None:
    """Lock the study's row for the caller's transaction (``SELECT ... FOR UPDATE``), as Optuna's
    ``create_new_trial`` locks it to number a new trial: until the caller commits, no other creator — a sysprune
    worker or plain Optuna — can add a trial to the study. PostgreSQL (SQLite's write transaction serialises
    creators itself)."""
    import sqlalchemy as sa

    studies = rdb_table("studies")
    conn.execute(sa.select(studies.c.study_id).where(studies.c.study_id == study_id).with_for_update())


def insert_running_trial(
    conn: Any, study_id: int, user_attrs: Mapping[str, Any], *, heartbeat: bool
) -> "optuna.trial.FrozenTrial":
    """Create a RUNNING trial of ``study_id`` on ``conn``, in the caller's transaction: the row
    ``RDBStorage.create_new_trial`` inserts (numbered by how many trials the study had before it), ``user_attrs`` as
    ``set_trial_user_attr`` stores them and, with ``heartbeat``, its first beat as ``record_heartbeat`` stores it —
    one transaction where Optuna's ORM takes one for the trial (with a template: a deep copy, a flush, a count and an
    update of its number), one per attr and one per beat. The caller serialises the study's creators, so that no
    two trials take the same number: on PostgreSQL it has locked the study's row in this transaction
    (:func:`lock_study_row`), as Optuna's create does; on SQLite the write transaction does it. Returns the trial as
    Optuna's cache holds a new one (:func:`cache_new_trial`)."""
    import datetime

    import optuna
    import sqlalchemy as sa

    start = datetime.datetime.now()
    trial_id, number = conn.execute(_new_trial_statement(), {"sid": study_id, "start": start}).one()
    if user_attrs:
        upsert_user_attrs(conn, trial_id, user_attrs)
    if heartbeat:
        beats = rdb_table("trial_heartbeats")
        conn.execute(beats.insert().values(trial_id=trial_id, heartbeat=sa.func.current_timestamp()))
    return optuna.trial.FrozenTrial(
        number=number,
        state=optuna.trial.TrialState.RUNNING,
        value=None,
        values=None,
        datetime_start=start,
        datetime_complete=None,
        params={},
        distributions={},
        user_attrs=dict(user_attrs),
        system_attrs={},
        intermediate_values={},
        trial_id=trial_id,
    )


def cache_new_trial(storage: Any, study_id: int, trial: "optuna.trial.FrozenTrial") -> None:
    """Tell Optuna's cache (``_CachedStorage``) of a trial created outside it (:func:`insert_running_trial`), as its
    ``create_new_trial`` does: its later writes (``set_trial_param``) look the trial's study up there. Any other
    storage: nothing to do."""
    if not isinstance(storage, _cached_storage_class()):
        return
    try:
        from optuna.storages._cached_storage import _StudyInfo

        with storage._lock:
            if study_id not in storage._studies:
                storage._studies[study_id] = _StudyInfo()
            storage._add_trials_to_cache(study_id, [trial])
    except (ImportError, AttributeError):
        raise CompatError("optuna's _CachedStorage has no _studies / _add_trials_to_cache in this Optuna") from None


# ---------------------------------------------------------------------------------------------- optuna-dashboard
# its key layout: in sysprune/_compat_dashboard.py, re-exported here.
from sysprune._compat_dashboard import (  # noqa: E402, F401
    DASHBOARD_CHUNK,
    dashboard_artifact_prefix,
    dashboard_note_prefix,
    dashboard_note_version_key,
    dashboard_plot_prefix,
    is_dashboard_artifact_key,
)


# ------------------------------------------------------------------------------------------------------ CPython
# multiprocessing's fork server: in sysprune/_compat_mp.py, re-exported here.
from sysprune._compat_mp import (  # noqa: E402, F401
    forget_inherited_forkserver,
    forkserver_pid,
    forkserver_state,
    kill_forkserver,
    new_forkserver,
    popen_class,
)

check_versions()
