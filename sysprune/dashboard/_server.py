"""Serving optuna-dashboard on a study database, in this process.

Why in-process (``optuna_dashboard.wsgi`` on a wsgiref server we build) rather than a subprocess or
``optuna_dashboard.run_server``: we open the storage ourselves, so a wrong URL or a missing file is one clear line
before anything listens and nothing is created; we bind the socket ourselves, so a port in use is one line too,
``--port 0`` picks a free port, and the URL we print is the one actually bound; and Ctrl-C or SIGTERM stops one
process, with nothing left behind. ``run_server`` offers none of these (it binds inside bottle and prints its own
banner) and a subprocess would add a second process to stop and a second error channel to parse.

Reading a study that workers are writing must not disturb them (optuna-dashboard #545: "database is locked" in the
*study* process). With SQLite's rollback journal a reader's shared lock holds off a writer's commit, and a worker
waiting longer than its busy timeout fails. In WAL mode readers and writers never wait for each other; sysprune's
store already puts its databases in WAL mode, and :func:`open_storage` converts an older file once (a header change,
no data touched). The dashboard's own connections wait up to 30 s for a lock instead of failing (both set in
:func:`sysprune.storage._open.tune_sqlite_engine`, the one place for SQLite's settings).
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import optuna

from sysprune._logging import get_logger
from sysprune.storage._open import open_existing
from sysprune.exceptions import DashboardError

__all__ = ["DashboardError", "exposure_warning", "make_dashboard_server", "open_storage", "serve", "server_url"]

_logger = get_logger(__name__)


def open_storage(storage_url: str) -> optuna.storages.RDBStorage:
    """Open an existing study database for the dashboard; create nothing (:func:`sysprune.storage._open.open_existing`:
    an SQLite file is switched to WAL once, and its connections wait for a lock instead of failing).

    Raises:
        StorageError: if the URL is malformed or the server cannot be reached; its subclass
            DatabaseNotFound if the SQLite file is missing or is not a database, or the database holds no Optuna
            tables.
    """
    return open_existing(storage_url)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a browser's open request never holds up Ctrl-C


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        _logger.debug("%s %s", self.address_string(), format % args)


def make_dashboard_server(
    storage: optuna.storages.BaseStorage, host: str, port: int, artifact_dir: str | os.PathLike[str] | None
) -> WSGIServer:
    """Bind optuna-dashboard to ``host:port`` (``port`` 0: any free port); serve it with :func:`serve`.

    Raises:
        DashboardError: if the address cannot be bound (port in use, unknown host, no permission).
    """
    import optuna_dashboard
    from optuna.artifacts import FileSystemArtifactStore

    store = FileSystemArtifactStore(str(artifact_dir)) if artifact_dir is not None else None
    app = optuna_dashboard.wsgi(storage, artifact_store=store)
    server_class = _Server6 if ":" in host else _Server
    try:
        return make_server(host, port, app, server_class=server_class, handler_class=_QuietHandler)
    except OSError as e:
        hint = " (try another --port)" if e.errno in (98, 48, 10048) else ""
        raise DashboardError(f"cannot listen on {host}:{port}: {e.strerror or e}{hint}") from None


def server_url(server: WSGIServer) -> str:
    """The address to open on this machine (``0.0.0.0`` and ``::`` are reached through the loopback address)."""
    host, port = server.server_address[:2]
    if not isinstance(host, str):  # getsockname() of an AF_INET/AF_INET6 socket names its host as a str
        raise TypeError(f"server_address host must be a str, got {host!r}")
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/dashboard"


def is_loopback(host: str) -> bool:
    """Whether ``host`` (as given to ``--host``) is reachable from this machine only."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


def exposure_warning(host: str, port: int) -> str | None:
    """The warning to print when the dashboard listens beyond loopback (it has no authentication), naming the real
    address it is bound to; None on loopback. Pure."""
    if is_loopback(host):
        return None
    where = "every network interface" if host in ("0.0.0.0", "::", "") else host
    return (
        f"warning: listening on {host}:{port} ({where}) without authentication: anyone who can reach this port "
        "sees and can change every study in the database; use --host 127.0.0.1 and an SSH tunnel instead"
    )


class _Stop(BaseException):
    """Raised in the main thread by SIGTERM, to leave serve_forever the way Ctrl-C does."""


@contextmanager
def _sigterm_stops() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise _Stop

    previous = signal.signal(signal.SIGTERM, handler)
    # Ctrl-C leaves serve_forever as KeyboardInterrupt, whatever the command set (it ends a study run at once).
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


def serve(server: WSGIServer, on_ready: Callable[[], None] | None = None) -> None:
    """Serve until Ctrl-C or SIGTERM, then close the socket; return normally on either.

    ``on_ready`` runs once both signals are handled (print the URL there: whoever reads it may stop us at once).
    """
    try:
        with _sigterm_stops():
            if on_ready is not None:
                on_ready()
            server.serve_forever(poll_interval=0.2)
    except (KeyboardInterrupt, _Stop):
        pass
    finally:
        server.server_close()
