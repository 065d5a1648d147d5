"""Per-step metrics, stored in the same database as the Optuna study.

One table of sysprune's own, ``sysprune_step_metrics``, in long form (one row per trial, step and metric), beside
Optuna's tables and reached through the same SQLAlchemy URL. Why a table and not trial attributes:
Optuna writes each attribute in its own transaction (1-5 ms each on SQLite), so thirteen metrics per step would
cost tens of milliseconds; here one step is one transaction. Long form means a new metric needs no schema change.

A metric that could not be measured is stored as a row with ``value = NULL``: "missing" is recorded, not implied.

Writes keep the first value for a (trial, step, metric), as ``optuna.Trial.report`` does.
Readers return pandas DataFrames and read only the database, never live objects, so a study written on another
machine (or in PostgreSQL) reads the same way.
"""

from __future__ import annotations

import functools
import math
import threading
import weakref
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from sysprune._metrics import metric_names

TABLE_NAME = "sysprune_step_metrics"

_meta = sa.MetaData()
step_metrics = sa.Table(
    TABLE_NAME,
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("study_name", sa.String(512), nullable=False),
    sa.Column("trial_id", sa.Integer, nullable=False),
    sa.Column("trial_number", sa.Integer, nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("metric", sa.String(64), nullable=False),
    sa.Column("value", sa.Float, nullable=True),
    sa.UniqueConstraint("trial_id", "step", "metric", name="uq_sysprune_step_metric"),
    sa.Index("ix_sysprune_step_metrics_study", "study_name", "trial_number"),
)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets a dashboard read while a worker writes; NORMAL sync is safe with WAL and ~4x faster per commit.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def tune_sqlite_engine(engine: sa.Engine) -> None:
    """Put an SQLite engine (ours or Optuna's) into WAL mode with NORMAL sync, for every new connection."""
    if engine.dialect.name != "sqlite":
        return
    if not sa.event.contains(engine, "connect", _sqlite_pragmas):
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        engine.dispose()  # pooled connections made before the listener get replaced


@functools.lru_cache(maxsize=16)
def _engine(url: str) -> sa.Engine:
    engine = sa.create_engine(url, pool_pre_ping=True)
    tune_sqlite_engine(engine)
    _meta.create_all(engine, checkfirst=True)
    return engine


#: (url, trial id) pairs this process has written: see MetricStore.write_step.
_claimed: set[tuple[str, int]] = set()


def _clean(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


class MetricStore:
    """Reads and writes per-step metrics for the studies behind one SQLAlchemy URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine = _engine(url)
        dialect = self._engine.dialect.name
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        elif dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:  # pragma: no cover - other backends: plain insert, duplicates raise
            insert = None
        self._insert = insert

    def write_step(
        self,
        *,
        study_name: str,
        trial_id: int,
        trial_number: int,
        step: int,
        metrics: Mapping[str, float | None],
    ) -> None:
        """Write one step's metrics in one transaction (the first value per metric wins)."""
        rows = [
            dict(
                study_name=study_name,
                trial_id=trial_id,
                trial_number=trial_number,
                step=int(step),
                metric=name,
                value=_clean(value),
            )
            for name, value in metrics.items()
        ]
        if not rows:
            return
        if self._insert is not None:
            stmt = self._insert(step_metrics).values(rows).on_conflict_do_nothing()
        else:  # pragma: no cover
            stmt = step_metrics.insert().values(rows)
        claim = (self.url, trial_id)
        with self._engine.begin() as conn:
            if claim not in _claimed:
                # A trial runs in one process, so rows of this trial id that this process did not write are
                # stale: SQLite reuses the ids of a deleted study's trials. Drop them on the first write.
                conn.execute(sa.delete(step_metrics).where(step_metrics.c.trial_id == trial_id))
            conn.execute(stmt)
        _claimed.add(claim)

    def trial_steps(self, trial_id: int) -> dict[int, dict[str, float | None]]:
        """All stored steps of one trial: ``{step: {metric: value}}``."""
        out: dict[int, dict[str, float | None]] = {}
        q = sa.select(step_metrics.c.step, step_metrics.c.metric, step_metrics.c.value).where(
            step_metrics.c.trial_id == trial_id
        )
        with self._engine.connect() as conn:
            for step, metric, value in conn.execute(q):
                out.setdefault(step, {})[metric] = value
        return out

    def load(self, study_name: str, trial_ids: Mapping[int, int] | None = None):
        """One row per (trial_number, step), one column per metric (see :func:`load_step_metrics`)."""
        import pandas as pd

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
            # Keep only rows of the study's current trials (a deleted and re-created study leaves orphans).
            long = long[long["trial_id"].map(trial_ids).eq(long["trial_number"])]
        names = metric_names()
        extra = sorted(set(long["metric"]) - set(names))
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
        return wide


def load_step_metrics(storage_url: str, study_name: str):
    """Per-step metrics of a study as a :class:`pandas.DataFrame`.

    One row per ``(trial_number, step)``; one ``float64`` column per metric of the vocabulary (``NaN`` where a
    metric was missing or not recorded), plus any custom metric an objective reported. Works for finished and for
    running studies.

    Raises:
        KeyError: if no study called ``study_name`` is in the database.
    """
    import optuna

    storage = optuna.storages.RDBStorage(storage_url)
    study_id = storage.get_study_id_from_name(study_name)
    trial_ids = {t._trial_id: t.number for t in storage.get_all_trials(study_id, deepcopy=False)}
    return MetricStore(storage_url).load(study_name, trial_ids)


class InMemoryMetricStore:
    """The same interface without a database, for studies on Optuna's InMemoryStorage."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[int, dict[int, dict[str, float | None]]] = {}
        self._names: dict[int, tuple[str, int]] = {}

    def write_step(self, *, study_name, trial_id, trial_number, step, metrics) -> None:
        with self._lock:
            self._names[trial_id] = (study_name, trial_number)
            stepd = self._rows.setdefault(trial_id, {}).setdefault(int(step), {})
            for k, v in metrics.items():
                stepd.setdefault(k, _clean(v))

    def trial_steps(self, trial_id: int) -> dict[int, dict[str, float | None]]:
        with self._lock:
            return {s: dict(m) for s, m in self._rows.get(trial_id, {}).items()}

    def load(self, study_name: str, trial_ids: Mapping[int, int] | None = None):
        import pandas as pd

        records = []
        with self._lock:
            for tid, steps in self._rows.items():
                name, number = self._names[tid]
                if name != study_name:
                    continue
                for step, m in steps.items():
                    records.append({"trial_number": number, "step": step, **m})
        names = metric_names()
        extra = sorted({k for r in records for k in r} - set(names) - {"trial_number", "step"})
        df = pd.DataFrame(records, columns=["trial_number", "step", *names, *extra])
        df = df.astype({c: "float64" for c in df.columns if c not in ("trial_number", "step")})
        return df.sort_values(["trial_number", "step"]).reset_index(drop=True)


_memory_stores: "weakref.WeakKeyDictionary[Any, InMemoryMetricStore]" = weakref.WeakKeyDictionary()


def store_for(storage: Any) -> MetricStore | InMemoryMetricStore:
    """The metric store that lives beside an Optuna storage (object or URL)."""
    import optuna

    if isinstance(storage, str):
        return MetricStore(storage)
    backend = getattr(storage, "_backend", storage)  # unwrap optuna's _CachedStorage
    if isinstance(backend, optuna.storages.RDBStorage):
        return MetricStore(backend.url)
    if backend not in _memory_stores:
        _memory_stores[backend] = InMemoryMetricStore()
    return _memory_stores[backend]
