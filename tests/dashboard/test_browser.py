"""End to end in headless Chromium (Debian's ``chromium`` package) at 1280 x 900 CSS pixels: the study page of a
size-budget study written by ``sysprune run`` (``e2e_study.toml``: ``n_params <= 10000``) draws the budgeted
structural metric for every trial and the what-fits figure with its budget line, and a trial's note fits the page
and says in words why it was pruned.

Chromium is driven over the DevTools protocol on a pipe (``tests/dashboard/_cdp.py``: no WebDriver, no new
dependency): the test loads a page, waits until plotly has drawn, reads what was drawn from the page's DOM (plotly
draws each trace as a ``g.trace`` with one ``path.point`` per marker inside the ``<div
id="user-defined-plot:<figure id>">`` the dashboard makes for a saved figure) and takes screenshots, kept in the
test's temporary folder (and in ``$SYSPRUNE_SCREENSHOTS`` when set) for a person to look at. Without Chromium the
test fails under CI (``CI`` set; ``tools/install-test-deps.sh`` installs it) and is skipped, with the reason,
elsewhere.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._require import missing

from ._cdp import Browser
from .conftest import E2E_STUDY, http_get

CHROMIUM = os.environ.get("SYSPRUNE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
WIDTH = 1280

pytestmark = pytest.mark.slow  # a browser on a dashboard process serving a study written by `sysprune run`


@pytest.fixture(scope="module")
def chromium() -> str:
    if not Path(CHROMIUM).is_file() or not os.access(CHROMIUM, os.X_OK):
        missing(f"Chromium not found at {CHROMIUM} (apt-get install chromium, or run tools/install-test-deps.sh)")
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium, tmp_path_factory) -> Iterator[Browser]:
    with Browser(chromium, tmp_path_factory.mktemp("chromium-profile"), width=WIDTH, height=900) as b:
        yield b


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return Path(os.environ.get("SYSPRUNE_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))


def _e2e_study(dashboard) -> dict:
    summaries = http_get(dashboard.base + "/api/studies").json()["study_summaries"]
    (study_id,) = [s["study_id"] for s in summaries if s["study_name"] == E2E_STUDY]
    detail = http_get(f"{dashboard.base}/api/studies/{study_id}").json()
    detail["study_id"] = study_id
    return detail


def _png(path: Path) -> Path:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, f"{path}: not a screenshot of a page"
    return path


#: Per drawn trace of a figure: its name (plotly's legend text is elsewhere, so the trace's index) and the number of
#: markers drawn, plus the figure's title.
_DRAWN = """(id => {
  const div = document.getElementById('user-defined-plot:' + id);
  if (!div) return null;
  const traces = [...div.querySelectorAll('g.trace.scatter')].map(g => g.querySelectorAll('path.point').length);
  const title = div.querySelector('.gtitle');
  return {traces: traces, title: title ? title.textContent : null, width: div.getBoundingClientRect().width};
})"""


def _drawn(browser: Browser, figure_id: str) -> dict:
    drawn = browser.evaluate(f"{_DRAWN}({json.dumps(figure_id)})")
    assert drawn is not None, f"no div for figure {figure_id}"
    return drawn


def test_study_page_shows_every_trials_budgeted_metric_and_what_fits(browser, dashboard, shots):
    detail = _e2e_study(dashboard)
    finished = [t for t in detail["trials"] if t["state"] in ("Complete", "Pruned", "Fail")]
    assert {t["state"] for t in finished} >= {"Complete", "Pruned"}, "e2e_study.toml should prune a trial"
    figures = {g["id"]: json.loads(g["graph_object"]) for g in detail["plotly_graph_objects"]}
    browser.open(
        f"{dashboard.url}/studies/{detail['study_id']}",
        f"document.querySelectorAll('[id^=\"user-defined-plot:sysprune-\"] .main-svg').length >= {len(figures)}",
    )
    _png(browser.screenshot(shots / "study.png"))
    _png(browser.element_screenshot('[id="user-defined-plot:sysprune-n_params"]', shots / "n_params.png"))
    _png(browser.element_screenshot('[id="user-defined-plot:sysprune-fits-n_params"]', shots / "fits-n_params.png"))

    # The budgeted structural metric: a trace with markers for every finished trial (complete ones at step -1 and
    # the last step, pruned ones at step -1), then the budget line.
    n_params = _drawn(browser, "sysprune-n_params")
    assert n_params["title"] == "n_params per step"
    with_points = [n for n in n_params["traces"] if n > 0]
    assert len(with_points) == len(finished)
    assert sum(with_points) == sum(2 if t["state"] == "Complete" else 1 for t in finished)
    assert figures["sysprune-n_params"]["data"][-1]["name"] == "budget 10000"

    # What fits: one marker per finished trial that measured n_params (all here), and the budget as a line.
    fits = figures["sysprune-fits-n_params"]
    assert sum(len(t["x"]) for t in fits["data"] if t["mode"] == "markers") == len(finished)
    (budget,) = [t for t in fits["data"] if t["name"].startswith("budget")]
    assert budget["x"] == [10000, 10000] and budget["name"] == "budget 10000"
    drawn = _drawn(browser, "sysprune-fits-n_params")
    assert drawn["title"] == "what fits: val_accuracy vs n_params"
    assert sum(drawn["traces"]) == len(finished)  # every marker drawn by plotly, not only present in the data
    assert len(drawn["traces"]) == len(fits["data"])  # ... and the budget line drawn as a trace too

    compute = _drawn(browser, "sysprune-compute")
    assert compute["title"].startswith("compute: ") and len(compute["traces"]) >= 2

    # Every figure of the page fits its column: nothing wider than the window.
    for fid in figures:
        assert _drawn(browser, fid)["width"] <= WIDTH


#: The note's tables and text lines: their right edges, in CSS pixels.
_NOTE_EDGES = """(() => {
  const note = [...document.querySelectorAll('h3')].find(h => h.textContent.startsWith('sysprune · trial'));
  if (!note) return null;
  const box = note.parentElement;
  const tables = [...box.querySelectorAll('table')].map(t => t.getBoundingClientRect().right);
  const text = [];
  const walker = document.createTreeWalker(box, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const range = document.createRange();
    range.selectNodeContents(walker.currentNode);
    for (const r of range.getClientRects()) text.push(r.right);
  }
  return {tables: tables, text: Math.max(...text), columns: Math.max(...[...box.querySelectorAll('tr')].map(
    r => r.children.length))};
})()"""


@pytest.mark.parametrize("state", ["Pruned", "Complete"])
def test_trial_note_fits_1280_pixels_and_says_why_in_words(browser, dashboard, shots, state):
    detail = _e2e_study(dashboard)
    trial = next(t for t in detail["trials"] if t["state"] == state)
    browser.open(
        f"{dashboard.url}/studies/{detail['study_id']}/trials?numbers={trial['number']}",
        f"document.body && document.body.innerText.includes('sysprune · trial {trial['number']} ·')",
    )
    _png(browser.screenshot(shots / f"trial-{trial['number']}-{state.lower()}.png", full_page=False))
    text = browser.evaluate("document.body.innerText")
    edges = browser.evaluate(_NOTE_EDGES)
    assert edges is not None
    # Step tables split by kind (at most MAX_COLUMNS metrics + the step) and every one within the window.
    assert edges["tables"] and max(edges["tables"]) <= WIDTH, edges
    # ... and every line of its text (the dashboard's own attribute list below may still be wider: its values are
    # not wrapped, and a pruned trial's prune_detail is one long line there).
    assert edges["text"] <= WIDTH, edges
    assert edges["columns"] <= 7
    assert "Step metrics" in text and "Model (measured before training" in text
    if state == "Pruned":
        reason = {a["key"]: a["value"] for a in trial["user_attrs"]}["prune_reason"]
        assert f"Why pruned: {reason}" in text
        assert "How it was decided" in text and "Measured: n_params 38410; budget 10000." in text
        assert "=None" not in text and "budget=" not in text  # no raw Python dict in the note
        assert f"trial-{trial['number']}-step-metrics.csv" in text  # the artifact card
