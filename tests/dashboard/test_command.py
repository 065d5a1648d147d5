"""``sysprune dashboard`` in-process: arguments, help, and user mistakes as one line with status 2."""

from __future__ import annotations

import argparse
import socket
import sqlite3
import threading

import optuna
import pytest
from sysprune.dashboard import _command
from sysprune.dashboard._server import make_dashboard_server, open_storage, serve, server_url
from tests._optuna import study_system_attrs

from .conftest import http_get


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sysprune")
    sub = parser.add_subparsers(dest="command")
    _command.add_parser(sub)
    return parser


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    args = _parser().parse_args(["dashboard", *argv])
    status = args.func(args)
    out, err = capsys.readouterr()
    return status, out, err


def test_defaults():
    args = _parser().parse_args(["dashboard"])
    assert (args.storage, args.host, args.port, args.artifact_dir, args.publish) == (
        None,  # resolved when the command runs: $SYSPRUNE_STORAGE, else sqlite:///results/sysprune.db
        "127.0.0.1",
        8080,
        None,
        False,
    )
    assert args.func is _command.run


def test_help_has_an_example(capsys):
    with pytest.raises(SystemExit) as e:
        _parser().parse_args(["dashboard", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "examples:\n  sysprune dashboard " in out
    assert "--storage URL" in out and "--port PORT" in out and "--host HOST" in out and "--artifact-dir DIR" in out


@pytest.mark.parametrize("port", ["-1", "65536", "http"])
def test_bad_port_is_a_usage_error(port, capsys):
    with pytest.raises(SystemExit) as e:
        _parser().parse_args(["dashboard", "--port", port])
    assert e.value.code == 2
    assert "argument --port" in capsys.readouterr().err


def test_missing_database_one_line_status_2_nothing_created(tmp_path, capsys):
    db = tmp_path / "nope.db"
    status, out, err = _run(capsys, "--storage", f"sqlite:///{db}")
    assert status == 2
    assert out == ""
    assert err == (
        f"sysprune dashboard: error: no study database at {db} (from sqlite:///{db}); "
        "run `sysprune run` first, or name the database that holds the study\n"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "not a database URL: 'not a url' (expected e.g. sqlite:///results/sysprune.db)"),
        ("sqlite://", "'sqlite://' is an in-memory database with no studies"),
        ("nosuchdb://h/x", "unknown database kind 'nosuchdb' in nosuchdb://h/x"),
        ("postgresql+psycopg2://u:secret@127.0.0.1:1/x", "cannot open postgresql+psycopg2://u:***@127.0.0.1:1/x: "),
    ],
)
def test_bad_storage_url(url, message, capsys):
    status, out, err = _run(capsys, "--storage", url)
    assert status == 2
    assert err.startswith("sysprune dashboard: error: " + message)
    assert err.count("\n") == 1 and "secret" not in err


def test_not_a_database_and_not_an_optuna_database(tmp_path, capsys):
    junk = tmp_path / "junk.db"
    junk.write_text("hello")
    status, _, err = _run(capsys, "--storage", f"sqlite:///{junk}")
    assert status == 2
    assert err == f"sysprune dashboard: error: {junk} is not an SQLite database (from --storage sqlite:///{junk})\n"
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("create table t (x)").connection.close()
    status, _, err = _run(capsys, "--storage", f"sqlite:///{other}")
    assert status == 2
    assert err == f"sysprune dashboard: error: sqlite:///{other} holds no Optuna studies (no 'studies' table)\n"


def test_port_in_use(sqlite_url, capsys):
    optuna.create_study(storage=sqlite_url)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        status, out, err = _run(capsys, "--storage", sqlite_url, "--port", str(port))
    assert status == 2 and out == ""
    assert err.startswith(f"sysprune dashboard: error: cannot listen on 127.0.0.1:{port}: ")
    assert err.endswith("(try another --port)\n")


def test_rollback_journal_database_switched_to_wal(tmp_path):
    db = tmp_path / "plain.db"
    optuna.create_study(storage=f"sqlite:///{db}", study_name="plain")  # plain Optuna: rollback journal
    assert sqlite3.connect(db).execute("pragma journal_mode").fetchone()[0] == "delete"
    open_storage(f"sqlite:///{db}")
    assert sqlite3.connect(db).execute("pragma journal_mode").fetchone()[0] == "wal"


def test_serves_in_process_and_stops(sqlite_url, tmp_path):
    optuna.create_study(storage=sqlite_url, study_name="s")
    server = make_dashboard_server(open_storage(sqlite_url), "127.0.0.1", 0, tmp_path / "artifacts")
    url = server_url(server)
    assert url.startswith("http://127.0.0.1:") and url.endswith("/dashboard")
    thread = threading.Thread(target=serve, args=(server,))
    thread.start()
    try:
        base = url.removesuffix("/dashboard")
        names = [s["study_name"] for s in http_get(base + "/api/studies").json()["study_summaries"]]
        assert names == ["s"]
        assert http_get(base + "/api/meta").json()["artifact_is_available"] is True
    finally:
        server.shutdown()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert not (tmp_path / "artifacts").exists()  # serving creates nothing


def test_publish_flag_publishes_every_study(sqlite_url, tmp_path, monkeypatch, capsys):
    from .conftest import build_tiny_study

    build_tiny_study(sqlite_url)  # run without the publisher

    def serve_once(server, on_ready):  # as if Ctrl-C came right after the URL
        on_ready()
        server.server_close()

    monkeypatch.setattr(_command, "serve", serve_once)
    status, out, _ = _run(
        capsys, "--storage", sqlite_url, "--port", "0", "--publish", "--artifact-dir", str(tmp_path / "a")
    )
    assert status == 0
    assert out.startswith("optuna-dashboard on http://127.0.0.1:")
    assert out.endswith("(1 study in " + sqlite_url + "; Ctrl-C to stop)\ndashboard stopped\n")
    study = optuna.load_study(study_name="tiny", storage=sqlite_url)
    attrs = study_system_attrs(study)
    assert any(k.startswith("dashboard:plot_data:sysprune-peak_rss_mb:") for k in attrs)
    assert len(list((tmp_path / "a").iterdir())) == 3
