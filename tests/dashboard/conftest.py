"""Studies built by hand the way the runner writes them, and a real optuna-dashboard process to ask about them.

``tiny_study`` (4 trials, budget ``peak_rss_mb <= 650``):

=====  ========  =====  ===========================================================
trial  state     steps  notes
=====  ========  =====  ===========================================================
0      COMPLETE  3      within budget (constraint -38); energy_j measured as missing
1      PRUNED    2      peak_rss_mb 720 > 650 at step 1 (constraint +70), with reason
2      FAIL      1      error recorded
3      RUNNING   1      not finished: never published
=====  ========  =====  ===========================================================
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest

from sysprune import _attrs
from sysprune.storage._step_table import MetricStore, tune_sqlite_engine
from tests._optuna import study_system_attrs, trial_id

REPO = Path(__file__).resolve().parents[2]
STUDY = "tiny"
BUDGETS = {"peak_rss_mb": 650.0}
PRUNE_REASON = "peak_rss_mb 720 MiB over budget 650 MiB at step 1"
PRUNE_DETAIL = {
    "rule": "budget",
    "pruner": "ResourceBudgetPruner",
    "metric": "peak_rss_mb",
    "value": 720.0,
    "budget": 650.0,
    "step": 1,
    "predicted": False,
}
ERROR = "RuntimeError: out of memory"

#: Per trial number: {step: metrics}. Trial 0 records energy_j as missing (None).
STEPS: dict[int, dict[int, dict[str, float | None]]] = {
    0: {
        s: {
            "val_accuracy": [0.5, 0.6, 0.7][s],
            "wall_s": [1.0, 2.0, 3.0][s],
            "cpu_s": [0.9, 1.8, 2.7][s],
            "energy_j": None,
            "rss_mb": [600.0, 601.0, 602.0][s],
            "peak_rss_mb": [610.0, 611.0, 612.0][s],
            "infer_ms": [0.02, 0.021, 0.019][s],
            "n_params": 1000.0,
            "model_bytes": 4000.0,
        }
        for s in range(3)
    },
    1: {
        s: {
            "val_accuracy": [0.4, 0.45][s],
            "wall_s": [1.5, 3.25][s],
            "cpu_s": [1.4, 3.0][s],
            "energy_j": None,
            "rss_mb": [690.0, 715.5][s],
            "peak_rss_mb": [700.0, 720.0][s],
            "infer_ms": [0.05, 0.05][s],
            "n_params": 250000.0,
            "model_bytes": 1000000.0,
        }
        for s in range(2)
    },
    2: {0: {"val_accuracy": 0.1, "wall_s": 0.5, "cpu_s": 0.4, "rss_mb": 640.0, "peak_rss_mb": 641.0}},
    3: {0: {"val_accuracy": 0.2, "wall_s": 0.7}},
}
#: Metrics some finished trial measured: the study figures expected, in vocabulary order.
FIGURE_METRICS = ["wall_s", "cpu_s", "rss_mb", "peak_rss_mb", "infer_ms", "n_params", "model_bytes"]
#: The study's summary figures: what fits the one budget, and the compute spent.
SUMMARY_FIGURES = ["sysprune-fits-peak_rss_mb", "sysprune-compute"]


def _write_steps(store: MetricStore, trial: optuna.Trial) -> None:
    for step, metrics in STEPS[trial.number].items():
        store.write_step(
            study_name=trial.study.study_name,
            trial_id=trial_id(trial),
            trial_number=trial.number,
            step=step,
            metrics=metrics,
            trial_start=trial.datetime_start,
        )
        if metrics.get("val_accuracy") is not None:
            trial.report(metrics["val_accuracy"], step)


def build_tiny_study(url: str, *, callback=None, study_name: str = STUDY) -> optuna.Study:
    """The study of this module's docstring, written as the runner writes it; ``callback`` after each finish."""
    storage = optuna.storages.RDBStorage(url)
    tune_sqlite_engine(storage.engine)
    study = optuna.create_study(storage=storage, study_name=study_name, direction="maximize")
    store = MetricStore(url)
    lr = optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)

    def finish(trial: optuna.Trial, **tell) -> None:
        frozen = study.tell(trial, **tell)
        if callback is not None:
            callback(study, frozen)

    study.set_user_attr("budgets", BUDGETS)  # as the runner does; the publisher reads them from here
    t = study.ask({"lr": lr})
    _write_steps(store, t)
    for metric in ("wall_s", "cpu_s", "rss_mb", "peak_rss_mb", "infer_ms", "n_params", "model_bytes"):
        t.set_user_attr(metric, STEPS[0][2][metric])
    t.set_constraint("budget:peak_rss_mb", 612.0 - 650.0)
    finish(t, values=0.7)

    t = study.ask({"lr": lr})
    _write_steps(store, t)
    t.set_user_attr("peak_rss_mb", 720.0)
    t.set_user_attr(_attrs.PRUNE_REASON, PRUNE_REASON)
    t.set_user_attr(_attrs.PRUNE_DETAIL, PRUNE_DETAIL)
    t.set_constraint("budget:peak_rss_mb", 720.0 - 650.0)
    finish(t, state=optuna.trial.TrialState.PRUNED)

    t = study.ask({"lr": lr})
    _write_steps(store, t)
    t.set_user_attr(_attrs.ERROR, ERROR)
    finish(t, state=optuna.trial.TrialState.FAIL)

    t = study.ask({"lr": lr})
    _write_steps(store, t)  # left RUNNING
    return study


