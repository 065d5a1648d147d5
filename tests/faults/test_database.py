"""The database going away or going bad while a study uses it: a lost PostgreSQL server is waited for (and the run
goes on, nothing lost) or, past the window, one line; a full disk, a deleted, replaced or corrupt SQLite file and an
unusable URL each end in one line naming the cause and what to do, the database intact and not written into."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
import uuid

import optuna
import pytest
import sqlalchemy as sa

from sysprune.exceptions import DatabaseFault
from sysprune.storage._faults import database_fault
from sysprune.storage._open import open_storage
from tests.faults._pg import ThrowAwayServer
from tests.faults.conftest import check_database
from tests._workers_util import steps_stored
from tests.test_cli import GOOD

optuna.logging.set_verbosity(optuna.logging.ERROR)


def _objective(trial: optuna.Trial) -> float:
    return sum(trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(8))


def _digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _one_line(r) -> str:
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


# ------------------------------------------------------------------------------------------------ SQLite file


def test_a_file_deleted_mid_run_is_noticed_and_not_written_into(tmp_path, fault):
    db = tmp_path / "s.db"
    study = optuna.create_study(storage=open_storage(f"sqlite:///{db}"), study_name="s")
    study.optimize(_objective, n_trials=2)
    db.unlink()
    with pytest.raises(Exception) as e:
        study.optimize(_objective, n_trials=2)
    f = database_fault(e.value)
    assert f is not None and f.kind == "deleted" and "was deleted while the study ran" in str(f)
    assert "\n" not in str(f)
    assert list(tmp_path.iterdir()) == []  # not recreated, and its -wal/-shm gone with it


def test_a_file_replaced_mid_run_is_noticed(tmp_path, fault):
    db = tmp_path / "s.db"
    study = optuna.create_study(storage=open_storage(f"sqlite:///{db}"), study_name="s")
    study.optimize(_objective, n_trials=1)
    other = tmp_path / "other.db"
    optuna.create_study(storage=f"sqlite:///{other}", study_name="o")
    before = _digest(other)
    os.replace(other, db)
    with pytest.raises(Exception) as e:
        study.optimize(_objective, n_trials=1)
    f = database_fault(e.value)
    assert f is not None and f.kind == "replaced"
    check_database(str(db), fault)
    assert _digest(db) == before  # nothing of this run written into the other file


def test_a_full_disk_is_one_line_and_the_file_stays_intact(tmp_path, fault):
    db = tmp_path / "s.db"
    storage = open_storage(f"sqlite:///{db}")
    study = optuna.create_study(storage=storage, study_name="s")
    pages = sa.create_engine(f"sqlite:///{db}").connect().exec_driver_sql("PRAGMA page_count").scalar()

    def cap(conn, _record):  # the disk is full a few pages from now (SQLite's own limit, no special filesystem)
        conn.execute(f"PRAGMA max_page_count={pages + 8}")

    sa.event.listen(storage.engine, "connect", cap)
    storage.engine.dispose()
    with pytest.raises(Exception) as e:
        study.optimize(_objective, n_trials=10_000)
    f = database_fault(e.value, f"sqlite:///{db}")
    assert f is not None and f.kind == "full" and "free space on its disk" in str(f) and "\n" not in str(f)
    states = check_database(str(db), fault)  # integrity ok, no trial left RUNNING
    assert states.get("COMPLETE", 0) > 0


@pytest.mark.parametrize(
    "content", [b"this is not a database" * 100, b"SQLite format 3\x00" + b"\xff" * 4000], ids=["text", "header-only"]
)
@pytest.mark.parametrize("command", ["run", "report", "dashboard"])
def test_a_corrupt_file_is_one_line_and_left_as_it_was(content, command, tmp_path, cli):
    (tmp_path / "s.toml").write_text(GOOD)
    db = tmp_path / "s.db"
    db.write_bytes(content)
    args = {"run": ["s.toml"], "report": ["x"], "dashboard": ["--port", "0"]}[command]
    r = cli(command, *args, "--storage", f"sqlite:///{db}", cwd=tmp_path)
    line = _one_line(r)
    assert "s.db" in line and ("corrupt" in line or "not a" in line), line
    assert db.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.db", "s.toml"]


@pytest.mark.parametrize(
    "url, says",
    [
        ("sqlite://", "in-memory database keeps nothing"),
        ("sqlite:///", "in-memory database keeps nothing"),
        ("sqlite:///:memory:", "in-memory database keeps nothing"),
        ("sqlite:///{tmp}/missing/s.db", "does not exist; create it first"),
        ("sqlite:///{tmp}", "is a folder; name a file in it"),
        ("sqlite:///{tmp}/s.toml/s.db", "is not a folder"),
        ("nonsense", "not an SQLAlchemy URL"),
        ("postgresql+psycopg2://u@127.0.0.1:notaport/db", "not an SQLAlchemy URL"),
        ("nosuchdb://x/y", "nosuchdb://x/y"),
    ],
)
def test_an_unusable_storage_is_refused_before_anything_is_created(url, says, tmp_path, cli):
    (tmp_path / "s.toml").write_text(GOOD)
    r = cli("run", "s.toml", "--storage", url.format(tmp=tmp_path), cwd=tmp_path)
    assert says in _one_line(r)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]  # no database, folder or lock file


# ---------------------------------------------------------------------------------------------- PostgreSQL lost


@pytest.fixture(scope="module")
def server():
    top = tempfile.mkdtemp(prefix="sysprune-pg-faults-")  # not under pytest's 0700 folder: the server runs as postgres
    os.chmod(top, 0o777)
    s = ThrowAwayServer(55400 + os.getpid() % 90, os.path.join(top, "pg"))
    try:
        s.start_fresh()
    except Exception as e:  # noqa: BLE001 - the reason, in one line
        pytest.fail(f"could not start a throw-away PostgreSQL server: {e}")
    yield s
    s.remove()
    shutil.rmtree(top, ignore_errors=True)


def _running(url: str, name: str) -> int:
    return sum(
        t.state == optuna.trial.TrialState.RUNNING for t in optuna.load_study(study_name=name, storage=url).trials
    )


@pytest.mark.slow
@pytest.mark.postgres
def test_a_server_back_within_the_window_loses_nothing(server, monkeypatch, fault):
    monkeypatch.setenv("SYSPRUNE_DB_RETRY_S", "60")
    name = f"lost-{uuid.uuid4().hex[:8]}"
    study = optuna.create_study(storage=open_storage(server.url), study_name=name)
    study.optimize(_objective, n_trials=2)
    server.stop()
    back = threading.Timer(3.0, server.start)
    back.start()
    try:
        study.optimize(_objective, n_trials=3)  # waits for the server, then goes on
    finally:
        back.join()
    trials = optuna.load_study(study_name=name, storage=server.url).trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 5
    fault.trials_lost(5 - len(trials))


@pytest.mark.slow
@pytest.mark.postgres
def test_a_server_gone_past_the_window_is_one_line_and_a_clean_stop(server, monkeypatch, fault):
    monkeypatch.setenv("SYSPRUNE_DB_RETRY_S", "2")
    name = f"gone-{uuid.uuid4().hex[:8]}"
    study = optuna.create_study(storage=open_storage(server.url), study_name=name)
    study.optimize(_objective, n_trials=1)
    server.stop()
    try:
        with pytest.raises(Exception) as e:
            study.optimize(_objective, n_trials=3)
    finally:
        server.start()
    f = database_fault(e.value, server.url)
    assert isinstance(f, DatabaseFault) and f.kind == "lost" and "\n" not in str(f)
    assert "did not come back within 2 s (SYSPRUNE_DB_RETRY_S)" in str(f) and "run the same command again" in str(f)
    assert "sysprune:sysprune@" not in str(f)  # the password masked
    fault.trials_lost(_running(server.url, name))


# ------------------------------------------------------------------------------------- through the real command


@pytest.mark.slow
def test_the_sqlite_file_deleted_under_a_real_run_stops_it_in_one_line(tmp_path, fault):
    from tests._workers_util import popen, study_file, wait_for

    db = tmp_path / "db" / "s.db"
    db.parent.mkdir()
    url = f"sqlite:///{db}"
    worker = popen("run", str(study_file(tmp_path, steps=3, n_trials=4, lo=150, hi=200)), "--storage", url, "--quiet")
    try:
        wait_for(lambda: steps_stored(url, 0) >= 1, timeout=240)
        db.unlink()
        out, err = worker.communicate(timeout=240)
    finally:
        worker.kill()
    lines = err.strip().splitlines()
    assert worker.returncode == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert "was deleted while the study ran" in lines[0]
    left = sorted(p.name for p in db.parent.iterdir())
    assert not any(n in ("s.db", "s.db-wal", "s.db-shm") for n in left), left  # not recreated, not written into


@pytest.mark.slow
@pytest.mark.postgres
def test_a_real_run_waits_for_its_server_and_loses_nothing(server, tmp_path, fault):
    from tests._workers_util import popen, study_file, wait_for

    name = f"pgrun-{uuid.uuid4().hex[:8]}"
    spec = study_file(tmp_path, steps=3, n_trials=4, lo=150, hi=200)
    worker = popen("run", str(spec), "--storage", server.url, "--study-name", name, "--quiet", "--no-publish")
    try:
        wait_for(lambda: steps_stored(server.url, 1, name) >= 1, timeout=240)
        server.stop()
        threading.Timer(3.0, server.start).run()  # down for 3 s, well within the default window
        out, err = worker.communicate(timeout=300)
    finally:
        worker.kill()
    assert worker.returncode == 0, err
    assert "Traceback" not in err
    trials = optuna.load_study(study_name=name, storage=server.url).trials
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) >= 4, [t.state.name for t in trials]
    fault.trials_lost(_running(server.url, name))


#: A plugin the study file names: in the worker and in every trial process, each new SQLite connection may grow the
#: file to at most $FAULT_MAX_PAGES pages (SQLite's max_page_count) — a disk that fills up, through the real command.
_FULL_DISK_PLUGIN = """
import os
import sqlalchemy as sa

