"""How a ``sysprune`` subcommand is declared: its handler's docstring is its help.

The docstring's first line is the one-line help ``sysprune --help`` lists; the paragraphs after it are the
description (each paragraph filled to the terminal's width, words kept whole); a last paragraph that starts with
``example:`` is shown as written, after the options. ``cli.py`` and ``analysis/_command.py`` declare their
subcommands this way, so every one has the same parts (``tests/test_cli.py`` checks each has an example).
"""

from __future__ import annotations

import argparse
import inspect
import shutil
import textwrap
from collections.abc import Callable
from typing import Any

Handler = Callable[[argparse.Namespace], int]


def add_command(sub: Any, name: str, handler: Handler) -> argparse.ArgumentParser:
    """Add subcommand ``name`` to ``sub`` (``ArgumentParser.add_subparsers()``), documented by ``handler``'s
    docstring and run by ``handler(args)``. ValueError for a handler without a help line or an example."""
    doc = inspect.cleandoc(handler.__doc__ or "")
    paragraphs = [p.strip() for p in doc.split("\n\n") if p.strip()]
    if len(paragraphs) < 3 or not paragraphs[-1].startswith("example:") or "\n" in paragraphs[0]:
        raise ValueError(
            f"{handler.__name__}: its docstring must be a help line, a description and an 'example:' paragraph"
        )
    # Filled to the terminal (as argparse fills option help), never wider than 100 columns: words are kept whole.
    width = max(40, min(shutil.get_terminal_size().columns, 100) - 2)
    description = "\n\n".join(
        textwrap.fill(" ".join(p.split()), width, break_long_words=False, break_on_hyphens=False)
        for p in paragraphs[1:-1]
    )
    parser = sub.add_parser(
        name,
        help=paragraphs[0],
        description=description,
        epilog=paragraphs[-1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(func=handler)
    return parser
