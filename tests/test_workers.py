"""Several workers on one study: a safe start on a new database, an exact total, distinct draws, one core each.

The end-to-end cases run the real command line on a real SQLite file and a real PostgreSQL schema (rdb_url)."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from sysprune import load_step_metrics
from sysprune import _compat
from sysprune.study._open import HISTORY_ATTR
from sysprune.study._lost import DATABASE_PENDING, DATABASE_RETRIED, INTERRUPTED, LOST, WORKER_ATTR, WorkerIdentity
from sysprune.study._workers import (
    ClaimingStudy,
    WorkerConfig,
    TooManyWorkers,
    _NoSlot,
    cpu_sets,
    parse_cpus,
    run_worker,
    worker_seed,
)
from sysprune.spec import SpecError
from sysprune.study._counting import count, count_in_database, counts_toward_target
from tests._require import missing
from tests._workers_util import popen, run, study_file
from tests._optuna import study_system_attrs

# ------------------------------------------------------------------------------------------------ pure pieces


def _report_parent(path: str) -> None:
    """A worker server's child: writes its parent's pid and whether the worker's code was there before it ran."""
    import os
    import sys

    preloaded = "sysprune.study._launch" in sys.modules and "optuna.storages._rdb.models" in sys.modules
    with open(path, "a") as f:
        f.write(f"{os.getppid()} {int(preloaded)}\n")


