"""The study figures and note parts, built from hand-made trials (no database): structural metrics as points, the
what-fits figure, the compute figure, the prune detail in words, the step tables by kind."""

from __future__ import annotations

import datetime
import json

import plotly.graph_objects as go
import pytest
from optuna.trial import TrialState

from sysprune.dashboard._curves import TrialCurves
from sysprune.dashboard._detail import describe_detail
from sysprune.dashboard._figures import FigureBuilder, trial_trace
from sysprune.dashboard._fits import (
    COMPUTE_FIGURE_ID,
    FAILED,
    FEASIBLE,
    OVER,
    PRUNED_BUDGET,
    PRUNED_CURVE,
    StepCost,
    compute_figure,
    fits_figure_id,
    kind_of,
    steps_not_run,
    summary_figures,
    what_fits_figure,
)
from sysprune.dashboard._notes import MAX_COLUMNS, step_tables

T0 = datetime.datetime(2026, 12, 1, 12, 0, 0)


def _trial(number, state, steps, *, value=None, last=None, rule=None, constraint=None, cpu=None, done_s=None):
    """A finished trial: ``steps`` {step: {metric: value}}; ``constraint`` on n_params; ``cpu`` its process CPU s."""
    return TrialCurves(
        trial_id=number + 1,
        number=number,
        state=state,
        steps=steps,
        values=(value,) if value is not None else None,
        detail={"rule": rule} if rule else None,
        reason=f"pruned by {rule}" if rule else None,
        constraints={"budget:n_params": constraint} if constraint is not None else {},
        user_attrs={"process_cpu_s": cpu} if cpu is not None else {},
        datetime_start=(T0 + datetime.timedelta(seconds=number)).isoformat(),
        datetime_complete=(T0 + datetime.timedelta(seconds=done_s if done_s is not None else number + 1)).isoformat(),
        last_value=last,
    )


def _model(n_params, acc=None, cpu=None):
    row = {"n_params": float(n_params), "model_bytes": 4.0 * n_params}
    if acc is not None:
        row["val_accuracy"] = acc
    if cpu is not None:
        row["cpu_s"] = cpu
    return row


#: A size-budget study (n_params <= 10000): 0 and 1 feasible, 2 pruned at step -1 by the budget, 3 pruned on its
#: curve at step 1, 4 complete but over the budget (a policy that does not prune), 5 failed before any reading.
TRIALS = [
    _trial(
        0,
        TrialState.COMPLETE,
        {
            -1: _model(1210),
            0: {"val_accuracy": 0.5, "cpu_s": 0.1},
            1: {"val_accuracy": 0.6, "cpu_s": 0.2},
            2: _model(1210, 0.7, 0.3),
        },
        value=0.7,
        constraint=-8790.0,
        cpu=0.4,
    ),
    _trial(
        1, TrialState.COMPLETE, {-1: _model(2000), 2: _model(2000, 0.8, 0.3)}, value=0.8, constraint=-8000.0, cpu=0.4
    ),
    _trial(2, TrialState.PRUNED, {-1: _model(38410)}, rule="budget", constraint=28410.0, cpu=0.02),
    _trial(
        3,
        TrialState.PRUNED,
        {-1: _model(1500), 0: {"val_accuracy": 0.2, "cpu_s": 0.1}, 1: {"val_accuracy": 0.25, "cpu_s": 0.2}},
        last=0.25,
        rule="curve",
        constraint=None,
        cpu=0.25,
    ),
    _trial(
        4, TrialState.COMPLETE, {-1: _model(20000), 2: _model(20000, 0.9, 0.6)}, value=0.9, constraint=10000.0, cpu=0.7
    ),
    _trial(5, TrialState.FAIL, {}, cpu=0.01),
]


def test_a_structural_metric_is_drawn_for_every_trial_at_the_steps_it_was_measured():
    fig = json.loads(FigureBuilder().figure_json("n_params", TRIALS, budget=10000.0))
    go.Figure(fig)  # valid plotly
    data = fig["data"]
    lines = {t["name"]: t for t in data if t["name"].startswith("trial ")}
    # Every trial that measured it (the failed trial 5 measured nothing), at step -1 and its last step, with markers.
    assert sorted(lines) == ["trial 0", "trial 1", "trial 2", "trial 3", "trial 4"]
    assert list(lines["trial 0"]["x"]) == [-1, 2] and list(lines["trial 0"]["y"]) == [1210, 1210]
    assert (lines["trial 2"]["x0"], lines["trial 2"]["y"]) == (-1, [38410])
    assert all(t["mode"] == "lines+markers" for t in lines.values())
    assert [t["marker"]["symbol"] for t in lines.values()] == ["circle", "circle", "x", "x", "circle"]
    budget = data[-1]
    assert budget["name"] == "budget 10000" and list(budget["y"]) == [10000, 10000] and list(budget["x"]) == [-1, 2]


