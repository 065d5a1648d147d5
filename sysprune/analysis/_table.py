"""Plain-text tables sized to a terminal: columns padded to their widest cell, and, when the table is wider than
the terminal, the widest columns cut (``…``) until it fits — no line wraps. Off a terminal nothing is cut."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Mapping, Sequence

GAP = "  "
#: A column is never cut below this many characters (its header may be cut too).
MIN_COLUMN = 6


def terminal_width() -> int | None:
    """The terminal's width when stdout is a terminal, else None (a pipe or a file takes whole lines)."""
    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None


def fit_widths(widths: Sequence[int], width: int | None, gap: int = len(GAP)) -> list[int]:
    """Column widths that fit ``width`` characters: the widest column loses a character at a time, down to
    :data:`MIN_COLUMN`; the result may still be too wide when every column is at its minimum."""
    out = list(widths)
    if width is None:
        return out
    while sum(out) + gap * (len(out) - 1) > width:
        widest = max(range(len(out)), key=lambda i: out[i])
        if out[widest] <= MIN_COLUMN:
            break
        out[widest] -= 1
    return out


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]], width: int | None = None) -> list[str]:
    """The table's lines: the header, a rule, the rows; cells cut to fit ``width`` (None: nothing cut)."""
    table = [list(header), *[list(r) for r in rows]]
    widths = fit_widths([max(len(r[i]) for r in table) for i in range(len(header))], width)
    lines = [GAP.join(_cut(c, w).ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
    lines.insert(1, GAP.join("-" * w for w in widths))
    return lines


def records_lines(records: Sequence[Mapping[str, str]], width: int | None = None) -> list[str]:
    """A table of one record per row (columns in order of first appearance, a key a record lacks an empty cell),
    as :func:`text_table` lines; ``[]`` for no records."""
    if not records:
        return []
    columns = list(dict.fromkeys(k for r in records for k in r))
    return text_table(columns, [[r.get(c, "") for c in columns] for r in records], width)
