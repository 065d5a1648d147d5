"""Trials of a worker that is gone: failed at once with "worker lost", retried, not counted; SIGTERM like Ctrl-C."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time

import optuna
import psutil
import pytest
from optuna.trial import TrialState

from sysprune import load_step_metrics
from sysprune.study._open import make_storage
from sysprune.study._lost import (
    DATABASE_PENDING,
    DATABASE_RETRIED,
    LOST,
    WorkerIdentity,
    host_id,
    install_lost_trial_callback,
    recover_lost_trials,
    retry_database_failures,
)
from sysprune.study._counting import count_in_storage
from tests._workers_util import heartbeat_storage, popen, run, running_trial, steps_stored, study_file, wait_for
from tests._optuna import trial_id


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


# These tests drive trials with ask() on a storage with heartbeats, which Optuna meets with a warning.
_ASK_WITH_HEARTBEAT = pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")


@_ASK_WITH_HEARTBEAT
def test_a_dead_workers_trial_on_this_host_is_failed_at_once_and_retried(sqlite_url):
    storage = make_storage(sqlite_url)
    install_lost_trial_callback(storage)
    study = optuna.create_study(storage=storage, study_name="s")
    me = WorkerIdentity.current().record()
    dead = {**me, "pid": _dead_pid()}
    reused = {**me, "started": me["started"] - 100.0}  # the pid lives, but it is another process now
    elsewhere = {**dead, "host": "another-machine/boot"}
    t_dead = running_trial(study, 0.25, dead)
    t_reused = running_trial(study, 0.5, reused)
    t_live = running_trial(study, 0.75, me)
    t_far = running_trial(study, 0.125, elsewhere)
    assert count_in_storage(study) == 4

    assert recover_lost_trials(study) == [t_dead.number, t_reused.number]

    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    for t in (t_dead, t_reused):
        assert trials[t.number].state == TrialState.FAIL
        assert trials[t.number].user_attrs["error"] == LOST
    # another host's trial waits for its heartbeat to go stale; a live worker's trial is left alone
    assert trials[t_live.number].state == TrialState.RUNNING and trials[t_far.number].state == TrialState.RUNNING
    retries = [t for t in trials.values() if t.state == TrialState.WAITING]
    assert sorted((t.params["x"], t.system_attrs["failed_trial"]) for t in retries) == [
        (0.25, t_dead.number),
        (0.5, t_reused.number),
    ]
    assert count_in_storage(study) == 2  # the lost ones do not count; their retries will, once they run
    # idempotent: a second worker starting now finds nothing more to do
    assert recover_lost_trials(study) == []


def test_a_trial_the_database_failed_under_is_retried_once_at_the_next_start(sqlite_url):
    """A FAIL trial without its error attr (its last writes were lost: a full disk) or with the objective's
    DATABASE_PENDING is requeued at a worker start, with its reason and its last known compute; it then no longer
    counts toward n_trials. Other failures (a model's exception) are failures: left alone."""
    storage = make_storage(sqlite_url)
    study = optuna.create_study(storage=storage, study_name="s")
    dist = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}

    def failed(x: float, **attrs) -> None:
        study.add_trial(
            optuna.trial.create_trial(state=TrialState.FAIL, params={"x": x}, distributions=dist, user_attrs=attrs)
        )

    failed(0.1)  # nothing written after its last step
    failed(0.2, error=f"{DATABASE_PENDING}: lost")
    failed(0.3, error="trial process exited with code 1")
    failed(0.4, error=LOST)  # already requeued by the lost-trial sweep
    assert count_in_storage(study) == 3

    assert retry_database_failures(study) == [0, 1]

    trials = study.get_trials(deepcopy=False)
    assert [t.user_attrs["error"] for t in trials[:2]] == [
        f"{DATABASE_RETRIED}: its last writes did not reach the database",
        f"{DATABASE_RETRIED}: lost",
    ]
    retries = [t for t in trials if t.state == TrialState.WAITING]
    assert sorted((t.params["x"], t.system_attrs["failed_trial"]) for t in retries) == [(0.1, 0), (0.2, 1)]
    assert count_in_storage(study) == 1  # the model's failure counts; the retried ones and their retries not yet
    assert retry_database_failures(study) == []  # once


@_ASK_WITH_HEARTBEAT
def test_a_trial_with_a_stale_heartbeat_is_failed_as_lost_and_retried(sqlite_url):
    storage = heartbeat_storage(sqlite_url, interval=1, grace=1)
    study = optuna.create_study(storage=storage, study_name="s")
    t = running_trial(study, 0.3, None)
    storage.record_heartbeat(trial_id(t))
    time.sleep(2.5)
    assert recover_lost_trials(study, here="nowhere") == [t.number]
    frozen = study.get_trials(deepcopy=False)
    assert frozen[t.number].state == TrialState.FAIL and frozen[t.number].user_attrs["error"] == LOST
    assert [(r.state, r.params["x"]) for r in frozen[t.number + 1 :]] == [(TrialState.WAITING, 0.3)]


