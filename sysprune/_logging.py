"""sysprune's own logger, in the manner of :mod:`optuna.logging`.

Every module logs through ``get_logger(__name__)``: a child of the library logger ``"sysprune"``. Library code never
configures the root logger and attaches no handler: an application that configures :mod:`logging` itself
(``logging.basicConfig``) receives sysprune's records through propagation, and one that does not still sees
warnings and errors on stderr (Python's last-resort handler), never INFO chatter. (No ``NullHandler`` either: it
would silence those warnings, e.g. a study that could not be published to the dashboard.)

The command line asks for output with :func:`enable_default_handler` (one stderr handler, Optuna's line format) and
chooses how much with :func:`set_verbosity`. Whatever that handler writes — a message, a traceback — passes
through :func:`sysprune._redact.redact` first: no credential of a storage URL reaches a log line; :func:`redact_handlers`
does the same for another library's handlers (Optuna's), :func:`format_exception` for a traceback the command line
prints itself, and :func:`redacting_thread_hook` for a thread that dies.

Example::

    from sysprune._logging import get_logger

    _logger = get_logger(__name__)
    _logger.info("trial %d pruned: %s", number, reason)
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from collections.abc import Callable
from typing import IO

from sysprune._redact import redact

__all__ = [
    "LIBRARY_LOGGER",
    "get_logger",
    "get_verbosity",
    "set_verbosity",
    "enable_default_handler",
    "disable_default_handler",
    "format_exception",
    "redact_handlers",
    "redacting_thread_hook",
]

#: Name of the library logger; every sysprune logger is a child of it.
LIBRARY_LOGGER = "sysprune"
#: Optuna's line format: ``[I 2026-11-28 10:00:00,123] message``.
DEFAULT_FORMAT = "[%(levelname)1.1s %(asctime)s] %(message)s"

_lock = threading.Lock()
_default_handler: logging.Handler | None = None


def _library_logger() -> logging.Logger:
    return logging.getLogger(LIBRARY_LOGGER)


def get_logger(name: str) -> logging.Logger:
    """The logger for module ``name``: ``name`` itself under ``sysprune``, else ``sysprune.<name>``."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    if name != LIBRARY_LOGGER and not name.startswith(LIBRARY_LOGGER + "."):
        name = f"{LIBRARY_LOGGER}.{name}"
    return logging.getLogger(name)


def get_verbosity() -> int:
    """The effective level of the library logger (``logging.WARNING`` unless someone set it)."""
    return _library_logger().getEffectiveLevel()


def set_verbosity(level: int | str) -> None:
    """Set the library logger's level: ``logging.DEBUG`` ... ``logging.ERROR``, or the level's name."""
    if isinstance(level, str):
        resolved = logging.getLevelName(level.upper())
        if not isinstance(resolved, int):
            raise ValueError(f"unknown log level {level!r}; valid: DEBUG, INFO, WARNING, ERROR, CRITICAL")
        level = resolved
    if isinstance(level, bool) or not isinstance(level, int):
        raise ValueError(f"level must be an int or a level name, got {level!r}")
    _library_logger().setLevel(level)


def enable_default_handler(level: int | str | None = logging.INFO, stream: IO[str] | None = None) -> logging.Handler:
    """Send sysprune's records to ``stream`` (stderr by default), one line each; for the command line only.

    Idempotent: a second call replaces the first handler (so a test can point it at another stream). Records stop
    propagating to the root logger while the handler is installed, so nothing is printed twice.
    """
    global _default_handler
    with _lock:
        logger = _library_logger()
        if _default_handler is not None:
            logger.removeHandler(_default_handler)
        handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
        handler.setFormatter(RedactingFormatter(DEFAULT_FORMAT))
        logger.addHandler(handler)
        logger.propagate = False
        _default_handler = handler
    if level is not None:
        set_verbosity(level)
    return handler


def disable_default_handler() -> None:
    """Remove the handler added by :func:`enable_default_handler` and restore propagation."""
    global _default_handler
    with _lock:
        if _default_handler is None:
            return
        logger = _library_logger()
        logger.removeHandler(_default_handler)
        logger.propagate = True
        _default_handler = None


class RedactingFormatter(logging.Formatter):
    """A formatter whose every line (message, traceback) has credentials masked (:func:`sysprune._redact.redact`)."""

    def __init__(self, fmt: str | None = None, *, inner: logging.Formatter | None = None) -> None:
        super().__init__(fmt)
        self._inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return redact(self._inner.format(record) if self._inner is not None else super().format(record))


def redact_handlers(logger: logging.Logger) -> None:
    """Mask credentials in whatever ``logger``'s own handlers write (e.g. Optuna's, ``logging.getLogger("optuna")``),
    keeping each handler's format."""
    for handler in logger.handlers:
        if not isinstance(handler.formatter, RedactingFormatter):
            handler.setFormatter(RedactingFormatter(inner=handler.formatter or logging.Formatter()))


def format_exception(error: BaseException) -> str:
    """``error``'s traceback (its chain included) as Python prints it, credentials masked."""
    return redact("".join(traceback.format_exception(type(error), error, error.__traceback__)))


def redacting_thread_hook(
    quiet: Callable[[BaseException], bool],
) -> Callable[[threading.ExceptHookArgs], None]:
    """A ``threading.excepthook``: the traceback of a thread that dies, credentials masked; an exception for which
    ``quiet`` says True (a database fault the main thread reports in one line) only as a DEBUG record."""

    def hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit or args.exc_value is None:
            return
        name = args.thread.name if args.thread is not None else "?"
        if quiet(args.exc_value):
            get_logger(__name__).debug("thread %s stopped: %s", name, args.exc_value)
            return
        sys.stderr.write(f"Exception in thread {name}:\n{format_exception(args.exc_value)}")

    return hook
