"""Names are not paths: whatever a study is called, every file an analysis writes lands inside its output folder,
and a name sysprune itself would create is checked where it enters (one line, exit 2, nothing written)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sysprune.analysis._paths import out_file, safe_name, study_dir
from tests.analysis.test_report import _study
from tests.test_cli import GOOD
from tests._cli import run_command

HOSTILE = [
    "../../escape",
    "/tmp/absolute-study",
    "a/b/c",
    "..",
    ".",
    "line\nbreak",
    "tab\there",
    "back\\slash",
    "x" * 600,
    " spaced out ",
    "-rf",
    "ünïcödé ✓",
]


def _inside(root: Path, path: Path) -> bool:
    return os.path.realpath(path).startswith(os.path.realpath(root) + os.sep)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(min_size=0, max_size=700) | st.sampled_from(HOSTILE), stem=st.text(max_size=300))
@example(name="\x00", stem="../x")
@example(name="../" * 50 + "etc/passwd", stem="/abs")
def test_any_name_gives_one_folder_inside_the_output_folder(name, stem, tmp_path):
    out = tmp_path / "results"
    folder = study_dir(out, name)
    assert folder.parent == out and _inside(out, folder)
    assert folder.name not in ("", ".", "..") and "/" not in folder.name and "\x00" not in folder.name
    assert len(folder.name.encode()) <= 255  # one real directory entry on every common filesystem
    target = out_file(folder, stem, ".html")
    assert target.parent == folder and len(target.name.encode()) <= 255
    target.parent.mkdir(parents=True, exist_ok=True)  # the filesystem agrees: it can be made, inside
    target.write_text("x")
    assert _inside(out, target)
    assert safe_name(name) == folder.name  # stable: the same name finds the same folder again


@settings(max_examples=200, deadline=None)
@given(a=st.text(max_size=60), b=st.text(max_size=60))
def test_two_names_do_not_share_a_folder(a, b):
    if a != b:
        assert safe_name(a) != safe_name(b)


@pytest.mark.parametrize("name", HOSTILE[:8])
def test_report_on_a_hostile_study_name_writes_only_under_out(name, tmp_path, cli):
    (tmp_path / "db").mkdir()
    url = f"sqlite:///{tmp_path / 'db' / 's.db'}"
    _study(url, name, ["maximize"], n=12)
    before = {p for p in tmp_path.rglob("*")}
    work = tmp_path / "work"
    work.mkdir()
    r = cli("report", name, "--storage", url, "--permutations", "1", "--out", "out", cwd=work)
    assert r.returncode == 0, r.stderr
    new = {p for p in tmp_path.rglob("*")} - before - {work}
    assert new, "the report wrote nothing"
    written = [p for p in new if not p.name.startswith("s.db")]  # the database's own -wal/-shm files
    assert all(p == work / "out" or _inside(work / "out", p) for p in written), sorted(map(str, written))
    assert not Path("/tmp/absolute-study").exists()
    assert "\n" not in r.stdout.splitlines()[-1] and "wrote " in r.stdout


@pytest.mark.parametrize(
    "name",
    ["line\nbreak", "nul\x00byte", "  ", "", "x" * 401, "bell\x07"],
    ids=["newline", "nul", "blank", "empty", "too-long", "control"],
)
def test_a_study_name_sysprune_would_create_is_checked_first(name, tmp_path, cli):
    (tmp_path / "s.toml").write_text(GOOD)
    db = tmp_path / "x.db"
    args = ("run", "s.toml", "--study-name", name, "--storage", f"sqlite:///{db}")
    if "\x00" in name and cli is run_command:  # no command line can hold a NUL: the OS refuses it before sysprune
        with pytest.raises(ValueError, match="null byte"):
            cli(*args, cwd=tmp_path)
        return
    r = cli(*args, cwd=tmp_path)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "--study-name: value " in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]  # nothing written, not even the database


def test_a_study_files_name_is_checked_too(tmp_path, cli):
    (tmp_path / "s.toml").write_text('name = "two\\nlines"\n' + GOOD)
    r = cli("run", "s.toml", "--storage", f"sqlite:///{tmp_path / 'x.db'}", cwd=tmp_path)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "name: value " in lines[0], r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]