# --------------------------------------------------------------------------------------------- end to end


def _sysprune_descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@pytest.mark.slow
def test_kill_9_mid_trial_then_the_same_command_again(tmp_path, new_db):
    spec = study_file(tmp_path, steps=3, n_trials=3, lo=150, hi=200)
    args = ("run", str(spec), "--storage", new_db, "--quiet", "--no-publish")
    worker = popen(*args)
    try:
        wait_for(lambda: steps_stored(new_db, 1) >= 1, timeout=240)  # trial #0 done, #1 mid-way
        left = _sysprune_descendants(worker.pid)  # its fork server and trial process
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(30)
    finally:
        worker.kill()
        worker.communicate()
    before = {t.number: t for t in optuna.load_study(study_name="s", storage=new_db).get_trials()}
    assert before[1].state == TrialState.RUNNING
    steps_0 = load_step_metrics(new_db, "s").query("trial_number == 0")

    r = run(*args, timeout=600)
    assert r.returncode == 0, r.stderr
    trials = optuna.load_study(study_name="s", storage=new_db).get_trials()
    assert trials[0].state == TrialState.COMPLETE and trials[0].params == before[0].params
    assert trials[1].state == TrialState.FAIL and trials[1].user_attrs["error"] == LOST
    # its compute is not lost with it: its last stored step's cumulative figures (only set-up, if killed early)
    rows_1 = load_step_metrics(new_db, "s").query("trial_number == 1").sort_values("step")
    assert trials[1].user_attrs["process_cpu_s"] == pytest.approx(rows_1.cpu_s.iloc[-1], abs=1e-4)
    assert trials[1].user_attrs["process_wall_s"] == pytest.approx(rows_1.wall_s.iloc[-1], abs=1e-4)
    assert trials[1].user_attrs["process_wall_s"] > 0
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == 1]
    assert len(retried) == 1 and retried[0].state == TrialState.COMPLETE
    assert retried[0].params == before[1].params
    counted = [t for t in trials if t.number != 1]
    assert len(counted) == 3 and all(t.state == TrialState.COMPLETE for t in counted)
    df = load_step_metrics(new_db, "s")
    for t in counted:
        assert sorted(df[df.trial_number == t.number].step) == [-1, 0, 1, 2]
    assert df[df.trial_number == 0].reset_index(drop=True).equals(steps_0.reset_index(drop=True))
    if new_db.startswith("sqlite"):
        with sqlite3.connect(new_db[len("sqlite:///") :]) as c:
            assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # nothing of the killed worker lives on (its fork server and trial process die with it)
    gone, alive = psutil.wait_procs(left, timeout=30)
    assert not alive, [p.cmdline() for p in alive]


@pytest.mark.parametrize(
    "sig, code, message, reason",
    [
        (signal.SIGTERM, 143, "stopped by SIGTERM", "interrupted (SIGTERM)"),
        (signal.SIGINT, 130, "interrupted; the study is kept", "interrupted (SIGINT)"),
    ],
    ids=["SIGTERM", "SIGINT"],
)
@pytest.mark.slow
def test_a_signal_mid_trial_stops_records_and_exits_with_one_line(tmp_path, sqlite_url, sig, code, message, reason):
    spec = study_file(tmp_path, steps=3, n_trials=2, lo=150, hi=200)
    args = ("run", str(spec), "--storage", sqlite_url, "--quiet", "--no-publish")
    worker = popen(*args)
    try:
        wait_for(lambda: steps_stored(sqlite_url, 0) >= 1, timeout=240)
        children = _sysprune_descendants(worker.pid)
        trial_procs = [p for p in children if p.ppid() != worker.pid]  # forked by the fork server
        worker.send_signal(sig)
        out, err = worker.communicate(timeout=60)
    finally:
        worker.kill()
    assert worker.returncode == code
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in err, err
    _, alive = psutil.wait_procs(trial_procs, timeout=10)
    assert not alive  # the trial process was stopped
    trials = optuna.load_study(study_name="s", storage=sqlite_url).get_trials()
    assert trials[0].state == TrialState.FAIL and trials[0].user_attrs["error"].startswith(f"{reason} during step ")
    assert trials[0].user_attrs["process_cpu_s"] > 0 and trials[0].user_attrs["process_wall_s"] > 0
    assert [t.state for t in trials[1:]] == [TrialState.WAITING]  # its configuration, to run again

    r = run(*args, timeout=600)
    assert r.returncode == 0, r.stderr
    trials = optuna.load_study(study_name="s", storage=sqlite_url).get_trials()
    assert trials[1].params == trials[0].params and trials[1].state == TrialState.COMPLETE
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 2 and len(trials) == 3


def test_host_id_names_this_machine_and_boot():
    assert host_id().startswith(os.uname().nodename + "/")
