"""A distribution-free confidence interval of a median, from the order statistics of the samples.

The latency probe bounds its ``infer_ms`` with it (``infer_ms_lo`` / ``infer_ms_hi``), and the noise rules of the
budget pruner read those bounds; ``benchmarks/bench_noise.py`` measures how often it covers the true median.
"""

from __future__ import annotations

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
    import numpy as np
    from scipy.special import bdtr  # the binomial CDF as a bare ufunc (scipy.stats.binom costs ~1 s to import)

    j = np.arange(1, max(n // 2, 1) + 1)  # j = (n+1)/2 of an odd n > 1 is the median alone: coverage 0
    coverage = 1.0 - 2.0 * bdtr(j - 1, n, 0.5)
    best = max(int(np.count_nonzero(coverage >= confidence)), 1)  # coverage falls as j grows
    return xs[best - 1], xs[n - best], float(coverage[best - 1])
