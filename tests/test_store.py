"""The per-step metric store, run against every backend (a real SQLite file and a real PostgreSQL server),
in the style of Optuna's parametrised storage tests."""

from __future__ import annotations

import uuid

import optuna
import pandas as pd
import pytest

from sysprune import load_step_metrics
from sysprune.metrics._registry import metric_names
from sysprune.storage._step_table import AttrMetricStore, MetricStore, store_for
from sysprune.exceptions import DatabaseNotFound, NoStepMetrics, StudyNotFound, UnsupportedStorage
from tests._optuna import storage_of, trial_id


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
            store.write_step(
                study_name=name,
                trial_id=trial_id(t),
                trial_number=t.number,
                step=step,
                metrics={"cpu_s": 0.5 * (step + 1) + t.number, "energy_j": None, "val_accuracy": 0.1 * step},
            )
        study.tell(t, 1.0)
    df = load_step_metrics(url, name)
    assert list(df.columns[:3]) == ["trial_number", "step", "state"]
    assert list(df.columns[3:]) == list(metric_names())
    assert df.shape == (6, 3 + len(metric_names()))
    assert df.state.tolist() == ["COMPLETE"] * 6
    assert list(df.cpu_s) == [0.5, 1.0, 1.5, 1.5, 2.0, 2.5]
    assert df.energy_j.isna().all()  # recorded as missing
    assert df.rss_mb.isna().all()  # never recorded
    assert all(df[c].dtype == "float64" for c in metric_names())


def test_first_value_wins_like_trial_report(url):
    study, name = _study(url)
    t = study.ask()
    store = MetricStore(url)
    store.write_step(study_name=name, trial_id=trial_id(t), trial_number=0, step=0, metrics={"cpu_s": 1.0})
    store.write_step(
        study_name=name, trial_id=trial_id(t), trial_number=0, step=0, metrics={"cpu_s": 9.0, "wall_s": 2.0}
    )
    assert store.trial_steps(trial_id(t)) == {0: {"cpu_s": 1.0, "wall_s": 2.0}}


def test_custom_metrics_get_their_own_column_and_nan_is_missing(url):
    study, name = _study(url)
    t = study.ask()
    MetricStore(url).write_step(
        study_name=name, trial_id=trial_id(t), trial_number=0, step=0, metrics={"my_f1": 0.7, "val_loss": float("nan")}
    )
    df = load_step_metrics(url, name)
    assert df.columns[-1] == "my_f1" and df.my_f1.iloc[0] == 0.7
    assert pd.isna(df.val_loss.iloc[0])


def test_reader_is_scoped_to_the_study(url):
    a, name_a = _study(url)
    b, name_b = _study(url)
    store = MetricStore(url)
    for study, name in ((a, name_a), (b, name_b)):
        t = study.ask()
        store.write_step(study_name=name, trial_id=trial_id(t), trial_number=t.number, step=0, metrics={"cpu_s": 1})
    assert len(load_step_metrics(url, name_a)) == 1
    with pytest.raises(StudyNotFound, match=r"no study 'no-such-study' in .*; studies there: ") as e:
        load_step_metrics(url, "no-such-study")
    assert isinstance(e.value, KeyError) and name_a in str(e.value)


def test_an_empty_study_is_a_clear_error(url):
    study, name = _study(url)
    with pytest.raises(NoStepMetrics, match=rf"study '{name}' in .* has no step metrics \(0 trials\)"):
        load_step_metrics(url, name)
    study.tell(study.ask(), 1.0)  # a trial, but no sysprune.report
    with pytest.raises(NoStepMetrics, match=r"has no step metrics \(1 trials\)"):
        load_step_metrics(study)


