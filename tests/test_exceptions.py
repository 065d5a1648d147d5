"""sysprune.exceptions: every user-catchable error in one module, the same class wherever it is raised from."""

from __future__ import annotations

import inspect
import json
import pickle
import subprocess
import sys

import pytest

from sysprune import exceptions as ex

#: Exception classes that stay in their module, on purpose: control flow, not errors a user catches. Terminated is
#: SIGTERM turned into a KeyboardInterrupt for the worker's Ctrl-C path (``except Exception`` must not catch it);
#: _NoSlot ends a worker's optimize loop, _Stop the dashboard's server thread; neither leaves its module.
CONTROL_FLOW = {
    "sysprune._signals.Terminated",
    "sysprune.study._workers._NoSlot",
    "sysprune.dashboard._server._Stop",
}


_WALK = """
import importlib, inspect, json, pkgutil
import sysprune

found = []
for info in pkgutil.walk_packages(sysprune.__path__, "sysprune."):
    if info.name.endswith("__main__") or info.name == "sysprune.exceptions":
        continue
    module = importlib.import_module(info.name)
    for name, obj in vars(module).items():
        if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == info.name:
            found.append(f"{info.name}.{name}")
print(json.dumps(sorted(found)))
"""


def test_every_error_class_is_defined_in_sysprune_exceptions():
    """One home for every catchable error and warning: no other module of sysprune defines an exception class,
    but the control flow above. Every module is imported in a process of its own: some have side effects meant for
    the process that imports them (the fork server's preload ignores SIGINT)."""
    out = subprocess.run([sys.executable, "-c", _WALK], capture_output=True, text=True, check=True, timeout=300)
    assert set(json.loads(out.stdout.splitlines()[-1])) == CONTROL_FLOW


def test_every_error_of_sysprune_exceptions_is_a_sysprune_error_and_every_warning_a_sysprune_warning():
    classes = [getattr(ex, n) for n in ex.__all__ if inspect.isclass(getattr(ex, n))]
    assert {c.__name__ for c in classes} == set(ex.__all__)
    for c in classes:
        if c in (ex.SyspruneError, ex.SyspruneWarning):
            continue
        if issubclass(c, Warning):
            assert issubclass(c, ex.SyspruneWarning) and issubclass(c, UserWarning), c
        else:
            assert issubclass(c, ex.SyspruneError) and issubclass(c, (ValueError, RuntimeError)), c


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("sysprune", "SpecError"),
        ("sysprune.spec", "SpecError"),
        ("sysprune.spec", "InvalidArgument"),
        ("sysprune.constraints", "InvalidArgument"),
        ("sysprune._validation", "InvalidArgument"),
        ("sysprune._plugins", "MissingDependency"),
        ("sysprune._plugins", "PluginError"),
        ("sysprune.study._workers", "TooManyWorkers"),
        ("sysprune.study._launch", "WorkerFailed"),
        ("sysprune.study._ray", "RayUnavailable"),
        ("sysprune._compat", "CompatWarning"),
        ("sysprune", "BudgetMetricWarning"),
        ("sysprune.pruners", "BudgetMetricWarning"),
        ("sysprune.pruners._budget", "BudgetMetricWarning"),
    ],
)
def test_the_public_homes_re_export_the_same_class(module, name):
    import importlib

    assert getattr(importlib.import_module(module), name) is getattr(ex, name)


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (ex.SpecError, ValueError),
        (ex.StudyMismatch, ValueError),
        (ex.StorageError, ValueError),
        (ex.DatabaseNotFound, ValueError),
        (ex.StudyNotFound, KeyError),
        (ex.NoStepMetrics, ValueError),
        (ex.UnsupportedStorage, ValueError),
        (ex.DatasetUnavailable, ValueError),
        (ex.DashboardError, RuntimeError),
        (ex.TrialProcessError, RuntimeError),
        (ex.CapExceeded, RuntimeError),
        (ex.CompatError, RuntimeError),
        (ex.InvalidArgument, ValueError),
        (ex.InvalidArgument, TypeError),
        (ex.PluginError, ValueError),
        (ex.TooManyWorkers, ValueError),
        (ex.RayUnavailable, ValueError),
        (ex.MissingDependency, ValueError),
        (ex.WorkerFailed, RuntimeError),
    ],
)
def test_every_error_is_a_sysprune_error_and_a_builtin(cls, builtin):
    assert issubclass(cls, ex.SyspruneError) and issubclass(cls, builtin)
    assert set(ex.__all__) >= {cls.__name__}


def test_messages_read_as_given():
    assert str(ex.StudyNotFound("no study 'x' in db")) == "no study 'x' in db"  # not quoted, as KeyError would
    e = ex.CapExceeded("wall_s", 1.23456, 0.5, 2)
    assert str(e) == "wall_s 1.235 exceeded the hard cap 0.5 during step 2"
    assert (e.metric, e.value, e.cap, e.step) == ("wall_s", 1.23456, 0.5, 2)


def test_an_invalid_argument_keeps_its_parts_through_within_and_pickling():
    e = ex.InvalidArgument("probability", 2.0, "a finite number in (0, 1)", where="CurvePruner")
    assert str(e) == "CurvePruner: probability: value 2.0 is invalid; valid: a finite number in (0, 1)"
    outer = e.within("s.toml")
    assert str(outer) == "s.toml: CurvePruner: probability: value 2.0 is invalid; valid: a finite number in (0, 1)"
    assert (outer.argument, outer.value, outer.valid) == ("probability", 2.0, "a finite number in (0, 1)")
    back = pickle.loads(pickle.dumps(outer))  # a pool worker's error reaches its parent whole
    assert type(back) is ex.InvalidArgument and str(back) == str(outer) and back.where == "s.toml: CurvePruner"
    assert (
        str(ex.InvalidArgument("pruner.x", "x", "(none)", problem="unknown key"))
        == "pruner.x: unknown key; valid: (none)"
    )
    assert str(ex.SpecError("model: unknown model 'x'").within("s.toml")) == "s.toml: model: unknown model 'x'"
