"""Pure numbers behind the comparisons: spreads over seeds, anytime curves, compute-to-target and its ratios.

"Not reached" is never a number here: :func:`compute_to_target` returns ``None``, a ratio whose policy did not
reach the target is :data:`NOT_REACHED`, and a median over seeds that falls on "not reached" is reported as such.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sysprune.analysis._trials import TrialRow, completion_order

NOT_REACHED = "not reached"
NA = "n/a"


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
            return _g(self.median, digits)
        return f"{_g(self.median, digits)} [{_g(self.q1, digits)}, {_g(self.q3, digits)}]"


def _g(x: float | None, digits: int = 3) -> str:
    if x is None:
        return NA
    if math.isinf(x):
        return NOT_REACHED if x > 0 else "-inf"
    return f"{x:.{digits}g}"


def _quantile(sorted_xs: Sequence[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default), exact for inf endpoints."""
    pos = (len(sorted_xs) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    a, b = sorted_xs[lo], sorted_xs[hi]
    if lo == hi or a == b:
        return a
    return a + (b - a) * (pos - lo)


def spread(values: Sequence[float | None]) -> Spread:
    """Median, inter-quartile range and min–max of the measured values (``None`` values are left out)."""
    xs = sorted(float(v) for v in values if v is not None and not math.isnan(float(v)))
    if not xs:
        return Spread(0, None, None, None, None, None)
    return Spread(len(xs), _quantile(xs, 0.5), _quantile(xs, 0.25), _quantile(xs, 0.75), xs[0], xs[-1])


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
        parts = [_s(self.median)]
        if self.n > 1:
            parts.append(f"[{_s(self.q1)}, {_s(self.q3)}]")
        parts.append(f"({self.reached}/{self.n} reached)")
        return " ".join(parts)


def _s(x: float | str) -> str:
    if isinstance(x, str):
        return x
    return "inf" if math.isinf(x) else f"{x:.2f}x"


def summarise_savings(savings: Sequence[float | str]) -> SavingSummary:
    """Median and quartiles of per-seed savings; NOT_REACHED ranks below every number, NA seeds are left out.

    A quartile that falls on a "not reached" seed — or between it and a number — is "not reached": no number is
    made up from a seed that has none.
    """
    usable = [s for s in savings if s != NA]
    if not usable:
        return SavingSummary(0, 0, NA, NA, NA)
    reached = [s for s in usable if not isinstance(s, str)]
    ranked: list[float | str] = [NOT_REACHED] * (len(usable) - len(reached)) + sorted(reached)

    def q(p: float) -> float | str:
        pos = (len(ranked) - 1) * p
        lo, hi = math.floor(pos), math.ceil(pos)
        a, b = ranked[lo], ranked[hi]
        if isinstance(a, str) or isinstance(b, str):
            return NOT_REACHED
        return a if lo == hi else a + (b - a) * (pos - lo)

    return SavingSummary(len(usable), len(reached), q(0.5), q(0.25), q(0.75))
