"""Tests that need something from the machine (real data, PostgreSQL, Chromium, an optional extra) never skip
silently in CI."""

from __future__ import annotations

import importlib
import inspect
import os
from types import ModuleType

import pytest


def missing(msg: str) -> None:
    """A prerequisite is missing: fail under CI (``CI`` set, where .ci/run must provide it), skip elsewhere. Called at
    the top of a test module, it skips the whole module (and fails its collection under CI)."""
    if os.environ.get("CI"):
        pytest.fail(msg + " — CI must provide it")
    pytest.skip(msg, allow_module_level=True)


def require(module: str, extra: str) -> ModuleType:
    """``module``, which sysprune's optional extra ``extra`` installs. When it is not installed, :func:`missing`:
    locally the tests that need it are skipped (their whole module when called at its top) instead of collection
    stopping with an ImportError; under CI they fail."""
    try:
        return importlib.import_module(module)
    except ImportError:
        caller = inspect.stack()[1]
        where = f"{os.path.relpath(caller.filename)}:{caller.lineno}"
        missing(f"{where}: {module} is not installed (pip install 'sysprune[{extra}]')")
        raise  # not reached: missing() skips or fails
