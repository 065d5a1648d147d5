"""The committed Results chapter against an independent re-derivation from its own CSVs
(``tools/rederive_results.py``: scipy and statsmodels only, no sysprune code): every saving, interval and p-value of
the RQ2 table, the Friedman blocks and statistic, RQ1's Holm adjustment and drivers, and the cells RESULTS.md
prints for them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "rederive_results.py"
RESULTS = REPO / "results"


def _rederive(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), str(folder)], capture_output=True, text=True, timeout=120)


def test_the_committed_chapter_is_reproduced_from_its_csvs():
    r = _rederive(RESULTS)
    assert r.returncode == 0, r.stdout + r.stderr
    agreed, total = (
        int(x) for x in r.stdout.strip().splitlines()[-1].split(": ")[1].split(" re-derived")[0].split(" of ")
    )
    assert agreed == total > 100  # the chapter has that many numbers and cells to check


def test_a_number_that_does_not_follow_from_the_csvs_is_named(tmp_path):
    folder = tmp_path / "results"
    shutil.copytree(RESULTS, folder, ignore=shutil.ignore_patterns("*.html", "*.png", "*.db*", "*.js", "*.svg"))
    summary = folder / "rq2_summary.csv"
    lines = summary.read_text().splitlines()
    header = lines[0].split(",")
    row = lines[1].split(",")
    row[header.index("gm")] = str(float(row[header.index("gm")]) * 1.5)
    summary.write_text("\n".join([lines[0], ",".join(row), *lines[2:]]) + "\n")
    r = _rederive(folder)
    assert r.returncode == 1
    assert (
        f"{row[header.index('study')]} {row[header.index('policy')]} vs {row[header.index('reference')]}: gm"
        in r.stdout
    )