def test_workers_are_forked_from_one_server_per_launch_that_imported_their_code(tmp_path):
    import psutil

    from sysprune.study._worker_server import WorkerServer

    out = tmp_path / "parents"
    server = WorkerServer()
    pid = server.start()
    try:
        procs = [server.process(_report_parent, (str(out),), f"w{i}") for i in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        assert [p.exitcode for p in procs] == [0, 0]
        assert out.read_text().split("\n")[:2] == [f"{pid} 1", f"{pid} 1"]
    finally:
        server.stop()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_cpu_sets_give_each_worker_its_own_cores():
    assert cpu_sets(2, 1, cpus=[0, 1]) == [(0,), (1,)]
    assert cpu_sets(2, 2, cpus=[0, 1, 2, 3]) == [(0, 1), (2, 3)]
    assert cpu_sets(1, 1, cpus=[3, 5]) == [(3,)]  # the cores this process may use, in order


def test_more_workers_than_cores_is_refused_unless_oversubscribed():
    with pytest.raises(
        TooManyWorkers,
        match=r"--workers 3: this machine gives sysprune 2 core\(s\) and each "
        r"trial uses threads = 1, so at most 2 worker\(s\)",
    ):
        cpu_sets(3, 1, cpus=[0, 1])
    with pytest.raises(TooManyWorkers, match="--oversubscribe"):
        cpu_sets(2, 2, cpus=[0, 1, 2])
    assert cpu_sets(3, 1, cpus=[0, 1], oversubscribe=True) == [(0,), (1,), (0,)]
    with pytest.raises(SpecError, match="--workers must be an integer >= 1, got 0"):
        cpu_sets(0, 1, cpus=[0])


def test_parse_cpus_reads_the_taskset_syntax():
    assert parse_cpus("0,2-4") == (0, 2, 3, 4)
    with pytest.raises(SpecError, match="--cpus must be a list of cores like 0,2-3, got 'x'"):
        parse_cpus("x")


def test_each_worker_number_gives_its_own_sampler_seed():
    seeds = {worker_seed(0, k) for k in range(100)}
    assert len(seeds) == 100
    assert worker_seed(0, 1) == worker_seed(0, 1) and worker_seed(0, 1) != worker_seed(1, 1)


def _trial(state, **attrs):
    return create_trial(
        state=state,
        value=0.5 if state == TrialState.COMPLETE else None,
        params={"x": 0.5},
        distributions={"x": FloatDistribution(0, 1)},
        user_attrs=attrs,
    )


def test_lost_and_interrupted_trials_do_not_count_toward_n_trials():
    trials = [
        _trial(TrialState.COMPLETE),
        _trial(TrialState.PRUNED),
        _trial(TrialState.FAIL, error="RuntimeError: boom"),  # a real failure counts: its configuration ran
        _trial(TrialState.RUNNING),
        _trial(TrialState.WAITING),  # still to run: counts once it runs
        _trial(TrialState.FAIL, error=LOST),
        _trial(TrialState.FAIL, error=f"{INTERRUPTED} (SIGTERM)"),
    ]
    assert [counts_toward_target(t) for t in trials] == [True, True, True, True, False, False, False]
    assert count(trials) == 4


def test_the_database_count_is_counts_toward_target(new_db):
    """The indexed count the slot claim runs (count_in_database) agrees with counts_toward_target, trial by trial."""
    study = optuna.create_study(storage=new_db, study_name="c")
    trials = [
        _trial(TrialState.COMPLETE),
        _trial(TrialState.PRUNED),
        _trial(TrialState.FAIL, error="RuntimeError: boom"),
        _trial(TrialState.FAIL, error="worker lost in a message that only starts alike"),  # not LOST: counts
        _trial(TrialState.FAIL),  # no error attr
        _trial(TrialState.FAIL, error=LOST),
        _trial(TrialState.FAIL, error=f"{INTERRUPTED} (SIGTERM) during step 3"),
        _trial(TrialState.FAIL, error=f"{DATABASE_PENDING}: full"),  # counts until a worker start retries it
        _trial(TrialState.FAIL, error=f"{DATABASE_RETRIED}: full"),
    ]
    study.add_trials(trials)
    study.ask()  # RUNNING
    study.enqueue_trial({"x": 0.5})  # WAITING
    other = optuna.create_study(storage=new_db, study_name="other")
    other.add_trials([_trial(TrialState.COMPLETE)] * 3)  # another study's trials are not this one's
    engine = _compat.rdb_backend(_compat.study_storage(study)).engine
    stored = study.get_trials(deepcopy=False)
    assert count_in_database(engine, _compat.study_id(study)) == (count(stored), 1) == (7, 1)


def _claiming(url: str, target: int) -> ClaimingStudy:
    study = optuna.create_study(storage=url, study_name="claim", load_if_exists=True)
    return ClaimingStudy(
        study, url=url, target=target, sampler=optuna.samplers.TPESampler(seed=0), me=WorkerIdentity.current()
    )


def test_a_claim_creates_the_running_trial_with_its_worker_and_stops_at_the_target(new_db):
    claiming = _claiming(new_db, 3)
    claiming.enqueue_trial({"x": 0.25})  # an enqueued (or requeued) configuration is popped first
    first = claiming.ask()
    assert first.suggest_float("x", 0, 1) == 0.25
    asked = [first, claiming.ask(), claiming.ask()]
    with pytest.raises(_NoSlot):
        claiming.ask()
    stored = _trials(new_db, "claim")
    assert [t.number for t in stored] == [0, 1, 2] and all(t.state == TrialState.RUNNING for t in stored)
    assert all(t.user_attrs[WORKER_ATTR] == WorkerIdentity.current().record() for t in stored)
    for t in asked:
        claiming.tell(t, 0.5)
    assert claiming.n_asked == 3


def test_the_sampler_sees_the_trials_finished_since_the_last_claim(new_db):
    """The claim creates the trial itself, so it drops the study's cached trial list as Study.ask does: a second
    ClaimingStudy's finished trials reach this one's TPE draw."""
    a, b = _claiming(new_db, 40), _claiming(new_db, 40)
    seen = []

    class Spy(optuna.samplers.RandomSampler):
        def sample_independent(self, study, trial, name, distribution):
            seen.append(len(study._get_trials(deepcopy=False, use_cache=True)))  # what Optuna's samplers read
            return super().sample_independent(study, trial, name, distribution)

    a.sampler = Spy(seed=0)
    first = a.ask()
    first.suggest_float("x", 0, 1)  # the cache now holds one trial (running: Study.tell would drop the cache)
    for _ in range(12):
        t = b.ask()
        b.tell(t, (t.suggest_float("x", 0, 1) - 0.3) ** 2)
    a.ask().suggest_float("x", 0, 1)
    assert seen == [1, 14]  # then: its first, b's 12 and the new one


def test_a_claimed_trial_whose_sampler_fails_is_failed_with_the_reason_not_left_running(new_db):
    class Broken(optuna.samplers.RandomSampler):
        def before_trial(self, study, trial):  # what Trial() runs; the draws come later, in the objective
            raise RuntimeError("no space")

    claiming = _claiming(new_db, 3)
    claiming.sampler = Broken()
    with pytest.raises(RuntimeError, match="no space"):
        claiming.ask()
    (t,) = _trials(new_db, "claim")
    assert t.state == TrialState.FAIL and t.user_attrs["error"] == "the sampler failed: RuntimeError: no space"
    assert counts_toward_target(t)  # a real failure, like an objective's: the target stays exact


# --------------------------------------------------------------------------------------------- end to end


def _trials(url: str, name: str = "s") -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)


