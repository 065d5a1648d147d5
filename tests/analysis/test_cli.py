"""compare / replay / report through the real command line: help with an example, bad input in one line, exit 2;
sysprune run prints the end-of-run summary and honours --max-compute-s."""

from __future__ import annotations

import pytest

from tests.test_cli import GOOD, sysprune


def test_help_of_each_analysis_subcommand_has_an_example(cli):
    for cmd in ("compare", "replay", "report"):
        r = cli(cmd, "--help")
        assert r.returncode == 0, cmd
        assert "example:" in r.stdout and f"sysprune {cmd} " in r.stdout, cmd


@pytest.mark.parametrize(
    "args, message",
    [
        (["compare", "s.toml", "--policies", "none,bogus"], "--policies: value 'bogus' is invalid; valid: none, "),
        (["compare", "s.toml", "--policies", "budget"], "needs a [budgets] table"),
        (["compare", "s.toml", "--seeds", "0"], "--seeds must be an integer >= 1, got 0"),
        (["compare", "nope.toml"], "nope.toml: study file not found"),
        (["compare", "multi.toml"], "compare needs a single-objective study"),
        (["replay", "nope"], "no study database at"),  # read-only: a missing database is not created
        (["replay", "nope", "--budgets", "ram=3"], "--budgets: 'ram=3' must be metric=value"),
        (["replay", "nope", "--policies", "none,x"], "--policies: value 'x' is invalid; valid: none, "),
        (["report", "nope"], "no study database at"),
        (["report", "nope", "--permutations", "-1"], "--permutations must be an integer >= 0"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path, cli):
    (tmp_path / "s.toml").write_text(GOOD)  # no [budgets]
    (tmp_path / "multi.toml").write_text(GOOD + '[objective]\nmetric = ["val_accuracy", "infer_ms"]\n')
    r = cli(*args, "--storage", f"sqlite:///{tmp_path / 'x.db'}", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert not (tmp_path / "x.db").exists() or "compare" not in args  # nothing run on bad input


@pytest.mark.slow
def test_run_prints_the_summary_and_stops_at_the_compute_budget(tmp_path):
    (tmp_path / "s.toml").write_text(GOOD.replace("n_trials = 2", "n_trials = 6"))
    r = sysprune(
        "run",
        "s.toml",
        "--storage",
        f"sqlite:///{tmp_path / 'x.db'}",
        "--quiet",
        "--no-publish",
        "--max-compute-s",
        "0.001",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert "1 trials (1 complete" in r.stdout  # the first trial spent the budget: the study stopped
    assert "compute: " in r.stdout and "trials: 1 complete, 0 pruned, 0 failed" in r.stdout
    bad = sysprune("run", "s.toml", "--max-compute-s", "0", cwd=tmp_path)
    assert (
        bad.returncode == 2
        and bad.stderr.strip() == "sysprune: error: --max-compute-s: value 0.0 is invalid; valid: a finite number > 0"
    )


@pytest.mark.slow
def test_compare_replay_and_report_from_the_command_line(tmp_path):
    (tmp_path / "s.toml").write_text(GOOD)
    db = ["--storage", f"sqlite:///{tmp_path / 'x.db'}"]
    r = sysprune(
        "compare",
        "s.toml",
        "--policies",
        "none,median",
        "--seeds",
        "2",
        "--n-trials",
        "3",
        "--no-test",
        *db,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    md = (tmp_path / "results" / "s" / "compare.md").read_text()
    assert "| none |" in md and "| median |" in md and "s.compare.<policy>.s<seed>" in md
    again = sysprune(
        "compare", "s.toml", "--policies", "none,median", "--seeds", "2", "--no-run", "--no-test", *db, cwd=tmp_path
    )
    assert again.returncode == 0 and "run now" not in again.stdout
    r = sysprune("replay", "s.compare.none.s0", "--policies", "none,median", "--orders", "2", *db, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "replayed 2 policies x 3 orders x 3 trials" in r.stdout
    assert (tmp_path / "results" / "s.compare.none.s0" / "replay.md").is_file()
    r = sysprune("report", "s.compare.median.s1", "--permutations", "1", *db, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "results" / "s.compare.median.s1" / "rq1.md").is_file()
    bad = sysprune("replay", "s.compare.median.s1", *db, cwd=tmp_path)  # not a 'none' recording
    assert bad.returncode == 2 and "replay needs a recording with policy 'none'" in bad.stderr
