"""The ``sysprune`` command. Library errors (every one a :class:`sysprune.exceptions.SyspruneError`) become one line
on stderr and exit status 2; ``--debug`` shows the traceback."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
import textwrap
from typing import NoReturn
import threading

import sqlalchemy.exc
from collections.abc import Sequence
from pathlib import Path
from sysprune.study._runner import run_study
from sysprune.study._open import open_study
from sysprune.study._progress import Progress
from sysprune.spec import SpecError, StudySpec, list_specs, load_spec
from sysprune.analysis._compare import policy_spec
from sysprune.analysis import outcome_lines, run_summary
from sysprune.study._workers import WorkerConfig, parse_cpus, run_worker
from sysprune.dashboard import DashboardPublisher, default_artifact_dir
from sysprune.metrics._format import fmt_budgets
from sysprune.metrics._registry import METRICS
from sysprune._version import __version__
from sysprune.dashboard._command import add_parser
from sysprune.analysis._command import add_parsers
from sysprune.analysis._stored_command import add_stored_parsers, add_studies_parser
from sysprune.analysis._stored import closest
from sysprune.storage._open import DEFAULT_STORAGE, STORAGE_ENV, default_storage, paste_url
from sysprune.storage._open import mask_url as mask
from sysprune.storage._faults import database_fault
from sysprune._redact import has_secrets, redact, remember
from sysprune.exceptions import InvalidArgument, SyspruneError
from sysprune.spec import SEED, STUDY_NAME, check_argument
from sysprune._commands import add_command
from sysprune._logging import enable_default_handler, format_exception, redact_handlers, redacting_thread_hook
from sysprune._signals import EXIT_INTERRUPTED, EXIT_TERMINATED, Terminated, exit_on_signal, ignore_signals, is_command

EXIT_USAGE = 2  # bad input: a study file, an argument, a dataset not available
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: stdout was closed early (``sysprune run ... | head -1``), as a shell reports it

#: Library argument -> this command's flag, for errors that name an argument (``n_trials: value 0 is invalid; ...``
#: is shown as ``--n-trials: value 0 is invalid; ...``). A subcommand that adds a flag for a library argument adds
#: its line here.
FLAGS = {
    "n_trials": "--n-trials",
    "seed": "--seed",
    "study_name": "--study-name",
    "storage_url": "--storage",
    "max_compute_s": "--max-compute-s",
    "workers": "--workers",
}
EXIT_BUG = 1  # an exception that is neither a user error nor a database fault: a bug, shown with its traceback

#: ``--storage``'s help, the same for every subcommand (the URL in the environment is never shown: it may hold a
#: password).
STORAGE_HELP = f"SQLAlchemy URL (default: ${STORAGE_ENV} if set, else {DEFAULT_STORAGE})"
#: The one line a Ctrl-C (exit 130) or SIGTERM (exit 143) ends the command with, at whatever instant it comes.
SIGNAL_LINES: dict[int, str] = {
    signal.SIGINT: "interrupted; the study is kept — run the same command again to resume",
    signal.SIGTERM: "stopped by SIGTERM; the study is kept — run the same command again to resume",
}


# ------------------------------------------------------------------------------------------------------- run


def _add_study_arguments(p: argparse.ArgumentParser, *, seed_help: str, n_trials_help: str | None = None) -> None:
    """The arguments ``run`` and ``worker`` share: the study file, where it is stored, its seed and the display."""
    p.add_argument("study", help="the study file (studies/*.toml)")
    p.add_argument("--storage", default=None, help=STORAGE_HELP)
    if n_trials_help is not None:
        p.add_argument("--n-trials", type=int, default=None, help=n_trials_help)
    p.add_argument("--study-name", default=None, help="study name in the database (default: the file's name)")
    p.add_argument(
        "--policy",
        default=None,
        metavar="NAME",
        help="record the study under this pruning policy instead of the file's (its own parameters if the file uses "
        "it, else the defaults), as study <file's name>.<policy> unless --study-name is given; e.g. --policy none "
        "records full curves for `sysprune replay`",
    )
    p.add_argument("--seed", type=int, default=None, help=seed_help)


def _add_display_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.add_argument(
        "--no-publish", action="store_true", help="do not publish figures/notes for optuna-dashboard after each trial"
    )


def _add_run(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "run", _cmd_run)
    _add_study_arguments(
        p,
        n_trials_help="add this many trials (default: top up to the file's n_trials)",
        seed_help="override the file's seed (a new study: resuming with another seed is refused)",
    )
    _add_display_arguments(p)
    p.add_argument(
        "--max-compute-s",
        type=float,
        default=None,
        help="stop once this run's trials spent this many CPU seconds (default: [study] max_compute_s)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="run N worker processes on the study, each pinned to its own cores (default 1; at most "
        "cores / trial.threads; with --ray: default one per trial.threads CPUs of the cluster)",
    )
    p.add_argument(
        "--oversubscribe",
        action="store_true",
        help="allow more workers than cores (time and latency metrics stop being comparable)",
    )
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="run the workers as Ray tasks on the cluster at ADDRESS (e.g. auto, ray://host:10001; "
        "a local cluster when no address is given); needs the [ray] extra",
    )


def _cmd_run(args: argparse.Namespace) -> int:
    """run (or resume) a study defined in a TOML file

    Run a study: one process per trial, per-step accuracy and system metrics stored beside the Optuna study.
    Running the same command again resumes the study: it runs until the study holds the file's n_trials trials;
    --n-trials N adds N more. A study is resumed only with the definition it was created with (seed, data split,
    budgets, pruner, search space, ...): a change is refused, naming what differs; --study-name starts a new study.

    example:
      sysprune run studies/digits_mlp.toml
      sysprune run studies/digits_mlp.toml --n-trials 5 --storage sqlite:///results/other.db
      sysprune run studies/digits_mlp.toml --policy none   # study digits_mlp.none: a recording for replay
    """
    spec = _with_policy(load_spec(_study_file(args.study)), args)
    callbacks: list = []

    def on_start(study, n_existing: int, todo: int) -> None:
        _credential_note(args.storage)
        where = f"{mask_url(args.storage)} (study {study.study_name!r})"
        if todo == 0:
            print(
                f"study {study.study_name!r} already has {n_existing}/{spec.n_trials} trials; nothing to run "
                f"(use --n-trials N to add more). Results: {where}"
            )
            return
        verb = "resuming" if n_existing else "starting"
        _print_wrapped(
            [
                f"{verb} {spec.name}: {spec.model} on {spec.dataset.name}, {todo} trial(s) x {spec.steps} steps, "
                f"pruner {spec.pruner.policy}, budgets {fmt_budgets(spec.budgets)} -> {where}"
            ]
        )
        if not args.quiet:
            callbacks.append(Progress(n_existing + todo, done=n_existing))
        callbacks.extend(_extra_callbacks(args))

    try:
        result = run_study(
            spec,
            storage_url=args.storage,
            study_name=args.study_name,
            n_trials=args.n_trials,
            seed=args.seed,
            callbacks=callbacks,
            on_start=on_start,
            max_compute_s=args.max_compute_s,
            workers=args.workers,
            oversubscribe=args.oversubscribe,
            ray_address=args.ray,
        )
    finally:
        _close_progress(callbacks)
    if result.n_run:
        _print_wrapped([*_outcome(result.study, args.storage), *run_summary(result.study, spec.steps)])
    return 0


def _study_file(arg: str) -> str:
    """``arg`` if it is a file; else SpecError naming the closest study file (``digits_mlp`` ->
    ``studies/digits_mlp.toml``), so a study's name or a typo is one line with the fix."""
    path = Path(arg)
    if path.is_file():
        return arg
    files = [str(p) for p in list_specs(Path("studies"))] if Path("studies").is_dir() else []
    by_stem = {Path(f).stem: f for f in files}
    stem = path.stem if path.stem in by_stem else closest(path.stem, list(by_stem))
    hint = f"; did you mean {by_stem[stem]}?" if stem else ""
    suffix = "" if path.suffix == ".toml" or hint else " (expected a .toml file)"
    raise SpecError(f"{arg}: study file not found{suffix}{hint}")


