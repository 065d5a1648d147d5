"""A storage password never appears: not in `run`'s output (with --debug logs), its errors, the study's attributes,
nor the dashboard's banner. Uses the real PostgreSQL server of SYSPRUNE_TEST_POSTGRES_URL (its password is in
the URL), and a pure check of the one masking function."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy

from tests._require import missing
from tests._optuna import study_system_attrs

REPO = Path(__file__).resolve().parents[1]
STUDY = """
model = "tests.workloads.alloc"
steps = 2
n_trials = 1
[dataset]
name = "digits"
[search_space]
mb = 1
spin_ms = 1
"""


def test_the_mask_hides_only_the_password():
    from sysprune.cli import mask_url

    assert (
        mask_url("postgresql+psycopg2://u:s3cret@db.example:5432/x") == "postgresql+psycopg2://u:***@db.example:5432/x"
    )
    assert mask_url("sqlite:///results/sysprune.db") == "sqlite:///results/sysprune.db"
    assert mask_url("not a url") == "not a url"
    # not parsable as a URL (a typo, a port that is not a number): still masked
    assert mask_url("postgresql+psycopg2//u:s3cret@host/db") == "postgresql+psycopg2//u:***@host/db"
    assert mask_url("postgresql://u:s3cret@host:port/db") == "postgresql://u:***@host:port/db"
    assert mask_url("u:s3cret@host") == "u:***@host"


@pytest.fixture(scope="module")
def pg_url() -> str:
    url = os.environ.get("SYSPRUNE_TEST_POSTGRES_URL")
    if not url:
        missing("SYSPRUNE_TEST_POSTGRES_URL not set (tools/start-postgres.sh starts a server)")
    password = sqlalchemy.make_url(url).password
    if not password:
        pytest.fail(f"the test server's URL has no password to hide: {url}")
    return url


def _secret(url: str) -> str:
    return f":{sqlalchemy.make_url(url).password}@"


def _sysprune(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "sysprune.cli", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout
    )


@pytest.fixture(scope="module")
def ran(pg_url, tmp_path_factory):
    """One study run on PostgreSQL through the command line (with --debug logs and the dashboard publisher)."""
    import optuna

    cwd = tmp_path_factory.mktemp("masking")
    (cwd / "s.toml").write_text(STUDY)
    name = f"mask-{uuid.uuid4().hex[:10]}"
    r = _sysprune("--debug", "run", "s.toml", "--storage", pg_url, "--study-name", name, cwd=cwd)
    yield r, name, cwd
    optuna.delete_study(study_name=name, storage=pg_url)


@pytest.mark.slow
def test_run_never_prints_the_password(ran, pg_url):
    r, name, _ = ran
    assert r.returncode == 0, r.stderr
    shown = sqlalchemy.make_url(pg_url).render_as_string(hide_password=True)
    lines = r.stdout.splitlines()
    assert (
        lines[0].startswith("starting s: tests.workloads.alloc on digits")
        and f"-> {shown} (study {name!r})" in lines[0]
    )
    assert any(line.startswith(f"results: {shown}  ") for line in lines), r.stdout
    assert _secret(pg_url) not in r.stdout + r.stderr


@pytest.mark.slow
def test_the_study_attributes_never_hold_the_password(ran, pg_url):
    import optuna

    _, name, _ = ran
    study = optuna.load_study(study_name=name, storage=pg_url)
    system = study_system_attrs(study)
    trials = [(t.user_attrs, t.system_attrs) for t in study.trials]
    stored = json.dumps([study.user_attrs, system, trials], default=str)
    assert "127.0.0.1" not in stored and _secret(pg_url) not in stored  # no URL is stored at all


@pytest.mark.slow
def test_the_study_mismatch_error_never_prints_the_password(ran, pg_url):
    _, name, cwd = ran
    r = _sysprune("run", "s.toml", "--storage", pg_url, "--study-name", name, "--seed", "7", cwd=cwd)
    assert r.returncode == 2
    (line,) = r.stderr.strip().splitlines()
    shown = sqlalchemy.make_url(pg_url).render_as_string(hide_password=True)
    assert line == (
        f"sysprune: error: study {name!r} in {shown} was defined differently: seed 0 -> 7; "
        "to start a new study, give another --study-name"
    )
    assert _secret(pg_url) not in r.stdout + r.stderr


@pytest.mark.slow
def test_the_dashboard_banner_never_prints_the_password(ran, pg_url):
    _, _, cwd = ran
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.Popen(
        [sys.executable, "-m", "sysprune.cli", "dashboard", "--storage", pg_url, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=cwd,
    )
    out = []
    deadline = time.monotonic() + 120
    try:
        assert p.stdout is not None
        while time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            out.append(line)
            if line.startswith("optuna-dashboard on "):
                break
    finally:
        p.terminate()
        try:
            rest, _ = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            rest, _ = p.communicate()
        out.append(rest or "")
    text = "".join(out)
    shown = sqlalchemy.make_url(pg_url).render_as_string(hide_password=True)
    assert f" in {shown}; Ctrl-C to stop)" in text, text
    assert _secret(pg_url) not in text
