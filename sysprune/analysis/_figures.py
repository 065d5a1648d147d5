"""Plotly figures of the comparisons, written as HTML that works offline.

Every HTML file refers to one ``plotly.min.js`` in the results root (``results/plotly.min.js``, written once from
the installed plotly package), so a folder of figures does not carry a copy each and needs no network to view.

Each trial point carries ``customdata = [study_name, trial number, state]``: a figure's trials can be counted (the
tests do) and hovered.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sysprune.analysis._stats import quantile
from sysprune.analysis._trials import completion_order
from sysprune.analysis._paths import out_file

if TYPE_CHECKING:
    from sysprune.analysis._inference import Friedman
    from sysprune.analysis._digest import CompareResult

_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"]
FEASIBLE, INFEASIBLE = "#2ca02c", "#d62728"
#: Panels per row of a figure with one panel per policy (wider would not fit a page).
PANELS_PER_ROW = 4


def write_html(fig, path: Path, *, static: bool = False) -> Path:
    """Write ``fig`` to ``path`` with a relative reference to the shared plotly.min.js beside ``results/``; with
    ``static``, also a PNG beside it (:func:`write_static`: what a code host shows in a Markdown page)."""
    import os

    from plotly.offline import get_plotlyjs

    path.parent.mkdir(parents=True, exist_ok=True)
    js = path.parent.parent / "plotly.min.js"  # results/<study>/x.html -> results/plotly.min.js
    if not js.is_file():
        js.write_text(get_plotlyjs(), encoding="utf-8")
    rel = os.path.relpath(js, path.parent).replace(os.sep, "/")
    fig.write_html(path, include_plotlyjs=rel, full_html=True)
    if static:
        write_static(fig, path.with_suffix(".png"))
    return path


#: Why the last static image could not be written (None: it was): the chapter says so instead of linking it.
STATIC_ERROR: list[str] = []


def write_static(fig, path: Path) -> Path | None:
    """``fig`` as a PNG through kaleido (the ``results`` extra; it drives the system's Chromium, offline). Returns
    ``None`` — and records why in :data:`STATIC_ERROR` — where it cannot: a missing image is missing, not faked."""
    try:
        fig.write_image(path, format="png", scale=1.5)
    except Exception as e:  # kaleido missing, no Chromium: the HTML figure stands alone
        STATIC_ERROR[:] = [f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"]
        return None
    return path


def spans_decades(values: list[float]) -> bool:
    """Positive values whose largest is over 10x their smallest: an axis for them is logarithmic."""
    pos = [v for v in values if v is not None and v > 0 and math.isfinite(v)]
    return len(pos) > 1 and max(pos) > 10 * min(pos)


def _at(curve: list[tuple[float, float | None]], x: float) -> float | None:
    """The step function ``curve`` (points sorted by x) at ``x``: the last value at or before it."""
    best = None
    for cx, v in curve:
        if cx > x:
            break
        best = v
    return best


def anytime_bands(
    curves: list[list[tuple[float, float | None]]], grid: list[float], direction: str
) -> tuple[list[float | None], list[float | None], list[float | None]]:
    """Median and quartiles over seeds of the best feasible objective at each compute of ``grid``. A seed whose
    search ended keeps its final best (it does not drop out), and one with nothing feasible yet counts as the worst,
    so the median of non-decreasing curves never goes back; ``None`` where under half the seeds have a value."""
    worst = -math.inf if direction == "maximize" else math.inf
    med: list[float | None] = []
    lo: list[float | None] = []
    hi: list[float | None] = []
    for x in grid:
        vals = [v if (v := _at(c, x)) is not None else worst for c in curves if c]
        if not vals:
            med.append(None)
            lo.append(None)
            hi.append(None)
            continue
        q = [quantile(sorted(vals), p) for p in (0.5, 0.25, 0.75)]
        if direction != "maximize":  # a lower quartile of losses is the better side: keep the band the same way
            q = [q[0], q[2], q[1]]
        med.append(None if math.isinf(q[0]) else q[0])
        lo.append(None if math.isinf(q[1]) else q[1])
        hi.append(None if math.isinf(q[2]) else q[2])
    return med, lo, hi


def anytime_figure(result: "CompareResult", *, dots: bool = False):
    """Best feasible objective vs cumulative compute: per policy one median line over seeds with its IQR band
    (monotone: :func:`anytime_bands`), and with ``dots`` one marker per finished trial (x = compute spent when it
    ended, y = its own objective; pruned at its last step)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    xmax = max((r.curve[-1][0] for r in result.runs.values() if r.curve), default=1.0)
    grid = [xmax * i / 200 for i in range(201)]
    for i, p in enumerate(result.policies):
        color = _COLORS[i % len(_COLORS)]
        runs = [result.runs[(p, s)] for s in result.seeds]
        med, lo, hi = anytime_bands([r.curve for r in runs], grid, result.direction)
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
        if not dots:
            continue
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
        f"(median and IQR over {len(result.seeds)} seeds" + ("; dots: every trial)" if dots else ")"),
        xaxis_title="cumulative compute (CPU s: trial processes + worker)",
        yaxis_title=f"best feasible {result.spec.objective.metrics[0]}",
        template="plotly_white",
        width=1000,
        height=520,
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
    cols = min(PANELS_PER_ROW, n)  # panels wrap onto rows: the figure fits a page at any number of policies
    nrows = math.ceil(n / cols)
    fig = make_subplots(rows=nrows, cols=cols, shared_yaxes=True, subplot_titles=result.policies)
    values = [t.value for r in result.runs.values() for t in r.rows if t.value is not None and t.finished]
    floor = min(values) if values else 0.0
    xs_all = [t.metrics[metric] for r in result.runs.values() for t in r.rows if t.metrics.get(metric) is not None]
    log = spans_decades([*xs_all, *([budget] if budget else [])])
    pos = [x for x in xs_all if x > 0]
    nowhere = (min(pos) / 2 if pos else 1.0) if log else 0.0  # where a trial without a value of the metric sits
    for k, p in enumerate(result.policies):
        row, c = k // cols + 1, k % cols + 1
        for feasible in (True, False):
            xs, ys, cd, sym = [], [], [], []
            for s in result.seeds:
                r = result.runs[(p, s)]
                for t in r.rows:
                    if not t.finished or t.feasible != feasible:
                        continue
                    x, y = t.metrics.get(metric), t.value
                    placed = x is not None and y is not None and not math.isnan(y)
                    xs.append(x if x is not None and (x > 0 or not log) else nowhere)
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
                    showlegend=k == 0,
                    hovertemplate="%{customdata[0]} #%{customdata[1]} %{customdata[2]}<br>"
                    f"{metric} %{{x:.4g}}<br>objective %{{y:.4g}}<extra></extra>",
                ),
                row=row,
                col=c,
            )
        if budget is not None:
            fig.add_vline(x=budget, line=dict(color="black", dash="dash"), row=row, col=c)
        fig.update_xaxes(title_text=metric + (" (log)" if log else ""), type="log" if log else "linear", row=row, col=c)
    for row in range(1, nrows + 1):
        fig.update_yaxes(title_text=result.spec.objective.metrics[0], row=row, col=1)
    fig.update_layout(
        title=f"{result.spec.name}: what fits — {result.spec.objective.metrics[0]} vs {metric}"
        + (f" (budget {budget:g}, dashed)" if budget is not None else "")
        + "; circles complete, diamonds pruned (at their last step), × no value",
        template="plotly_white",
        width=260 * cols + 160,
        height=300 * nrows + 140,
    )
    return fig


