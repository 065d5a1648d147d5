"""Study figures: one plotly figure per system metric, one trace per finished trial across steps.

The figures are plain plotly JSON (``{"data": [...], "layout": {...}}``) built from dictionaries: constructing
``plotly.graph_objects`` validates every property and costs ~50 ms per figure at 100 trials, which the publisher
would pay after every trial. ``tests/dashboard/test_publish.py`` loads each figure into
``plotly.graph_objects.Figure`` to prove the dictionaries are valid plotly.

A trial's trace holds the steps at which the metric was measured, and only those: a structural metric
(``n_params``, ``model_bytes``, ``infer_ms``, ``model_mem_mb``) is measured before training (step -1) and at the last
step, so its trace is two points joined by a line, drawn with markers so that a trial pruned at step -1 (one point)
shows too. A learning or cumulative curve measured at every step is a plain line.

The trial's state sets the hue, dash and marker (complete: blue, solid, circles; pruned: orange, dashed, crosses;
failed: red, dotted, triangles), and each trial its own shade of that hue (by trial number), so neighbouring lines
of one state can be told apart while "the pruned ones sit above the budget line" still reads at a glance. The legend
has one entry per state (an empty trace carrying the state's group): a click on it hides all of that state's
trials. Hovering a trace names the trial, its budget constraint on the metric and, for a pruned or failed trial, why.
A budget on the metric is a black long-dashed line.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from optuna.trial import TrialState

from sysprune.metrics._format import fmt, metric_label, unit_suffix
from sysprune.metrics._registry import METRICS
from sysprune.dashboard._curves import TrialCurves

#: Every figure id starts with this (``sysprune-peak_rss_mb``); the dashboard replaces a figure saved again
#: under the same id.
FIGURE_ID_PREFIX = "sysprune-"


@dataclass(frozen=True)
class Style:
    label: str
    #: Shades of the state's hue; a trial takes ``shades[number % len(shades)]``. The first is the legend's.
    shades: tuple[str, ...]
    dash: str
    symbol: str

    def color(self, number: int) -> str:
        return self.shades[number % len(self.shades)]


STYLE = {
    TrialState.COMPLETE: Style(
        "complete", ("#1f77b4", "#08519c", "#4292c6", "#2171b5", "#6baed6", "#084594"), "solid", "circle"
    ),
    TrialState.PRUNED: Style("pruned", ("#ff7f0e", "#d94801", "#fd8d3c", "#a63603", "#f16913", "#e6550d"), "dash", "x"),
    TrialState.FAIL: Style("failed", ("#d62728", "#a50f15", "#ef3b2c", "#cb181d", "#fb6a4a"), "dot", "triangle-up"),
}
_REASON_CHARS = 120


def figure_id(metric: str) -> str:
    return FIGURE_ID_PREFIX + metric


def figure_title(metric: str) -> str:
    return f"{metric_label(metric)} per step"


def num(value: float | None) -> float | None:
    """Six significant digits: enough for a plot and a table, a third of the JSON of ``repr``."""
    return None if value is None else float(f"{value:.6g}")


def _hover_text(text: str) -> str:
    # Plotly hover templates read %{...} as a placeholder and <...> as a tag.
    text = text if len(text) <= _REASON_CHARS else text[: _REASON_CHARS - 1] + "…"
    return text.replace("%{", "% {").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def why(t: TrialCurves) -> str | None:
    """Why a pruned or failed trial ended, ready for a hover label (None for a complete trial or no reason)."""
    text = t.reason if t.state == TrialState.PRUNED else t.error if t.state == TrialState.FAIL else None
    return _hover_text(text) if text else None


def hover_why(t: TrialCurves) -> str:
    """The ``<extra>`` part of a hover label: why a pruned or failed trial ended (empty otherwise)."""
    text = why(t)
    return f"<extra>{text}</extra>" if text else "<extra></extra>"


def constraint_text(t: TrialCurves, metric: str) -> str:
    """``"<br>budget constraint +28410 (over budget)"`` for a trial with a constraint on ``metric``, else ``""``."""
    c = t.budget_constraint(metric)
    if c is None:
        return ""
    return f"<br>budget constraint {'+' if c > 0 else ''}{fmt(c)} ({'over' if c > 0 else 'within'} budget)"


def _is_structural(metric: str) -> bool:
    m = METRICS.get(metric)
    return m is not None and m.kind == "structural"


def trial_trace(t: TrialCurves, metric: str) -> dict[str, Any] | None:
    """The trace of one trial in the figure of ``metric``: the steps it was measured at (None if never)."""
    xs, ys = t.series(metric)
    if not xs:
        return None
    suffix = unit_suffix(metric)
    style = STYLE[t.state]
    color = style.color(t.number)
    consecutive = xs == list(range(xs[0], xs[0] + len(xs)))
    # Markers where a reading stands alone: one point, a structural metric (step -1 and the last), or gaps.
    markers = len(xs) <= 2 or _is_structural(metric) or not consecutive
    trace: dict[str, Any] = {"type": "scatter", "mode": "lines+markers" if markers else "lines"}
    if consecutive:
        trace.update(x0=xs[0], dx=1)  # consecutive steps: a third less JSON than listing them
    else:
        trace["x"] = xs
    trace.update(
        y=[num(y) for y in ys],
        name=f"trial {t.number}",
        legendgroup=style.label,
        showlegend=False,
        line={"color": color, "dash": style.dash, "width": 1.5},
        hovertemplate=f"trial {t.number} ({style.label})<br>step %{{x}}<br>{metric} = %{{y}}{suffix}"
        + constraint_text(t, metric)
        + hover_why(t),
    )
    if markers:
        trace["marker"] = {"color": color, "symbol": style.symbol, "size": 8 if style.symbol == "x" else 7}
    return trace


def legend_trace(state: TrialState) -> dict[str, Any]:
    """An empty trace that carries the legend entry of a state; a click on it hides the state's trials."""
    style = STYLE[state]
    return {
        "type": "scatter",
        "mode": "lines+markers",
        "x": [None],
        "y": [None],
        "name": style.label,
        "legendgroup": style.label,
        "showlegend": True,
        "line": {"color": style.shades[0], "dash": style.dash, "width": 1.5},
        "marker": {"color": style.shades[0], "symbol": style.symbol},
        "hoverinfo": "skip",
    }


