"""``sysprune dashboard``: optuna-dashboard on a study database, with sysprune's figures, notes and artifacts.

``sysprune.cli`` registers it with :func:`add_parser` and calls :func:`run`; ``python -m sysprune.dashboard`` runs
it alone.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sysprune._logging import get_logger
from sysprune.storage._open import DEFAULT_STORAGE, STORAGE_ENV, default_storage, mask_url
from sysprune.dashboard._publish import default_artifact_dir, publish_study
from sysprune.dashboard._server import exposure_warning, make_dashboard_server, open_storage, serve, server_url
from sysprune.exceptions import DashboardError, StorageError
from sysprune._logging import enable_default_handler

_logger = get_logger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
PROG = "sysprune dashboard"

DESCRIPTION = """\
Serve optuna-dashboard on a study database: Optuna's own views, plus what sysprune publishes as trials finish:
one figure per system metric (a line per trial across steps, with the budget), each trial's step metrics, budgets
and prune reason in its note, and its steps as a CSV artifact the dashboard shows as a table.

Only reads the study, so it is safe beside running workers (an SQLite file is switched to WAL mode once so that
reading never blocks their writes). Binds to 127.0.0.1 unless --host says otherwise; Ctrl-C stops it."""

EPILOG = """\
examples:
  sysprune dashboard                                       # sqlite:///results/sysprune.db on http://127.0.0.1:8080
  sysprune dashboard --storage sqlite:///runs/a.db --port 8081
  sysprune dashboard --publish      # first add figures and notes to studies run without the publisher
  sysprune dashboard --host 0.0.0.0 # reachable from other machines (no authentication: trusted networks only)"""


def add_parser(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> argparse.ArgumentParser:
    """Add the ``dashboard`` subcommand to ``sysprune``'s subparsers; its handler is :func:`run`."""
    parser = subparsers.add_parser(
        "dashboard",
        help="serve optuna-dashboard with per-step system metrics",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be in 0..65535, got {port}")
    return port


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage",
        default=None,
        metavar="URL",
        help=f"study database, an SQLAlchemy URL (default: ${STORAGE_ENV} if set, else {DEFAULT_STORAGE})",
    )
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"address to listen on (default: {DEFAULT_HOST}, this machine only)"
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help=f"port to listen on; 0 picks a free one (default: {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--artifact-dir",
        default=None,
        metavar="DIR",
        help="where the trials' CSV artifacts are (default: artifacts/ beside an SQLite file, "
        "i.e. results/artifacts for the default storage; must match the runner's)",
    )
    parser.add_argument(
        "--publish",
        action="store_true",
        help="before serving, publish figures, notes and artifacts for every finished trial of every study "
        "(for studies run without the publisher; writes to the database)",
    )


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C (exit 0); a user mistake prints one line on stderr and returns 2."""

    if args.storage is None:
        args.storage = default_storage()
    try:
        storage = open_storage(args.storage)  # first: a URL that does not parse is refused here, in one line
        artifact_dir = Path(args.artifact_dir) if args.artifact_dir is not None else default_artifact_dir(args.storage)
        if args.publish:
            _publish_all(storage, artifact_dir)
        server = make_dashboard_server(storage, args.host, args.port, artifact_dir)
    except (DashboardError, StorageError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    studies = storage.get_all_studies()
    n = f"{len(studies)} study" if len(studies) == 1 else f"{len(studies)} studies"

    def ready() -> None:
        warning = exposure_warning(args.host, server.server_address[1])
        if warning:
            print(warning, file=sys.stderr, flush=True)
        print(
            f"optuna-dashboard on {server_url(server)}  ({n} in {mask_url(args.storage)}; Ctrl-C to stop)", flush=True
        )
        if not artifact_dir.is_dir():
            _logger.info(
                "no artifact directory %s yet: trial CSV artifacts show once the runner writes them", artifact_dir
            )

    serve(server, on_ready=ready)
    print("dashboard stopped", flush=True)
    return 0


def _publish_all(storage, artifact_dir: Path) -> None:
    import optuna

    for summary in storage.get_all_studies():
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        n = publish_study(study, artifact_dir)
        _logger.info("published %d finished trials of study %r", n, summary.study_name)


def main(argv: list[str] | None = None) -> int:
    """``python -m sysprune.dashboard``: the subcommand on its own (same options)."""

    parser = argparse.ArgumentParser(
        prog=PROG, description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _add_arguments(parser)
    parser.add_argument("--debug", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    enable_default_handler("DEBUG" if args.debug else "INFO")
    return run(args)
