"""Plotly figures of the comparisons, written as HTML that works offline.

Every HTML file refers to one ``plotly.min.js`` in the results root (``results/plotly.min.js``, written once from
the installed plotly package), so a folder of figures does not carry a copy each and needs no network to view.

Each trial point carries ``customdata = [study_name, trial number, state]``: a figure's trials can be counted (the
tests do) and hovered.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from sysprune.analysis._stats import spread
from sysprune.analysis._trials import completion_order
from sysprune.analysis._paths import out_file

if TYPE_CHECKING:
    from sysprune.analysis._digest import CompareResult

_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"]
FEASIBLE, INFEASIBLE = "#2ca02c", "#d62728"


def write_html(fig, path: Path) -> Path:
    """Write ``fig`` to ``path`` with a relative reference to the shared plotly.min.js beside ``results/``."""
    import os

    from plotly.offline import get_plotlyjs

    path.parent.mkdir(parents=True, exist_ok=True)
    js = path.parent.parent / "plotly.min.js"  # results/<study>/x.html -> results/plotly.min.js
    if not js.is_file():
        js.write_text(get_plotlyjs(), encoding="utf-8")
    rel = os.path.relpath(js, path.parent).replace(os.sep, "/")
    fig.write_html(path, include_plotlyjs=rel, full_html=True)
    return path


def _at(curve: list[tuple[float, float | None]], x: float) -> float | None:
    """The step function ``curve`` (points sorted by x) at ``x``: the last value at or before it."""
    best = None
    for cx, v in curve:
        if cx > x:
            break
        best = v
    return best


def anytime_figure(result: "CompareResult"):
    """Best feasible objective vs cumulative compute: per policy the median over seeds with an IQR band, and one
    marker per finished trial (x = compute spent when it ended, y = its own objective; pruned at its last step)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    xmax = max((r.curve[-1][0] for r in result.runs.values() if r.curve), default=1.0)
    grid = [xmax * i / 200 for i in range(201)]
    for i, p in enumerate(result.policies):
        color = _COLORS[i % len(_COLORS)]
        runs = [result.runs[(p, s)] for s in result.seeds]
        med, lo, hi = [], [], []
        for x in grid:
            vals = [_at(r.curve, x) for r in runs if r.curve and x <= r.curve[-1][0]]
            sp = spread([v for v in vals if v is not None])
            # The median only where at least half the seeds that are still running have a feasible best.
            ok = sp.median is not None and sp.n * 2 >= len(vals) and vals
            med.append(sp.median if ok else None)
            lo.append(sp.q1 if ok else None)
            hi.append(sp.q3 if ok else None)
        fig.add_trace(
            go.Scatter(
                x=grid + grid[::-1],
                y=hi + lo[::-1],
                fill="toself",
                fillcolor=color,
                opacity=0.15,
                line=dict(width=0),
                hoverinfo="skip",
                showlegend=False,
                legendgroup=p,
                name=f"{p} IQR",
            )
        )
        fig.add_trace(go.Scatter(x=grid, y=med, mode="lines", line=dict(color=color, width=2), name=p, legendgroup=p))
        xs, ys, cd = [], [], []
        for r in runs:
            total = 0.0
            for t in completion_order(r.rows):
                total += t.compute or 0.0
                xs.append(total)
                ys.append(t.value)
                cd.append([r.study_name, t.number, t.state])
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="markers",
                marker=dict(color=color, size=4, opacity=0.4),
                customdata=cd,
                name=f"{p} trials",
                legendgroup=p,
                showlegend=False,
                hovertemplate="%{customdata[0]} #%{customdata[1]} %{customdata[2]}<br>"
                "compute %{x:.3g} s<br>objective %{y:.4g}<extra></extra>",
            )
        )
    fig.update_layout(
        title=f"{result.spec.name}: best feasible {result.spec.objective.metrics[0]} vs compute "
        f"(median and IQR over {len(result.seeds)} seeds; dots: every trial)",
        xaxis_title="cumulative compute (CPU s: trial processes + worker)",
        yaxis_title=f"best feasible {result.spec.objective.metrics[0]}",
        template="plotly_white",
    )
    return fig


def what_fits_figure(result: "CompareResult", metric: str):
    """Objective vs ``metric`` for every trial of every run (pruned ones at their last step), one panel per
    policy, feasible/infeasible coloured, the budget as a vertical line. A trial without a value of ``metric``
    or of the objective (pruned before a step was measured) sits on the panel's bottom edge, marked ×."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    budget = result.spec.budgets.get(metric)
    n = len(result.policies)
    fig = make_subplots(rows=1, cols=n, shared_yaxes=True, subplot_titles=result.policies)
    values = [t.value for r in result.runs.values() for t in r.rows if t.value is not None and t.finished]
    floor = min(values) if values else 0.0
    for c, p in enumerate(result.policies, start=1):
        for feasible in (True, False):
            xs, ys, cd, sym = [], [], [], []
            for s in result.seeds:
                r = result.runs[(p, s)]
                for t in r.rows:
                    if not t.finished or t.feasible != feasible:
                        continue
                    x, y = t.metrics.get(metric), t.value
                    placed = x is not None and y is not None and not math.isnan(y)
                    xs.append(x if x is not None else 0.0)
                    ys.append(y if placed else floor)
                    cd.append([r.study_name, t.number, t.state])
                    sym.append(("circle" if t.state == "COMPLETE" else "diamond-open") if placed else "x")
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="markers",
                    customdata=cd,
                    marker=dict(color=FEASIBLE if feasible else INFEASIBLE, symbol=sym, size=6),
                    name="feasible" if feasible else "infeasible",
                    legendgroup=str(feasible),
                    showlegend=c == 1,
                    hovertemplate="%{customdata[0]} #%{customdata[1]} %{customdata[2]}<br>"
                    f"{metric} %{{x:.4g}}<br>objective %{{y:.4g}}<extra></extra>",
                ),
                row=1,
                col=c,
            )
        if budget is not None:
            fig.add_vline(x=budget, line=dict(color="black", dash="dash"), row=1, col=c)
        fig.update_xaxes(title_text=metric, row=1, col=c)
    fig.update_yaxes(title_text=result.spec.objective.metrics[0], row=1, col=1)
    fig.update_layout(
        title=f"{result.spec.name}: what fits — {result.spec.objective.metrics[0]} vs {metric}"
        + (f" (budget {budget:g}, dashed)" if budget is not None else "")
        + "; circles complete, diamonds pruned (at their last step), × no value",
        template="plotly_white",
    )
    return fig


def write_compare_figures(result: "CompareResult", out_dir: Path) -> list[Path]:
    out = [write_html(anytime_figure(result), out_dir / "compare_anytime.html")]
    for metric in result.spec.budgets:
        out.append(write_html(what_fits_figure(result, metric), out_file(out_dir, f"compare_fits_{metric}", ".html")))
    return out