def test_a_study_object_reads_the_same_rows(url):
    study, name = _study(url)
    t = study.ask()
    MetricStore(url).write_step(study_name=name, trial_id=trial_id(t), trial_number=0, step=0, metrics={"cpu_s": 2.0})
    by_study = load_step_metrics(study)
    pd.testing.assert_frame_equal(by_study, load_step_metrics(url, name))
    assert by_study.state.tolist() == ["RUNNING"]
    with pytest.raises(ValueError, match=r"study_name must be None or the study's own name"):
        load_step_metrics(study, "other")


def test_store_for_finds_the_table_beside_optuna(url):
    study, _ = _study(url)
    assert isinstance(store_for(storage_of(study)), MetricStore)
    assert store_for(storage_of(study)).url == url
    mem = optuna.create_study()
    assert isinstance(store_for(storage_of(mem)), AttrMetricStore)
    with pytest.raises(UnsupportedStorage, match="storage must be an Optuna storage or a database URL"):
        store_for(object())


def test_runner_on_this_backend(url, cache_dir):
    """A whole (tiny) study through the runner on SQLite and on PostgreSQL."""
    from sysprune.study._runner import run_study
    from sysprune.spec import parse_spec

    name = f"r-{uuid.uuid4().hex[:8]}"
    spec = parse_spec(
        {
            "name": name,
            "model": "sklearn_sgd",
            "steps": 2,
            "n_trials": 2,
            "dataset": {"name": "digits"},
            "sampler": {"name": "random"},
        }
    )
    run_study(spec, storage_url=url, cache_dir=str(cache_dir))
    df = load_step_metrics(url, name)
    trained = df[df.step >= 0]  # step -1: the pre-training probe, nothing learned yet
    assert len(df) == 6 and df.cpu_s.notna().all() and trained.val_accuracy.notna().all()


def test_a_recreated_study_does_not_inherit_old_rows(url):
    """SQLite reuses the trial ids of a deleted study; its stale step rows must not leak into the new study."""
    study, name = _study(url)
    t = study.ask()
    MetricStore(url).write_step(
        study_name=name,
        trial_id=trial_id(t),
        trial_number=0,
        step=0,
        metrics={"cpu_s": 5.0},
        trial_start=t.datetime_start,
    )
    optuna.delete_study(study_name=name, storage=url)
    again = optuna.create_study(storage=url, study_name=name)
    with pytest.raises(NoStepMetrics):  # the old row is not the new study's, even before anything is written
        load_step_metrics(url, name)
    t2 = again.ask()
    MetricStore(url).write_step(
        study_name=name,
        trial_id=trial_id(t2),
        trial_number=0,
        step=0,
        metrics={"cpu_s": 1.0},
        trial_start=t2.datetime_start,
    )
    assert list(load_step_metrics(url, name).cpu_s) == [1.0]


def test_a_study_recreated_in_the_same_process_does_not_inherit_old_rows(sqlite_url):
    """The same, in one process that wrote the old trial's rows: the trial's start time tells the trials apart."""
    from sysprune import report

    study = optuna.create_study(storage=sqlite_url, study_name="again")
    old = study.ask()
    report(old, 0, None, {"cpu_s": 5.0, "wall_s": 9.0})
    optuna.delete_study(study_name="again", storage=sqlite_url)
    again = optuna.create_study(storage=sqlite_url, study_name="again")
    new = again.ask()
    assert trial_id(new) == trial_id(old)  # SQLite reused the id
    report(new, 0, None, {"cpu_s": 1.0})
    df = load_step_metrics(sqlite_url, "again")
    assert df.cpu_s.tolist() == [1.0] and df.wall_s.isna().all()


def test_a_missing_database_file_is_an_error_and_is_not_created(tmp_path):
    db = tmp_path / "nope.db"
    with pytest.raises(DatabaseNotFound, match=f"no study database at {db}"):
        load_step_metrics(f"sqlite:///{db}", "s")
    assert list(tmp_path.iterdir()) == []


