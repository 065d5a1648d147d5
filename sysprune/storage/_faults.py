"""A database fault, wherever it surfaces, as one line naming the cause and what to do.

A database error raised inside Optuna rarely reaches its caller as itself: Optuna wraps it
(``StorageInternalError``), or fails again while recording the failure and raises something else from a ``finally``
(``UnboundLocalError``), so the cause is somewhere in the exception's chain. :func:`database_fault` walks the chain
(``__cause__``, ``__context__``, SQLAlchemy's ``orig``) for a database error and says what it means:
:func:`classify` reads the driver's message (a pure function: SQLite's and libpq's wording).
"""

from __future__ import annotations

import errno
from collections.abc import Iterator

from sysprune._redact import mask_url, redact
from sysprune.exceptions import DatabaseFault, first_line
from sysprune.storage._reconnect import RETRY_ENV, retry_window

#: The driver's words for each kind of fault (lower case).
_WORDS: dict[str, tuple[str, ...]] = {
    "full": ("database or disk is full", "no space left on device", "could not extend file", "disk quota exceeded"),
    "corrupt": ("database disk image is malformed", "file is not a database", "malformed database schema"),
    "readonly": ("attempt to write a readonly database", "read-only file system", "readonly database"),
    "io": ("disk i/o error", "unable to open database file", "input/output error"),
    "locked": ("database is locked",),
    "lost": (
        "connection refused",
        "server closed the connection",
        "terminating connection",
        "could not connect",
        "connection to server",
        "the database system is shutting down",
        "the database system is starting up",
        "connection already closed",
        "ssl syscall error",
        "timeout expired",
        "no route to host",
        "could not receive data from server",
    ),
}
_ERRNO_KIND = {errno.ENOSPC: "full", errno.EDQUOT: "full", errno.EROFS: "readonly", errno.EIO: "io"}
#: Modules whose exceptions are database errors (DB-API drivers, SQLAlchemy, Optuna's storage wrapper).
_DATABASE_MODULES = ("sqlite3", "psycopg", "psycopg2", "pymysql", "MySQLdb", "sqlalchemy", "optuna.exceptions")


def classify(message: str) -> str | None:
    """The kind of fault a database error's message names: ``full``, ``corrupt``, ``readonly``, ``io``, ``locked``,
    ``lost`` (the server went away), or None."""
    text = message.lower()
    return next((kind for kind, words in _WORDS.items() if any(w in text for w in words)), None)


def causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and every exception in its chain (cause, context, SQLAlchemy's ``orig``), each once."""
    seen: set[int] = set()
    todo = [error]
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        for nxt in (getattr(e, "orig", None), e.__cause__, e.__context__):
            if isinstance(nxt, BaseException):
                todo.append(nxt)


def _is_database_error(e: BaseException) -> bool:
    module = type(e).__module__ or ""
    return any(module == m or module.startswith(m + ".") for m in _DATABASE_MODULES)


def message(kind: str, shown: str, reason: str, window: float | None = None) -> str:
    """The one line for a fault of ``kind`` on the database shown as ``shown`` (credentials masked)."""
    kept = "the study is kept as last written"
    return {
        "full": f"the database {shown} is full ({reason}): free space on its disk, then run the same command "
        f"again; {kept}",
        "corrupt": f"the database {shown} is corrupt ({reason}): restore it from a copy or give another --storage; "
        "sysprune wrote nothing more to it",
        "readonly": f"cannot write the database {shown} ({reason}): check the file's permissions and its disk; {kept}",
        "io": f"cannot read or write the database {shown} ({reason}): check the file, its folder and its disk; {kept}",
        "locked": f"the database {shown} stayed locked for over 30 s ({reason}): another program holds it "
        "(use PostgreSQL for many workers); run the same command again",
        "lost": f"lost the database {shown} ({reason})"
        + (f" and it did not come back within {window:g} s ({RETRY_ENV})" if window is not None else "")
        + f"; {kept} — run the same command again once the server is up",
    }[kind]


def database_fault(error: BaseException, url: str | None = None) -> DatabaseFault | None:
    """The :class:`DatabaseFault` that ``error`` comes down to (one line), or None if no database error is in its
    chain. ``url`` names the database in the message (masked)."""
    chain = list(causes(error))
    for e in chain:
        if isinstance(e, DatabaseFault):
            return e
    shown = mask_url(url) if url else "in use"
    for e in chain:
        if isinstance(e, OSError) and e.errno in _ERRNO_KIND:
            kind: str | None = _ERRNO_KIND[e.errno]
        elif _is_database_error(e):
            kind = classify(str(e))
        else:
            continue
        if kind is None:
            continue
        window = None
        if kind == "lost":
            try:
                window = retry_window()
            except ValueError:
                window = None
        return DatabaseFault(message(kind, shown, redact(first_line(e)), window), kind)
    return None
