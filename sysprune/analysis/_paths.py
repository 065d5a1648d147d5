"""Where an analysis writes: every file lands inside its output folder, whatever the name it is made from.

A study's name is data (``--study-name``, a study file's ``name``, a name in someone else's database), not a path:
``../x``, ``/etc``, ``a/b``, a newline or a NUL in it must not steer a write. :func:`safe_name` keeps a name that is
already a plain file name (letters, digits, ``.``, ``_``, ``-``; not starting with a dot; at most 80 characters) and
turns any other into a slug plus a short hash of the whole name (``a_b-3f2c9e01d4``: readable, and two names never
share a folder by chance). :func:`study_dir` and :func:`out_file` are the one way the analyses build their paths.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

#: A name used as it is.
_SAFE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,79}")
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9._-]+")
#: Characters of the slug kept before the hash, and hex digits of the hash.
SLUG_CHARS = 40
HASH_CHARS = 10


def safe_name(name: str) -> str:
    """``name`` as one plain file name: unchanged when it is one already, else a slug and a hash of ``name``."""
    if _SAFE.fullmatch(name):
        return name
    slug = _UNSAFE_RUN.sub("_", name).strip("._-")[:SLUG_CHARS].rstrip("._-") or "study"
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_CHARS]
    return f"{slug}-{digest}"


def study_dir(out: Path | str, name: str) -> Path:
    """The folder of study ``name``'s results: a child of ``out``, whatever ``name`` holds."""
    return Path(out) / safe_name(name)


def out_file(folder: Path, stem: str, suffix: str) -> Path:
    """A file of ``folder`` named from data (``rq1_<metric>``): ``stem`` made safe, then ``suffix`` (``.html``)."""
    return folder / f"{safe_name(stem)}{suffix}"