@sa.event.listens_for(sa.engine.Engine, "connect")
def _cap(dbapi_conn, _record):
    pages = os.environ.get("FAULT_MAX_PAGES")
    if pages and type(dbapi_conn).__module__.startswith("sqlite3"):
        dbapi_conn.execute(f"PRAGMA max_page_count={int(pages)}")
"""


@pytest.mark.slow
def test_a_disk_that_fills_up_under_a_real_run_is_one_line_then_the_run_resumes(tmp_path, fault):
    """The trial running when the disk fills is FAIL; the next run's start enqueues its configuration again
    (``database fault (retried)``), so the study ends with every trial it asked for."""
    import sqlite3

    from tests._cli import run_command
    from tests._workers_util import REPO, study_file

    (tmp_path / "capdisk.py").write_text(_FULL_DISK_PLUGIN)
    spec = study_file(tmp_path, steps=2, n_trials=6, lo=5, hi=10)
    spec.write_text('plugins = ["capdisk"]\n' + spec.read_text())
    db = tmp_path / "s.db"
    env = {"PYTHONPATH": f"{tmp_path}:{REPO}"}
    base = ["run", str(spec), "--storage", f"sqlite:///{db}", "--quiet", "--no-publish"]
    first = run_command(*base, "--n-trials", "1", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    pages = sqlite3.connect(db).execute("PRAGMA page_count").fetchone()[0]
    full = run_command(*base, env={**env, "FAULT_MAX_PAGES": str(pages + 1)}, cwd=tmp_path)
    lines = full.stderr.strip().splitlines()
    assert full.returncode == 2 and len(lines) == 1 and "Traceback" not in full.stderr, full.stderr
    assert "is full" in lines[0] and "free space on its disk" in lines[0], lines[0]
    again = run_command(*base, env=env, cwd=tmp_path)  # space freed: the same command goes on
    assert again.returncode == 0, again.stderr
    states = check_database(str(db), fault, n_trials=6)  # integrity ok; no trial left RUNNING
    assert states.get("RUNNING", 0) == 0
    assert fault.lost == 0, f"{fault.lost} trial(s) lost: {states}"
    trials = optuna.load_study(study_name=spec.stem, storage=f"sqlite:///{db}").trials
    (failed,) = [t for t in trials if t.state.name == "FAIL"]
    assert failed.user_attrs["error"].startswith("database fault (retried)"), failed.user_attrs
    retry = [t for t in trials if t.system_attrs.get("failed_trial") == failed.number]
    assert len(retry) == 1 and retry[0].params == failed.params and retry[0].state.name == "COMPLETE"


@pytest.mark.slow
@pytest.mark.postgres
def test_a_real_run_whose_server_stays_away_stops_in_one_line_and_the_next_run_goes_on(
    server, tmp_path, fault, monkeypatch
):
    from tests._workers_util import popen, run, study_file, wait_for

    monkeypatch.setenv("SYSPRUNE_DB_RETRY_S", "5")  # the worker's window: 5 s
    name = f"pggone-{uuid.uuid4().hex[:8]}"
    spec = study_file(tmp_path, steps=3, n_trials=4, lo=150, hi=200)
    args = ("run", str(spec), "--storage", server.url, "--study-name", name, "--quiet", "--no-publish")
    worker = popen(*args)
    try:
        wait_for(lambda: steps_stored(server.url, 1, name) >= 1, timeout=240)
        server.stop()
        out, err = worker.communicate(timeout=300)
    finally:
        worker.kill()
        server.start()
    lines = err.strip().splitlines()
    assert worker.returncode == 2 and "Traceback" not in err, err
    assert lines[-1].startswith("sysprune: error: lost the database") and "did not come back within 5 s" in lines[-1]
    waits = [line for line in lines if "waiting up to 5 s for it" in line]
    assert len(waits) == 1, err  # the outage is announced once, then one line when the worker gives up
    assert len(lines) == 2 + ("note: --storage holds a credential" in err), err
    assert "sysprune:sysprune@" not in err
    again = run(*args, timeout=600)
    assert again.returncode == 0, again.stderr
    trials = optuna.load_study(study_name=name, storage=server.url).trials
    counted = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(counted) >= 4, [(t.state.name, t.user_attrs.get("error")) for t in trials]
    fault.trials_lost(_running(server.url, name))
