"""A distribution-free confidence interval of a median, from the order statistics of the samples.

The latency probe bounds its ``infer_ms`` with it (``infer_ms_lo`` / ``infer_ms_hi``), and the noise rules of the
budget pruner read those bounds; ``benchmarks/bench_noise.py`` measures how often it covers the true median.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable

from sysprune._validation import ListOf, Real, check_params


def median_interval(samples: Iterable[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """``(lo, hi, coverage)``: the narrowest symmetric pair ``(x_(j), x_(n+1-j))`` of the sorted samples (1-based)
    whose coverage of the true median, ``1 - 2 P(B <= j - 1)`` with ``B ~ Binomial(n, 1/2)``, is at least
    ``confidence``; with too few samples for that (n <= 5 at 95 %), the widest pair — the minimum and the maximum —
    and its lower coverage. E.g. 5 repeats: (min, max), 93.75 %; 20: (x_(6), x_(15)), 95.86 %.

    Raises:
        InvalidArgument: no samples, or ``confidence`` outside (0, 1).
    """
    xs = sorted(float(x) for x in samples)
    n = len(xs)
    check_params(
        "median_interval",
        {"samples": ListOf(Real(finite=False)), "confidence": Real(0.0, 1.0, low_open=True, high_open=True)},
        {"samples": xs, "confidence": confidence},
    )
    coverage = _median_coverages(n)
    best = max(sum(c >= confidence for c in coverage), 1)  # coverage falls as j grows
    return xs[best - 1], xs[n - best], coverage[best - 1]


@functools.lru_cache(maxsize=64)
def _median_coverages(n: int) -> tuple[float, ...]:
    """``1 - 2 P(B <= j - 1)``, ``B ~ Binomial(n, 1/2)``, for j = 1 .. max(n // 2, 1), exactly (integer counts).

    Pure Python on purpose: the trial process computes this at every latency probe, and importing scipy there
    (``scipy.special.bdtr``) cost a study whose model needs no scipy ~0.2 s of CPU per trial process.
    """
    total, below, out = 2**n, 0, []
    for j in range(1, max(n // 2, 1) + 1):  # j = (n+1)/2 of an odd n > 1 is the median alone: coverage 0
        below += math.comb(n, j - 1)
        out.append(1.0 - 2.0 * below / total)
    return tuple(out)