# -- a real dashboard process ------------------------------------------------------------------------------------
@dataclass
class Response:
    status: int
    headers: dict[str, str]
    text: str

    def json(self):
        return json.loads(self.text)


def http_get(url: str, timeout: float = 30.0) -> Response:
    """GET with the standard library (no HTTP client dependency); an HTTP error status is returned, not raised."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return Response(r.status, dict(r.headers), r.read().decode())
    except urllib.error.HTTPError as e:
        return Response(e.code, dict(e.headers), e.read().decode(errors="replace"))


@dataclass
class Dashboard:
    proc: subprocess.Popen
    base: str  # http://127.0.0.1:PORT
    url: str  # printed URL (…/dashboard)
    storage_url: str
    artifact_dir: Path


def start_dashboard(
    storage_url: str, artifact_dir: Path, *, publish: bool = False, timeout: float = 120.0
) -> Dashboard:
    """``python -m sysprune.dashboard`` on a free port; returns once it printed the URL it listens on."""
    cmd = [
        sys.executable,
        "-m",
        "sysprune.dashboard",
        "--storage",
        storage_url,
        "--port",
        "0",
        "--artifact-dir",
        str(artifact_dir),
        *(["--publish"] if publish else []),
    ]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    # The first line is printed once the socket is bound; read it in a thread so a hung start cannot hang the test.
    threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=timeout)
    except queue.Empty:
        line = ""
    if not line:
        proc.kill()
        raise RuntimeError(f"dashboard did not start within {timeout} s: {proc.communicate()[1]}")
    m = re.search(r"(http://[^ ]+)/dashboard", line)
    if m is None:
        proc.kill()
        raise RuntimeError(f"no URL in {line!r}")
    return Dashboard(proc, m.group(1), m.group(0), storage_url, artifact_dir)


def stop_dashboard(d: Dashboard) -> tuple[int, str, str]:
    """Stop by PID (SIGTERM, as an init system or a test would) and return (status, stdout rest, stderr)."""
    if d.proc.poll() is None:
        os.kill(d.proc.pid, signal.SIGTERM)
    try:
        out, err = d.proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        d.proc.kill()
        out, err = d.proc.communicate()
    return d.proc.returncode, out, err


E2E_TOML = Path(__file__).with_name("e2e_study.toml")
E2E_STUDY = "e2e"


@dataclass
class StudyDB:
    url: str
    artifact_dir: Path
    run_stdout: str  # what `sysprune run` printed
    #: What `sysprune run` published by itself, looked at before anything else wrote to the database.
    runner_published: dict


@pytest.fixture(scope="session")
def study_db(tmp_path_factory) -> StudyDB:
    """One SQLite file with two studies: ``e2e`` written by ``sysprune run`` (tests/dashboard/e2e_study.toml),
    then ``tiny`` built by hand and published trial by trial as the runner's callback does."""
    from sysprune.dashboard import DashboardPublisher, default_artifact_dir

    root = tmp_path_factory.mktemp("dashboard-db")
    url = f"sqlite:///{root / 'study.db'}"
    env = dict(os.environ)
    env.setdefault("SYSPRUNE_CACHE_DIR", str(root / "arrays"))
    cmd = [
        sys.executable,
        "-m",
        "sysprune.cli",
        "run",
        str(E2E_TOML),
        "--storage",
        url,
        "--n-trials",
        "3",
        "--study-name",
        E2E_STUDY,
        "--quiet",
    ]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"sysprune run failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    artifact_dir = default_artifact_dir(url)  # where the runner's publisher puts them: beside the database
    study = optuna.load_study(study_name=E2E_STUDY, storage=url)
    attrs = study_system_attrs(study)
    runner_published = {
        "figures": any(k.startswith("dashboard:plot_data:sysprune-") for k in attrs),
        "notes": sum(f"dashboard:{trial_id(t)}:note_ver" in attrs for t in study.trials),
        "artifacts": sum(any(k.startswith(f"dashboard:artifacts:{trial_id(t)}:") for k in attrs) for t in study.trials),
    }
    build_tiny_study(url, callback=DashboardPublisher(artifact_dir))
    return StudyDB(url, artifact_dir, done.stdout, runner_published)


@pytest.fixture(scope="session")
def dashboard(study_db) -> Iterator[Dashboard]:
    """``sysprune dashboard --publish`` on the study database (publish: whatever the runner did not)."""
    d = start_dashboard(study_db.url, study_db.artifact_dir, publish=True)
    try:
        yield d
    finally:
        status, out, err = stop_dashboard(d)
        assert status == 0, f"dashboard exited with {status} on SIGTERM: {err}"
        assert out.strip().endswith("dashboard stopped"), out
