"""Every private name sysprune relies on (sysprune/_compat.py), checked against the installed versions.

Each test fails by name when an upgrade of Optuna, optuna-dashboard or Python breaks one assumption.
"""

from __future__ import annotations

import inspect
import json
import uuid
import warnings

import optuna
import pytest
import sqlalchemy as sa
from optuna.trial import TrialState

from sysprune import _compat
from sysprune.exceptions import CompatError


# --------------------------------------------------------------------------------------------------- versions
def test_installed_versions_are_supported():
    versions = _compat.installed_versions()
    for name, version in versions.items():
        assert version is not None and _compat.supported(name, version), (name, version)
    assert _compat.check_versions(versions) == []


def test_an_unsupported_version_warns_naming_the_range():
    with pytest.warns(_compat.CompatWarning, match=r"tested with optuna >=5.0,<5.1, but optuna 5.1.0.dev0"):
        problems = _compat.check_versions({"optuna": "5.1.0.dev0", "optuna-dashboard": "0.21.3"})
    assert len(problems) == 1


@pytest.mark.parametrize(("version", "ok"), [("5.0", True), ("5.0.9", True), ("4.9.9", False), ("5.1", False)])
def test_version_bounds(version, ok):
    assert _compat.supported("optuna", version) is ok


# ------------------------------------------------------------------------------------------------------ Optuna
def test_trial_and_study_ids_are_the_storages(sqlite_url):
    study = optuna.create_study(storage=sqlite_url, study_name="ids")
    study.ask()
    trial = study.ask()
    storage = _compat.study_storage(study)
    assert isinstance(storage, optuna.storages.BaseStorage)
    assert storage.get_study_id_from_name("ids") == _compat.study_id(study)
    assert storage.get_trial(_compat.trial_id(trial)).number == trial.number == 1
    assert _compat.trial_id(study.trials[1]) == _compat.trial_id(trial)  # FrozenTrial too


def test_latest_trial_is_what_should_prune_sees():
    study = optuna.create_study()
    trial = study.ask()
    trial.report(0.5, 3)
    trial.set_user_attr("k", 1)
    frozen = _compat.latest_trial(trial)
    assert isinstance(frozen, optuna.trial.FrozenTrial)
    assert frozen.intermediate_values == {3: 0.5} and frozen.last_step == 3 and frozen.user_attrs == {"k": 1}
    assert "_get_latest_trial" in inspect.getsource(optuna.trial.Trial.should_prune)


def test_unwrap_storage_finds_the_rdb_behind_a_url_study(sqlite_url):
    study = optuna.create_study(storage=sqlite_url)
    wrapped = _compat.study_storage(study)
    assert not isinstance(wrapped, optuna.storages.RDBStorage)  # create_study(URL) wraps it
    backend = _compat.rdb_backend(wrapped)
    assert isinstance(backend, optuna.storages.RDBStorage) and backend.url == sqlite_url
    assert _compat.rdb_backend(optuna.storages.InMemoryStorage()) is None
    memory = optuna.storages.InMemoryStorage()
    assert _compat.unwrap_storage(memory) is memory


def test_a_storage_without_trial_heartbeat_shares_the_cache_and_backend_and_reports_no_interval(sqlite_url):
    from optuna.storages._heartbeat import is_heartbeat_enabled

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        backend = optuna.storages.RDBStorage(sqlite_url, heartbeat_interval=60)
    study = optuna.create_study(storage=backend, study_name="s")
    storage = _compat.study_storage(study)
    twin = _compat.without_trial_heartbeat(storage)
    assert is_heartbeat_enabled(storage) and not is_heartbeat_enabled(twin)  # what Study.optimize checks
    assert _compat.unwrap_storage(twin) is backend
    assert twin._studies is storage._studies and twin._lock is storage._lock  # one cache, behind one lock
    on_twin = optuna.Study(study_name="s", storage=twin)
    trial = on_twin.ask()
    trial.suggest_float("x", 0.0, 1.0)
    assert study.get_trials(deepcopy=False)[0].params == {"x": trial.params["x"]}  # one cache, one database
    assert is_heartbeat_enabled(storage)  # the original is untouched
    memory = optuna.storages.InMemoryStorage()
    assert _compat.without_trial_heartbeat(memory) is memory