def test_a_database_without_the_step_table_is_not_changed(tmp_path):
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'plain.db'}"
    optuna.create_study(storage=url, study_name="plain")  # plain Optuna, no sysprune table
    with pytest.raises(NoStepMetrics):
        load_step_metrics(url)  # the only study: no name needed
    assert "sysprune_step_metrics" not in sa.inspect(sa.create_engine(url)).get_table_names()


def test_several_studies_need_a_name(tmp_path):
    url = f"sqlite:///{tmp_path / 'two.db'}"
    optuna.create_study(storage=url, study_name="a")
    optuna.create_study(storage=url, study_name="b")
    with pytest.raises(StudyNotFound, match=r"holds 2 studies \('a', 'b'\); pass study_name"):
        load_step_metrics(url)


def test_in_memory_study_keeps_steps_in_trial_attrs():
    from sysprune import report

    study = optuna.create_study(study_name="mem")
    t = study.ask()
    report(t, -1, None, {"n_params": 5})
    report(t, 0, 0.5, {"cpu_s": 1.0, "energy_j": None, "my_metric": float("inf")})
    report(t, 0, None, {"cpu_s": 9.0, "wall_s": 2.0})  # the first value per metric wins
    study.tell(t, 0.5)
    df = load_step_metrics(study)
    assert df.step.tolist() == [-1, 0] and df.state.tolist() == ["COMPLETE", "COMPLETE"]
    assert df.cpu_s.iloc[1] == 1.0 and df.wall_s.iloc[1] == 2.0 and df.n_params.iloc[0] == 5.0
    assert pd.isna(df.energy_j.iloc[1]) and df.my_metric.iloc[1] == float("inf")  # missing vs a real infinity


def test_report_stores_a_steps_rows_and_its_value_as_trial_report_does(url):
    """sysprune.report writes a step's rows and Optuna's intermediate value in one transaction on an RDB storage:
    what Optuna then reads is what trial.report stores (the first value of a step wins), every row is there, and a
    finished trial is refused with nothing written."""
    from sysprune import report

    study, name = _study(url)
    t = study.ask()
    report(t, -1, None, {"n_params": 7})
    report(t, 0, 0.5, {"cpu_s": 1.0})
    report(t, 1, float("nan"), {"cpu_s": 2.0})
    with pytest.warns(UserWarning, match="already reported"):  # Optuna's own warning, as from trial.report
        report(t, 1, 0.9, {"wall_s": 3.0})  # the step's value is kept; a new metric of the step is added
    report(t, 2, 0.75, None)  # a value without metrics
    assert t._cached_frozen_trial.intermediate_values.keys() == {0, 1, 2}
    study.tell(t, 0.75)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        report(t, 3, 0.8, {"cpu_s": 4.0})
    stored = optuna.load_study(study_name=name, storage=url).trials[0]
    assert stored.intermediate_values.keys() == {0, 1, 2}
    assert stored.intermediate_values[0] == 0.5 and stored.intermediate_values[2] == 0.75
    assert pd.isna(stored.intermediate_values[1])
    df = load_step_metrics(url, name).set_index("step")
    assert df.index.tolist() == [-1, 0, 1]  # nothing of step 3
    assert df.n_params[-1] == 7 and df.cpu_s[0] == 1.0 and df.cpu_s[1] == 2.0 and df.wall_s[1] == 3.0


def test_the_step_table_writes_through_the_storages_own_pool(tmp_path):
    """One pool per database in a process: a worker holds Optuna's connection and its heartbeat's, not a third for
    the step table (32 workers then fit PostgreSQL's default max_connections)."""
    from sysprune.storage._open import open_storage

    url = f"sqlite:///{tmp_path / 'pool.db'}"
    assert MetricStore(url)._engine is not None  # before a storage is opened: an engine of the table's own
    storage = open_storage(url)
    assert MetricStore(url)._engine is storage.engine
    assert store_for(storage)._engine is storage.engine
    again = open_storage(url)  # the last opened wins (the earlier one's pool stays usable)
    assert MetricStore(url)._engine is again.engine
