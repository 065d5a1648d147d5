"""How numbers, units, budgets, missing values and tables are written: one definition each, the same in reasons,
notes, figures, reports, the command's output and the store.

Two rules for non-numbers, each with its own purpose:

* :func:`nan_to_none` — *storing* a measurement: NaN means "not measured" and becomes ``None`` (``NULL``); an
  infinite value is a real outcome (a diverged loss) and is kept.
* :func:`finite_or_none` — *JSON and plots* (``prune_detail``, plotly figures): JSON has no NaN or infinity, so
  both become ``None``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sysprune.metrics._registry import METRICS, unit_suffix

__all__ = [
    "MISSING",
    "finite_or_none",
    "fmt",
    "fmt_budgets",
    "markdown_table",
    "metric_label",
    "nan_to_none",
    "records_table",
    "unit_of",
    "unit_suffix",
    "with_unit",
]

#: How a missing value reads in a reason line, a note, a table cell or the command's output.
MISSING = "—"


def fmt(value: Any, digits: int = 4) -> str:
    """A number as people read it: whole numbers whole, at least 1000 to one decimal, others to ``digits``
    significant digits; ``None`` is :data:`MISSING`. Anything else is ``str()``."""
    if value is None:
        return MISSING
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    v = float(value)
    if not math.isfinite(v):
        return str(v)
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    if abs(v) >= 1000:
        return f"{v:.1f}"
    return f"{v:.{digits}g}"


def fmt_budgets(budgets: Mapping[str, float]) -> str:
    """``"infer_ms <= 0.05, model_bytes <= 200000"``; ``"none"`` when there are none."""
    return ", ".join(f"{metric} <= {fmt(budget)}" for metric, budget in budgets.items()) or "none"


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]], *, align: str = "") -> list[str]:
    """The lines of a GitHub Markdown table. ``align`` has one letter per column; ``r`` right-aligns it."""
    rule = "|" + "".join("---:|" if a == "r" else "---|" for a in align.ljust(len(header), "l")[: len(header)])
    return ["| " + " | ".join(header) + " |", rule, *("| " + " | ".join(r) + " |" for r in rows)]


def records_table(records: Sequence[Mapping[str, str]]) -> str:
    """A Markdown table of one record per row: the columns in order of first appearance, a key a record lacks an
    empty cell; ``""`` for no records."""
    if not records:
        return ""
    columns = list(dict.fromkeys(k for r in records for k in r))
    return "\n".join(markdown_table(columns, ([r.get(c, "") for c in columns] for r in records)))


def unit_of(metric: str) -> str:
    """The metric's unit (``"1"`` for a count or a ratio, and for a metric outside the vocabulary)."""
    m = METRICS.get(metric)
    return m.unit if m is not None else "1"


def with_unit(metric: str, value: Any) -> str:
    """``fmt(value)`` and the metric's unit (``"2 ms"``); a missing value has no unit."""
    return fmt(value) if value is None else fmt(value) + unit_suffix(metric)


def metric_label(metric: str) -> str:
    """A column or axis title: ``"infer_ms [ms]"``, or the bare name for a metric without a unit."""
    unit = unit_of(metric)
    return metric if unit == "1" else f"{metric} [{unit}]"


def nan_to_none(value: Any) -> float | None:
    """A measurement to store: ``float``, with NaN (not measured) as ``None``; infinity is kept."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def finite_or_none(value: Any) -> float | None:
    """A number for JSON or a plot: ``float`` if finite, else ``None``."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
