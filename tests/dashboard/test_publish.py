"""DashboardPublisher on hand-built studies in a real SQLite file, read back with optuna-dashboard's own readers."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import optuna
import plotly.graph_objects as go
import pytest
from optuna.trial import TrialState

from tests._require import require

require("optuna_dashboard", "dashboard")  # the study is read back with optuna-dashboard's own readers
from optuna_dashboard import get_note, save_note
from optuna_dashboard._custom_plot_data import get_plotly_graph_objects
from optuna_dashboard._note import get_note_from_system_attrs

from sysprune import _compat
from sysprune.storage._step_table import MetricStore
from sysprune.dashboard import (
    STUDY_BUDGETS_ATTR,
    DashboardPublisher,
    default_artifact_dir,
    figure_id,
    publish_study,
)
from sysprune.dashboard._figures import STYLE
from sysprune.dashboard._study_attrs import replace_study_system_attrs
from tests._optuna import storage_of, study_id, study_system_attrs, trial_id

from .conftest import BUDGETS, ERROR, FIGURE_METRICS, PRUNE_REASON, STEPS, SUMMARY_FIGURES, build_tiny_study

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _attrs(study: optuna.Study) -> dict:
    return study_system_attrs(study)


def _figures(study: optuna.Study) -> dict[str, dict]:
    return {k: json.loads(v) for k, v in get_plotly_graph_objects(_attrs(study)).items()}


def _note(study: optuna.Study, number: int) -> str:
    trial = study.trials[number]
    return get_note_from_system_attrs(_attrs(study), trial_id(trial))["body"]


def _artifacts(study: optuna.Study, number: int) -> list[dict]:
    """The trial's artifact records where optuna-dashboard lists them (tests/test_compat.py checks that it does)."""
    prefix = _compat.dashboard_artifact_prefix(_compat.trial_id(study.trials[number]))
    return [json.loads(v) for k, v in sorted(_attrs(study).items()) if k.startswith(prefix) and json.loads(v)]


@pytest.fixture
def published(sqlite_url, tmp_path) -> optuna.Study:
    """The tiny study with the publisher called after each finished trial, as the runner does."""
    return build_tiny_study(sqlite_url, callback=DashboardPublisher(tmp_path / "artifacts", budgets=BUDGETS))


# -- figures -----------------------------------------------------------------------------------------------------
def test_one_figure_per_measured_system_metric(published):
    figures = _figures(published)
    assert sorted(figures) == sorted([figure_id(m) for m in FIGURE_METRICS] + SUMMARY_FIGURES)
    # energy_j was recorded as missing, peak_rss_delta_mb and gpu_mem_mb never: no figure for them.
    for fid, fig in figures.items():
        go.Figure(fig)  # valid plotly: raises on an unknown property
        if fid in SUMMARY_FIGURES:
            continue
        metric = fid.removeprefix("sysprune-")
        assert fig["layout"]["title"]["text"].startswith(metric)
        assert fig["layout"]["xaxis"]["title"]["text"] == "step"


