"""Every documented command line runs: the ``sysprune`` and ``make`` lines of README.md and docs/*.md (fenced code)
and each subcommand's ``--help`` examples.

* Each ``sysprune`` line parses with the real command-line parser (flags, choices, numbers), every ``.toml`` it
  names exists (in the repository, or written by the same page's walkthrough), and every stored study it reads
  (replay, report, trials, best) is one a documented command makes: a study file's name (``run``), ``<name>.<P>``
  (``run --policy P``), ``<name>.compare.<P>.s<N>`` (``compare``) or a recording of ``make results``.
* Each ``make`` line names a target of the Makefile.
* The commands that need no study run for real; the slow test runs the documented record-and-replay chain on a
  two-trial recording.
"""

from __future__ import annotations

import functools
import re
import shlex
from pathlib import Path

import pytest

from sysprune.analysis._plan import FULL, record_name
from sysprune.cli import build_parser
from tests._cli import run_in_process as sysprune

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
#: The subcommands that read a stored study named by their first argument.
READS_A_STUDY = {"replay", "report", "trials", "best"}


def _fenced_lines(text: str) -> list[str]:
    out, inside = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            inside = not inside
            continue
        if inside:
            if out and out[-1].endswith("\\"):  # a command continued on the next line: one command
                out[-1] = out[-1][:-1] + " " + line.strip()
            else:
                out.append(line.strip())
    return out


def _command(line: str) -> list[str] | None:
    """The argv of a documented ``sysprune`` line (``.venv/bin/sysprune`` too), its comment dropped; None otherwise."""
    line = re.sub(r"^(\$ )?(\.venv/bin/)?", "", line)
    if not line.startswith("sysprune "):
        return None
    words = shlex.split(line, comments=True)
    return words[1:]


def _documented() -> list[tuple[str, list[str]]]:
    """(where, argv) of every documented sysprune command."""
    found = []
    for page in PAGES:
        for line in _fenced_lines(page.read_text()):
            argv = _command(line)
            if argv:
                found.append((f"{page.relative_to(REPO)}: {line}", argv))
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, sub in subparsers.choices.items():
        for line in (sub.epilog or "").splitlines()[1:]:
            argv = _command(line.strip())
            if argv:
                found.append((f"sysprune {name} --help: {line.strip()}", argv))
    return found


DOCUMENTED = _documented()


def _study_files() -> list[Path]:
    return sorted((REPO / "studies").glob("*.toml"))


@functools.cache
def _makeable_studies() -> set[str]:
    """Study names a documented command makes."""
    from sysprune.pruners import policy_names
    from sysprune.spec import load_spec

    names = set()
    written = {Path(w).stem for _, argv in DOCUMENTED for w in argv if w.endswith(".toml")}  # a walkthrough's file too
    for stem in {f.stem for f in _study_files()} | written:
        names.add(stem)
        names.update(f"{stem}.{p}" for p in policy_names())
        names.update(f"{stem}.compare.{p}.s{s}" for p in policy_names() for s in range(10))
    for item in FULL:
        names.add(record_name(load_spec(REPO / "studies" / f"{item.study}.toml")))
    return names


def test_commands_were_found():
    commands = {argv[0] for _, argv in DOCUMENTED}
    assert {"run", "worker", "studies", "metrics", "compare", "replay", "report", "trials", "best"} <= commands
    assert len(DOCUMENTED) > 30


@pytest.mark.parametrize(("where", "argv"), DOCUMENTED, ids=[w for w, _ in DOCUMENTED])
def test_a_documented_command_parses_and_names_what_exists(where, argv):
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:
        pytest.fail(f"{where}: refused by the parser (exit {e.code})")
    page_text = "".join(p.read_text() for p in PAGES if where.startswith(str(p.relative_to(REPO))))
    for word in argv:
        if word.endswith(".toml"):
            written = f"# {word}" in page_text  # a walkthrough's own file (docs/extending.md)
            assert (REPO / word).is_file() or written, f"{where}: no file {word}"
    if args.command in READS_A_STUDY and getattr(args, "study_name", None) is not None:
        assert args.study_name in _makeable_studies(), f"{where}: no documented command makes study {args.study_name!r}"
    if args.command == "replay":
        assert _recorded_with_none(args.study_name), f"{where}: {args.study_name!r} is not recorded with policy none"


def _recorded_with_none(name: str) -> bool:
    """Replay takes a recording with policy none: ``<name>.none``, ``<name>.compare.none.s<N>``, ``make results``'
    recordings, or a study file whose own policy is none."""
    from sysprune.spec import load_spec

    if name.endswith((".none", ".record")) or ".compare.none." in name:
        return True
    f = REPO / "studies" / f"{name}.toml"
    return f.is_file() and load_spec(f).pruner.policy == "none"


def _make_targets() -> set[str]:
    text = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][\w-]*):", text, re.M))
    stems = [f.stem for f in _study_files()]
    return targets | {f"{kind}-{s}" for kind in ("study", "compare", "report") for s in stems}


MAKE_LINES = [
    (f"{p.relative_to(REPO)}: {line}", shlex.split(line, comments=True))
    for p in PAGES
    for line in _fenced_lines(p.read_text())
    if line.startswith("make ")
]


@pytest.mark.parametrize(("where", "words"), MAKE_LINES, ids=[w for w, _ in MAKE_LINES])
def test_a_documented_make_line_names_a_target(where, words):
    targets = [w for w in words[1:] if "=" not in w and not w.startswith("-")]
    assert targets and set(targets) <= _make_targets(), f"{where}: unknown target"


@pytest.mark.parametrize(
    "argv", sorted({tuple(a) for _, a in DOCUMENTED if a[0] in ("studies", "metrics") and "--storage" not in a})
)
def test_the_commands_that_need_no_study_run(argv):
    r = sysprune(*argv)
    assert r.returncode == 0 and r.stdout.strip(), r.stderr


@pytest.mark.slow
def test_the_documented_record_and_replay_chain_runs(tmp_path):
    """README's recording for replay, on two trials: run --policy none, then replay, trials, best, studies."""
    url = f"sqlite:///{tmp_path / 'docs.db'}"
    chain = [
        argv
        for where, argv in DOCUMENTED
        if where.startswith("README.md") and argv[0] in ("run", "replay", "trials", "best")
        and ("none" in argv or any(a.endswith(".none") for a in argv))
    ]  # fmt: skip
    assert [a[0] for a in chain] == ["run", "replay"], chain
    run, replay = chain
    r = sysprune(*run, "--n-trials", "2", "--storage", url, "--no-publish", "--quiet")
    assert r.returncode == 0, r.stderr
    study = replay[1]
    out = tmp_path / "out"
    r = sysprune(*replay[:2], "--orders", "2", "--storage", url, "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert (out / study / "replay.md").is_file()
    trials = sysprune("trials", study, "--storage", url)
    assert trials.returncode == 0 and len(trials.stdout.splitlines()) == 2 + 2, trials.stderr  # header, rule, 2 rows
    for argv in (("best", study), ("studies",)):
        r = sysprune(*argv, "--storage", url)
        assert r.returncode == 0 and study in r.stdout, (argv, r.stderr)
