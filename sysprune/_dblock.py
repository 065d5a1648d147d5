"""sysprune's lock on a study database: short, bounded pieces of work that concurrent workers must not interleave.

PostgreSQL: a session advisory lock (released by the server when its holder's connection drops). SQLite: an
exclusive ``flock`` on ``<database>-sysprune.lock`` beside the file (released by the kernel when its holder dies).
Held to create the schema and a study (N workers started at once on a new database), and to claim a trial slot.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _lock_key(url: str) -> int:
    return int.from_bytes(hashlib.sha256(b"sysprune:" + url.encode()).digest()[:8], "little", signed=True)


@contextlib.contextmanager
def database_lock(url: str, engine: Any = None) -> Iterator[None]:
    """Hold sysprune's lock on the database of ``url`` (see the module docstring).

    SQLite: an exclusive ``flock`` on ``<database>-sysprune.lock``; PostgreSQL: ``pg_advisory_lock`` on a
    connection of ``engine`` (a new one when None). Other databases and in-memory SQLite: no lock (one worker).
    If the lock cannot be taken because the database cannot be reached, the block runs unlocked: opening the
    storage then reports why, in one line.
    """
    import sqlalchemy

    try:
        parsed = sqlalchemy.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        yield
        return
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        db = parsed.database
        if not db or db == ":memory:" or db.startswith("file:"):
            yield
            return
        import fcntl

        path = Path(db + "-sysprune.lock")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the flock
        return
    if backend == "postgresql":
        own = engine is None
        try:
            if own:
                engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
            conn = engine.connect()
        except Exception:  # unreachable, no driver, ...: make_storage says why
            yield
            return
        key = _lock_key(str(parsed.render_as_string(hide_password=True)))
        try:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            conn.commit()
            yield
        finally:
            try:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
            finally:
                conn.close()
                if own:
                    engine.dispose()
        return
    yield