def test_peak_rss_figure_lines_legend_and_budget(published):
    fig = _figures(published)["sysprune-peak_rss_mb"]
    lines = [t for t in fig["data"] if t["name"].startswith("trial ")]
    # One line per finished trial (the running trial 3 is not shown), in trial order, styled by state.
    # Each trial its own shade of its state's hue (shade = trial number modulo the palette).
    assert [(t["name"], t["legendgroup"], t["line"]["color"], t["line"]["dash"]) for t in lines] == [
        ("trial 0", "complete", STYLE[TrialState.COMPLETE].shades[0], "solid"),
        ("trial 1", "pruned", STYLE[TrialState.PRUNED].shades[1], "dash"),
        ("trial 2", "failed", STYLE[TrialState.FAIL].shades[2], "dot"),
    ]
    assert len({t["line"]["color"] for t in lines}) == 3
    assert [(t["x0"], t["dx"], t["y"]) for t in lines] == [
        (0, 1, [610.0, 611.0, 612.0]),
        (0, 1, [700.0, 720.0]),
        (0, 1, [641.0]),
    ]
    assert all(t["showlegend"] is False for t in lines)
    # Two or fewer readings: markers, in the state's symbol (trial 0's three consecutive readings: a plain line).
    assert [(t["mode"], t.get("marker", {}).get("symbol")) for t in lines] == [
        ("lines", None),
        ("lines+markers", "x"),
        ("lines+markers", "triangle-up"),
    ]
    assert lines[1]["hovertemplate"] == (
        "trial 1 (pruned)<br>step %{x}<br>peak_rss_mb = %{y} MiB<br>budget constraint +70 (over budget)"
        f"<extra>{PRUNE_REASON}</extra>"
    )
    assert "budget constraint -38 (within budget)" in lines[0]["hovertemplate"]
    assert lines[2]["hovertemplate"].endswith(f"<extra>{ERROR}</extra>")
    legend = [t for t in fig["data"] if t.get("showlegend") is True]
    assert [(t["name"], t["x"], t["y"]) for t in legend] == [
        ("complete", [None], [None]),
        ("pruned", [None], [None]),
        ("failed", [None], [None]),
    ]
    budget = fig["data"][-1]
    assert (budget["name"], budget["x"], budget["y"]) == ("budget 650 MiB", [0, 2], [650.0, 650.0])
    assert len(fig["data"]) == 3 + 3 + 1
    assert fig["layout"]["xaxis"] == {"title": {"text": "step"}, "dtick": 1}


def test_figures_without_budget_have_no_budget_line(published):
    fig = _figures(published)["sysprune-wall_s"]
    assert [t["name"] for t in fig["data"]] == ["trial 0", "trial 1", "trial 2", "complete", "pruned", "failed"]
    assert fig["layout"]["title"]["text"] == "wall_s [s] per step"
    assert fig["layout"]["yaxis"]["title"]["text"] == "wall_s [s]"


def test_figure_of_a_metric_one_trial_lacks(published):
    # Trial 2 recorded no infer_ms: no line for it, and no legend entry for "failed".
    fig = _figures(published)["sysprune-infer_ms"]
    assert [t["name"] for t in fig["data"]] == ["trial 0", "trial 1", "complete", "pruned"]
    assert fig["layout"]["title"]["text"] == "infer_ms [ms] per step"
    assert _figures(published)["sysprune-n_params"]["layout"]["title"]["text"] == "n_params per step"


def test_figures_kept_current_as_trials_finish(sqlite_url, tmp_path):
    seen: list[list[str]] = []

    def callback(study, trial):
        DashboardPublisher(None, budgets=BUDGETS)(study, trial)
        fig = _figures(study)["sysprune-wall_s"]
        seen.append([t["name"] for t in fig["data"] if t["name"].startswith("trial ")])

    build_tiny_study(sqlite_url, callback=callback)
    assert seen == [["trial 0"], ["trial 0", "trial 1"], ["trial 0", "trial 1", "trial 2"]]


def test_figures_replaced_not_duplicated_and_chunks_exact(published):
    before = _attrs(published)
    publish_study(published, None, budgets=BUDGETS)
    publish_study(published, None, budgets=BUDGETS)
    after = _attrs(published)
    plot_keys = sorted(k for k in after if k.startswith("dashboard:plot_data:"))
    assert plot_keys == sorted(k for k in before if k.startswith("dashboard:plot_data:"))
    assert get_plotly_graph_objects(after) == get_plotly_graph_objects(before)
    # Every chunk but the last is full: no blank left-overs.
    for fid in get_plotly_graph_objects(after):
        prefix = f"dashboard:plot_data:{fid}:"
        chunks = [after[f"{prefix}{i}"] for i in range(sum(k.startswith(prefix) for k in after))]
        assert all(len(c) == 2045 for c in chunks[:-1]) and 0 < len(chunks[-1]) <= 2045


