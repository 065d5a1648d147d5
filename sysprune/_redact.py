"""Credentials never shown: masking a storage URL, and redacting the secrets this process has seen from any text.

A storage URL may carry a secret in its userinfo (``postgresql://u:PASSWORD@host/db``), in its query
(``?password=...``, ``?sslpassword=...``, ``?token=...``: anything SQLAlchemy or libpq passes on to the driver) or in
a libpq ``key=value`` string. :func:`mask_url` masks every one of them, textually, so that a URL SQLAlchemy cannot
parse (a typo, a port that is not a number) is masked as well; masking errs on the side of hiding more.

:func:`remember` records the secrets of a URL the process uses (the command line does it for ``--storage``,
opening a storage does it too); :func:`redact` removes them, and anything that looks like a URL or a ``password=``
pair, from free text: log records (:mod:`sysprune._logging`), error lines and ``--debug`` tracebacks.
"""

from __future__ import annotations

import re
import threading
from typing import Any
from urllib.parse import unquote

#: What a masked secret reads as.
MASK = "***"
#: A query or ``key=value`` name whose value is a secret (password, sslpassword, passfile, pwd, token, api_key, ...).
SECRET_NAME = re.compile(r"(?i)pass|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential|auth")
#: ``name=value`` pairs with a secret name, in a libpq string (``host=db password=...``), a query or a message.
_PAIR = re.compile(
    r"(?i)(\b[\w.-]*(?:pass|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential|auth)[\w.-]*)"
    r"(\s*=\s*)('[^']*'|\"[^\"]*\"|[^\s&;,'\"]+)"
)
#: Something that looks like a URL inside a longer text.
_URL_IN_TEXT = re.compile(r"[A-Za-z][\w+.-]*://[^\s'\"<>`)\]]+")
#: Secrets shorter than this are only masked where they stand in a URL or pair, never replaced in free text
#: (replacing "pw" everywhere would garble every message).
MIN_FREE_TEXT_SECRET = 4

_known: set[str] = set()
_lock = threading.Lock()


def _text(url: Any) -> str:
    render = getattr(url, "render_as_string", None)  # an sqlalchemy URL: its text with the password, to mask here
    return render(hide_password=False) if callable(render) else str(url)


def _split(text: str) -> tuple[str, str, str, str]:
    """``(head, userinfo, rest, query)``: ``head`` up to the authority (``scheme://``), ``userinfo`` up to and
    without the last ``@`` before the query (empty when there is none), ``rest`` the host and path, ``query``
    what follows ``?`` (with the ``?``)."""
    i = text.find("://")
    start = i + 3 if i >= 0 else (text.find("//") + 2 if "//" in text else 0)
    head, body = text[:start], text[start:]
    q = body.find("?")
    query = body[q:] if q >= 0 else ""
    body = body[:q] if q >= 0 else body
    at = body.rfind("@") if not body.startswith("/") else -1
    if at < 0:
        return head, "", body, query
    return head, body[:at], body[at + 1 :], query


def _mask_pairs(text: str) -> str:
    return _PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)


def mask_url(url: Any) -> str:
    """The URL as text with every credential masked (``postgresql://u:***@host/db?sslpassword=***``); text that is
    not a URL comes back unchanged unless it holds a ``password=``-like pair."""
    head, userinfo, rest, query = _split(_text(url))
    if userinfo:
        user, colon, _password = userinfo.partition(":")
        userinfo = f"{user}:{MASK}@" if colon else f"{userinfo}@"
    if query:
        parts = re.split(r"([&;])", query[1:])
        query = "?" + "".join(_mask_param(p) for p in parts)
    return _mask_pairs(head + userinfo + rest + query)


def _mask_param(part: str) -> str:
    name, eq, _value = part.partition("=")
    return f"{name}={MASK}" if eq and SECRET_NAME.search(unquote(name)) else part


def url_secrets(url: Any) -> set[str]:
    """The secret values in ``url`` as they may appear in text: each as written and percent-decoded."""
    text = _text(url)
    _, userinfo, _, query = _split(text)
    found: list[str] = []
    if ":" in userinfo:
        found.append(userinfo.partition(":")[2])
    for part in re.split(r"[&;]", query[1:]) if query else []:
        name, eq, value = part.partition("=")
        if eq and SECRET_NAME.search(unquote(name)):
            found.append(value)
    found += [m.group(3).strip("'\"") for m in _PAIR.finditer(text)]
    out: set[str] = set()
    for s in found:
        out.update(v for v in (s, unquote(s), unquote(s.replace("+", " "))) if v)
    return out


def has_secrets(url: Any) -> bool:
    """Whether ``url`` carries a credential (its text differs once masked)."""
    return mask_url(url) != _text(url)


def remember(url: Any) -> None:
    """Record the secrets of ``url`` (a storage this process uses) so that :func:`redact` removes them anywhere.
    A secret the masked URL shows anyway (a password equal to the user or database name) is not recorded: masking it
    in free text would hide nothing and garble every message that names the user."""
    shown = mask_url(url)
    secrets = {s for s in url_secrets(url) if s not in shown}
    if secrets:
        with _lock:
            _known.update(secrets)


def redact(text: str) -> str:
    """``text`` with every remembered secret, every URL's credentials and every ``password=``-like pair masked."""
    if _known:
        with _lock:
            known = sorted((s for s in _known if len(s) >= MIN_FREE_TEXT_SECRET), key=len, reverse=True)
        for s in known:
            text = text.replace(s, MASK)
    text = _URL_IN_TEXT.sub(lambda m: mask_url(m.group(0)), text)
    return _mask_pairs(text)


def forget_all() -> None:
    """Forget the remembered secrets (tests)."""
    with _lock:
        _known.clear()