def _with_policy(spec: StudySpec, args: argparse.Namespace) -> StudySpec:
    """``--policy``: the file's study under another pruning policy, stored as its own study (``<name>.<policy>``)
    unless ``--study-name`` names one. The file's own policy changes nothing."""
    if args.policy is None or args.policy == spec.pruner.policy:
        return spec
    out = policy_spec(spec, args.policy, flag="--policy")
    if args.study_name is None:
        args.study_name = f"{spec.name}.{args.policy}"
    return out


def _print_wrapped(lines: Sequence[str]) -> None:
    """Print ``lines``; on a terminal each is wrapped to its width (the rest indented), words kept whole."""
    if sys.stdout.isatty():
        width = shutil.get_terminal_size().columns
        lines = [
            textwrap.fill(line, width, subsequent_indent="  ", break_long_words=False, break_on_hyphens=False)
            for line in lines
        ]
    print("\n".join(lines), flush=True)


def _add_worker(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "worker", _cmd_worker)
    _add_study_arguments(p, seed_help="override the file's seed")
    p.add_argument(
        "--cpus",
        default=None,
        metavar="LIST",
        help="pin this worker and its trial processes to these cores, e.g. 2,3 or 0-3 (default: not pinned)",
    )
    _add_display_arguments(p)


def _cmd_worker(args: argparse.Namespace) -> int:
    """join a study: run its trials in this process until it holds its n_trials (from another shell or machine)

    Run trials of a study beside the workers already on it (another shell, another machine), sharing its storage,
    until the study holds its target number of trials (the one the last 'sysprune run' set, else the file's
    n_trials). Creates the study if it does not exist yet: N workers may start at once. Use PostgreSQL for workers
    on several machines (docs/workers.md).

    example:
      sysprune worker studies/digits_mlp.toml --storage postgresql+psycopg2://user:password@dbhost/sysprune
      sysprune worker studies/digits_mlp.toml --cpus 2,3
    """
    spec = _with_policy(load_spec(_study_file(args.study)), args)
    cpus = parse_cpus(args.cpus) if args.cpus is not None else None
    if args.seed is not None:
        check_argument("seed", args.seed, SEED)
    if args.study_name is not None:
        check_argument("study_name", args.study_name, STUDY_NAME)
    cfg = WorkerConfig(
        spec=spec,
        storage_url=args.storage,
        study_name=args.study_name or spec.name,
        seed=spec.seed if args.seed is None else args.seed,
        cpus=cpus,
    )
    callbacks: list = []

    def on_start(study, counted: int, target: int) -> None:
        _credential_note(args.storage)
        if counted >= target:
            print(
                f"study {study.study_name!r} already holds {counted}/{target} trials; nothing to run "
                f"(sysprune run --n-trials N adds more)"
            )
            return
        print(
            f"worker joining {study.study_name!r} ({counted}/{target} trials) -> {mask_url(args.storage)}", flush=True
        )
        if not args.quiet:
            callbacks.append(Progress(target, done=counted))
        callbacks.extend(_extra_callbacks(args))

    try:
        n = run_worker(cfg, callbacks, on_start=on_start)
    finally:
        _close_progress(callbacks)
    if n:
        print("\n".join(_outcome(open_study(spec, args.storage, cfg.study_name, cfg.seed)[0], args.storage)))
    return 0


