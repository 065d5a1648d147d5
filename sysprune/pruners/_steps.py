"""Where a pruner finds a running trial's step metrics: an in-process cache first, the metric store second.

:func:`sysprune.report` writes each step's metrics to the store *and* remembers them here, so a pruner in the same
process (the runner's parent, or a plain Optuna objective) reads them without a query: a decision costs the same
with ten trials or ten thousand. When the cache has nothing for a trial (its steps were reported by another
process), the pruner reads the store: one indexed query on ``trial_id``.

A cache entry is keyed by the storage and the trial id, and carries the trial's start time: SQLite reuses trial ids
after ``optuna.delete_study``, and a re-created study must not see the steps of the deleted one. The cache holds at
most ``MAX_TRIALS`` trials (least recently used out first); :func:`forget` drops a finished trial.
"""

from __future__ import annotations

import datetime
import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any

from sysprune import _compat
from sysprune.storage._open import storage_key
from sysprune.storage._step_table import AttrMetricStore, MetricStore, store_for

if TYPE_CHECKING:
    import optuna

MAX_TRIALS = 1024

Steps = dict[int, dict[str, float | None]]

_lock = threading.Lock()
_cache: OrderedDict[tuple[Hashable, int], tuple[datetime.datetime | None, Steps]] = OrderedDict()
_stores: dict[Hashable, MetricStore] = {}


def metric_store(storage: Any) -> MetricStore | AttrMetricStore:
    """The metric store beside an Optuna storage (:func:`sysprune.storage._step_table.store_for`), built once per database."""
    key = storage_key(storage)
    if key[0] != "rdb":  # trial system attrs of that very storage object: nothing to keep
        return store_for(storage)
    store = _stores.get(key)
    if store is None:
        store = _stores.setdefault(key, store_for(storage))  # type: ignore[arg-type]
    return store


def steps_of(study: "optuna.study.Study", trial: "optuna.trial.FrozenTrial") -> Steps:
    """``{step: {metric: value}}`` of a trial of ``study``: what a pruner's decision reads."""
    return trial_steps(_compat.study_storage(study), _compat.trial_id(trial), trial.datetime_start)


def remember(
    storage: Any,
    trial_id: int,
    datetime_start: datetime.datetime | None,
    step: int,
    metrics: Mapping[str, float | None],
) -> None:
    """Add one step's metrics to the cache (the first value per metric and step wins, as in the store)."""
    key = (storage_key(storage), trial_id)
    with _lock:
        entry = _cache.get(key)
        if entry is None or entry[0] != datetime_start:
            entry = (datetime_start, {})
            _cache[key] = entry
        _cache.move_to_end(key)
        stepd = entry[1].setdefault(int(step), {})
        for name, value in metrics.items():
            stepd.setdefault(name, value)
        while len(_cache) > MAX_TRIALS:
            _cache.popitem(last=False)


def cached_steps(storage: Any, trial_id: int, datetime_start: datetime.datetime | None) -> Steps | None:
    """The cached steps of a trial, or ``None`` if this process has not reported any for it."""
    key = (storage_key(storage), trial_id)
    with _lock:
        entry = _cache.get(key)
        if entry is None or entry[0] != datetime_start:
            return None
        _cache.move_to_end(key)
        return {s: dict(m) for s, m in entry[1].items()}


def trial_steps(storage: Any, trial_id: int, datetime_start: datetime.datetime | None) -> Steps:
    """``{step: {metric: value}}`` of one trial: the cache if it has the trial, else the metric store."""
    hit = cached_steps(storage, trial_id, datetime_start)
    if hit is not None:
        return hit
    return metric_store(storage).trial_steps(trial_id)


def forget(storage: Any, trial_id: int) -> None:
    """Drop a trial from the cache (called when the trial ends)."""
    with _lock:
        _cache.pop((storage_key(storage), trial_id), None)


def clear() -> None:
    """Empty the cache (tests and benchmarks use it to force the store path)."""
    with _lock:
        _cache.clear()