def test_trials_table_answers_the_finished_count(sqlite_url):
    study = optuna.create_study(storage=sqlite_url)
    for value in (1.0, 2.0):
        study.tell(study.ask(), value)
    study.ask()  # running
    table = _compat.rdb_table("trials")
    q = sa.select(sa.func.count()).where(
        table.c.study_id == _compat.study_id(study),
        table.c.trial_id > -1,
        table.c.state.in_([TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL]),
    )
    with _compat.rdb_backend(_compat.study_storage(study)).engine.connect() as conn:
        assert conn.execute(q).scalar_one() == 2


def test_study_system_attributes_table_is_where_study_system_attrs_live(sqlite_url):
    study = optuna.create_study(storage=sqlite_url)
    table = _compat.rdb_table("study_system_attributes")
    with _compat.rdb_backend(_compat.study_storage(study)).engine.begin() as conn:
        conn.execute(table.insert(), [{"study_id": _compat.study_id(study), "key": "k", "value_json": json.dumps([1])}])
    storage = _compat.study_storage(study)
    assert storage.get_study_system_attrs(_compat.study_id(study)) == {"k": [1]}


def test_rdb_table_refuses_an_unknown_name():
    with pytest.raises(KeyError):
        _compat.rdb_table("nope")


def test_missing_private_names_raise_compat_error():
    class Bare:
        pass

    for fn in (_compat.trial_id, _compat.study_storage, _compat.study_id, _compat.latest_trial):
        with pytest.raises(CompatError, match="in this Optuna"):
            fn(Bare())


def test_public_constraints_land_where_frozen_trials_read_them():
    # sysprune writes budget constraints with Trial.set_constraint and reads FrozenTrial.constraints (both public).
    study = optuna.create_study()
    trial = study.ask()
    trial.set_constraint("budget:wall_s", 2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert trial.constraints == {"budget:wall_s": 2.0}
    study.tell(trial, 1.0)
    assert study.trials[0].constraints == {"budget:wall_s": 2.0}


# ---------------------------------------------------------------------------------------------- optuna-dashboard
def _study_attrs(study):
    return _compat.study_storage(study).get_study_system_attrs(_compat.study_id(study))


def test_note_keys_are_save_notes():
    from optuna_dashboard import save_note

    study = optuna.create_study()
    trial = study.ask()
    body = "x" * (_compat.DASHBOARD_CHUNK + 5)
    save_note(trial, body)
    save_note(study, "study note")
    attrs = _study_attrs(study)
    tid = _compat.trial_id(trial)
    prefix = _compat.dashboard_note_prefix(tid)
    assert attrs[_compat.dashboard_note_version_key(tid)] == 1
    assert [attrs[f"{prefix}{i}"] for i in range(2)] == [
        body[: _compat.DASHBOARD_CHUNK],
        body[_compat.DASHBOARD_CHUNK :],
    ]
    assert attrs[_compat.dashboard_note_version_key(None)] == 1
    assert attrs[f"{_compat.dashboard_note_prefix(None)}0"] == "study note"


def test_plot_keys_are_save_plotly_graph_objects():
    import plotly.graph_objects as go
    from optuna_dashboard import save_plotly_graph_object

    study = optuna.create_study()
    save_plotly_graph_object(study, go.Figure(), graph_object_id="sysprune-x")
    attrs = _study_attrs(study)
    prefix = _compat.dashboard_plot_prefix("sysprune-x")
    chunks = [k for k in attrs if k.startswith(prefix)]
    assert chunks and json.loads("".join(attrs[k] for k in sorted(chunks))) == json.loads(go.Figure().to_json())


def test_artifact_records_in_study_attrs_are_listed_by_the_dashboard():
    from optuna_dashboard.artifact._backend import list_trial_artifacts

    study = optuna.create_study()
    study.tell(study.ask(), 1.0)
    frozen = study.trials[0]
    meta = {"artifact_id": "a1", "filename": "f.csv", "mimetype": "text/csv", "encoding": None}
    key = _compat.dashboard_artifact_prefix(_compat.trial_id(frozen)) + "a1"
    assert _compat.is_dashboard_artifact_key(key)
    _compat.study_storage(study).set_study_system_attr(_compat.study_id(study), key, json.dumps(meta))
    assert list_trial_artifacts(_study_attrs(study), frozen.system_attrs, frozen) == [meta]


def test_upload_artifact_cannot_attach_to_a_finished_trial(sqlite_url, tmp_path):
    """Why the publisher writes its own artifact records: the public writer refuses a finished trial."""
    from optuna.artifacts import FileSystemArtifactStore, upload_artifact

    study = optuna.create_study(storage=sqlite_url)
    study.tell(study.ask(), 1.0)
    f = tmp_path / "x.csv"
    f.write_text("a\n1\n")
    with pytest.raises(Exception, match="finished"):
        upload_artifact(
            artifact_store=FileSystemArtifactStore(str(tmp_path)),
            file_path=str(f),
            study_or_trial=study.trials[0],
            storage=_compat.study_storage(study),
        )


# ------------------------------------------------------------------------------------------------------ CPython
def test_forkserver_launch_is_the_one_copied():
    from multiprocessing import popen_forkserver

    source = inspect.getsource(popen_forkserver.Popen._launch)
    for call in (
        "spawn.get_preparation_data(process_obj._name)",
        "reduction.dump(prep_data, buf)",
        "forkserver.connect_to_new_process(self._fds)",
        "forkserver.read_signed(self.sentinel)",
    ):
        assert call in source, call
    popen = _compat.popen_class()
    assert issubclass(popen, popen_forkserver.Popen)


def test_the_copied_popen_starts_a_process_without_reimporting_main():
    import multiprocessing as mp

    from sysprune.trial._forkserver import _Handle, context

    context()
    parent, child = mp.Pipe()
    p = _Handle(target=_send_main_name, args=(child,), daemon=True)
    p.start()
    # multiprocessing re-runs the caller's main module in the child as a module named __mp_main__; ours does not
    assert parent.recv() == "__main__"
    p.join(30)
    assert p.exitcode == 0


def _send_main_name(conn):
    import sys

    conn.send(sys.modules["__main__"].__name__)
    conn.close()


def test_forkserver_pid_is_the_running_fork_server():
    import psutil

    from sysprune.trial._forkserver import warm_up

    warm_up()
    pid = _compat.forkserver_pid()
    assert pid is not None and "forkserver" in " ".join(psutil.Process(pid).cmdline())


def test_a_finished_trials_user_attr_is_set_where_optuna_reads_it(sqlite_url):
    study = optuna.create_study(storage=sqlite_url)
    trial = study.ask()
    study.tell(trial, state=TrialState.FAIL)
    storage, tid = _compat.study_storage(study), _compat.trial_id(trial)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):  # why the seam exists
        storage.set_trial_user_attr(tid, "error", "x")
    _compat.set_finished_trial_user_attr(storage, tid, "error", "worker lost")
    _compat.set_finished_trial_user_attr(storage, tid, "error", "worker lost again")  # update
    reloaded = optuna.load_study(study_name=study.study_name, storage=sqlite_url).trials[0]
    assert reloaded.user_attrs == {"error": "worker lost again"}
    with pytest.raises(CompatError, match="InMemoryStorage"):
        _compat.set_finished_trial_user_attr(optuna.storages.InMemoryStorage(), 0, "error", "x")