def _close_progress(callbacks: list) -> None:
    """End the progress line (a run stopped early, by Ctrl-C or a compute budget, leaves it open)."""
    for c in callbacks:
        if isinstance(c, Progress):
            c.close()


def _outcome(study, storage: str) -> list[str]:
    """The study's outcome lines, its storage shown masked and pasteable (``os.environ[...]`` for a credential)."""
    return outcome_lines(study, mask_url(storage), paste=paste_url(storage))


def _extra_callbacks(args: argparse.Namespace) -> list:
    """Callbacks other parts of sysprune hook into a run: the dashboard publisher (figures, notes, artifacts)."""
    if args.no_publish:
        return []

    return [DashboardPublisher(default_artifact_dir(args.storage))]


# --------------------------------------------------------------------------------------------------- metrics


def _add_metrics(sub: argparse._SubParsersAction) -> None:
    add_command(sub, "metrics", _cmd_metrics)


def _cmd_metrics(args: argparse.Namespace) -> int:
    """list the metric vocabulary (names usable in objectives and budgets)

    List every metric sysprune records per step, with unit and kind.

    example:
      sysprune metrics
    """
    for m in METRICS.values():
        print(f"{m.name:<18} {m.unit:<4} {m.kind:<10} {m.description}")
    return 0


# ------------------------------------------------------------------------------------------------------ main