# -- notes -------------------------------------------------------------------------------------------------------
def test_pruned_trial_note_exact(published):
    assert _note(published, 1) == (
        "### sysprune · trial 1 · pruned\n"
        "\n"
        f"**Why pruned:** {PRUNE_REASON}\n"
        "\n"
        "**How it was decided**\n"
        "\n"
        "- At step 1, ResourceBudgetPruner (rule budget).\n"
        "- Measured: peak_rss_mb 720 MiB; budget 650 MiB.\n"
        "\n"
        "**Last reported value:** 0.45\n"
        "\n"
        "**Budgets** (constraint = value − budget; above 0 is over budget)\n"
        "\n"
        "| metric | budget | final value | constraint | verdict |\n"
        "|---|---:|---:|---:|---|\n"
        "| peak_rss_mb | 650 MiB | 720 MiB | 70 | over budget |\n"
        "\n"
        "**Step metrics** (full precision in the artifact `trial-1-step-metrics.csv`)\n"
        "\n"
        "*Learning*\n"
        "\n"
        "| step | val_accuracy |\n"
        "|---:|---:|\n"
        "| 0 | 0.4 |\n"
        "| 1 | 0.45 |\n"
        "\n"
        "*Time and energy (cumulative)*\n"
        "\n"
        "| step | wall_s [s] | cpu_s [s] |\n"
        "|---:|---:|---:|\n"
        "| 0 | 1.5 | 1.4 |\n"
        "| 1 | 3.25 | 3 |\n"
        "\n"
        "*Memory*\n"
        "\n"
        "| step | rss_mb [MiB] | peak_rss_mb [MiB] |\n"
        "|---:|---:|---:|\n"
        "| 0 | 690 | 700 |\n"
        "| 1 | 715.5 | 720 |\n"
        "\n"
        "*Model (measured before training, at step -1, and at the last step)*\n"
        "\n"
        "| step | infer_ms [ms] | n_params | model_bytes [B] |\n"
        "|---:|---:|---:|---:|\n"
        "| 0 | 0.05 | 250000 | 1000000 |\n"
        "| 1 | 0.05 | 250000 | 1000000 |\n"
        "\n"
        "Recorded as missing (not measurable here): energy_j.\n"
    )


def test_complete_and_failed_trial_notes(published):
    complete = _note(published, 0)
    assert complete.startswith("### sysprune · trial 0 · complete\n\n**Value:** 0.7\n")
    assert "| peak_rss_mb | 650 MiB | 612 MiB | -38 | within budget |" in complete
    assert (
        "| 2 | 3 | 2.7 |" in complete and "| 2 | 602 | 612 |" in complete and "| 2 | 0.019 | 1000 | 4000 |" in complete
    )
    failed = _note(published, 2)
    assert failed.startswith(f"### sysprune · trial 2 · failed\n\n**Why failed:** {ERROR}\n")
    assert "| peak_rss_mb | 650 MiB | 641 MiB | — | not checked |" in failed
    assert "| 0 | 0.5 | 0.4 |" in failed and "| 0 | 640 | 641 |" in failed
    assert "*Model" not in failed  # nothing of the kind measured: no table


def test_running_trial_gets_nothing(published):
    assert _note(published, 3) == ""
    assert _artifacts(published, 3) == []


def test_study_note(published):
    body = get_note(published)
    assert body.startswith("### sysprune · study summary\n\n3 finished trials: 1 complete, 1 pruned, 1 failed.\n")
    assert "**Budgets:** peak_rss_mb ≤ 650 MiB\n" in body
    assert "Shown: wall_s, cpu_s, rss_mb, peak_rss_mb, infer_ms, n_params, model_bytes.\n" in body
    assert (
        "No values recorded (no figure): energy_j, peak_rss_delta_mb, gpu_mem_mb, infer_ms_lo, infer_ms_hi, "
        "model_mem_mb.\n"
    ) in body
    assert (
        "**Summary figures** (first on the study's main page): `sysprune-fits-peak_rss_mb`, `sysprune-compute`" in body
    )
    assert body.endswith(
        f"| trial | step | constraints | reason |\n|---:|---:|---|---|\n| 1 | 1 | infeasible | {PRUNE_REASON} |\n"
    )


