"""Study figures: one plotly figure per system metric, one line per finished trial across steps.

The figures are plain plotly JSON (``{"data": [...], "layout": {...}}``) built from dictionaries: constructing
``plotly.graph_objects`` validates every property and costs ~50 ms per figure at 100 trials, which the publisher
would pay after every trial. ``tests/dashboard/test_publish.py`` loads each figure into
``plotly.graph_objects.Figure`` to prove the dictionaries are valid plotly.

Colour and dash encode the trial's state (complete: solid blue, pruned: dashed orange, failed: dotted red), so a
study of a hundred trials reads at a glance; the legend has one entry per state (an empty line carrying the
state's group), and a click on it hides all of that state's trials. Hovering a line names the trial and, for a
pruned or failed trial, why. A budget on the metric is a black long-dashed line.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from optuna.trial import TrialState

from sysprune.metrics._format import metric_label, unit_suffix
from sysprune.dashboard._curves import TrialCurves

#: Every figure id starts with this (``sysprune-peak_rss_mb``); the dashboard replaces a figure saved again
#: under the same id.
FIGURE_ID_PREFIX = "sysprune-"

_STYLE = {
    TrialState.COMPLETE: ("complete", "#1f77b4", "solid"),
    TrialState.PRUNED: ("pruned", "#ff7f0e", "dash"),
    TrialState.FAIL: ("failed", "#d62728", "dot"),
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


def trial_trace(t: TrialCurves, metric: str) -> dict[str, Any] | None:
    """The line of one trial in the figure of ``metric`` (None if the trial never measured it)."""
    xs, ys = t.series(metric)
    if all(y is None for y in ys):
        return None
    suffix = unit_suffix(metric)
    state, color, dash = _STYLE[t.state]
    why = t.reason if t.state == TrialState.PRUNED else t.error if t.state == TrialState.FAIL else None
    trace: dict[str, Any] = {"type": "scatter", "mode": "lines+markers" if len(xs) == 1 else "lines"}
    if xs == list(range(xs[0], xs[0] + len(xs))):
        trace.update(x0=xs[0], dx=1)  # consecutive steps: a third less JSON than listing them
    else:
        trace["x"] = xs
    trace.update(
        y=[num(y) for y in ys],
        name=f"trial {t.number}",
        legendgroup=state,
        showlegend=False,
        line={"color": color, "dash": dash, "width": 1.5},
        hovertemplate=f"trial {t.number} ({state})<br>step %{{x}}<br>{metric} = %{{y}}{suffix}"
        + (f"<extra>{_hover_text(why)}</extra>" if why else "<extra></extra>"),
    )
    return trace


def legend_trace(state: TrialState) -> dict[str, Any]:
    """An empty line that carries the legend entry of a state; a click on it hides the state's trials."""
    name, color, dash = _STYLE[state]
    return {
        "type": "scatter",
        "mode": "lines",
        "x": [None],
        "y": [None],
        "name": name,
        "legendgroup": name,
        "showlegend": True,
        "line": {"color": color, "dash": dash, "width": 1.5},
        "hoverinfo": "skip",
    }


def budget_trace(metric: str, budget: float, lo: int, hi: int) -> dict[str, Any]:
    suffix = unit_suffix(metric)
    return {
        "type": "scatter",
        "mode": "lines",
        "x": [lo, hi],
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


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


class FigureBuilder:
    """Builds the study figures as plotly JSON, keeping each finished trial's line once it is encoded.

    A finished trial never changes, so its line in each figure is encoded once; a refresh after the next trial
    joins the kept lines, which is what keeps the publisher's cost per trial small.
    """

    def __init__(self) -> None:
        # (trial id, metric) -> (JSON of the line, first step, last step) or None if the trial lacks the metric
        self._lines: dict[tuple[int, str], tuple[str, int, int] | None] = {}

    def _line(self, t: TrialCurves, metric: str) -> tuple[str, int, int] | None:
        key = (t.trial_id, metric)
        if key not in self._lines:
            trace = trial_trace(t, metric)
            steps = list(t.steps)
            self._lines[key] = None if trace is None else (_dumps(trace), steps[0], steps[-1])
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
        extra = [_dumps(legend_trace(s)) for s in _STYLE if s in states]
        if budget is not None:
            extra.append(_dumps(budget_trace(metric, budget, lo, hi)))
        return '{"data":[' + ",".join(parts + extra) + '],"layout":' + _dumps(layout(metric, lo, hi)) + "}"

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
