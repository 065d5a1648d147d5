"""Tests that need something from the machine (real data, PostgreSQL, Chromium) never skip silently in CI."""

from __future__ import annotations

import os

import pytest


def missing(msg: str) -> None:
    """A prerequisite is missing: fail under CI (``CI`` set, where .ci/run must provide it), skip elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(msg + " — CI must provide it")
    pytest.skip(msg)
