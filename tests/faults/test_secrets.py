"""Secrets never shown: a credential anywhere in a storage URL (userinfo, query parameters, a libpq ``key=value``
string, percent-encoded) is masked in every line a command prints — errors, ``--debug`` tracebacks, the "starting"
and "results" lines, hints — and a storage URL can come from ``$SYSPRUNE_STORAGE`` instead of the command line."""

from __future__ import annotations

import os

import pytest

from sysprune._redact import forget_all, mask_url, redact, remember
from sysprune.dashboard._server import exposure_warning
from tests.test_cli import GOOD

SECRET = "Hunter2xQ9"
#: Storage URL forms that carry SECRET, each on an unreachable server (port 1 refuses at once).
UNREACHABLE = {
    "userinfo": f"postgresql+psycopg2://user:{SECRET}@127.0.0.1:1/db",
    "query password": f"postgresql+psycopg2://user@127.0.0.1:1/db?password={SECRET}",
    "query sslpassword": f"postgresql+psycopg2://user@127.0.0.1:1/db?sslmode=disable&sslpassword={SECRET}",
    "libpq pairs in the query": f"postgresql+psycopg2:///db?host=127.0.0.1&port=1&user=u&password={SECRET}",
    "percent-encoded": f"postgresql+psycopg2://user:{SECRET}%40%2F@127.0.0.1:1/db",
    "bad port": f"postgresql+psycopg2://user:{SECRET}@127.0.0.1:notaport/db",
    "driver not installed": f"mysql+pymysql://user:{SECRET}@127.0.0.1:1/db",
    "token": f"postgresql+psycopg2://user@127.0.0.1:1/db?token={SECRET}",
}


@pytest.fixture(autouse=True)
def _forget():
    yield
    forget_all()


@pytest.mark.parametrize("url", UNREACHABLE.values(), ids=UNREACHABLE.keys())
def test_mask_url_hides_the_secret_of_every_form(url):
    shown = mask_url(url)
    assert SECRET not in shown and "***" in shown
    assert mask_url(shown) == shown  # masking twice changes nothing


def test_a_libpq_string_and_free_text_are_redacted():
    remember(f"postgresql://u@h/db?password={SECRET}")
    text = f"could not connect: host=h password={SECRET} dbname=db; also {SECRET} alone in a message"
    assert SECRET not in redact(text)
    assert "host=h" in redact(text) and "dbname=db" in redact(text)


@pytest.mark.parametrize("command", ["run", "report", "replay", "dashboard"])
@pytest.mark.parametrize("url", UNREACHABLE.values(), ids=UNREACHABLE.keys())
def test_an_unreachable_storage_is_one_line_without_the_secret(command, url, tmp_path, cli):
    (tmp_path / "s.toml").write_text(GOOD)
    args = {"run": ["s.toml"], "report": ["x"], "replay": ["x"], "dashboard": ["--port", "0"]}[command]
    r = cli(command, *args, "--storage", url, cwd=tmp_path)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert SECRET not in r.stdout + r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]  # nothing created on the way out


@pytest.mark.parametrize("url", [UNREACHABLE["userinfo"], UNREACHABLE["query password"]], ids=["userinfo", "query"])
def test_a_debug_traceback_is_redacted_too(url, tmp_path, cli):
    (tmp_path / "s.toml").write_text(GOOD)
    r = cli("--debug", "run", "s.toml", "--storage", url, cwd=tmp_path)
    assert r.returncode == 2 and SECRET not in r.stdout + r.stderr, r.stderr


def test_the_storage_comes_from_the_environment(tmp_path, cli):
    (tmp_path / "s.toml").write_text(GOOD)
    r = cli("run", "s.toml", env={"SYSPRUNE_STORAGE": UNREACHABLE["query password"]}, cwd=tmp_path)
    assert r.returncode == 2 and "127.0.0.1" in r.stderr and SECRET not in r.stdout + r.stderr, r.stderr


@pytest.mark.parametrize(
    "host, warned", [("127.0.0.1", False), ("::1", False), ("localhost", False), ("0.0.0.0", True), ("::", True)]
)
def test_the_dashboard_warns_when_bound_beyond_loopback(host, warned):
    warning = exposure_warning(host, 8080)
    assert (warning is not None) == warned
    if warning:
        assert f"{host}:8080" in warning and "without authentication" in warning


def _trust_url(form: str) -> str:
    """The test server's URL with SECRET as its password in ``form`` (the test server trusts 127.0.0.1, so any
    password is accepted: the secret is really sent, and must never come back in an output)."""
    base = os.environ["SYSPRUNE_TEST_POSTGRES_URL"]
    head, _, tail = base.partition("@")
    user = head.rpartition("//")[2].partition(":")[0]
    scheme = head.partition("://")[0]
    if form == "userinfo":
        return f"{scheme}://{user}:{SECRET}@{tail}"
    return f"{scheme}://{user}@{tail}?sslmode=disable&password={SECRET}"


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("form, via", [("userinfo", "option"), ("query", "option"), ("query", "environment")])
def test_a_whole_run_never_shows_the_secret(form, via, tmp_path, fault, request):
    import uuid

    from tests._cli import run_command

    if "SYSPRUNE_TEST_POSTGRES_URL" not in os.environ:
        pytest.fail("SYSPRUNE_TEST_POSTGRES_URL not set (tools/start-postgres.sh starts a server)")
    (tmp_path / "s.toml").write_text(GOOD)
    url = _trust_url(form)
    name = f"secret-{uuid.uuid4().hex[:8]}"
    args = ["run", "s.toml", "--study-name", name]
    env = {"SYSPRUNE_STORAGE": url} if via == "environment" else None
    r = run_command(*args, *([] if env else ["--storage", url]), env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = r.stdout + r.stderr
    assert SECRET not in out
    assert "starting " in r.stdout and "***" in r.stdout
    if via == "option":
        assert "put the URL in $SYSPRUNE_STORAGE" in r.stderr  # the process list shows it: say so
    assert "SYSPRUNE_STORAGE" in r.stdout  # the copy-paste hint names the variable, not the masked text
