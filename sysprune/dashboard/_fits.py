"""The study's two summary figures: what fits each budget, and the compute spent over time.

* **What fits** (one per budgeted metric, ``sysprune-fits-<metric>``): each finished trial's objective against its
  final value of the metric, on a log axis when every value is positive, the budget as a vertical line. Five kinds
  of trial in distinct colours and symbols — feasible (complete, within every budget), complete but over a budget,
  pruned by a budget (a measured or predicted breach, or a hard cap), pruned on its learning curve (``curve``,
  ``median``, ...) and failed — so one look says where the budget cuts the space and whether the pruner cut the
  right trials. A pruned trial's objective is its last intermediate value; a trial without one (pruned before its
  first training step) sits on the bottom edge.
* **Compute** (``sysprune-compute``): cumulative CPU seconds of the trials against the time they finished, stacked
  by state, and a dashed line adding the training the pruned trials did not run (:func:`steps_not_run`), so
  the gap between the two is what pruning saved.

Like the per-step figures, plain plotly JSON built from dictionaries.
"""

from __future__ import annotations

import datetime
import statistics
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from optuna.trial import TrialState

from sysprune._attrs import PROCESS_CPU, WORKER_CPU
from sysprune.metrics._format import fmt, metric_label, unit_suffix
from sysprune.dashboard._curves import TrialCurves
from sysprune.dashboard._figures import FIGURE_ID_PREFIX, STYLE, num, why

#: Budget rules (``prune_detail["rule"]``) that make a pruned trial infeasible rather than unpromising.
_BUDGET_RULES = ("budget", "hard_cap")

#: The kinds of trial in a what-fits figure: label, colour, symbol.
FEASIBLE = ("feasible", "#2ca02c", "circle")
OVER = ("complete, over budget", "#d62728", "circle-open")
PRUNED_BUDGET = ("pruned by a budget", "#d62728", "x")
PRUNED_CURVE = ("pruned on its curve", "#ff7f0e", "diamond")
FAILED = ("failed", "#7f7f7f", "triangle-down")
KINDS = (FEASIBLE, OVER, PRUNED_BUDGET, PRUNED_CURVE, FAILED)

_LEGEND_BELOW = {"orientation": "h", "x": 0, "xanchor": "left", "y": -0.22, "yanchor": "top"}
_MARGIN = {"l": 60, "r": 20, "t": 50, "b": 110}


def fits_figure_id(metric: str) -> str:
    return f"{FIGURE_ID_PREFIX}fits-{metric}"


COMPUTE_FIGURE_ID = f"{FIGURE_ID_PREFIX}compute"


def kind_of(t: TrialCurves) -> tuple[str, str, str]:
    """Which of :data:`KINDS` a finished trial is."""
    if t.state == TrialState.FAIL:
        return FAILED
    if t.state == TrialState.PRUNED:
        rule = (t.detail or {}).get("rule")
        return PRUNED_BUDGET if rule in _BUDGET_RULES or t.infeasible else PRUNED_CURVE
    return OVER if t.infeasible else FEASIBLE


