"""The fork server imports torch and scikit-learn only for a study whose model needs them (a scikit-learn or plugin
study saves ~3 s of CPU and ~600 MB per worker without torch, a torch or plugin study ~1 s without scikit-learn), and
is restarted with a stack when a later study of the same process needs it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from sysprune._compat import forkserver_pid
from sysprune.trial import _forkserver
from sysprune.models import get_model
from sysprune.trial._forkserver import (
    PRELOAD_ENV,
    PRELOAD_TORCH_ENV,
    needs,
    preload,
    uses_module,
    warm_up,
)
from tests._require import require

require("torch", "torch")


@pytest.mark.parametrize(
    "requires, loaded, expected",
    [(("torch",), False, True), ((), True, True), ((), False, False), (("pmlb",), False, False)],
)
def test_torch_is_preloaded_when_the_family_requires_it_or_its_module_imported_it(requires, loaded, expected):
    assert needs("torch", requires, loaded) is expected


def test_a_model_needs_scikit_learn_when_its_family_says_so_or_its_module_uses_it():
    assert get_model("sklearn_sgd").requires == ("sklearn",)
    assert "sklearn" not in get_model("torch_mlp").requires and not uses_module(
        get_model("torch_mlp").create, "sklearn"
    )
    import sklearn.linear_model
    from sklearn.linear_model import SGDClassifier

    def create():  # a plugin's create, in a module that imported scikit-learn at its top level
        pass

    for value in (sklearn.linear_model, SGDClassifier):
        module = type(os)("plugin_with_sklearn")
        module.thing = value
        create.__module__ = module.__name__
        import sys

        sys.modules[module.__name__] = module
        try:
            assert uses_module(create, "sklearn") and not uses_module(create, "torch")
        finally:
            del sys.modules[module.__name__]
    assert not uses_module(create, "sklearn")  # its module gone: nothing known, nothing claimed


def _has_torch(pid: int) -> bool:
    return "libtorch" in Path(f"/proc/{pid}/maps").read_text()


def _has_sklearn(pid: int) -> bool:
    return "/sklearn/" in Path(f"/proc/{pid}/maps").read_text()


def _kill_server() -> None:
    pid = forkserver_pid()
    if pid is not None:  # another test's server: start from none, as a new worker does
        os.kill(pid, 9)
        _forkserver._started_with.pop(pid, None)
        while _forkserver._running(pid):  # gone before a new one is asked for (multiprocessing checks waitpid)
            time.sleep(0.01)


@pytest.mark.slow
def test_the_fork_server_imports_scikit_learn_only_when_told_and_restarts_to_get_it(monkeypatch):
    for env in PRELOAD_ENV.values():
        monkeypatch.setenv(env, os.environ.get(env, "1"))  # restored afterwards
    _kill_server()
    try:
        preload(torch=False, sklearn=False)
        warm_up()
        without = forkserver_pid()
        assert without is not None and not _has_sklearn(without) and not _has_torch(without)
        preload(torch=False, sklearn=True)
        warm_up()  # a scikit-learn study now: the server is replaced, with scikit-learn
        with_sklearn = forkserver_pid()
        assert with_sklearn != without and _has_sklearn(with_sklearn) and not _has_torch(with_sklearn)
        preload(torch=False, sklearn=False)
        warm_up()  # kept for a study that needs less
        assert forkserver_pid() == with_sklearn
    finally:
        preload(torch=True, sklearn=True)


@pytest.mark.slow
def test_the_fork_server_imports_torch_only_when_told_and_restarts_to_get_it(monkeypatch):
    monkeypatch.setenv(PRELOAD_TORCH_ENV, os.environ.get(PRELOAD_TORCH_ENV, "1"))  # restored afterwards
    _kill_server()
    try:
        preload(torch=False)
        warm_up()
        without = forkserver_pid()
        assert without is not None and not _has_torch(without)
        preload(torch=True)
        warm_up()  # a torch study now: the server is replaced, with torch
        with_torch = forkserver_pid()
        assert with_torch != without and _has_torch(with_torch)
        preload(torch=False)
        warm_up()  # a server that has torch is kept for a study that does not need it
        assert forkserver_pid() == with_torch
    finally:
        preload(torch=True)


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


@pytest.mark.slow
def test_a_fork_server_sized_for_the_trials_threads_gives_a_trial_no_extra_blas_thread(monkeypatch, tmp_path):
    """A one-thread trial forked from a server whose OpenBLAS loaded with one thread per core carried that pool:
    its extra thread busy-waited after each BLAS call (~100 ms of CPU in the first step of a trial that only waits).
    Sized from the start, the trial runs one thread; this process's own environment is left as it was."""
    import json

    from sysprune.datasets import prepare
    from sysprune.trial._job import TrialJob
    from sysprune.trial._process import TrialProcess

    for env in PRELOAD_ENV.values():
        monkeypatch.setenv(env, os.environ.get(env, "1"))  # restored afterwards
    monkeypatch.setattr(_forkserver, "_threads", None)
    mine = {var: os.environ.get(var) for var in _forkserver.THREAD_POOL_VARS}
    path = str(prepare("digits", seed=0, cache_dir=tmp_path / "cache"))

    def seen_by_a_trial(out: Path) -> list[dict]:
        job = TrialJob(model="tests.workloads.threads", params={"out": str(out)}, dataset_path=path, seed=0, steps=2)
        with TrialProcess(job) as tp:
            for _ in tp.steps():
                tp.decide(stop=False)
        return [json.loads(line) for line in out.read_text().splitlines()]

    _kill_server()
    try:
        preload(threads=1, torch=False, sklearn=False)
        warm_up()
        sized = forkserver_pid()
        assert sized is not None and _environ(sized)["OPENBLAS_NUM_THREADS"] == "1"
        assert _environ(sized)[_forkserver.TRIAL_THREADS_ENV] == "1"
        assert {var: os.environ.get(var) for var in _forkserver.THREAD_POOL_VARS} == mine
        seen = seen_by_a_trial(tmp_path / "one.jsonl")
        assert [s["step"] for s in seen] == [0, 1]
        assert all(s["blas"] == [1] and s["os_threads"] == 1 for s in seen)  # no pool thread beside the trial's
        preload(threads=2)
        warm_up()  # trials of two threads now: a server sized for them
        assert forkserver_pid() != sized and _environ(forkserver_pid())["OPENBLAS_NUM_THREADS"] == "2"
    finally:
        _forkserver._threads = None
        preload(torch=True, sklearn=True)