def budget_trace(metric: str, budget: float, lo: int, hi: int) -> dict[str, Any]:
    suffix = unit_suffix(metric)
    return {
        "type": "scatter",
        "mode": "lines",
        "x": [lo, max(hi, lo + 1)],  # a line even when every trial stopped at one step (pruned at step -1)
        "y": [num(budget), num(budget)],
        "name": f"budget {num(budget):g}{suffix}",
        "line": {"color": "black", "dash": "longdash", "width": 2},
        "hovertemplate": f"budget {metric} = %{{y}}{suffix}<extra></extra>",
    }


def layout(metric: str, first_step: int = 0, last_step: int = 0) -> dict[str, Any]:
    return {
        # Left-aligned: a centred title runs under the dashboard's plot toolbar at the top right.
        "title": {"text": figure_title(metric), "x": 0.01, "xanchor": "left"},
        # Whole steps only (plotly would tick 0.5 on a short study), at most about ten ticks.
        "xaxis": {"title": {"text": "step"}, "dtick": max(1, math.ceil((last_step - first_step) / 10))},
        "yaxis": {"title": {"text": metric_label(metric)}},
        "legend": {"title": {"text": "trial state"}},
        "hovermode": "closest",
        "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
        # Keep the reader's zoom and hidden states when the dashboard redraws a refreshed figure.
        "uirevision": metric,
    }


def dumps(obj: Any) -> str:
    """Compact JSON, as the figures are stored."""
    return json.dumps(obj, separators=(",", ":"))


class FigureBuilder:
    """Builds the study figures as plotly JSON, keeping each finished trial's line once it is encoded.

    A finished trial never changes, so its line in each figure is encoded once; a refresh after the next trial
    joins the kept lines, which is what keeps the publisher's cost per trial small.
    """

    def __init__(self) -> None:
        # (trial id, metric) -> (JSON of the trace, first step, last step) or None if the trial lacks the metric
        self._lines: dict[tuple[int, str], tuple[str, int, int] | None] = {}

    def _line(self, t: TrialCurves, metric: str) -> tuple[str, int, int] | None:
        key = (t.trial_id, metric)
        if key not in self._lines:
            trace = trial_trace(t, metric)
            steps = t.series(metric)[0]
            self._lines[key] = None if trace is None else (dumps(trace), steps[0], steps[-1])
        return self._lines[key]

    def figure_json(self, metric: str, trials: Sequence[TrialCurves], budget: float | None = None) -> str | None:
        """The figure of ``metric`` (a line per trial that measured it, in trial order), or None if none did."""
        parts: list[str] = []
        states: list[TrialState] = []
        lo = hi = None
        for t in sorted(trials, key=lambda t: t.number):
            line = self._line(t, metric)
            if line is None:
                continue
            parts.append(line[0])
            if t.state not in states:
                states.append(t.state)
            lo = line[1] if lo is None else min(lo, line[1])
            hi = line[2] if hi is None else max(hi, line[2])
        if lo is None or hi is None:  # no trial measured ``metric`` (so ``parts`` is empty too)
            return None
        extra = [dumps(legend_trace(s)) for s in STYLE if s in states]
        if budget is not None:
            extra.append(dumps(budget_trace(metric, budget, lo, hi)))
        return '{"data":[' + ",".join(parts + extra) + '],"layout":' + dumps(layout(metric, lo, hi)) + "}"

    def study_figures(
        self, trials: Sequence[TrialCurves], metrics: Sequence[str], budgets: Mapping[str, float]
    ) -> dict[str, str]:
        """``{figure id: figure JSON}`` for each metric of ``metrics`` that some trial measured."""
        out = {}
        for m in metrics:
            fig = self.figure_json(m, trials, budgets.get(m))
            if fig is not None:
                out[figure_id(m)] = fig
        return out
