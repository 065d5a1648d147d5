"""The text the dashboard shows: a markdown note per trial and per study, and a CSV of a trial's steps.

Notes are what optuna-dashboard shows beside a trial without a click (its "Note" panel renders GitHub markdown,
tables included), so each trial's note holds its verdict, prune reason, budgets and step table; the CSV artifact
holds the same steps at full precision for download or the dashboard's table viewer.

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
from sysprune.dashboard._curves import TrialCurves

NOTE_HEADING = "### sysprune"
_STATE_LABEL = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed"}
_MAX_PRUNED_ROWS = 200


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
            detail = " · ".join(f"{k}={v}" for k, v in t.detail.items()).replace("`", "'").replace("\n", " ")
            lines += [f"`{detail}`", ""]
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
        table_rows = [[str(step), *(fmt(row.get(m)) for m in metrics)] for step, row in t.steps.items()]
        lines += markdown_table(["step", *map(metric_label, metrics)], table_rows, align="r" * (len(metrics) + 1))
    else:
        lines.append("**Step metrics:** none recorded.")
    missing = [m for m in t.recorded_names() if m not in metrics]
    if missing:
        lines += ["", "Recorded as missing (not measurable here): " + ", ".join(missing) + "."]
    return "\n".join(lines) + "\n"


def study_note(
    trials: Sequence[TrialCurves], budgets: Mapping[str, float], shown: Sequence[str], unmeasured: Sequence[str]
) -> str:
    """The markdown summary of a study: counts, budgets, what the figures show, the pruned trials and why."""
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
    lines += [
        "",
        "**Figures** (on the study's main page): one per system metric, `sysprune-<metric>`, one line per finished"
        " trial across steps — solid blue complete, dashed orange pruned, dotted red failed; a black dashed line is"
        " the budget.",
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
                _cell(t.reason or "no reason recorded"),
            ]
            for t in pruned[-_MAX_PRUNED_ROWS:]
        ]
        if len(pruned) > _MAX_PRUNED_ROWS:
            lines += [f"(the last {_MAX_PRUNED_ROWS} of {len(pruned)})", ""]
        lines += markdown_table(["trial", "step", "reason"], rows, align="rrl")
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