def test_notes_not_rewritten_when_unchanged_and_hand_notes_kept(published):
    trial0 = optuna.Trial(published, trial_id(published.trials[0]))  # a handle for save_note; no state change
    save_note(trial0, "my own words")
    versions = {k: v for k, v in _attrs(published).items() if k.endswith("note_ver")}
    publish_study(published, None, budgets=BUDGETS)
    assert _note(published, 0) == "my own words"
    assert _note(published, 1).startswith("### sysprune · trial 1 · pruned")
    after = {k: v for k, v in _attrs(published).items() if k.endswith("note_ver")}
    assert after == versions  # identical generated notes are not written again (no version bump)


def test_regenerated_note_bumps_version(published):
    tid = trial_id(published.trials[1])
    version = _attrs(published)[f"dashboard:{tid}:note_ver"]
    publish_study(published, None, budgets={"peak_rss_mb": 700.0})  # another budget: another note
    assert _attrs(published)[f"dashboard:{tid}:note_ver"] == version + 1
    assert "| peak_rss_mb | 700 MiB | 720 MiB | 70 | over budget |" in _note(published, 1)


# -- artifacts ---------------------------------------------------------------------------------------------------
def test_each_finished_trial_has_its_csv_artifact(published, tmp_path):
    art = tmp_path / "artifacts"
    for number in (0, 1, 2):
        metas = _artifacts(published, number)
        assert [(m["filename"], m["mimetype"]) for m in metas] == [(f"trial-{number}-step-metrics.csv", "text/csv")]
    (meta,) = _artifacts(published, 1)
    assert (art / meta["artifact_id"]).read_text() == (
        "step,val_accuracy,wall_s,cpu_s,energy_j,rss_mb,peak_rss_mb,infer_ms,n_params,model_bytes\n"
        "0,0.4,1.5,1.4,,690.0,700.0,0.05,250000.0,1000000.0\n"
        "1,0.45,3.25,3.0,,715.5,720.0,0.05,250000.0,1000000.0\n"
    )


def test_republishing_keeps_one_artifact_per_trial(published, tmp_path):
    before = [_artifacts(published, n) for n in (0, 1, 2)]
    publish_study(published, tmp_path / "artifacts", budgets=BUDGETS)
    assert [_artifacts(published, n) for n in (0, 1, 2)] == before
    assert len(list((tmp_path / "artifacts").iterdir())) == 3


def test_no_artifact_dir_no_artifacts(sqlite_url):
    study = build_tiny_study(sqlite_url, callback=DashboardPublisher(None, budgets=BUDGETS))
    assert [_artifacts(study, n) for n in (0, 1, 2)] == [[], [], []]
    assert "### sysprune · trial 1 · pruned" in _note(study, 1)


# -- sources, cost, errors ---------------------------------------------------------------------------------------
def test_budgets_from_study_user_attr(sqlite_url):
    study = build_tiny_study(sqlite_url)
    study.set_user_attr(STUDY_BUDGETS_ATTR, {"peak_rss_mb": 650, "not_a_metric": 1})
    assert publish_study(study, None) == 3
    assert _figures(study)["sysprune-peak_rss_mb"]["data"][-1]["name"] == "budget 650 MiB"
    assert "**Budgets:** peak_rss_mb ≤ 650 MiB\n" in get_note(study)


class _CountingStore:
    def __init__(self, inner):
        self.inner, self.reads = inner, []

    def trial_steps(self, trial_id):
        self.reads.append(trial_id)
        return self.inner.trial_steps(trial_id)

    def load(self, *args, **kwargs):
        raise AssertionError("a trial at a time must not read the whole study")


def test_each_trial_read_once(sqlite_url):
    counting = _CountingStore(MetricStore(sqlite_url))
    study = build_tiny_study(sqlite_url, callback=DashboardPublisher(None, metric_store=counting))
    assert counting.reads == [trial_id(t) for t in study.trials[:3]]


