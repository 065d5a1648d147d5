"""A worker's slot claim (sysprune.study._workers.ClaimingStudy._claim) writes the new trial, its worker record and
its first heartbeat in one transaction on PostgreSQL (an indexed count, then one write transaction, on SQLite):
what Optuna's create_new_trial, set_trial_user_attr and record_heartbeat each stored in a transaction of their own.
The trial must be exactly what Optuna would have made: numbered after the study's trials (also those plain Optuna
creates at the same instant), RUNNING, known to Optuna's cache, beaten."""

from __future__ import annotations

import threading

import optuna
import pytest
import sqlalchemy as sa
from optuna.trial import TrialState

from sysprune import _compat
from sysprune.study._lost import WORKER_ATTR, WorkerIdentity
from sysprune.study._workers import ClaimingStudy, _NoSlot
from tests._optuna import trial_id
from tests._workers_util import Transactions, heartbeat_storage


def _claiming(url: str, target: int, *, interval: int | None = 60) -> ClaimingStudy:
    storage = heartbeat_storage(url, interval=interval, grace=3 * interval) if interval else url
    study = optuna.create_study(storage=storage, study_name="claim", load_if_exists=True)
    return ClaimingStudy(
        study, url=url, target=target, sampler=optuna.samplers.RandomSampler(seed=0), me=WorkerIdentity.current()
    )


def test_a_claim_is_one_transaction_on_postgresql_and_makes_the_trial_optuna_would(new_db):
    claiming = _claiming(new_db, target=5)
    claiming.add_trial(optuna.trial.create_trial(params={}, distributions={}, value=0.1))  # trial 0, by Optuna
    engine = _compat.rdb_backend(_compat.study_storage(claiming)).engine
    with Transactions() as tx:
        tid, beaten = claiming._claim()
    assert len(tx.taken) == (1 if new_db.startswith("postgresql") else 2)  # SQLite: the count, then the write
    assert beaten  # its first heartbeat went with it: the heartbeat thread need not beat at once
    # Optuna's cache knows it: the sampler's parameter is written through it (set_trial_param looks it up there)
    trial = optuna.Trial(claiming, tid)
    x = trial.suggest_float("x", 0.0, 1.0)
    claiming.tell(trial, x)
    frozen = claiming.get_trials(deepcopy=False)[1]
    assert (frozen.number, _compat.trial_id(frozen), frozen.state) == (1, tid, TrialState.COMPLETE)
    assert frozen.params == {"x": x} and frozen.datetime_start is not None
    assert frozen.user_attrs[WORKER_ATTR] == WorkerIdentity.current().record()
    with engine.connect() as conn:
        beats = conn.execute(sa.text("SELECT trial_id, heartbeat FROM trial_heartbeats")).all()
    assert [b[0] for b in beats] == [tid] and beats[0][1] is not None
    # Optuna's own create numbers after it
    assert claiming.ask().number == 2
    engine.dispose()


def test_without_a_heartbeat_the_claim_writes_no_beat(new_db):
    claiming = _claiming(new_db, target=2, interval=None)
    tid, beaten = claiming._claim()
    assert not beaten
    engine = _compat.rdb_backend(_compat.study_storage(claiming)).engine
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM trial_heartbeats")).scalar() == 0
        state = conn.execute(sa.text("SELECT state FROM trials WHERE trial_id = :t"), {"t": tid}).scalar()
    assert state == "RUNNING"
    engine.dispose()


def test_claims_and_plain_optuna_creating_trials_at_once_never_share_a_number_nor_pass_the_target(new_db):
    """Four claiming workers (each its own engine) and a plain Optuna process creating trials on the same study at
    the same time: the numbers are 0..n-1 without a gap or a repeat, and the claims stop at their target (the plain
    trials count toward it, as any trial does)."""
    target, plain_n = 24, 8
    _claiming(new_db, target)  # the study, once
    workers = [_claiming(new_db, target) for _ in range(4)]
    plain = optuna.load_study(study_name="claim", storage=new_db)
    claimed: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def claim(study: ClaimingStudy) -> None:
        try:
            while True:
                tid, _ = study._claim()
                with lock:
                    claimed.append(tid)
        except _NoSlot:
            pass
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    def create() -> None:
        try:
            for _ in range(plain_n):
                plain.ask()
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=claim, args=(w,)) for w in workers] + [threading.Thread(target=create)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    trials = optuna.load_study(study_name="claim", storage=new_db).get_trials(deepcopy=False)
    assert sorted(t.number for t in trials) == list(range(len(trials)))
    assert len(claimed) == len(set(claimed)) and len(trials) == len(claimed) + plain_n
    assert target <= len(trials) <= target + plain_n  # the claims stop at the target; plain Optuna knows none
    assert {trial_id(t) for t in trials if WORKER_ATTR in t.user_attrs} == set(claimed)


@pytest.mark.parametrize("beaten", [False, True])
def test_a_trial_beaten_by_its_claim_gets_its_next_beat_from_the_thread_within_the_interval(beaten):
    from tests.test_heartbeat import _Beats
    from sysprune.study._heartbeat import WorkerHeartbeat
    from tests._workers_util import wait_for

    storage = _Beats()
    heartbeat = WorkerHeartbeat(storage, interval=0.5 if beaten else 600.0)
    try:
        heartbeat.beat_for(3, beaten=beaten)
        if beaten:  # nothing at once; the thread's next beat is the interval's
            assert storage.beats == []
            wait_for(lambda: storage.beats[:1] == [3], timeout=10)
        else:
            wait_for(lambda: storage.beats == [3], timeout=10)
    finally:
        heartbeat.close()


@pytest.mark.parametrize("rdb_url", ["postgresql"], indirect=True)
def test_the_claims_row_lock_holds_plain_optunas_create_until_the_claim_commits(new_db):
    """On PostgreSQL the claim locks the study's row before it counts: a trial plain Optuna creates meanwhile waits
    for the claim's commit (so count and insert see the same trials), then takes the next number."""
    claiming = _claiming(new_db, target=5)
    plain = optuna.load_study(study_name="claim", storage=new_db)
    sid = _compat.study_id(claiming)
    engine = _compat.rdb_backend(_compat.study_storage(claiming)).engine
    created: list[int] = []
    with engine.begin() as conn:
        _compat.lock_study_row(conn, sid)
        t = threading.Thread(target=lambda: created.append(plain.ask().number))
        t.start()
        t.join(0.5)
        assert t.is_alive() and created == []  # Optuna's create waits on the row
        _compat.insert_running_trial(conn, sid, {}, heartbeat=False)
    t.join(30)
    assert created == [1]
