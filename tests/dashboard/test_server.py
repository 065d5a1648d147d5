"""A real optuna-dashboard process (``sysprune dashboard``) on a database written by ``sysprune run``, asked
through its HTTP API; stopped by its PID."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import signal
import subprocess
import sys
import threading

import pytest
import urllib.error

from sysprune.metrics._registry import system_metric_names
from sysprune.storage._step_table import load_step_metrics
from sysprune.dashboard import figure_id
from sysprune.dashboard._fits import COMPUTE_FIGURE_ID, fits_figure_id

from .conftest import (
    E2E_STUDY,
    ERROR,
    FIGURE_METRICS,
    PRUNE_REASON,
    SUMMARY_FIGURES,
    REPO,
    STUDY,
    Response,
    http_get,
    start_dashboard,
    stop_dashboard,
)

pytestmark = pytest.mark.slow  # a dashboard process serving a study written by `sysprune run`


def _get(d, path: str) -> Response:
    r = http_get(d.base + path)
    assert r.status == 200, f"GET {path}: {r.status} {r.text[:300]}"
    return r


def _study(d, name: str) -> dict:
    summaries = _get(d, "/api/studies").json()["study_summaries"]
    (study_id,) = [s["study_id"] for s in summaries if s["study_name"] == name]
    detail = _get(d, f"/api/studies/{study_id}").json()
    detail["study_id"] = study_id
    return detail


def _user_attrs(trial: dict) -> dict[str, str]:
    return {a["key"]: a["value"] for a in trial["user_attrs"]}


def _csv_rows(d, study_id: int, trial: dict) -> list[dict[str, str]]:
    (meta,) = trial["artifacts"]
    assert (meta["filename"], meta["mimetype"]) == (f"trial-{trial['number']}-step-metrics.csv", "text/csv")
    text = _get(d, f"/artifacts/{study_id}/{trial['trial_id']}/{meta['artifact_id']}").text
    return list(csv.DictReader(io.StringIO(text)))


def test_serves_both_studies(dashboard):
    names = [s["study_name"] for s in _get(dashboard, "/api/studies").json()["study_summaries"]]
    assert names == [E2E_STUDY, STUDY]
    assert dashboard.url.startswith("http://127.0.0.1:")  # bound to this machine only by default
    assert _get(dashboard, "/dashboard").headers["Content-Type"].startswith("text/html")
    assert http_get(dashboard.base + "/api/studies/999").status == 404


def test_run_study_figures_step_metrics_and_prune_reason(dashboard, study_db):
    """The study `sysprune run` wrote: a figure per measured system metric, each trial's steps and verdict."""
    detail = _study(dashboard, E2E_STUDY)
    steps = load_step_metrics(study_db.url, E2E_STUDY)
    measured = [m for m in system_metric_names() if steps[m].notna().any()]
    assert {"wall_s", "cpu_s", "rss_mb", "peak_rss_mb", "infer_ms", "n_params"} <= set(measured)
    figures = {g["id"]: json.loads(g["graph_object"]) for g in detail["plotly_graph_objects"]}
    # one per measured metric, then the what-fits figure of the study's budget and the compute figure
    extra = {fits_figure_id("n_params"): figures.pop(fits_figure_id("n_params"), None)}
    extra[COMPUTE_FIGURE_ID] = figures.pop(COMPUTE_FIGURE_ID, None)
    assert all(fig is not None and fig["data"] for fig in extra.values()), sorted(extra)
    assert sorted(figures) == sorted(figure_id(m) for m in measured)

    trials = detail["trials"]
    assert len(trials) == 3 and all(t["state"] in ("Complete", "Pruned") for t in trials)
    pruned = [t for t in trials if t["state"] == "Pruned"]
    assert pruned, "e2e_study.toml should prune a trial (width 512 over the n_params budget); check its seed"
    for fid, fig in figures.items():
        metric = fid.removeprefix("sysprune-")
        lines = [t["name"] for t in fig["data"] if t["name"].startswith("trial ")]
        measured_by = [t for t in trials if steps.loc[steps.trial_number == t["number"], metric].notna().any()]
        assert lines == [f"trial {t['number']}" for t in measured_by]
    assert figures["sysprune-n_params"]["data"][-1]["name"] == "budget 10000"

    for t in trials:
        mine = steps[steps.trial_number == t["number"]].sort_values("step")
        note = t["note"]["body"]
        state = t["state"].lower()
        assert note.startswith(f"### sysprune · trial {t['number']} · {state}\n"), note[:200]
        assert "| n_params | 10000 | " in note  # the budget table
        table = [line for line in note.splitlines() if line.startswith("| ") and line[2:].lstrip("-")[:1].isdigit()]
        # one table per kind of metric, each with the steps that measured something of it: together, every step
        assert sorted({int(line.split(" | ")[0][2:]) for line in table}) == sorted(mine["step"].tolist())
        rows = _csv_rows(dashboard, detail["study_id"], t)
        assert [int(r["step"]) for r in rows] == mine["step"].tolist()
        for r, (_, want) in zip(rows, mine.iterrows()):
            for metric in ("val_accuracy", "wall_s", "peak_rss_mb", "n_params"):
                if math.isnan(want[metric]):  # not measured at that step (step -1: nothing learned yet)
                    continue
                assert math.isclose(float(r[metric]), want[metric], rel_tol=1e-12)
    for t in pruned:
        reason = _user_attrs(t)["prune_reason"]
        assert reason
        assert f"**Why pruned:** {reason}\n" in t["note"]["body"]
    assert "**Pruned trials**" in detail["note"]["body"]


