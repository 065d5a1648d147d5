"""sysprune's own logger: children of "sysprune", no handler unless the command line asks, root untouched."""

from __future__ import annotations

import io
import logging

import pytest

from sysprune import _logging


@pytest.fixture(autouse=True)
def _restore():
    lib = logging.getLogger("sysprune")
    level, propagate = lib.level, lib.propagate
    yield
    _logging.disable_default_handler()
    lib.setLevel(level)
    lib.propagate = propagate


def test_get_logger_names():
    assert _logging.get_logger("sysprune").name == "sysprune"
    assert _logging.get_logger("sysprune.dashboard._publish").name == "sysprune.dashboard._publish"
    assert _logging.get_logger("runner").name == "sysprune.runner"
    assert _logging.get_logger("sysprunex").name == "sysprune.sysprunex"
    with pytest.raises(ValueError, match="non-empty string"):
        _logging.get_logger("")


def test_importing_sysprune_adds_no_handler_and_leaves_root_alone():
    import sysprune.dashboard  # noqa: F401

    assert logging.getLogger("sysprune").handlers == []
    assert not any(
        getattr(h, "stream", None) is not None and h.__class__.__module__.startswith("sysprune")
        for h in logging.getLogger().handlers
    )


def test_default_handler_formats_like_optuna_and_is_idempotent():
    first, second = io.StringIO(), io.StringIO()
    _logging.enable_default_handler("INFO", stream=first)
    _logging.enable_default_handler("INFO", stream=second)  # replaces, never doubles
    _logging.get_logger("sysprune.x").info("hello %s", "there")
    _logging.get_logger("sysprune.x").debug("hidden")
    assert first.getvalue() == ""
    line = second.getvalue()
    assert line.startswith("[I ") and line.endswith("] hello there\n") and line.count("\n") == 1
    assert logging.getLogger("sysprune").propagate is False
    _logging.disable_default_handler()
    assert logging.getLogger("sysprune").handlers == [] and logging.getLogger("sysprune").propagate is True


def test_set_verbosity():
    _logging.set_verbosity("debug")
    assert _logging.get_verbosity() == logging.DEBUG
    _logging.set_verbosity(logging.ERROR)
    assert _logging.get_verbosity() == logging.ERROR
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        _logging.set_verbosity("loud")
    with pytest.raises(ValueError, match="got True"):
        _logging.set_verbosity(True)