def what_fits_figure(
    trials: Sequence[TrialCurves], metric: str, budget: float | None, objective: str = "objective"
) -> dict[str, Any] | None:
    """Objective vs the final ``metric`` of every finished trial that measured it; None if none did."""
    placed = [(t, x) for t in sorted(trials, key=lambda t: t.number) if (x := t.final(metric)) is not None]
    if not placed:
        return None
    ys = [y for t, _ in placed if (y := t.objective()) is not None]
    lo, hi = (min(ys), max(ys)) if ys else (0.0, 1.0)
    pad = (hi - lo) * 0.05 or abs(hi) * 0.05 or 0.05
    floor = lo - pad  # where a trial without an objective value sits
    suffix = unit_suffix(metric)
    data: list[dict[str, Any]] = []
    for label, color, symbol in KINDS:
        members = [(t, x) for t, x in placed if kind_of(t)[0] == label]
        if not members:
            continue
        hover = [
            f"trial {t.number} ({STYLE[t.state].label})<br>{metric} = {fmt(x)}{suffix}<br>{objective} = "
            + (fmt(t.objective()) if t.objective() is not None else "none yet (at the bottom edge)")
            + (f"<br>{reason}" if (reason := why(t)) else "")
            for t, x in members
        ]
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": f"{label} ({len(members)})",
                "x": [num(x) for _, x in members],
                "y": [num(t.objective() if t.objective() is not None else floor) for t, _ in members],
                "customdata": [[t.number] for t, _ in members],
                "text": hover,
                "marker": {"color": color, "symbol": symbol, "size": 9, "line": {"width": 1.5, "color": color}},
                "hovertemplate": "%{text}<extra></extra>",
            }
        )
    xs = [x for _, x in placed] + ([budget] if budget is not None else [])
    log = all(x > 0 for x in xs)
    if budget is not None:
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"budget {fmt(budget)}{suffix}",
                "x": [num(budget), num(budget)],
                "y": [num(floor), num(hi + pad)],
                "line": {"color": "black", "dash": "longdash", "width": 2},
                "hovertemplate": f"budget {metric} = {fmt(budget)}{suffix}<extra></extra>",
            }
        )
    missing = len(trials) - len(placed)
    title = f"what fits: {objective} vs {metric}"  # short: the dashboard's toolbar covers the figure's top right
    layout = {
        "title": {"text": title, "x": 0.01, "xanchor": "left"},
        "xaxis": {
            "title": {"text": metric_label(metric) + (", log scale" if log else "")},
            "type": "log" if log else "linear",
        },
        "yaxis": {"title": {"text": objective}},
        # Below the plot: the dashboard gives a figure half the page, too narrow for a legend beside it.
        "legend": {
            **_LEGEND_BELOW,
            "title": {"text": "trials" + (f" ({missing} without {metric}):" if missing else ":")},
        },
        "hovermode": "closest",
        "margin": _MARGIN,
        "uirevision": f"fits-{metric}",
    }
    return {"data": data, "layout": layout}


# ------------------------------------------------------------------------------------------------------ compute


class StepCost(NamedTuple):
    """What :func:`steps_not_run` needs of a trial: its state, its last training step (-1: none) and its
    cumulative training CPU seconds at that step (``None``: not measured)."""

    state: str
    last_step: int
    cpu_s: float | None


def steps_not_run(trials: Sequence[StepCost], n_steps: int) -> list[tuple[int, float | None]]:
    """Per trial, ``(training steps it did not run, their estimated CPU seconds)``: ``(0, 0.0)`` for a trial that
    was not pruned. The estimate is the steps not run times the trial's per-step training cost — its own (``cpu_s``
    at its last step / steps run) when it ran at least one step, else the median per-step cost of the completed
    trials (a trial pruned before training); ``None`` seconds when neither is known."""
    rates = [
        t.cpu_s / (t.last_step + 1)
        for t in trials
        if t.state == "COMPLETE" and t.last_step >= 0 and t.cpu_s is not None
    ]
    fallback = statistics.median(rates) if rates else None
    out: list[tuple[int, float | None]] = []
    for t in trials:
        if t.state != "PRUNED":
            out.append((0, 0.0))
            continue
        not_run = max(0, n_steps - (t.last_step + 1))
        rate = t.cpu_s / (t.last_step + 1) if t.last_step >= 0 and t.cpu_s is not None else fallback
        out.append((not_run, None if rate is None else rate * not_run))
    return out


def _cost(t: TrialCurves) -> float | None:
    """CPU seconds the trial cost: its whole process and the worker's share, else its last measured ``cpu_s``."""
    proc, work = t.user_attrs.get(PROCESS_CPU), t.user_attrs.get(WORKER_CPU)
    if isinstance(proc, (int, float)):
        return float(proc) + (float(work) if isinstance(work, (int, float)) else 0.0)
    return t.final("cpu_s")