class _Parser(argparse.ArgumentParser):
    """A bad option is one line, as every other bad input is: the error and where the help is, no usage block
    (subcommands' parsers are of this class too)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:

    parser: argparse.ArgumentParser = _Parser(
        prog="sysprune",
        description="Tune ML models to fit a machine: Optuna studies that prune on system metrics.",
        epilog="example:\n  sysprune studies\n  sysprune run studies/digits_mlp.toml\n"
        "run 'sysprune COMMAND --help' for a command's options",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"sysprune {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in _SUBCOMMANDS:
        add(sub)
    return parser


#: Each adds its subcommand(s) to ``sysprune``: analysis adds compare, replay and report.
_SUBCOMMANDS = [_add_run, _add_worker, add_studies_parser, _add_metrics, add_parser, add_parsers, add_stored_parsers]


def mask_url(url: str) -> str:
    """A storage URL as this command shows it: the password masked (the one masking function, shared)."""

    return mask(url)


#: Not sysprune's: the database's own errors that reach the command through Optuna's storage while a study runs
#: (the server went away, the file is locked). Opening a storage turns them into ``StorageError``; later, every
#: call of Optuna's would have to.
_DATABASE_ERRORS = (sqlalchemy.exc.ArgumentError, sqlalchemy.exc.OperationalError)


def error_line(error: BaseException) -> str:
    """The one line shown for a user error: library arguments named by their flags, the first line of the message."""
    render, argument = getattr(error, "message_for", None), getattr(error, "argument", None)
    in_a_file = isinstance(error, InvalidArgument) and error.where is not None  # a study file's field, not a flag
    if render is not None and argument is not None and not in_a_file:
        text = render(FLAGS.get(argument, argument))  # InvalidArgument, StudyMismatch: they name an argument
    else:
        text = str(error)
    return text.splitlines()[0] if text.strip() else type(error).__name__


def main(argv: Sequence[str] | None = None) -> int:
    # A Ctrl-C or SIGTERM from here on ends the command with one line and 130 / 143: at once where no study runs
    # (nothing is then half-done), at a safe point while one runs, never inside a storage call (sysprune._signals).
    exit_on_signal(SIGNAL_LINES)
    try:
        return _main(argv)
    finally:
        if is_command():  # it has said all it has to say: a signal while the interpreter exits adds nothing
            ignore_signals()


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    # Like `python -m`, the current folder is importable: a study file may name a model module of its own
    # (model = "my_model"); the fork server and trial processes inherit this path.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    import optuna

    # Optuna logs each failed trial with a traceback at WARNING; the progress line and summary report them
    # in one line each, so only its errors are shown (all of it with --debug).
    optuna.logging.set_verbosity(optuna.logging.DEBUG if args.debug else optuna.logging.ERROR)

    enable_default_handler("DEBUG" if args.debug else "INFO")
    redact_handlers(logging.getLogger("optuna"))
    _resolve_storage(args)
    thread_hook = threading.excepthook
    threading.excepthook = redacting_thread_hook(lambda e: database_fault(e) is not None)
    try:
        status = args.func(args)
        sys.stdout.flush()  # inside the try: a closed pipe is noticed here, not at the interpreter's exit
        return status
    except KeyboardInterrupt as e:  # raised at a safe point of a study run; Terminated is SIGTERM's
        if is_command():
            ignore_signals()  # the trial is recorded: one line, whatever comes now
        sig = signal.SIGTERM if isinstance(e, Terminated) else signal.SIGINT
        print(f"\n{SIGNAL_LINES[sig]}", file=sys.stderr)
        return EXIT_TERMINATED if isinstance(e, Terminated) else EXIT_INTERRUPTED
    except BrokenPipeError:
        return _stdout_closed()
    except Exception as e:
        return _report_error(e, args)
    finally:
        threading.excepthook = thread_hook


def _resolve_storage(args: argparse.Namespace) -> None:
    """``--storage`` left out: ``$SYSPRUNE_STORAGE`` or the default."""
    if not hasattr(args, "storage"):
        return
    if args.storage is None:
        args.storage = default_storage()
    remember(args.storage)


def _credential_note(storage: str) -> None:
    """A credential given on the command line is masked in every output, but the process list shows it to every
    local user: say so when a study starts (not on an error, which stays one line)."""
    if has_secrets(storage) and storage != os.environ.get(STORAGE_ENV):
        print(
            f"note: --storage holds a credential, which the process list shows to every local user; put the URL in "
            f"${STORAGE_ENV} instead",
            file=sys.stderr,
        )


def _report_error(error: Exception, args: argparse.Namespace) -> int:
    """A user error or a database fault (anywhere in the exception's chain): one line on stderr, exit status 2
    (``--debug``: its traceback first). Anything else is a bug: its traceback, exit status 1. Credentials masked."""
    fault: BaseException | None = error if isinstance(error, SyspruneError) else None
    fault = fault or database_fault(error, getattr(args, "storage", None))
    if fault is None and isinstance(error, _DATABASE_ERRORS):
        fault = error
    if fault is None or args.debug:
        sys.stderr.write(format_exception(error))
    if fault is None:
        return EXIT_BUG
    print(f"sysprune: error: {redact(error_line(fault))}", file=sys.stderr)
    return EXIT_USAGE


def _stdout_closed() -> int:
    """The reader of stdout went away (``| head -1``): stop quietly. Pointing stdout at /dev/null keeps the
    interpreter's final flush from raising again at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_BROKEN_PIPE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