def test_hand_built_study_exact(dashboard):
    detail = _study(dashboard, STUDY)
    assert sorted(g["id"] for g in detail["plotly_graph_objects"]) == sorted(
        [figure_id(m) for m in FIGURE_METRICS] + SUMMARY_FIGURES
    )
    t0, t1, t2, t3 = detail["trials"]
    assert [t["state"] for t in (t0, t1, t2, t3)] == ["Complete", "Pruned", "Fail", "Running"]
    assert _user_attrs(t1)["prune_reason"] == PRUNE_REASON
    assert f"**Why pruned:** {PRUNE_REASON}\n" in t1["note"]["body"]
    assert "| peak_rss_mb | 650 MiB | 720 MiB | 70 | over budget |" in t1["note"]["body"]
    assert "| 1 | 3.25 | 3 |" in t1["note"]["body"] and "| 1 | 715.5 | 720 |" in t1["note"]["body"]
    assert "| 1 | 0.05 | 250000 | 1000000 |" in t1["note"]["body"]
    assert f"**Why failed:** {ERROR}\n" in t2["note"]["body"]
    assert t3["note"]["body"] == "" and t3["artifacts"] == []
    rows = _csv_rows(dashboard, detail["study_id"], t1)
    assert rows == [
        {
            "step": "0",
            "val_accuracy": "0.4",
            "wall_s": "1.5",
            "cpu_s": "1.4",
            "energy_j": "",
            "rss_mb": "690.0",
            "peak_rss_mb": "700.0",
            "infer_ms": "0.05",
            "n_params": "250000.0",
            "model_bytes": "1000000.0",
        },
        {
            "step": "1",
            "val_accuracy": "0.45",
            "wall_s": "3.25",
            "cpu_s": "3.0",
            "energy_j": "",
            "rss_mb": "715.5",
            "peak_rss_mb": "720.0",
            "infer_ms": "0.05",
            "n_params": "250000.0",
            "model_bytes": "1000000.0",
        },
    ]


_WRITER = r"""
import sys, time
import optuna
from sysprune._compat import trial_id
from sysprune.storage._step_table import MetricStore
url, seconds = sys.argv[1], float(sys.argv[2])
optuna.logging.set_verbosity(optuna.logging.WARNING)
# A short busy timeout, so that a lock held by the dashboard would fail this writer quickly (optuna-dashboard #545).
storage = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 1.0}})
study = optuna.create_study(storage=storage, study_name="live", load_if_exists=True)
store = MetricStore(url)
n, end = 0, time.monotonic() + seconds
while time.monotonic() < end:
    t = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    for s in range(4):
        store.write_step(study_name="live", trial_id=trial_id(t), trial_number=t.number, step=s,
                         metrics={"wall_s": s + 1.0, "rss_mb": 100.0 + s})
        t.report(s * 0.1, s)
    t.set_user_attr("rss_mb", 103.0)
    study.tell(t, 0.3)
    n += 1
print(n)
"""


def test_reading_does_not_disturb_writers(dashboard, study_db):
    """A worker keeps writing (1 s busy timeout) while four clients poll the dashboard as fast as they can."""
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, study_db.url, "4"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    statuses: list[int] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            for s in http_get(dashboard.base + "/api/studies").json()["study_summaries"]:
                statuses.append(http_get(f"{dashboard.base}/api/studies/{s['study_id']}").status)

    readers = [threading.Thread(target=poll) for _ in range(4)]
    for r in readers:
        r.start()
    out, err = writer.communicate(timeout=120)
    stop.set()
    for r in readers:
        r.join(timeout=60)
    assert writer.returncode == 0, err
    assert "locked" not in err
    assert int(out) > 0
    assert statuses and set(statuses) == {200}


def test_ctrl_c_stops_cleanly(study_db):
    d = start_dashboard(study_db.url, study_db.artifact_dir)
    os.kill(d.proc.pid, signal.SIGINT)  # what Ctrl-C sends
    try:
        out, err = d.proc.communicate(timeout=20)
    finally:
        stop_dashboard(d)
    assert d.proc.returncode == 0, err
    assert out.strip() == "dashboard stopped"
    assert "Traceback" not in err
    with pytest.raises(urllib.error.URLError):
        http_get(d.base + "/api/studies", timeout=5)


def test_run_publishes_as_trials_finish(study_db):
    """`sysprune run` itself publishes (the runner calls DashboardPublisher after every trial), no --publish."""
    assert study_db.runner_published == {"figures": True, "notes": 3, "artifacts": 3}
