"""End to end in headless Chromium (Debian's ``chromium`` package): the study page of a study written by
``sysprune run`` renders sysprune's system-metric figures, and a pruned trial's page shows why it was pruned.

Chromium loads the page, runs the dashboard's JavaScript under a virtual-time budget (timers fast-forward, network
waits count) and prints the resulting DOM: plotly draws a figure as an ``<svg class="main-svg">`` inside the
``<div id="user-defined-plot:<figure id>">`` the dashboard makes for each saved figure, with the title as SVG text.
No WebDriver and no new Python dependency. Without Chromium the test fails under CI (``CI`` set; the project's
``tools/install-test-deps.sh`` installs it) and is skipped, with the reason, elsewhere.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests._require import missing

from .conftest import E2E_STUDY, http_get

CHROMIUM = os.environ.get("SYSPRUNE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
VIRTUAL_TIME_MS = 10_000

pytestmark = pytest.mark.slow  # a browser on a dashboard process serving a study written by `sysprune run`


@pytest.fixture(scope="module")
def chromium() -> str:
    if not Path(CHROMIUM).is_file() or not os.access(CHROMIUM, os.X_OK):
        missing(f"Chromium not found at {CHROMIUM} (apt-get install chromium, or run tools/install-test-deps.sh)")
    return CHROMIUM


def dump_dom(chromium: str, url: str, profile: Path) -> str:
    """The DOM of ``url`` once its scripts ran for VIRTUAL_TIME_MS of virtual time."""
    cmd = [
        chromium,
        *FLAGS,
        f"--user-data-dir={profile}",
        f"--virtual-time-budget={VIRTUAL_TIME_MS}",
        "--dump-dom",
        url,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"chromium exited with {done.returncode}: {done.stderr[-2000:]}"
    assert "<html" in done.stdout, done.stderr[-2000:]
    return done.stdout


def _figure_div(dom: str, figure_id: str) -> str:
    start = dom.find(f'id="user-defined-plot:{figure_id}"')
    assert start >= 0, f"no div for figure {figure_id}"
    end = dom.find('id="user-defined-plot:', start + 1)
    return dom[start : end if end > 0 else len(dom)]


def _e2e_study(dashboard) -> dict:
    summaries = http_get(dashboard.base + "/api/studies").json()["study_summaries"]
    (study_id,) = [s["study_id"] for s in summaries if s["study_name"] == E2E_STUDY]
    detail = http_get(f"{dashboard.base}/api/studies/{study_id}").json()
    detail["study_id"] = study_id
    return detail


def test_study_page_renders_system_metric_figures(chromium, dashboard, tmp_path):
    detail = _e2e_study(dashboard)
    n_trials = len(detail["trials"])
    dom = dump_dom(chromium, f"{dashboard.url}/studies/{detail['study_id']}", tmp_path / "profile")
    for figure_id, title in [
        ("sysprune-peak_rss_mb", "peak_rss_mb [MiB] per step"),
        ("sysprune-n_params", "n_params per step"),
    ]:
        div = _figure_div(dom, figure_id)
        assert 'class="main-svg"' in div, f"{figure_id}: plotly drew nothing"
        titles = [html.unescape(t) for t in re.findall(r'class="gtitle"[^>]*>([^<]*)<', div)]
        assert titles == [title]
        # One drawn line per trial, plus the legend's per-state lines (and the budget for n_params).
        assert len(re.findall(r'class="trace scatter', div)) >= n_trials
    assert "budget 10000" in _figure_div(dom, "sysprune-n_params")


def test_pruned_trial_page_shows_why(chromium, dashboard, tmp_path):
    detail = _e2e_study(dashboard)
    pruned = [t for t in detail["trials"] if t["state"] == "Pruned"]
    assert pruned, "the e2e study should have a pruned trial (see e2e_study.toml)"
    trial = pruned[0]
    reason = {a["key"]: a["value"] for a in trial["user_attrs"]}["prune_reason"]
    dom = dump_dom(
        chromium, f"{dashboard.url}/studies/{detail['study_id']}/trials?numbers={trial['number']}", tmp_path / "profile"
    )
    text = html.unescape(re.sub(r"<[^>]+>", " ", dom))
    text = re.sub(r"\s+", " ", text)
    assert f"sysprune · trial {trial['number']} · pruned" in text  # the note's heading, rendered
    assert f"Why pruned: {reason}" in text
    assert f"trial-{trial['number']}-step-metrics.csv" in text  # the artifact card