def test_a_trials_user_attrs_are_set_in_one_write_as_set_user_attr_sets_them(rdb_url):
    study = optuna.create_study(storage=rdb_url, study_name=f"attrs-{uuid.uuid4().hex[:8]}")
    trial = study.ask()
    trial.set_user_attr("kept", 1)
    trial.set_user_attr("replaced", "old")
    attrs = {"replaced": "new", "n_params": 1234, "error": None, "nested": {"a": [1, 2.5]}}
    _compat.set_trial_user_attrs(trial, attrs)
    assert trial.user_attrs == {"kept": 1, **attrs}  # the trial's cached copy, as Trial.set_user_attr updates it
    stored = optuna.load_study(study_name=study.study_name, storage=rdb_url).trials[0].user_attrs
    assert stored == {"kept": 1, **attrs}
    study.tell(trial, 0.5)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError, match=r"Trial#0 has already finished"):
        _compat.set_trial_user_attrs(trial, {"late": 1})  # refused as Optuna refuses it, nothing written
    assert "late" not in optuna.load_study(study_name=study.study_name, storage=rdb_url).trials[0].user_attrs


def test_a_trials_user_attrs_on_a_storage_without_tables_go_through_set_user_attr():
    study = optuna.create_study()
    trial = study.ask()
    _compat.set_trial_user_attrs(trial, {"a": 1, "b": "x"})
    assert study.trials[0].user_attrs == {"a": 1, "b": "x"}


