"""The Markdown page each analysis writes beside its figures (``compare.md``, ``replay.md``, ``rq1.md``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from sysprune.metrics._format import records_table


def write_page(
    path: Path, title: str, intro: str, rows: Sequence[Mapping[str, str]], figures: Sequence[Path] = ()
) -> Path:
    """Write ``# title``, one paragraph, the table of ``rows`` and links to the figures (files beside ``path``);
    return ``path``."""
    lines = [f"# {title}", "", intro, "", records_table(rows), ""]
    if figures:
        lines += ["Figures: " + ", ".join(f"[{p.stem}]({p.name})" for p in figures), ""]
    path.write_text("\n".join(lines))
    return path