def test_trials_finished_elsewhere_are_picked_up(sqlite_url):
    study = build_tiny_study(sqlite_url)  # no publisher while it ran (another worker, say)
    publisher = DashboardPublisher(None)
    t = study.ask()
    study.tell(t, 1.0)
    publisher(study, study.trials[-1])
    fig = _figures(study)["sysprune-wall_s"]
    assert [d["name"] for d in fig["data"] if d["name"].startswith("trial ")] == ["trial 0", "trial 1", "trial 2"]
    assert _note(study, 1).startswith("### sysprune · trial 1 · pruned")
    assert _note(study, 4).startswith("### sysprune · trial 4 · complete")  # no steps: a note all the same
    assert "**Step metrics:** none recorded." in _note(study, 4)


def test_bulk_read_equals_per_trial_read(sqlite_url, tmp_path):
    study = optuna.create_study(storage=sqlite_url, study_name="many")
    store = MetricStore(sqlite_url)
    for i in range(12):  # more than the bulk threshold
        t = study.ask()
        for s in range(2):
            store.write_step(
                study_name="many",
                trial_id=trial_id(t),
                trial_number=t.number,
                step=s,
                metrics={"wall_s": i + s, "energy_j": None},
            )
        study.tell(t, float(i))
    assert publish_study(study, tmp_path / "a") == 12
    bulk = _figures(study)["sysprune-wall_s"]
    incremental = DashboardPublisher(None)
    for t in study.trials:
        incremental.publish(study, t)
    assert _figures(study)["sysprune-wall_s"] == bulk
    assert [d["y"] for d in bulk["data"][:3]] == [[0.0, 1.0], [1.0, 2.0], [2.0, 3.0]]


def test_callback_logs_and_continues_but_publish_raises(sqlite_url, caplog):
    class Broken:
        def trial_steps(self, trial_id):
            raise OSError("disk gone")

    study = build_tiny_study(sqlite_url)
    publisher = DashboardPublisher(None, metric_store=Broken())
    with caplog.at_level(logging.WARNING, logger="sysprune"):
        publisher(study, study.trials[0])
    assert [r.getMessage() for r in caplog.records] == [
        "could not publish trial 0 to the dashboard: OSError: disk gone"
    ]
    with pytest.raises(OSError, match="disk gone"):
        publisher.publish(study, study.trials[0])


def test_in_memory_storage(tmp_path):
    """The per-key path for storages other than RDB (in-memory, journal)."""
    from sysprune.storage._step_table import store_for

    study = optuna.create_study(study_name="mem")
    store = store_for(storage_of(study))
    t = study.ask()
    store.write_step(study_name="mem", trial_id=trial_id(t), trial_number=0, step=0, metrics={"rss_mb": 10.0})
    study.tell(t, state=TrialState.PRUNED)
    publisher = DashboardPublisher(tmp_path / "a")
    publisher(study, study.trials[0])
    publisher(study, study.trials[0])
    figures = _figures(study)
    assert list(figures) == ["sysprune-rss_mb"]
    assert figures["sysprune-rss_mb"]["data"][0]["y"] == [10.0]
    assert _note(study, 0).startswith("### sysprune · trial 0 · pruned\n\n**Why pruned:** no reason recorded\n")
    assert [m["filename"] for m in _artifacts(study, 0)] == ["trial-0-step-metrics.csv"]


