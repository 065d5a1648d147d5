"""The ``studies``, ``trials`` and ``best`` subcommands (``sysprune/cli.py`` registers them): the study files in a
folder, or what a study database holds, read as ``optuna studies`` / ``trials`` / ``best-trial`` read it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sysprune._commands import add_command
from sysprune.analysis._stored import STATES, best_lines, load_stored, studies_lines, trials_lines
from sysprune.analysis._table import terminal_width
from sysprune.metrics._format import fmt_budgets
from sysprune.spec import SpecError, list_specs, load_spec
from sysprune.storage._open import DEFAULT_STORAGE, STORAGE_ENV


def _storage(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--storage", default=None, help=f"SQLAlchemy URL (default: ${STORAGE_ENV} if set, else {DEFAULT_STORAGE})"
    )


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


# --------------------------------------------------------------------------------------------------- studies


def add_studies_parser(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "studies", _cmd_studies)
    p.add_argument("directory", nargs="?", default="studies", help="folder of *.toml files (default: studies)")
    p.add_argument("--names", action="store_true", help="print only the study file names, one per line")
    p.add_argument(
        "--storage",
        dest="stored",
        default=None,
        metavar="URL",
        help="list the studies stored in this database instead (trials by state, best feasible value, policy, budgets)",
    )


def _cmd_studies(args: argparse.Namespace) -> int:
    """list the study files (model, dataset, steps, budgets), or the studies stored in a database

    List the study files in a folder with their model, dataset, steps, trials, pruner and budgets; with --storage,
    the studies stored in that database (as `optuna studies` does), with their trials by state, best feasible
    value, policy and budgets. `sysprune trials` and `sysprune best` show one stored study.

    example:
      sysprune studies
      sysprune studies --names   # just the names, one per line
      sysprune studies --storage sqlite:///results/sysprune.db
    """
    if args.stored is not None:
        return print_stored_studies(args.stored)
    d = Path(args.directory)
    if not d.is_dir():
        raise SpecError(f"{d}: no such folder")
    paths = list_specs(d)
    if args.names:
        for p in paths:
            print(p.stem)
        return 0
    rows = [("study", "model", "dataset", "steps", "trials", "pruner", "budgets")]
    bad = 0
    for p in paths:
        try:
            s = load_spec(p)
        except SpecError as e:
            bad += 1
            print(f"invalid: {e}", file=sys.stderr)
            continue
        ds = s.dataset.name + (f" ({s.dataset.subsample})" if s.dataset.subsample else "")
        rows.append((p.stem, s.model, ds, str(s.steps), str(s.n_trials), s.pruner.policy, fmt_budgets(s.budgets)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return 2 if bad else 0  # the command's usage status: a study file is invalid
