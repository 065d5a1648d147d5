"""Read-only means read-only: ``report``, ``replay``, ``compare --no-run``, ``dashboard`` and ``load_step_metrics``
on a mistyped storage create no file, lock or folder (and say so in one line); ``run`` refuses a storage whose
folder does not exist. The whole tree under the test's folder is compared before and after."""

from __future__ import annotations

import pytest

import sysprune
from sysprune.exceptions import DatabaseNotFound
from tests.test_cli import GOOD


def _tree(root) -> dict[str, int]:
    return {str(p.relative_to(root)): (p.stat().st_size if p.is_file() else -1) for p in root.rglob("*")}


STORAGES = {
    "missing file": "sqlite:///{tmp}/typo.db",
    "missing folder": "sqlite:///{tmp}/nope/deeper/s.db",
    "at the root": "sqlite:////nonexistent-sysprune-folder/s.db",
    "default (relative)": None,
}
COMMANDS = {
    "report": ["report", "x"],
    "replay": ["replay", "x"],
    "compare --no-run": ["compare", "s.toml", "--no-run", "--seeds", "1", "--policies", "none"],
    "dashboard": ["dashboard", "--port", "0"],
}


@pytest.mark.parametrize("storage", STORAGES.values(), ids=STORAGES.keys())
@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_a_read_only_command_on_a_mistyped_storage_creates_nothing(command, storage, tmp_path, cli):
    (tmp_path / "s.toml").write_text(GOOD)
    before = _tree(tmp_path)
    extra = ["--storage", storage.format(tmp=tmp_path)] if storage else []
    r = cli(*command, *extra, cwd=tmp_path, env={"SYSPRUNE_STORAGE": ""})
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "no study database at" in lines[0] or "does not exist" in lines[0], lines[0]
    assert _tree(tmp_path) == before
    assert not (tmp_path / "results").exists()
    from pathlib import Path

    assert not Path("/nonexistent-sysprune-folder").exists()


@pytest.mark.parametrize("storage", ["sqlite:///{tmp}/typo.db", "sqlite:///{tmp}/nope/s.db"])
def test_load_step_metrics_on_a_missing_database_creates_nothing(storage, tmp_path):
    before = _tree(tmp_path)
    with pytest.raises(DatabaseNotFound, match="no study database at"):
        sysprune.load_step_metrics(storage.format(tmp=tmp_path), "x")
    assert _tree(tmp_path) == before


def test_a_read_only_command_on_a_real_database_changes_no_file(tmp_path, cli):
    from tests.analysis.test_report import _study

    db = tmp_path / "s.db"
    _study(f"sqlite:///{db}", "rq1", ["maximize"], n=12)
    import sqlite3

    sqlite3.connect(db).execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
    content = db.read_bytes()
    r = cli("replay", "rq1", "--storage", f"sqlite:///{db}", "--out", "out", cwd=tmp_path)
    assert r.returncode in (0, 2) and "Traceback" not in r.stderr, r.stderr
    assert db.read_bytes() == content  # read, not written
    assert not (tmp_path / "s.db-sysprune.lock").exists()