def test_replace_study_system_attrs_drops_stale_chunks(sqlite_url):
    study = optuna.create_study(storage=sqlite_url)
    sid = study_id(study)
    replace_study_system_attrs(
        storage_of(study), sid, {"p:0": "a", "p:1": "b", "p:2": "c", "q": 1}, clear_prefixes=["p:"]
    )
    replace_study_system_attrs(storage_of(study), sid, {"p:0": "z"}, clear_prefixes=["p:"])
    assert _attrs(study) == {"p:0": "z", "q": 1}


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"metrics": ["rss_mb", "bogus"]}, ValueError, "metrics: unknown metric 'bogus'"),
        ({"metrics": "rss_mb"}, TypeError, "got the string 'rss_mb'"),
        ({"budgets": {"ram": 1.0}}, ValueError, "budgets: unknown metric 'ram'"),
    ],
)
def test_constructor_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        DashboardPublisher(None, **kwargs)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///results/sysprune.db", Path("results/artifacts")),
        ("sqlite:////tmp/x/study.db", Path("/tmp/x/artifacts")),
        ("sqlite:///:memory:", Path("results/artifacts")),
        ("postgresql://u@h/db", Path("results/artifacts")),
        ("not a url", Path("results/artifacts")),
    ],
)
def test_default_artifact_dir(url, expected):
    assert default_artifact_dir(url) == expected


def test_every_rdb_backend_publishes_and_serves(rdb_url, tmp_path):
    """The one-transaction writer on SQLite and PostgreSQL, read back by a dashboard served from that storage."""
    import threading
    import uuid

    from sysprune.dashboard._server import make_dashboard_server, open_storage, serve, server_url

    from .conftest import http_get

    name = f"tiny-{uuid.uuid4().hex[:8]}"
    study = build_tiny_study(rdb_url, study_name=name, callback=DashboardPublisher(tmp_path / "a"))
    publish_study(study, tmp_path / "a")  # and again: replaced, not duplicated
    assert sorted(_figures(study)) == sorted([figure_id(m) for m in FIGURE_METRICS] + SUMMARY_FIGURES)
    assert f"**Why pruned:** {PRUNE_REASON}\n" in _note(study, 1)
    assert [len(_artifacts(study, n)) for n in range(4)] == [1, 1, 1, 0]

    server = make_dashboard_server(open_storage(rdb_url), "127.0.0.1", 0, tmp_path / "a")
    thread = threading.Thread(target=serve, args=(server,))
    thread.start()
    try:
        base = server_url(server).removesuffix("/dashboard")
        detail = http_get(f"{base}/api/studies/{study_id(study)}").json()
    finally:
        server.shutdown()
        thread.join(timeout=10)
    assert detail["name"] == name
    assert sorted(g["id"] for g in detail["plotly_graph_objects"]) == sorted(
        [figure_id(m) for m in FIGURE_METRICS] + SUMMARY_FIGURES
    )
    assert detail["trials"][1]["note"]["body"] == _note(study, 1)


def test_steps_table_matches_store(published):
    """The note's tables are the store's numbers: check every trial's first row against STEPS."""
    for number in (0, 1, 2):
        first = STEPS[number][0]
        note = _note(published, number)
        assert f"| 0 | {first['val_accuracy']:g} |" in note
        assert f"| 0 | {first['wall_s']:g} | {first['cpu_s']:g} |" in note


def test_a_recreated_study_is_published_afresh(sqlite_url):
    """SQLite reuses the trial ids of a deleted study: the publisher must not show the old trials' lines."""
    from .conftest import STUDY

    publisher = DashboardPublisher(None)
    build_tiny_study(sqlite_url, callback=publisher)
    optuna.delete_study(study_name=STUDY, storage=sqlite_url)
    again = optuna.create_study(storage=sqlite_url, study_name=STUDY)
    t = again.ask()
    assert _compat.trial_id(t) == 1  # the first id of the deleted study, reused
    MetricStore(sqlite_url).write_step(
        study_name=STUDY,
        trial_id=_compat.trial_id(t),
        trial_number=0,
        step=0,
        metrics={"rss_mb": 1.0},
        trial_start=t.datetime_start,
    )
    publisher(again, again.tell(t, 0.5))
    figure = _figures(again)[figure_id("rss_mb")]
    lines = [trace for trace in figure["data"] if trace["name"].startswith("trial ")]
    assert [(line["name"], line["y"]) for line in lines] == [("trial 0", [1.0])]
