"""A subcommand declared by its handler's docstring: help line, description, example."""

from __future__ import annotations

import argparse

import pytest

from sysprune._commands import add_command


def _hello(args: argparse.Namespace) -> int:
    """greet someone

    Print a greeting for NAME, as long as the
    line is.

    A second paragraph.

    example:
      sysprune hello world
    """
    return 0


def test_the_docstring_is_the_help_and_the_handler_runs(capsys):
    parser = argparse.ArgumentParser(prog="sysprune")
    sub = parser.add_subparsers(dest="command")
    p = add_command(sub, "hello", _hello)
    p.add_argument("name")
    args = parser.parse_args(["hello", "world"])
    assert args.func is _hello and args.name == "world"
    assert p.description == "Print a greeting for NAME, as long as the line is.\n\nA second paragraph."
    assert p.epilog == "example:\n  sysprune hello world"
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    assert "hello     greet someone" in capsys.readouterr().out


def test_a_handler_without_an_example_is_refused():
    def bare(args: argparse.Namespace) -> int:
        """do something"""
        return 0

    sub = argparse.ArgumentParser().add_subparsers()
    with pytest.raises(ValueError, match="bare: its docstring must be a help line, a description and an .example:"):
        add_command(sub, "bare", bare)