def test_a_learning_curve_measured_every_step_is_a_plain_line_and_gaps_get_markers():
    t = TRIALS[0]
    assert trial_trace(t, "val_accuracy")["mode"] == "lines"  # steps 0, 1, 2
    trace = trial_trace(t, "cpu_s")  # steps 0, 1, 2 too
    assert (trace["x0"], trace["dx"], trace["y"]) == (0, 1, [0.1, 0.2, 0.3])
    gap = _trial(
        9, TrialState.COMPLETE, {0: {"wall_s": 1.0}, 1: {"wall_s": None}, 2: {"wall_s": 3.0}, 3: {"wall_s": 4.0}}
    )
    trace = trial_trace(gap, "wall_s")
    assert trace["x"] == [0, 2, 3] and trace["mode"] == "lines+markers"


def test_trials_of_one_state_get_distinct_shades():
    complete = [
        _trial(n, TrialState.COMPLETE, {0: {"wall_s": 1.0}, 1: {"wall_s": 2.0}, 2: {"wall_s": 3.0}}) for n in range(4)
    ]
    colours = [trial_trace(t, "wall_s")["line"]["color"] for t in complete]
    assert len(set(colours)) == 4


@pytest.mark.parametrize(
    "number, kind", [(0, FEASIBLE), (1, FEASIBLE), (2, PRUNED_BUDGET), (3, PRUNED_CURVE), (4, OVER), (5, FAILED)]
)
def test_kind_of_each_trial(number, kind):
    assert kind_of(TRIALS[number]) == kind


def test_what_fits_figure():
    fig = what_fits_figure(TRIALS, "n_params", 10000.0, "val_accuracy")
    go.Figure(fig)  # valid plotly
    by_name = {t["name"]: t for t in fig["data"]}
    assert list(by_name) == [
        "feasible (2)",
        "complete, over budget (1)",
        "pruned by a budget (1)",
        "pruned on its curve (1)",
        "budget 10000",
    ]
    assert by_name["feasible (2)"]["x"] == [1210, 2000] and by_name["feasible (2)"]["y"] == [0.7, 0.8]
    assert by_name["pruned on its curve (1)"]["y"] == [0.25]  # its last intermediate value
    # Trial 2 has no objective value (pruned before training): on the bottom edge, below every other point.
    (bottom,) = by_name["pruned by a budget (1)"]["y"]
    assert bottom < 0.25 and by_name["pruned by a budget (1)"]["x"] == [38410]
    assert "none yet" in by_name["pruned by a budget (1)"]["text"][0]
    assert len({t["marker"]["symbol"] for t in fig["data"][:4]}) == 4
    budget = by_name["budget 10000"]
    assert budget["x"] == [10000, 10000] and budget["y"][0] <= bottom and budget["y"][1] >= 0.9
    assert fig["layout"]["xaxis"]["type"] == "log"
    assert fig["layout"]["legend"]["title"]["text"] == "trials (1 without n_params):"  # the failed trial


def test_what_fits_is_linear_when_a_value_is_not_positive_and_none_without_values():
    zero = [_trial(0, TrialState.COMPLETE, {0: {"cpu_s": 0.0, "val_accuracy": 0.5}}, value=0.5)]
    assert what_fits_figure(zero, "cpu_s", 1.0)["layout"]["xaxis"]["type"] == "linear"
    assert what_fits_figure(zero, "n_params", 1.0) is None


