"""Pure numbers behind the comparisons: spreads over seeds, anytime curves, compute-to-target and its ratios.

"Not reached" is never a number here: :func:`compute_to_target` returns ``None``, a ratio whose policy did not
reach the target is :data:`NOT_REACHED`, and a median over seeds that falls on "not reached" is reported as such.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from sysprune.analysis._trials import TrialRow, completion_order
from sysprune.metrics._format import MISSING, fmt

#: A compute-to-target (or a saving) that was never reached: ranks below every number, is never one.
NOT_REACHED = "not reached"
#: Nothing measured, or a saving whose reference itself did not reach the target: the one spelling of "missing".
NA = MISSING


@dataclass(frozen=True)
class Spread:
    """Median and spread of one quantity over seeds. ``None`` where nothing was measured."""

    n: int
    median: float | None
    q1: float | None
    q3: float | None
    lo: float | None
    hi: float | None

    def fmt(self, digits: int = 3) -> str:
        if self.median is None:
            return NA
        if self.n == 1:
            return _shown(self.median, digits)
        return f"{_shown(self.median, digits)} [{_shown(self.q1, digits)}, {_shown(self.q3, digits)}]"


def _shown(x: float | None, digits: int = 3) -> str:
    """:func:`~sysprune.metrics._format.fmt`, with an infinite compute-to-target shown as :data:`NOT_REACHED`."""
    if x is not None and x == math.inf:
        return NOT_REACHED
    return fmt(x, digits)


def times(x: float | str | None) -> str:
    """A ratio of compute as ``"2.50x"`` (``"inf"``: the other needed none); a label such as NOT_REACHED as is;
    ``None`` (nothing measured) :data:`NA`."""
    if x is None:
        return NA
    if isinstance(x, str):
        return x
    return "inf" if math.isinf(x) else f"{x:.2f}x"


def quantile(xs: Sequence[float], q: float) -> float:
    """numpy's default (linear) quantile of ``xs``; an interpolation that reaches toward an infinite order statistic
    is that infinity, ``-inf`` first (numpy's arithmetic gives NaN for ``inf - inf``)."""
    lo = float(np.quantile(xs, q, method="lower"))
    if math.isinf(lo):
        return lo
    hi = float(np.quantile(xs, q, method="higher"))
    if lo == hi or math.isinf(hi):
        return hi
    return float(np.quantile(xs, q))


def spread(values: Sequence[float | None]) -> Spread:
    """Median, inter-quartile range and min–max of the measured values (``None`` values are left out)."""
    xs = sorted(float(v) for v in values if v is not None and not math.isnan(float(v)))
    if not xs:
        return Spread(0, None, None, None, None, None)
    return Spread(len(xs), quantile(xs, 0.5), quantile(xs, 0.25), quantile(xs, 0.75), xs[0], xs[-1])


def better(a: float, b: float, direction: str) -> bool:
    return a > b if direction == "maximize" else a < b


def anytime(
    rows: list[TrialRow], direction: str, *, free: Callable[[TrialRow], bool] | None = None
) -> list[tuple[float, float | None]]:
    """``(cumulative compute, best feasible objective so far)`` after each finished trial, in completion order.

    The compute of every finished trial counts (pruned and failed too); only COMPLETE feasible trials can be
    "best". A trial whose compute was not measured adds 0 — :func:`unmeasured` says how many there are. Trials
    for which ``free(row)`` is true add 0 too: :func:`ceiling_curve`.
    """
    out: list[tuple[float, float | None]] = []
    total, best = 0.0, None
    for r in completion_order(rows):
        if free is None or not free(r):
            total += r.compute or 0.0
        if r.state == "COMPLETE" and r.feasible and r.value is not None:
            if best is None or better(r.value, best, direction):
                best = r.value
        out.append((total, best))
    return out


def ceiling_curve(rows: list[TrialRow], direction: str) -> list[tuple[float, float | None]]:
    """The anytime curve of ``rows`` had every over-budget trial cost nothing: on ``none``'s trials, the most that
    any pruning of over-budget configurations could save (a free, perfect pre-check; the same trials otherwise)."""
    return anytime(rows, direction, free=lambda r: not r.feasible)


def unmeasured(rows: list[TrialRow]) -> int:
    return sum(1 for r in rows if r.finished and r.compute is None)


def within(value: float, reference: float, tolerance: float, direction: str) -> bool:
    """Whether ``value`` is within ``tolerance`` (absolute) of ``reference`` or better."""
    return value >= reference - tolerance if direction == "maximize" else value <= reference + tolerance


def compute_to_target(
    curve: list[tuple[float, float | None]], reference: float | None, tolerance: float, direction: str
) -> float | None:
    """The cumulative compute at which the best feasible objective first comes within ``tolerance`` of
    ``reference``; ``None`` if it never does (or there is no reference)."""
    if reference is None:
        return None
    for compute, best in curve:
        if best is not None and within(best, reference, tolerance, direction):
            return compute
    return None


def saving(reference_ctt: float | None, ctt: float | None) -> float | str:
    """How many times less compute than the reference needed to reach the target: ``reference_ctt / ctt``.

    :data:`NA` when the reference itself did not reach it; :data:`NOT_REACHED` when this policy did not.
    """
    if reference_ctt is None:
        return NA
    if ctt is None:
        return NOT_REACHED
    if ctt <= 0:
        return math.inf
    return reference_ctt / ctt


@dataclass(frozen=True)
class SavingSummary:
    """Savings over seeds: median and IQR, with "not reached" counted as no saving at all (below any number)."""

    n: int  # seeds where the reference reached the target
    reached: int  # of those, seeds where this policy did too
    median: float | str  # a number, NOT_REACHED or NA
    q1: float | str
    q3: float | str

    def fmt(self) -> str:
        if self.n == 0:
            return NA
        parts = [times(self.median)]
        if self.n > 1:
            parts.append(f"[{times(self.q1)}, {times(self.q3)}]")
        parts.append(f"({self.reached}/{self.n} reached)")
        return " ".join(parts)


def summarise_savings(savings: Sequence[float | str]) -> SavingSummary:
    """Median and quartiles of per-seed savings; NOT_REACHED ranks below every number, NA seeds are left out.

    A quartile that falls on a "not reached" seed — or between it and a number — is "not reached": no number is
    made up from a seed that has none.
    """
    usable = [s for s in savings if s != NA]
    if not usable:
        return SavingSummary(0, 0, NA, NA, NA)
    reached = [s for s in usable if not isinstance(s, str)]
    # NOT_REACHED ranks below every number: -inf, which quantile() never interpolates into a number.
    ranked = [-math.inf] * (len(usable) - len(reached)) + reached

    def q(p: float) -> float | str:
        value = quantile(ranked, p)
        return NOT_REACHED if value == -math.inf else value

    return SavingSummary(len(usable), len(reached), q(0.5), q(0.25), q(0.75))
