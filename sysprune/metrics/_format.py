"""How numbers, units and missing values are written, the same way in reasons, notes, figures and the store.

Two rules for non-numbers, each with its own purpose:

* :func:`nan_to_none` — *storing* a measurement: NaN means "not measured" and becomes ``None`` (``NULL``); an
  infinite value is a real outcome (a diverged loss) and is kept.
* :func:`finite_or_none` — *JSON and plots* (``prune_detail``, plotly figures): JSON has no NaN or infinity, so
  both become ``None``.
"""

from __future__ import annotations

import math
from typing import Any

from sysprune.metrics._registry import METRICS

#: How a missing value reads in a reason line, a note or a table cell.
MISSING = "—"


def fmt(value: Any) -> str:
    """A number as people read it: whole numbers whole, at least 1000 to one decimal, others to 4 significant
    digits; ``None`` is :data:`MISSING`. Anything else is ``str()``."""
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
    return f"{v:.4g}"


def unit_of(metric: str) -> str:
    """The metric's unit (``"1"`` for a count or a ratio, and for a metric outside the vocabulary)."""
    m = METRICS.get(metric)
    return m.unit if m is not None else "1"


def unit_suffix(metric: str) -> str:
    """``" ms"`` for a metric with a unit, nothing for a count (``n_params``)."""
    unit = unit_of(metric)
    return "" if unit == "1" else f" {unit}"


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