@pytest.mark.slow
def test_four_workers_started_at_once_on_a_new_database(tmp_path, new_db):
    """No schema race, exactly n_trials trials each run once with all its step rows, no repeated draws."""
    spec = study_file(tmp_path, steps=2, n_trials=8)
    procs = [popen("worker", str(spec), "--storage", new_db, "--quiet", "--no-publish") for _ in range(4)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err
    trials = _trials(new_db)
    assert [t.number for t in trials] == list(range(8))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    draws = [t.params["spin_ms"] for t in trials]
    assert len(set(draws)) == 8  # continuous draws: a repeat can only come from two workers seeded alike
    df = load_step_metrics(new_db, "s")
    assert sorted(df[["trial_number", "step"]].itertuples(index=False, name=None)) == [
        (n, s)
        for n in range(8)
        for s in range(-1, 2)  # step -1: the pre-training probe
    ]
    assert len({t.user_attrs[WORKER_ATTR]["pid"] for t in trials}) >= 1
    study = optuna.load_study(study_name="s", storage=new_db)
    assert study_system_attrs(study)["sysprune:workers"] == 4


@pytest.mark.slow
def test_concurrent_top_ups_never_exceed_n_trials(tmp_path, new_db):
    """Two `sysprune run` of the same file at once (no --n-trials) make n_trials trials, not twice that."""
    spec = study_file(tmp_path, steps=2, n_trials=6)
    procs = [popen("run", str(spec), "--storage", new_db, "--quiet", "--no-publish") for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    trials = _trials(new_db)
    assert len(trials) == 6 and all(t.state == TrialState.COMPLETE for t in trials)
    assert len({t.params["spin_ms"] for t in trials}) == 6


@pytest.mark.slow
def test_run_with_two_workers_pins_each_to_its_own_core(tmp_path, sqlite_url):
    import os

    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        missing("needs 2 cores")  # every CI runner and this machine have them
    spec = study_file(tmp_path, steps=2, n_trials=6, lo=20, hi=40)
    spec.write_text(spec.read_text().replace("tests.workloads.alloc", "tests.workloads.affinity"))
    r = run("run", str(spec), "--storage", sqlite_url, "--workers", "2", "--no-publish")
    assert r.returncode == 0, r.stderr
    assert "6 trials (6 complete, 0 pruned, 0 failed)" in r.stdout
    trials = _trials(sqlite_url)
    pinned = {t.user_attrs[WORKER_ATTR]["pid"]: tuple(t.user_attrs[WORKER_ATTR]["cpus"]) for t in trials}
    assert set(pinned.values()) <= {(cores[0],), (cores[1],)}
    assert len(set(pinned)) == len(set(pinned.values()))  # one core set per worker process
    for t in trials:  # the trial process itself (the workload reports its affinity) runs on its worker's core
        assert (t.value, t.user_attrs["val_loss"]) == (tuple(t.user_attrs[WORKER_ATTR]["cpus"])[0], 1.0)
    # the progress line shows the study's totals, read from the database
    assert "[6/6] complete 6" in r.stderr
    # the launcher opened the study once; its workers loaded it without adding runs of their own to its history
    study = optuna.load_study(study_name="s", storage=sqlite_url)
    assert [run["trials_before"] for run in study.user_attrs[HISTORY_ATTR]] == [0]


def test_too_many_workers_is_one_line_exit_2_and_nothing_written(tmp_path):
    import os

    spec = study_file(tmp_path)
    db = tmp_path / "x.db"
    n = len(os.sched_getaffinity(0)) + 1
    r = run("run", str(spec), "--storage", f"sqlite:///{db}", "--workers", str(n))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"sysprune: error: --workers {n}: this machine gives"), r.stderr
    assert "--oversubscribe" in lines[0]
    assert not db.exists()


@pytest.mark.slow
def test_the_database_lock_excludes_a_process_that_names_the_database_otherwise(new_db):
    """Held here, the lock keeps another process waiting, also when its URL reaches the same database by another
    name (another host name for the server, another spelling of the file's path)."""
    import subprocess
    import sys
    import time

    from sysprune.storage._lock import database_lock

    if "127.0.0.1" in new_db:
        other = new_db.replace("127.0.0.1", "localhost")
    else:
        other = new_db.replace("/study.db", "/./study.db")
    assert other != new_db
    code = (
        "import sys, time\nfrom sysprune.storage._lock import database_lock\n"
        "with database_lock(sys.argv[1]):\n    print(time.time())\n"
    )
    with database_lock(new_db):
        p = subprocess.Popen(
            [sys.executable, "-c", code, other], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        time.sleep(3.0)
        assert p.poll() is None, p.communicate()  # still waiting for the lock
        released = time.time()
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert float(out) >= released  # it got the lock only once this process let it go (an order, not a duration)


@pytest.mark.slow
def test_a_connection_dropped_mid_call_costs_one_retried_trial_not_the_run(tmp_path, new_db, monkeypatch):
    """A server that restarts drops the connections in use at that instant: the call in flight fails though the
    server is back at once. The worker then fails that trial as ``database fault (retried)``, requeues its
    configuration and goes on: the run ends with its n_trials finished, not with an error."""
    import sqlalchemy.exc

    from sysprune.spec import load_spec
    from sysprune.study import _objective

    real = _objective.notify_step
    dropped = []

    def drops_once(number: int, step: int, steps: int) -> None:  # trial #1 loses its connection at its first step
        if number == 1 and not dropped:
            dropped.append(number)
            raise sqlalchemy.exc.OperationalError("INSERT", {}, Exception("server closed the connection unexpectedly"))
        real(number, step, steps)

    monkeypatch.setattr(_objective, "notify_step", drops_once)
    spec = load_spec(study_file(tmp_path, steps=2, n_trials=4))
    cfg = WorkerConfig(spec=spec, storage_url=new_db, study_name="s", seed=0)
    run_worker(cfg)

    trials = _trials(new_db)
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    (failed,) = [t for t in trials if t.state == TrialState.FAIL]
    assert len(finished) == 4 and failed.number == 1
    assert failed.user_attrs["error"] == f"{DATABASE_RETRIED}: lost"
    (retry,) = [t for t in trials if t.system_attrs.get("failed_trial") == 1]
    assert retry.params == failed.params and retry.state == TrialState.COMPLETE
