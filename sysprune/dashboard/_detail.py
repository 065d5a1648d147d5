"""A trial's ``prune_detail`` in words (short sentences: the note shows them as a list that fits a narrow pane): what the pruner measured or forecast, against what, and what it means.

``prune_detail`` (a trial user attr, written by :func:`sysprune.pruners._reasons.record_decision`) is a dict with
the fields every decision has — ``rule`` (``budget``, ``curve``, ``intermediate``, ``hard_cap``), ``pruner``,
``metric``, ``value``, ``budget``, ``step``, ``predicted``, ``infeasible`` and ``via`` (the combining pruner's
member, when one relayed it) — and some of the rule's own (a budget forecast's ``low``, ``final_step`` and
``confidence``; a measured breach's ``measured_step``; a curve's ``best_feasible``, ``probability``,
``final_step`` and ``families``). docs/api.md lists them. Fields that do not apply are ``None`` and are left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sysprune.metrics._format import fmt, unit_suffix

#: The fields :func:`describe_detail` turns into words; any other is listed as ``name value``.
KNOWN = frozenset(
    {
        "rule",
        "pruner",
        "metric",
        "value",
        "budget",
        "step",
        "predicted",
        "infeasible",
        "via",
        "measured_step",
        "low",
        "final_step",
        "confidence",
        "best_feasible",
        "probability",
        "families",
        "reason",
    }
)


def _num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _unit(d: Mapping[str, Any]) -> str:
    metric = d.get("metric")
    return unit_suffix(metric) if isinstance(metric, str) else ""


def _what(d: Mapping[str, Any]) -> str:
    """The decision's substance, by rule: one sentence, without its full stop."""
    rule, metric, unit = d.get("rule"), d.get("metric"), _unit(d)
    value, budget = d.get("value"), d.get("budget")
    over = f"; budget {fmt(budget)}{unit}" if _num(budget) else ""
    if rule == "budget" and metric:
        if d.get("predicted"):
            text = f"Forecast: {metric} reaches {fmt(value)}{unit}"
            if _num(d.get("final_step")):
                text += f" by step {fmt(d['final_step'])}"
            if _num(d.get("low")) and _num(d.get("confidence")):
                text += f" (at least {fmt(d['low'])}{unit} with {d['confidence']:.0%} confidence)"
            return text + over
        at = d.get("measured_step")
        return (
            f"Measured: {metric} {fmt(value)}{unit}"
            + (f" at step {fmt(at)}" if _num(at) and at != d.get("step") else "")
            + over
        )
    if rule == "hard_cap" and metric:
        return f"Hard cap: the trial process's {metric} reached {fmt(value)}{unit}; cap {fmt(budget)}{unit}"
    if rule == "curve":
        if d.get("reason") == "nan":
            return "Every reported value is NaN (the model diverged)"
        text = "Forecast: the learning curve ends at " + fmt(value)
        if _num(d.get("final_step")):
            text += f" at step {fmt(d['final_step'])}"
        if _num(d.get("probability")) and _num(d.get("best_feasible")):
            text += f"; a {d['probability']:.1%} chance of beating the best feasible {fmt(d['best_feasible'])}"
        return text
    if rule == "intermediate":
        return f"The intermediate value {fmt(value)} was judged not promising"
    return ""


def describe_detail(detail: Mapping[str, Any]) -> list[str]:
    """Short sentences from a ``prune_detail`` dict, e.g. ``["At step -1, ResourceBudgetPruner (rule budget).",
    "Measured: n_params 38410; budget 10000.", "Infeasible: the sampler steers away from it."]``."""
    d = {k: v for k, v in detail.items() if v is not None}
    who = str(d["pruner"]) if "pruner" in d else "the pruner"
    if "via" in d:
        who += f" (via {d['via']})"
    at = f"At step {fmt(d['step'])}, " if _num(d.get("step")) else ""
    parts = [f"{at}{who} (rule {d.get('rule', 'unknown')})."]
    what = _what(d)
    if what:
        parts.append(what + ".")
    if "infeasible" in d:
        parts.append(
            "Infeasible: the sampler steers away from it."
            if d["infeasible"]
            else "Feasible but not promising: within every budget."
        )
    if isinstance(d.get("families"), Mapping) and d["families"]:
        parts.append("Curve fit: " + ", ".join(f"{k} {fmt(v)}" for k, v in d["families"].items()) + ".")
    other = {k: v for k, v in d.items() if k not in KNOWN}
    if other:
        parts.append("Also: " + ", ".join(f"{k} {fmt(v)}" for k, v in other.items()) + ".")
    return parts
