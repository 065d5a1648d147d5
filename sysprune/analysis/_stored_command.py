"""The ``trials`` and ``best`` subcommands (``sysprune/cli.py`` registers them; ``studies --storage`` calls
:func:`print_stored_studies`): a stored study read as ``optuna trials`` / ``optuna best-trial`` read it."""

from __future__ import annotations

import argparse

from sysprune._commands import add_command
from sysprune.analysis._stored import STATES, best_lines, load_stored, studies_lines, trials_lines
from sysprune.analysis._table import terminal_width
from sysprune.spec import SpecError
from sysprune.storage._open import DEFAULT_STORAGE


def _storage(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", default=DEFAULT_STORAGE, help=f"SQLAlchemy URL (default: {DEFAULT_STORAGE})")


def _study_name(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "study_name", nargs="?", default=None, help="the study in the database (default: the only one there)"
    )


def _states(text: str) -> tuple[str, ...]:
    states = tuple(s.strip().upper() for s in text.split(",") if s.strip())
    bad = [s for s in states if s not in STATES]
    if bad or not states:
        valid = ",".join(s.lower() for s in STATES)
        raise argparse.ArgumentTypeError(f"unknown state {','.join(bad).lower() or text!r}; valid: {valid}")
    return states


def _limit(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return n


def add_stored_parsers(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "trials", cmd_trials)
    _study_name(p)
    _storage(p)
    p.add_argument("--state", type=_states, default=(), help="only these states, e.g. pruned or complete,pruned")
    p.add_argument("--last", type=_limit, default=None, metavar="N", help="only the last N trials")

    p = add_command(sub, "best", cmd_best)
    _study_name(p)
    _storage(p)


def print_stored_studies(url: str) -> int:
    print("\n".join(studies_lines(url, terminal_width())))
    return 0


def cmd_trials(args: argparse.Namespace) -> int:
    """list a stored study's trials (state, value, parameters, budgeted metrics, why pruned)

    One row per trial, sized to the terminal: its state, objective value, parameters, the final value of each
    budgeted metric, and why it was pruned or failed. `sysprune studies --storage URL` lists the stored studies.

    example:
      sysprune trials digits_mlp
      sysprune trials digits_mlp --state pruned --last 10 --storage sqlite:///results/sysprune.db
    """
    if args.study_name is not None and args.study_name.endswith(".toml"):
        raise SpecError(f"{args.study_name}: pass the study's name in the database, not its file")
    study = load_stored(args.storage, args.study_name)
    print("\n".join(trials_lines(study, states=args.state, limit=args.last, width=terminal_width())))
    return 0


def cmd_best(args: argparse.Namespace) -> int:
    """show a stored study's best feasible trial (value, parameters, budgeted metrics)

    The best complete trial within the study's budgets: its value, parameters, each budgeted metric against its
    budget and the compute it took (several objectives: the Pareto front).

    example:
      sysprune best digits_mlp
      sysprune best digits_mlp --storage sqlite:///results/sysprune.db
    """
    if args.study_name is not None and args.study_name.endswith(".toml"):
        raise SpecError(f"{args.study_name}: pass the study's name in the database, not its file")
    print("\n".join(best_lines(load_stored(args.storage, args.study_name))))
    return 0
