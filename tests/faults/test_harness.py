"""The harness itself: a process a case leaves behind is found (by the tag it inherited), reported and stopped."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.faults.conftest import TAG_ENV, _children, processes_left


def test_a_process_left_behind_is_found_and_stopped(fault):
    tag = "harness-self-test"
    before = frozenset(_children())  # other tests' children (a session's dashboard server): not this case's
    p = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        env={**os.environ, TAG_ENV: tag},
        start_new_session=True,  # as a daemonised leftover would be
    )
    left = processes_left(tag, grace_s=0.3, before=before)
    assert len(left) == 1 and left[0].startswith(f"{p.pid} ")
    assert p.wait(timeout=10) == -9  # killed, so that it does not leak into the next case
    assert processes_left(tag, grace_s=0.0, before=before) == []