def _step_cost(t: TrialCurves) -> StepCost:
    trained = [s for s in t.steps if s >= 0 and t.steps[s].get("cpu_s") is not None]
    last = max(trained) if trained else -1
    return StepCost(t.state.name, last, t.steps[last].get("cpu_s") if trained else None)


def compute_figure(trials: Sequence[TrialCurves], n_steps: int | None = None) -> dict[str, Any] | None:
    """Cumulative CPU seconds by state against the time trials finished (None before a trial has a cost and a
    finish time). With ``n_steps`` (the study's steps), a dashed line adds the pruned trials' training not run."""
    timed = [
        (datetime.datetime.fromisoformat(t.datetime_complete), t, c)
        for t in trials
        if t.datetime_complete and (c := _cost(t)) is not None
    ]
    if not timed:
        return None
    timed.sort(key=lambda x: x[0])
    starts = [datetime.datetime.fromisoformat(t.datetime_start) for _, t, _ in timed if t.datetime_start]
    t0 = min(starts + [timed[0][0]])
    span = (timed[-1][0] - t0).total_seconds()
    scale, unit = (60.0, "min") if span > 600 else (1.0, "s")
    xs = [num((when - t0).total_seconds() / scale) for when, _, _ in timed]
    data: list[dict[str, Any]] = []
    for state, style in STYLE.items():
        if not any(t.state == state for _, t, _ in timed):
            continue
        total, ys = 0.0, []
        for _, t, c in timed:
            total += c if t.state == state else 0.0
            ys.append(num(total))
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"{style.label} trials",
                "x": xs,
                "y": ys,
                "stackgroup": "cpu",
                "line": {"color": style.shades[0], "width": 1},
                "hovertemplate": f"{style.label} trials: %{{y:.3g}} CPU s by %{{x:.3g}} {unit}<extra></extra>",
            }
        )
    spent = sum(c for _, _, c in timed)
    title = f"compute: {fmt(spent)} CPU s, {len(timed)} trials"
    if n_steps is not None and any(t.state == TrialState.PRUNED for _, t, _ in timed):
        cut = steps_not_run([_step_cost(t) for _, t, _ in timed], n_steps)
        if all(s is not None for _, s in cut):
            total, ys = 0.0, []
            for (_, _, c), (_, s) in zip(timed, cut):
                total += c + (s or 0.0)
                ys.append(num(total))
            saved = total - spent
            share = saved / total if total > 0 else 0.0
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "name": f"had pruned trials run on (estimate: ~{fmt(saved)} CPU s more)",
                    "x": xs,
                    "y": ys,
                    "line": {"color": "black", "dash": "dash", "width": 1.5},
                    "hovertemplate": "without pruning: ~%{y:.3g} CPU s by %{x:.3g} " + unit + "<extra></extra>",
                }
            )
            title += f"; pruning saved ~{share:.0%}"
    layout = {
        "title": {"text": title, "x": 0.01, "xanchor": "left"},
        "xaxis": {"title": {"text": f"time since the first trial started [{unit}]"}},
        "yaxis": {"title": {"text": "cumulative CPU s (trial processes + worker)"}},
        "legend": {**_LEGEND_BELOW, "title": {"text": "CPU s of:"}},
        "hovermode": "x unified",
        "margin": _MARGIN,
        "uirevision": "compute",
    }
    return {"data": data, "layout": layout}


def summary_figures(
    trials: Sequence[TrialCurves], budgets: Mapping[str, float], *, objective: str, n_steps: int | None
) -> dict[str, dict[str, Any]]:
    """``{figure id: figure}``: a what-fits figure per budgeted metric some trial measured, then the compute."""
    out: dict[str, dict[str, Any]] = {}
    for metric, budget in budgets.items():
        fig = what_fits_figure(trials, metric, budget, objective)
        if fig is not None:
            out[fits_figure_id(metric)] = fig
    fig = compute_figure(trials, n_steps)
    if fig is not None:
        out[COMPUTE_FIGURE_ID] = fig
    return out
