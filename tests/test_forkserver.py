"""The fork server imports torch only for a study whose model needs it (a scikit-learn or plugin study saves ~3 s
of CPU and ~600 MB per worker), and is restarted with torch when a later study of the same process needs it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from sysprune._compat import forkserver_pid
from sysprune.trial import _forkserver
from sysprune.trial._forkserver import PRELOAD_TORCH_ENV, needs_torch, preload_torch, warm_up
from tests._require import require

require("torch", "torch")


@pytest.mark.parametrize(
    "requires, loaded, expected",
    [(("torch",), False, True), ((), True, True), ((), False, False), (("pmlb",), False, False)],
)
def test_torch_is_preloaded_when_the_family_requires_it_or_its_module_imported_it(requires, loaded, expected):
    assert needs_torch(requires, loaded) is expected


def _has_torch(pid: int) -> bool:
    return "libtorch" in Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.slow
def test_the_fork_server_imports_torch_only_when_told_and_restarts_to_get_it(monkeypatch):
    monkeypatch.setenv(PRELOAD_TORCH_ENV, os.environ.get(PRELOAD_TORCH_ENV, "1"))  # restored afterwards
    pid = forkserver_pid()
    if pid is not None:  # another test's server: start from none, as a new worker does
        os.kill(pid, 9)
        _forkserver._started_with.pop(pid, None)
        while _forkserver._running(pid):  # gone before a new one is asked for (multiprocessing checks waitpid)
            time.sleep(0.01)
    try:
        preload_torch(False)
        warm_up()
        without = forkserver_pid()
        assert without is not None and not _has_torch(without)
        preload_torch(True)
        warm_up()  # a torch study now: the server is replaced, with torch
        with_torch = forkserver_pid()
        assert with_torch != without and _has_torch(with_torch)
        preload_torch(False)
        warm_up()  # a server that has torch is kept for a study that does not need it
        assert forkserver_pid() == with_torch
    finally:
        preload_torch(True)
