"""Replacing groups of study system attributes at once: how figures, notes and artifact records reach the dashboard.

optuna-dashboard keeps a plotly figure, a note and an artifact record of a finished trial in the *study's* system
attributes, a long value split into chunks of 2045 characters under numbered keys (``<prefix>0``, ``<prefix>1``,
...). Its own writers (``save_plotly_graph_object``, ``save_note``) set one key per storage call and then blank the
left-over chunks: on SQLite that is one transaction per chunk (a ~25 kB figure is 13 of them), and a dashboard
polling in between can read a figure whose chunks come from two versions.

:func:`replace_study_system_attrs` does the same in one transaction on an :class:`optuna.storages.RDBStorage`:
it deletes every key under the given prefixes and inserts the new ones, so a reader (SQLite in WAL mode,
PostgreSQL) sees either the old group or the new one, and a whole trial's publication costs one commit.
It writes Optuna's ``study_system_attributes`` table directly (through Optuna's own table definition); the
key layout it fills is optuna-dashboard 0.21's. Both are private names, kept in :mod:`sysprune._compat` with the
measurement that justifies them (~18 ms per trial against 0.8-1.6 s through the public writers). Other storages (in-memory, journal) go
through Optuna's public per-key API, with the dashboard's own convention of blanking stale chunks.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

import optuna

from sysprune import _compat

# optuna-dashboard's key layout (a private convention of optuna-dashboard 0.21, kept in _compat and tested there).
CHUNK = _compat.DASHBOARD_CHUNK
plot_key_prefix = _compat.dashboard_plot_prefix
note_version_key = _compat.dashboard_note_version_key
note_key_prefix = _compat.dashboard_note_prefix
trial_artifact_prefix = _compat.dashboard_artifact_prefix


def chunked(prefix: str, text: str) -> dict[str, str]:
    """``text`` split as the dashboard reads it back: ``{prefix + "0": ..., prefix + "1": ...}``."""
    return {f"{prefix}{i}": text[i * CHUNK : (i + 1) * CHUNK] for i in range(math.ceil(len(text) / CHUNK))}


def replace_study_system_attrs(
    storage: optuna.storages.BaseStorage,
    study_id: int,
    attrs: Mapping[str, Any],
    *,
    clear_prefixes: Iterable[str] = (),
) -> None:
    """Set ``attrs`` and drop every other key under ``clear_prefixes``, atomically where the storage allows."""
    prefixes = tuple(clear_prefixes)
    backend = _compat.rdb_backend(storage)
    if backend is None:
        _replace_per_key(storage, study_id, attrs, prefixes)
        return
    table = _compat.rdb_table("study_system_attributes")
    rows = [{"study_id": study_id, "key": k, "value_json": json.dumps(v)} for k, v in attrs.items()]
    stale = [table.c.key.startswith(p, autoescape=True) for p in prefixes]
    if attrs:
        stale.append(table.c.key.in_(list(attrs)))
    if not stale:
        return
    import sqlalchemy as sa

    with backend.engine.begin() as conn:
        conn.execute(table.delete().where(table.c.study_id == study_id, sa.or_(*stale)))
        if rows:
            conn.execute(table.insert(), rows)


def _replace_per_key(
    storage: optuna.storages.BaseStorage, study_id: int, attrs: Mapping[str, Any], prefixes: tuple[str, ...]
) -> None:
    for key, value in attrs.items():
        storage.set_study_system_attr(study_id, key, value)
    if not prefixes:
        return
    for key in list(storage.get_study_system_attrs(study_id)):
        if key not in attrs and key.startswith(prefixes):
            # The public API cannot delete: blank the chunk, as optuna-dashboard's own writers do.
            storage.set_study_system_attr(
                study_id, key, json.dumps(None) if _compat.is_dashboard_artifact_key(key) else ""
            )


def read_notes(
    storage: optuna.storages.BaseStorage, study_id: int, trial_ids: Iterable[int | None]
) -> dict[int | None, tuple[int, str]]:
    """``{trial id, or None for the study: (note version, note body)}``, reading only those notes' keys."""
    trial_ids = list(trial_ids)
    versions = {note_version_key(t): t for t in trial_ids}
    prefixes = {note_key_prefix(t): t for t in trial_ids}
    backend = _compat.rdb_backend(storage)
    if backend is None:
        raw = {
            k: v
            for k, v in storage.get_study_system_attrs(study_id).items()
            if k in versions or k.startswith(tuple(prefixes))
        }
    else:
        import sqlalchemy as sa

        table = _compat.rdb_table("study_system_attributes")
        wanted = [table.c.key.in_(list(versions))] + [table.c.key.startswith(p, autoescape=True) for p in prefixes]
        q = sa.select(table.c.key, table.c.value_json).where(table.c.study_id == study_id, sa.or_(*wanted))
        with backend.engine.connect() as conn:
            raw = {k: json.loads(v) for k, v in conn.execute(q)}
    out: dict[int | None, tuple[int, str]] = {}
    for t in trial_ids:
        if note_version_key(t) not in raw:
            continue
        prefix = note_key_prefix(t)
        chunks = {k: v for k, v in raw.items() if k.startswith(prefix)}
        body = "".join(chunks.get(f"{prefix}{i}", "") for i in range(len(chunks)))
        out[t] = (int(raw[note_version_key(t)]), body)
    return out
