"""One heartbeat thread per worker (sysprune.study._heartbeat): it beats for the claimed trial at once and then every
interval, survives a failed beat, and the worker looks for other workers' stale trials before a claim once per
interval — what Optuna's optimize did before every trial — so a dead worker's trials are still found while the study
runs, and every trial of a run still gets its heartbeat."""

from __future__ import annotations

import threading
import time

import optuna
import pytest
import sqlalchemy as sa
from optuna.trial import TrialState

from sysprune.spec import parse_spec
from sysprune.study import _heartbeat
from sysprune.study._heartbeat import WorkerHeartbeat
from sysprune.study._lost import LOST, WorkerIdentity
from sysprune.study._runner import run_study
from sysprune.study._workers import ClaimingStudy
from tests._optuna import trial_id
from tests._workers_util import heartbeat_storage, running_trial, wait_for


class _Beats:
    """A storage's ``record_heartbeat``, recorded; the first ``fail`` beats raise as a database away would."""

    def __init__(self, fail: int = 0) -> None:
        self.beats: list[int] = []
        self.fail = fail
        self._lock = threading.Lock()

    def record_heartbeat(self, trial: int) -> None:
        with self._lock:
            if self.fail:
                self.fail -= 1
                raise RuntimeError("database is locked")
            self.beats.append(trial)


def test_the_claimed_trial_gets_its_first_beat_at_once_not_after_the_interval():
    storage = _Beats()
    heartbeat = WorkerHeartbeat(storage, interval=600.0)
    try:
        heartbeat.beat_for(3)
        wait_for(lambda: storage.beats == [3], timeout=10)
        heartbeat.beat_for(4)  # the next claim: its own first beat at once too
        wait_for(lambda: storage.beats == [3, 4], timeout=10)
    finally:
        heartbeat.close()
    assert not heartbeat._thread.is_alive()


def test_beats_repeat_every_interval_and_a_failed_beat_is_tried_again():
    storage = _Beats(fail=1)
    heartbeat = WorkerHeartbeat(storage, interval=0.05)
    try:
        heartbeat.beat_for(9)
        wait_for(lambda: len(storage.beats) >= 3, timeout=10)
    finally:
        heartbeat.close()
    assert set(storage.beats) == {9} and storage.fail == 0
    n = len(storage.beats)
    time.sleep(0.2)
    assert len(storage.beats) == n  # closed: no beat after


def test_stale_trials_are_looked_for_at_the_first_claim_then_once_per_interval(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(_heartbeat.time, "monotonic", lambda: clock[0])
    heartbeat = WorkerHeartbeat(_Beats(), interval=60.0)
    due = []
    for t in (100.0, 101.0, 159.9, 160.0, 170.0, 220.5):
        clock[0] = t
        due.append(heartbeat.stale_check_due())
    assert due == [True, False, False, True, False, True]
    with pytest.raises(ValueError, match="heartbeat interval must be > 0 s, got 0"):
        WorkerHeartbeat(_Beats(), interval=0)


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")
def test_a_running_worker_fails_another_hosts_stale_trial_and_runs_its_configuration(sqlite_url):
    storage = heartbeat_storage(sqlite_url, interval=1, grace=2)
    study = optuna.create_study(storage=storage, study_name="s")
    claiming = ClaimingStudy(
        study, url=sqlite_url, target=10, sampler=optuna.samplers.RandomSampler(0), me=WorkerIdentity.current()
    )
    try:
        # a trial of a worker on another host, which beat once and then died
        foreign = running_trial(study, 0.3, {"host": "elsewhere/boot", "pid": 1, "started": 1.0})
        storage.record_heartbeat(trial_id(foreign))
        mine = claiming.ask()  # the first claim looks: nothing stale yet
        assert study.get_trials(deepcopy=False)[foreign.number].state == TrialState.RUNNING
        time.sleep(3.5)  # the foreign trial's beat is now older than the grace period; this worker's trial beats
        again = claiming.ask()  # more than an interval since the last look: looks again, before claiming
        assert again.suggest_float("x", 0.0, 1.0) == 0.3  # the lost configuration, requeued and claimed first
    finally:
        claiming.close()
    trials = study.get_trials(deepcopy=False)
    assert trials[foreign.number].state == TrialState.FAIL and trials[foreign.number].user_attrs["error"] == LOST
    assert trials[mine.number].state == TrialState.RUNNING  # its own trial was never taken for stale


def test_every_trial_of_a_run_gets_its_heartbeat_without_a_thread_per_trial(sqlite_url, tmp_path, monkeypatch):
    started = []
    real_start = optuna.storages._heartbeat.HeartbeatThread.start
    monkeypatch.setattr(
        optuna.storages._heartbeat.HeartbeatThread, "start", lambda self: (started.append(1), real_start(self))
    )
    spec = parse_spec(
        {
            "name": "beats",
            "model": "torch_mlp",
            "dataset": "digits",
            "steps": 1,
            "n_trials": 3,
            "seed": 0,
            "sampler": "random",
            "search_space": {"width": 8, "n_layers": 1, "lr": 0.01, "batch_size": 128},
            "trial": {"infer_repeats": 1, "infer_batch_size": 16},
        }
    )
    study = run_study(spec, storage_url=sqlite_url, cache_dir=str(tmp_path / "cache")).study
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 3 and all(t.state == TrialState.COMPLETE for t in trials)
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as conn:
        beaten = {r[0] for r in conn.execute(sa.text("SELECT trial_id FROM trial_heartbeats"))}
    engine.dispose()
    assert beaten == {trial_id(t) for t in trials}
    assert started == []  # Optuna's per-trial heartbeat thread never ran
