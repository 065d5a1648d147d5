"""sysprune.exceptions: every user-catchable error in one module, the same class wherever it is raised from."""

from __future__ import annotations

import pytest

from sysprune import exceptions as ex


@pytest.mark.parametrize(("module", "name"), [("sysprune", "SpecError"), ("sysprune.spec", "SpecError")])
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