def test_a_trial_inserted_in_our_transaction_is_what_create_new_trial_makes(rdb_url):
    """insert_running_trial writes Optuna's rows (trials, trial_user_attributes, trial_heartbeats) so Optuna reads
    back the trial it would have created, numbered after the study's trials; cache_new_trial puts it in Optuna's
    cache, where set_trial_param looks its study up."""
    from optuna.storages._heartbeat import is_heartbeat_enabled

    name = f"ins-{uuid.uuid4().hex[:8]}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        rdb = optuna.storages.RDBStorage(rdb_url, heartbeat_interval=60)
    study = optuna.create_study(storage=rdb, study_name=name)
    study.enqueue_trial({"x": 0.5})  # number 0, WAITING: counted in the number, as Optuna counts it
    storage, sid = _compat.study_storage(study), _compat.study_id(study)
    with rdb.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            _compat.lock_study_row(conn, sid)
        made = _compat.insert_running_trial(conn, sid, {"worker": {"host": "h"}}, heartbeat=True)
    tid, x = _compat.trial_id(made), optuna.distributions.FloatDistribution(0, 1)
    with pytest.raises(KeyError):  # Optuna's cache does not know a trial created outside it ...
        storage.set_trial_param(tid, "x", 0.25, x)
    _compat.cache_new_trial(storage, sid, made)  # ... until told
    storage.set_trial_param(tid, "x", 0.25, x)
    read = storage.get_trial(tid)
    assert (read.number, read.state, read.user_attrs, read.params) == (
        1,
        TrialState.RUNNING,
        made.user_attrs,
        {"x": 0.25},
    )
    assert read.datetime_start == made.datetime_start and made.number == 1
    with rdb.engine.connect() as conn:  # its first beat, as record_heartbeat writes it (the server's clock)
        q = sa.text("SELECT count(*) FROM trial_heartbeats WHERE trial_id = :t AND heartbeat IS NOT NULL")
        beats = conn.execute(q, {"t": tid}).scalar()
    assert is_heartbeat_enabled(rdb) and beats == 1
    with pytest.warns(UserWarning, match="Heartbeat"):  # Optuna's: heartbeats are for optimize; not our point
        assert study.ask().number == 0 and study.ask().number == 2  # the enqueued one, then Optuna's own create


def test_cache_new_trial_leaves_a_storage_without_a_cache_alone():
    study = optuna.create_study()
    trial = optuna.trial.create_trial(state=TrialState.RUNNING)
    _compat.cache_new_trial(_compat.study_storage(study), _compat.study_id(study), trial)  # nothing to tell
    assert study.trials == []


def test_an_intermediate_value_written_in_our_transaction_reads_back_as_trial_report_stores_it(rdb_url):
    study = optuna.create_study(storage=rdb_url, study_name=f"iv-{uuid.uuid4().hex[:8]}")
    ours, theirs = study.ask(), study.ask()
    engine = _compat.rdb_backend(_compat.study_storage(study)).engine
    values = {0: 0.25, 1: float("inf"), 2: float("-inf"), 3: float("nan")}
    for step, value in values.items():
        theirs.report(value, step)
        with engine.begin() as conn:
            _compat.check_running(conn, _compat.trial_id(ours))
            _compat.write_intermediate_value(conn, _compat.trial_id(ours), step, value)
        _compat.remember_intermediate_value(ours, step, value)
    with engine.begin() as conn:  # a second value for a step: the first wins, as Trial.report ignores a second
        _compat.write_intermediate_value(conn, _compat.trial_id(ours), 0, 9.0)
    assert 0 in _compat.reported_steps(ours) and 4 not in _compat.reported_steps(ours)
    reloaded = optuna.load_study(study_name=study.study_name, storage=rdb_url).trials
    assert json.dumps(reloaded[0].intermediate_values) == json.dumps(reloaded[1].intermediate_values)
    assert json.dumps(ours._cached_frozen_trial.intermediate_values) == json.dumps(reloaded[1].intermediate_values)
    study.tell(ours, 0.5)
    with engine.begin() as conn, pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        _compat.check_running(conn, _compat.trial_id(ours))
    with engine.begin() as conn, pytest.raises(KeyError):
        _compat.check_running(conn, 10**9)


def test_forgetting_cached_trials_is_what_study_ask_does_first():
    study = optuna.create_study()
    assert "self._thread_local.cached_all_trials = None" in inspect.getsource(optuna.Study.ask)
    study._thread_local.cached_all_trials = ["stale"]
    _compat.forget_cached_trials(study)
    assert study._thread_local.cached_all_trials is None
