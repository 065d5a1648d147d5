"""The text the dashboard shows: a markdown note per trial and per study, and a CSV of a trial's steps.

Notes are what optuna-dashboard shows beside a trial without a click (its "Note" panel renders GitHub markdown,
tables included), so each trial's note holds its verdict, prune reason (and the pruner's detail in words), budgets
and step tables; the CSV artifact holds the same steps at full precision for download or the dashboard's table
viewer. The steps are one table per kind of metric (learning, time, memory, model), at most
:data:`MAX_COLUMNS` metrics wide and only the steps where that kind was measured, so that a note fits the
dashboard's trial pane at 1280 px (``tests/dashboard/test_browser.py`` checks it in Chromium).

Every generated note starts with :data:`NOTE_HEADING`; the publisher only replaces a note that is empty or starts
with it, so a note a person wrote in the dashboard is left alone.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

from optuna.trial import TrialState

from sysprune._attrs import CONSTRAINT_PREFIX
from sysprune.metrics import _format
from sysprune.metrics._format import MISSING, markdown_table, metric_label, with_unit
from sysprune.metrics._registry import METRICS
from sysprune.dashboard._curves import TrialCurves
from sysprune.dashboard._detail import describe_detail

NOTE_HEADING = "### sysprune"
_STATE_LABEL = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed"}
_MAX_PRUNED_ROWS = 200
#: Metric columns per step table: six fit the trial pane at 1280 px with the longest labels (~830 px).
MAX_COLUMNS = 6
_KIND_TITLE = {
    "learning": "Learning",
    "cumulative": "Time and energy (cumulative)",
    "level": "Memory",
    "structural": "Model (measured before training, at step -1, and at the last step)",
}


def artifact_filename(number: int) -> str:
    return f"trial-{number}-step-metrics.csv"


def fmt(value: Any) -> str:
    """A table cell: a number as :func:`sysprune.metrics._format.fmt` writes it, other text escaped for the table."""
    return _format.fmt(value) if value is None or isinstance(value, (int, float)) else _cell(str(value))


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _budget_rows(t: TrialCurves, budgets: Mapping[str, float]) -> list[list[str]]:
    constrained = {k[len(CONSTRAINT_PREFIX) :]: v for k, v in t.constraints.items() if k.startswith(CONSTRAINT_PREFIX)}
    other = {k: v for k, v in t.constraints.items() if not k.startswith(CONSTRAINT_PREFIX)}
    rows = []
    for metric in [*budgets, *(m for m in constrained if m not in budgets)]:
        c = constrained.get(metric)
        verdict = "not checked" if c is None else "over budget" if c > 0 else "within budget"
        rows.append(
            [
                metric,
                with_unit(metric, budgets.get(metric)),
                with_unit(metric, t.final(metric)),
                fmt(c),
                verdict,
            ]
        )
    for key, c in other.items():
        rows.append([_cell(key), MISSING, MISSING, fmt(c), "violated" if c > 0 else "satisfied"])
    return rows


def trial_note(t: TrialCurves, budgets: Mapping[str, float]) -> str:
    """The markdown note of one finished trial."""
    label = _STATE_LABEL[t.state]
    lines = [f"{NOTE_HEADING} · trial {t.number} · {label}", ""]
    if t.state == TrialState.PRUNED:
        lines += [f"**Why pruned:** {_cell(t.reason) if t.reason else 'no reason recorded'}", ""]
        if t.detail:
            lines += ["**How it was decided**", "", *(f"- {_cell(line)}" for line in describe_detail(t.detail)), ""]
    elif t.state == TrialState.FAIL:
        lines += [f"**Why failed:** {_cell(t.error) if t.error else 'no error recorded'}", ""]
    if t.values is not None:
        name = "Last reported value" if t.state == TrialState.PRUNED else "Value"
        lines += [f"**{name}:** " + ", ".join(fmt(v) for v in t.values), ""]
    rows = _budget_rows(t, budgets)
    if rows:
        lines += ["**Budgets** (constraint = value − budget; above 0 is over budget)", ""]
        lines += markdown_table(["metric", "budget", "final value", "constraint", "verdict"], rows, align="lrrrl")
    else:
        lines.append("**Budgets:** none set for this study.")
    lines.append("")
    metrics = t.metric_names()
    if t.steps and metrics:
        lines += [f"**Step metrics** (full precision in the artifact `{artifact_filename(t.number)}`)", ""]
        lines += step_tables(t, metrics)
    else:
        lines.append("**Step metrics:** none recorded.")
    missing = [m for m in t.recorded_names() if m not in metrics]
    if missing:
        lines += ["", "Recorded as missing (not measurable here): " + ", ".join(missing) + "."]
    return "\n".join(lines) + "\n"


def _groups(metrics: Sequence[str]) -> list[tuple[str, list[str]]]:
    """The metrics by kind (vocabulary order; a metric outside it under "Other"), each split into tables of at
    most :data:`MAX_COLUMNS`."""
    by_kind: dict[str, list[str]] = {}
    for m in metrics:
        kind: str = METRICS[m].kind if m in METRICS else "other"
        by_kind.setdefault(kind, []).append(m)
    out = []
    for kind, names in by_kind.items():
        title = _KIND_TITLE.get(kind, "Other")
        for i in range(0, len(names), MAX_COLUMNS):
            out.append((title if i == 0 else f"{title}, continued", names[i : i + MAX_COLUMNS]))
    return out


def step_tables(t: TrialCurves, metrics: Sequence[str]) -> list[str]:
    """The trial's steps as markdown tables, one per group of :func:`_groups`, each with the steps at which
    something of it was measured."""
    lines: list[str] = []
    for title, names in _groups(metrics):
        rows = [
            [str(step), *(fmt(row.get(m)) for m in names)]
            for step, row in t.steps.items()
            if any(row.get(m) is not None for m in names)
        ]
        lines += [f"*{title}*", ""]
        lines += markdown_table(["step", *map(metric_label, names)], rows, align="r" * (len(names) + 1))
        lines.append("")
    return lines[:-1]


def study_note(
    trials: Sequence[TrialCurves],
    budgets: Mapping[str, float],
    shown: Sequence[str],
    unmeasured: Sequence[str],
    summary: Sequence[str] = (),
) -> str:
    """The markdown summary of a study: counts, budgets, what the figures show, the pruned trials and why
    (``summary``: the ids of the what-fits and compute figures published)."""
    counts = {label: 0 for label in _STATE_LABEL.values()}
    for t in trials:
        counts[_STATE_LABEL[t.state]] += 1
    lines = [
        f"{NOTE_HEADING} · study summary",
        "",
        f"{len(trials)} finished trials: " + ", ".join(f"{n} {label}" for label, n in counts.items()) + ".",
        "",
    ]
    if budgets:
        lines.append("**Budgets:** " + " · ".join(f"{m} ≤ {with_unit(m, b)}" for m, b in budgets.items()))
    else:
        lines.append("**Budgets:** none.")
    lines.append("")
    if summary:
        lines += [
            "**Summary figures** (first on the study's main page): "
            + ", ".join(f"`{s}`" for s in summary)
            + " — what fits each budget (the objective against the budgeted metric: feasible, complete but over"
            " budget, pruned by a budget, pruned on its curve, failed; the budget as a dashed line) and the compute"
            " spent over time by trial state, with what the pruned trials would have cost had they run to the end.",
            "",
        ]
    lines += [
        "**Figures per step**: one per system metric, `sysprune-<metric>`, one trace per finished trial at the"
        " steps it was measured (structural metrics at step -1 and the last step, as points) — blue solid circles"
        " complete, orange dashed crosses pruned, red dotted triangles failed, each trial its own shade; a black"
        " dashed line is the budget.",
    ]
    if shown:
        lines.append("Shown: " + ", ".join(shown) + ".")
    if unmeasured:
        lines.append("No values recorded (no figure): " + ", ".join(unmeasured) + ".")
    lines += [
        "",
        "**Each trial** has a note with its prune reason, budgets and step table, and the step table as the"
        " artifact `trial-<number>-step-metrics.csv`.",
        "",
    ]
    pruned = [t for t in sorted(trials, key=lambda t: t.number) if t.state == TrialState.PRUNED]
    if pruned:
        lines += ["**Pruned trials**", ""]
        rows = [
            [
                str(t.number),
                fmt((t.detail or {}).get("step", max(t.steps) if t.steps else None)),
                "infeasible" if t.infeasible else "feasible",
                _cell(t.reason or "no reason recorded"),
            ]
            for t in pruned[-_MAX_PRUNED_ROWS:]
        ]
        if len(pruned) > _MAX_PRUNED_ROWS:
            lines += [f"(the last {_MAX_PRUNED_ROWS} of {len(pruned)})", ""]
        lines += markdown_table(["trial", "step", "constraints", "reason"], rows, align="rrll")
    return "\n".join(lines) + "\n"


def steps_csv(t: TrialCurves) -> bytes:
    """The trial's steps as CSV: ``step`` then one column per recorded metric; a missing value is empty."""
    metrics = t.recorded_names()
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["step", *metrics])
    for step, row in t.steps.items():
        writer.writerow([step, *("" if row.get(m) is None else repr(row[m]) for m in metrics)])
    return buf.getvalue().encode()
