"""RQ1's *during training*: how each metric family moves over the steps of a trial, and with which hyperparameter.

Per trial and step, the family's representative as the trial experienced it: the **per-step cost** of a cumulative
metric (the increase since the previous step: step 0's excludes the set-up measured at step -1), the **level** of
a level metric at the end of each step, and a structural metric where it was measured (the pre-training probe and
the last step: constant by construction). A trial's **growth** is its value at the last step over its value at
step 0; the chapter states its median over the recorded trials and Spearman's rho (with its p-value) between the
growth and the family's strongest hyperparameter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sysprune.analysis._stats import Spread, spread
from sysprune.metrics._registry import METRICS, metric_names


@dataclass
class Evolution:
    family: str
    metric: str
    label: str
    series: dict[int, dict[int, float]]  # trial -> step -> value
    growth: Spread  # over trials: value at the last step / value at step 0
    driver: str | None = None
    rho: float | None = None
    p: float | None = None


def label(metric: str) -> str:
    if metric in metric_names("cumulative"):
        return f"{metric} per step"
    return metric


def step_values(df: Any, metric: str) -> dict[int, dict[int, float]]:
    """``trial -> step -> value`` as above (training steps only, step -1 used only as step 0's baseline)."""
    if metric not in df.columns:
        return {}
    cumulative = metric in metric_names("cumulative")
    out: dict[int, dict[int, float]] = {}
    for number, g in df[["trial_number", "step", metric]].dropna().groupby("trial_number"):
        pts = {int(s): float(v) for s, v in zip(g["step"], g[metric])}
        if cumulative:
            vals = {s: v - pts[s - 1] for s, v in pts.items() if s >= 0 and s - 1 in pts}
        else:
            vals = {s: v for s, v in pts.items() if s >= 0}
        if vals:
            out[int(number)] = vals
    return out


def growth(series: dict[int, dict[int, float]]) -> dict[int, float]:
    """``trial -> value at its last step / value at step 0`` (trials with both, step 0's value > 0, and more than
    one step)."""
    out = {}
    for n, vals in series.items():
        last = max(vals)
        if last > 0 and 0 in vals and vals[0] > 0:
            out[n] = vals[last] / vals[0]
    return out


def association(values: dict[int, float], params: dict[int, dict[str, Any]], name: str) -> tuple[float, float] | None:
    """Spearman's rho and its p-value between ``values`` and parameter ``name`` over the trials with both
    (``None``: a non-numeric parameter, fewer than 3 trials, or a constant)."""
    from scipy.stats import spearmanr

    pairs = [(params[n].get(name), v) for n, v in values.items() if n in params]
    pairs = [(x, v) for x, v in pairs if isinstance(x, (int, float)) and not isinstance(x, bool)]
    if len(pairs) < 3 or len({x for x, _ in pairs}) < 2 or len({v for _, v in pairs}) < 2:
        return None
    res = spearmanr([x for x, _ in pairs], [v for _, v in pairs])
    rho, p = float(res.statistic), float(res.pvalue)
    return None if math.isnan(rho) else (rho, p)


def evolve(df: Any, family: str, metric: str, params: dict[int, dict[str, Any]], driver: str | None) -> Evolution:
    series = step_values(df, metric)
    g = growth(series)
    ev = Evolution(family, metric, label(metric), series, spread(list(g.values())), driver)
    if driver is not None and METRICS.get(metric) is not None and METRICS[metric].kind != "structural":
        a = association(g, params, driver)
        if a is not None:
            ev.rho, ev.p = a
    return ev


def sentence(ev: Evolution) -> str:
    """One sentence on the family over training, from the numbers."""
    if METRICS.get(ev.metric) is not None and METRICS[ev.metric].kind == "structural":
        return f"{ev.family} ({ev.metric}) is a property of the architecture: constant over training by construction."
    g = ev.growth
    if g.median is None:
        return f"{ev.family} ({ev.label}): too few trials with step 0 and a later step to say how it evolves."
    trend = (
        "grows" if g.q1 is not None and g.q1 > 1.05 else "falls" if g.q3 is not None and g.q3 < 0.95 else "stays flat"
    )
    text = (
        f"{ev.family} ({ev.label}) {trend} over training: last step / step 0 = {g.fmt()} (median [IQR] over "
        f"{g.n} trials)"
    )
    if ev.rho is not None and ev.p is not None and ev.driver is not None:
        text += f"; its change with `{ev.driver}`: Spearman rho {ev.rho:.2f} (p = {ev.p:.2g})"
    return text + "."


def figure(evs: list[Evolution], params: dict[int, dict[str, Any]], title: str):
    """One panel per family: the median per step of the trials in each third of the family's driver's range."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    evs = [e for e in evs if e.series]
    cols = max(1, min(2, len(evs)))
    rows = max(1, math.ceil(len(evs) / cols))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[f"{e.label} by {e.driver or '-'}" for e in evs])
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c"]
    for i, e in enumerate(evs):
        r, c = i // cols + 1, i % cols + 1
        groups = _thirds(e, params)
        for j, (name, trials) in enumerate(groups):
            steps = sorted({s for n in trials for s in e.series[n]})
            med = [spread([e.series[n].get(s) for n in trials]).median for s in steps]
            fig.add_trace(
                go.Scatter(x=steps, y=med, mode="lines+markers", name=f"{e.family}: {name}",
                           line=dict(color=colors[j % 3], dash=_DASHES[i % len(_DASHES)]), legendgroup=e.family),
                row=r, col=c,
            )  # fmt: skip
        fig.update_xaxes(title_text="step", row=r, col=c)
    fig.update_layout(title=title, template="plotly_white", width=1000, height=360 * rows)
    return fig


#: Each panel's lines drawn in a dash of their own, so the legend (one entry per panel and third) reads unambiguously.
_DASHES = ("solid", "dash", "dot", "dashdot")


def _thirds(e: Evolution, params: dict[int, dict[str, Any]]) -> list[tuple[str, list[int]]]:
    trials = sorted(e.series)
    vals = [(params.get(n, {}).get(e.driver or ""), n) for n in trials]
    numeric = [(x, n) for x, n in vals if isinstance(x, (int, float)) and not isinstance(x, bool)]
    if e.driver is None or len(numeric) < 3:
        return [("all trials", trials)]
    numeric.sort()
    k = len(numeric)
    cuts = [numeric[: k // 3], numeric[k // 3 : 2 * k // 3], numeric[2 * k // 3 :]]
    return [(f"{e.driver} {part[0][0]:.3g}-{part[-1][0]:.3g}", [n for _, n in part]) for part in cuts if part]
