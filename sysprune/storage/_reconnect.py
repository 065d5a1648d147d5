"""A database server that goes away while a study runs: its connections are retried with back-off, for a bounded
time, then the error is raised (and the command line says so in one line: :mod:`sysprune.storage._faults`).

Where: SQLAlchemy's ``do_connect`` event of every engine sysprune opens on a server database (Optuna's storage,
the step table, the database lock), with ``pool_pre_ping`` so that a pooled connection the server dropped is
noticed when it is taken, not half-way through a statement. Every database call sysprune or Optuna makes takes a
connection first, so a call made while the server is down waits for it (up to the window) and then goes on as if
nothing happened: nothing is lost, nothing is written twice.

Only a server this process has reached before is waited for: a URL that never worked (a typo, a server that is
not up at the start) fails at once, and so do errors that waiting cannot mend (a wrong password, a database or
user that does not exist). The window is ``$SYSPRUNE_DB_RETRY_S`` seconds (default 60; 0 turns it off).
"""

from __future__ import annotations

import os
import re
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sysprune._logging import get_logger
from sysprune._redact import mask_url
from sysprune._validation import Real, check
from sysprune.exceptions import first_line

if TYPE_CHECKING:
    import sqlalchemy as sa

_log = get_logger(__name__)
T = TypeVar("T")

#: The environment variable that sets how long a lost database server is waited for, in seconds.
RETRY_ENV = "SYSPRUNE_DB_RETRY_S"
DEFAULT_RETRY_S = 60.0
#: The first wait, doubled after each failed attempt up to the longest.
FIRST_WAIT_S = 0.25
LONGEST_WAIT_S = 8.0
#: Errors waiting does not mend: the server answered, and said no.
_PERMANENT = re.compile(
    r"(?i)authentication failed|password|does not exist|permission denied|no pg_hba\.conf entry|"
    r"invalid (?:dsn|connection option)"
)

#: URLs (as masked text, a stable key without the secret) of servers this process has reached.
_reached: set[str] = set()
_lock = threading.Lock()
_retrying: "weakref.WeakSet[sa.Engine]" = weakref.WeakSet()
#: Servers (as ``_reached``) being waited for now: the warning is logged once per outage.
_outage: set[str] = set()


def _first_wait(key: str) -> bool:
    """Whether this is the first wait of an outage of ``key`` (and record it)."""
    with _lock:
        first = key not in _outage
        _outage.add(key)
    return first


def retry_window() -> float:
    """``$SYSPRUNE_DB_RETRY_S`` (seconds, >= 0), or the default.

    Raises:
        InvalidArgument: ``SYSPRUNE_DB_RETRY_S: value 'x' is invalid; valid: a finite number >= 0``.
    """
    text = os.environ.get(RETRY_ENV, "").strip()
    if not text:
        return DEFAULT_RETRY_S
    try:
        value: Any = float(text)
    except ValueError:
        value = text
    return check(value, Real(low=0.0), RETRY_ENV)


def wait_before(attempt: int) -> float:
    """The pause before retry number ``attempt`` (0, 1, ...): 0.25 s doubled each time, at most 8 s."""
    return min(FIRST_WAIT_S * 2.0 ** min(attempt, 32), LONGEST_WAIT_S)


def is_permanent(message: str) -> bool:
    """Whether a connection error says something waiting cannot mend (a wrong password, an unknown database)."""
    return _PERMANENT.search(message) is not None


def retry_connects(engine: "sa.Engine") -> None:
    """Make ``engine`` (a server database's) wait for a lost server: see the module docstring. SQLite engines and
    an engine already set up are left alone."""
    import sqlalchemy as sa

    if engine.dialect.name == "sqlite" or engine in _retrying:
        return
    key = mask_url(engine.url)

    def connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        return call_waiting(
            key,
            lambda: dialect.connect(*cargs, **cparams),
            (dialect.loaded_dbapi.Error,),
            first_line,
            "lost the database %s (%s); waiting up to %.0f s for it",
        )

    sa.event.listen(engine, "do_connect", connect)
    _retrying.add(engine)


def call_waiting(
    key: str, call: Callable[[], T], errors: tuple[type[BaseException], ...], reason: Callable[[Any], str], wait: str
) -> T:
    """``call()``, called again while it raises one of ``errors`` for a server this process has reached (``key``:
    its masked URL) and the ``reason`` of the error is one waiting can mend, with back-off, for up to the retry
    window; then the error is raised. ``wait``: the warning logged once per outage (``%s`` the server, ``%s`` the
    reason, ``%.0f`` the window). A server that answers is recorded as reached."""
    start = time.monotonic()
    attempt = 0
    while True:
        try:
            result = call()
        except errors as e:
            text, elapsed = reason(e), time.monotonic() - start
            window = retry_window()
            with _lock:
                known = key in _reached
            if not known or is_permanent(text) or elapsed >= window:
                raise
            if attempt == 0 and _first_wait(key):  # once per outage, not once per connection that waits
                _log.warning(wait, key, text, window)
            time.sleep(min(wait_before(attempt), max(0.0, window - elapsed)))
            attempt += 1
            continue
        with _lock:
            _reached.add(key)
            _outage.discard(key)
        if attempt:
            _log.warning("the database %s is back after %.1f s; going on", key, time.monotonic() - start)
        return result


def reached(url: Any) -> None:
    """Record that the server of ``url`` was reached (opening a storage connects before any engine is set up)."""
    with _lock:
        _reached.add(mask_url(url))
