"""The per-step metric store, run against every backend (a real SQLite file and a real PostgreSQL server),
in the style of Optuna's parametrised storage tests."""

from __future__ import annotations

import uuid

import optuna
import pandas as pd
import pytest

from sysprune import load_step_metrics
from sysprune._metrics import metric_names
from sysprune._store import InMemoryMetricStore, MetricStore, store_for


@pytest.fixture
def url(rdb_url) -> str:
    return rdb_url


def _study(url: str):
    name = f"s-{uuid.uuid4().hex[:8]}"
    return optuna.create_study(storage=url, study_name=name), name


def test_rows_are_wide_per_trial_and_step(url):
    study, name = _study(url)
    store = MetricStore(url)
    for _ in range(2):
        t = study.ask()
        for step in range(3):
            store.write_step(study_name=name, trial_id=t._trial_id, trial_number=t.number, step=step,
                             metrics={"cpu_s": 0.5 * (step + 1) + t.number, "energy_j": None,
                                      "val_accuracy": 0.1 * step})  # fmt: skip
        study.tell(t, 1.0)
    df = load_step_metrics(url, name)
    assert list(df.columns[:2]) == ["trial_number", "step"]
    assert list(df.columns[2:]) == list(metric_names())
    assert df.shape == (6, 2 + len(metric_names()))
    assert list(df.cpu_s) == [0.5, 1.0, 1.5, 1.5, 2.0, 2.5]
    assert df.energy_j.isna().all()  # recorded as missing
    assert df.rss_mb.isna().all()  # never recorded
    assert all(df[c].dtype == "float64" for c in metric_names())


def test_first_value_wins_like_trial_report(url):
    study, name = _study(url)
    t = study.ask()
    store = MetricStore(url)
    store.write_step(study_name=name, trial_id=t._trial_id, trial_number=0, step=0, metrics={"cpu_s": 1.0})
    store.write_step(study_name=name, trial_id=t._trial_id, trial_number=0, step=0,
                     metrics={"cpu_s": 9.0, "wall_s": 2.0})  # fmt: skip
    assert store.trial_steps(t._trial_id) == {0: {"cpu_s": 1.0, "wall_s": 2.0}}


def test_custom_metrics_get_their_own_column_and_nan_is_missing(url):
    study, name = _study(url)
    t = study.ask()
    MetricStore(url).write_step(study_name=name, trial_id=t._trial_id, trial_number=0, step=0,
                                metrics={"my_f1": 0.7, "val_loss": float("nan")})  # fmt: skip
    df = load_step_metrics(url, name)
    assert df.columns[-1] == "my_f1" and df.my_f1.iloc[0] == 0.7
    assert pd.isna(df.val_loss.iloc[0])


def test_reader_is_scoped_to_the_study(url):
    a, name_a = _study(url)
    b, name_b = _study(url)
    store = MetricStore(url)
    for study, name in ((a, name_a), (b, name_b)):
        t = study.ask()
        store.write_step(study_name=name, trial_id=t._trial_id, trial_number=t.number, step=0, metrics={"cpu_s": 1})
    assert len(load_step_metrics(url, name_a)) == 1
    with pytest.raises(KeyError):
        load_step_metrics(url, "no-such-study")


def test_empty_study_has_the_full_schema(url):
    _, name = _study(url)
    df = load_step_metrics(url, name)
    assert df.empty and list(df.columns) == ["trial_number", "step", *metric_names()]


def test_store_for_finds_the_table_beside_optuna(url):
    study, _ = _study(url)
    assert isinstance(store_for(study._storage), MetricStore)
    assert store_for(study._storage).url == url
    mem = optuna.create_study()
    assert isinstance(store_for(mem._storage), InMemoryMetricStore)
    assert store_for(mem._storage) is store_for(mem._storage)


def test_runner_on_this_backend(url, cache_dir):
    """A whole (tiny) study through the runner on SQLite and on PostgreSQL."""
    from sysprune._runner import run_study
    from sysprune._spec import parse_spec

    name = f"r-{uuid.uuid4().hex[:8]}"
    spec = parse_spec({"name": name, "model": "sklearn_sgd", "steps": 2, "n_trials": 2,
                       "dataset": {"name": "digits"}, "sampler": {"name": "random"}})  # fmt: skip
    run_study(spec, storage_url=url, cache_dir=str(cache_dir))
    df = load_step_metrics(url, name)
    assert len(df) == 4 and df.cpu_s.notna().all() and df.val_accuracy.notna().all()


def test_a_recreated_study_does_not_inherit_old_rows(url):
    """SQLite reuses the trial ids of a deleted study; its stale step rows must not leak into the new study."""
    study, name = _study(url)
    t = study.ask()
    MetricStore(url).write_step(study_name=name, trial_id=t._trial_id, trial_number=0, step=0, metrics={"cpu_s": 5.0})
    optuna.delete_study(study_name=name, storage=url)
    from sysprune import _store

    _store._claimed.clear()  # as in a new process: nothing claimed yet
    again = optuna.create_study(storage=url, study_name=name)
    t2 = again.ask()
    MetricStore(url).write_step(study_name=name, trial_id=t2._trial_id, trial_number=0, step=0,
                                metrics={"cpu_s": 1.0})  # fmt: skip
    assert list(load_step_metrics(url, name).cpu_s) == [1.0]