def write_compare_figures(result: "CompareResult", out_dir: Path, *, static: bool = False) -> list[Path]:
    out = [write_html(anytime_figure(result), out_dir / "compare_anytime.html", static=static)]
    for metric in result.spec.budgets:
        out.append(
            write_html(
                what_fits_figure(result, metric), out_file(out_dir, f"compare_fits_{metric}", ".html"), static=static
            )
        )
    return out


def cd_diagram(fr: "Friedman", path: Path) -> Path | None:
    """The critical-difference diagram (scikit-posthocs, matplotlib): mean ranks, pairs joined when the
    Conover–Holm test does not separate them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    import scikit_posthocs as sp

    names = list(fr.treatments)
    sig = pd.DataFrame(1.0, index=names, columns=names)
    for (a, b), p in fr.posthoc.items():
        sig.loc[a, b] = sig.loc[b, a] = p
    fig, ax = plt.subplots(figsize=(8, 0.5 + 0.35 * len(names)))
    sp.critical_difference_diagram(pd.Series(fr.mean_ranks), sig, ax=ax)
    ax.set_title(f"mean rank of compute-to-target over {fr.n} study x seed blocks (1 = least)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def curves_by_state(sub: Any, metric: str, trials: dict[int, Any]) -> dict[str, tuple[list, list, list]]:
    """Every trial's per-step curve of ``metric`` (``sub``: step rows with ``trial_number``, ``step`` and the metric,
    without gaps), gathered into one line per trial state: (x, y, customdata), trials by number and each one's steps
    in order, where a ``None`` point ends one trial's line before the next starts (plotly does not join across it)
    and each point's customdata is its trial's ``[number, state]``. States in the order of their first trial; a
    trial not in ``trials`` is ``?``.

    One trace per state instead of one per trial: a figure of 10,000 trials has 3 traces, not 10,000 (plotly's
    per-trace cost made the report's figures ~9 s each at 10,000 trials), and one pass over the rows, not a pandas
    group per trial."""
    sub = sub.sort_values(["trial_number", "step"], kind="stable")
    out: dict[str, tuple[list, list, list]] = {}
    last: dict[str, int] = {}  # state -> the trial its line ends with
    point: dict[int, list] = {}  # trial number -> its customdata (one list shared by its points)
    for number, step, value in zip(
        sub["trial_number"].tolist(), sub["step"].tolist(), sub[metric].tolist(), strict=True
    ):
        number = int(number)
        cd_n = point.get(number)
        if cd_n is None:
            t = trials.get(number)
            cd_n = point[number] = [number, t.state.name if t is not None else "?"]
        state = cd_n[1]
        xs, ys, cd = out.setdefault(state, ([], [], []))
        if last.get(state, number) != number:
            xs.append(None)
            ys.append(None)
            cd.append(None)
        last[state] = number
        xs.append(int(step))
        ys.append(float(value))
        cd.append(cd_n)
    return out
