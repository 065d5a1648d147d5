"""The ``sysprune`` command line for the tests: as a user runs it (a new interpreter), or in this process.

Both return a :class:`subprocess.CompletedProcess` with the exit status, stdout and stderr, so one test body checks
either. In this process a bad-input check costs milliseconds instead of the second an interpreter takes to start and
import sysprune; the ``cli`` fixture (tests/conftest.py) runs such a test both ways, the command itself only with the
slow tests.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import optuna

from sysprune import _logging
from sysprune.cli import main

REPO = Path(__file__).resolve().parents[1]


def run_command(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``python -m sysprune.cli ARGS`` in a new interpreter (the repository's sysprune, as a user runs it)."""
    return subprocess.run(
        [sys.executable, "-m", "sysprune.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd or REPO,
        timeout=300,
    )


def run_in_process(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``sysprune ARGS`` through :func:`sysprune.cli.main` in this process: the command's exit status and output.

    For commands that end before a study runs (bad input, ``--help``): what ``main`` sets for the whole process (the
    SIGINT and SIGTERM handlers, its log handler and verbosity, Optuna's verbosity, ``sys.path``) is put back afterwards, and so
    are the working directory and the environment it was given.
    """
    saved = (
        signal.getsignal(signal.SIGINT),
        signal.getsignal(signal.SIGTERM),
        optuna.logging.get_verbosity(),
        _logging.get_verbosity(),
        list(sys.path),
        os.getcwd(),
        dict(os.environ),
    )
    out, err = io.StringIO(), io.StringIO()
    try:
        os.chdir(cwd or REPO)
        os.environ.update(env or {})
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = main(list(args))
            except SystemExit as e:  # argparse: --help, or an option it refuses itself
                status = e.code if isinstance(e.code, int) else 2
    finally:
        _logging.disable_default_handler()
        interrupt, term, optuna_level, sysprune_level, path, where, environ = saved
        signal.signal(signal.SIGINT, interrupt)
        signal.signal(signal.SIGTERM, term)
        optuna.logging.set_verbosity(optuna_level)
        _logging.set_verbosity(sysprune_level)
        sys.path[:] = path
        os.chdir(where)
        os.environ.clear()
        os.environ.update(environ)
    return subprocess.CompletedProcess(["sysprune", *args], status, out.getvalue(), err.getvalue())