def test_compute_figure_stacks_cpu_by_state_and_estimates_what_pruning_saved():
    fig = compute_figure(TRIALS, n_steps=3)
    go.Figure(fig)
    names = [t["name"] for t in fig["data"]]
    assert names[:3] == ["complete trials", "pruned trials", "failed trials"]
    complete, pruned, failed, estimate = fig["data"]
    assert complete["x"] == [1, 2, 3, 4, 5, 6]  # seconds since the first trial started, at each finish
    assert complete["y"] == [0.4, 0.8, 0.8, 0.8, 1.5, 1.5]
    assert pruned["y"] == [0, 0, 0.02, 0.27, 0.27, 0.27]
    assert failed["y"][-1] == 0.01
    # Not run: trial 2, 3 steps at the completed trials' median per-step cost (0.1, 0.1, 0.2 -> 0.1) = 0.3;
    # trial 3, 1 step at its own 0.2 / 2 = 0.1.
    assert estimate["y"][-1] == pytest.approx(1.78 + 0.3 + 0.1)
    assert "pruning saved ~" in fig["layout"]["title"]["text"]


def test_steps_not_run_is_the_run_summarys_rule():
    costs = [
        StepCost("COMPLETE", 3, 0.4),
        StepCost("PRUNED", -1, None),
        StepCost("PRUNED", 1, 0.1),
        StepCost("FAIL", 0, 0.1),
    ]
    assert steps_not_run(costs, 4) == [(0, 0.0), (4, pytest.approx(0.4)), (2, pytest.approx(0.1)), (0, 0.0)]
    assert steps_not_run([StepCost("PRUNED", -1, None)], 4) == [(4, None)]


def test_summary_figures_one_fits_per_budget_then_compute():
    figs = summary_figures(TRIALS, {"n_params": 10000.0, "energy_j": 5.0}, objective="val_accuracy", n_steps=3)
    assert list(figs) == [fits_figure_id("n_params"), COMPUTE_FIGURE_ID]  # no trial measured energy_j


def test_prune_detail_in_words():
    assert describe_detail(
        {
            "rule": "budget",
            "pruner": "ResourceBudgetPruner",
            "metric": "infer_ms",
            "value": 0.5,
            "budget": 0.2,
            "step": 3,
            "predicted": True,
            "infeasible": True,
            "low": 0.3,
            "final_step": 9,
            "confidence": 0.95,
        }
    ) == [
        "At step 3, ResourceBudgetPruner (rule budget).",
        "Forecast: infer_ms reaches 0.5 ms by step 9 (at least 0.3 ms with 95% confidence); budget 0.2 ms.",
        "Infeasible: the sampler steers away from it.",
    ]
    curve = describe_detail(
        {
            "rule": "curve",
            "pruner": "CurvePruner",
            "metric": None,
            "budget": None,
            "value": 0.8,
            "step": 3,
            "predicted": True,
            "infeasible": False,
            "best_feasible": 0.9,
            "probability": 0.01,
            "final_step": 9,
            "families": {"pow3": 0.6},
            "via": "CombinedPruner member 2",
            "extra_field": 7,
        }
    )
    assert curve == [
        "At step 3, CurvePruner (via CombinedPruner member 2) (rule curve).",
        "Forecast: the learning curve ends at 0.8 at step 9; a 1.0% chance of beating the best feasible 0.9.",
        "Feasible but not promising: within every budget.",
        "Curve fit: pow3 0.6.",
        "Also: extra_field 7.",
    ]
    assert not any("None" in line for line in curve)  # fields that do not apply are left out, never "None"


def test_step_tables_by_kind_at_most_max_columns_wide():
    steps = {
        -1: {
            m: 1.0
            for m in ("wall_s", "infer_ms", "infer_ms_lo", "infer_ms_hi", "n_params", "model_bytes", "model_mem_mb")
        }
    }
    steps[0] = {"val_accuracy": 0.5, "val_loss": 1.0, "wall_s": 2.0, "my_metric": 3.0}
    steps[1] = {"val_accuracy": 0.6, "val_loss": 0.9, "wall_s": 3.0, **{m: 1.0 for m in steps[-1] if m != "wall_s"}}
    t = _trial(0, TrialState.COMPLETE, steps, value=0.6)
    lines = step_tables(t, t.metric_names())
    titles = [line for line in lines if line.startswith("*")]
    assert titles == [
        "*Learning*",
        "*Time and energy (cumulative)*",
        "*Model (measured before training, at step -1, and at the last step)*",
        "*Other*",
    ]
    headers = [line for line in lines if line.startswith("| step")]
    assert all(h.count("|") - 2 <= MAX_COLUMNS for h in headers)
    model = lines[lines.index(titles[2]) :]
    assert [r.split(" | ")[0] for r in model[4:6]] == ["| -1", "| 1"]  # only the steps it was measured at
