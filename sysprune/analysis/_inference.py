"""Statistical inference for the Results chapter: confidence intervals, paired tests, multiple-comparison
corrections and the Friedman analysis across blocks (after Demšar 2006 and Fernandez-Lozano et al. 2016).

Pure functions over numbers; the libraries do the statistics (scipy, statsmodels, scikit-posthocs), this module only
says which test answers which question and keeps "nothing to test" (too few values) as ``None``, never as a number.

* A saving (reference compute / policy compute) is a ratio: it is tested on the log scale — the geometric mean with
  a paired-t 95 % interval, the t test's p-value (H0: ratio 1) and the effect size d_z (mean / SD of the logs).
* A difference (accuracy) is tested as is: mean with a paired-t interval.
* A rate over independent tries (false prunes) gets an exact (Clopper–Pearson) binomial interval.
* Several policies over many blocks (study x seed): Friedman's test on ranks (Iman–Davenport's F beside it),
  Conover's post-hoc test with Holm's correction, and Nemenyi's critical difference for the diagram.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
ALPHA = 0.05


@dataclass(frozen=True)
class Estimate:
    """A point estimate over ``n`` paired values with a two-sided interval, a p-value against "no effect" and an
    effect size. ``None`` where the values cannot give one (fewer than 2 values, no variance)."""

    n: int
    point: float | None
    lo: float | None = None
    hi: float | None = None
    p: float | None = None
    effect: float | None = None

    @property
    def supported(self) -> bool:
        """The interval excludes "no effect" (0 for a difference, 1 for a ratio: see :func:`ratio_ci`)."""
        return self.p is not None and self.p < ALPHA


def _t_interval(xs: Sequence[float], confidence: float) -> Estimate:
    from scipy import stats

    a = np.asarray(xs, dtype=float)
    n = len(a)
    if n == 0:
        return Estimate(0, None)
    mean = float(a.mean())
    if n < 2:
        return Estimate(1, mean)
    sd = float(a.std(ddof=1))
    if sd == 0.0:
        return Estimate(n, mean, mean, mean, None if mean == 0 else 0.0, None)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    p = float(stats.ttest_1samp(a, 0.0).pvalue)
    return Estimate(n, mean, mean - half, mean + half, p, mean / sd)


def difference_ci(diffs: Sequence[float], confidence: float = CONFIDENCE) -> Estimate:
    """Mean of paired differences, its t interval, the paired t test's p (H0: mean 0) and d_z = mean / SD."""
    return _t_interval(diffs, confidence)


def ratio_ci(ratios: Sequence[float], confidence: float = CONFIDENCE) -> Estimate:
    """Geometric mean of ratios with the t interval of their logs mapped back, the p-value of the paired t test on
    the logs (H0: ratio 1) and d_z of the logs. A ratio must be a positive finite number."""
    for r in ratios:
        if not (r > 0 and math.isfinite(r)):
            raise ValueError(f"ratio_ci: every ratio must be a positive finite number, got {r!r}")
    e = _t_interval([math.log(r) for r in ratios], confidence)

    def exp(x: float | None) -> float | None:
        return None if x is None else math.exp(x)

    return Estimate(e.n, exp(e.point), exp(e.lo), exp(e.hi), e.p, e.effect)


def wilcoxon_p(diffs: Sequence[float]) -> float | None:
    """Two-sided exact Wilcoxon signed-rank p-value of paired differences (``None``: all zero or none). With n
    values it cannot go below 2 / 2**n (5 values: 0.0625)."""
    from scipy import stats

    d = [x for x in diffs if x != 0]
    if not d:
        return None
    return float(stats.wilcoxon(d, method="exact").pvalue)


def proportion_ci(k: int, n: int, confidence: float = CONFIDENCE) -> Estimate:
    """``k`` of ``n`` with the exact (Clopper–Pearson) binomial interval; ``n = 0``: nothing to estimate."""
    from scipy import stats

    if n == 0:
        return Estimate(0, None)
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
    return Estimate(n, k / n, float(ci.low), float(ci.high))


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of the given p-values (``None`` entries are not tests and stay ``None``)."""
    from statsmodels.stats.multitest import multipletests

    idx = [i for i, p in enumerate(pvalues) if p is not None]
    out: list[float | None] = [None] * len(pvalues)
    if idx:
        adj = multipletests([pvalues[i] for i in idx], method="holm")[1]
        for i, a in zip(idx, adj):
            out[i] = float(a)
    return out


def permutation_p(real: float, null: Sequence[float]) -> float:
    """The permutation test's p-value (Phipson & Smyth 2010): (1 + #null >= real) / (1 + #null)."""
    return (1 + sum(1 for x in null if x >= real)) / (1 + len(null))


def permutations_for(m: int, alpha: float = ALPHA, margin: float = 2) -> int:
    """Permutations enough for Holm over ``m`` tests at ``alpha``: the smallest attainable p, 1 / (B + 1), is at
    most alpha / (margin * m) (``margin`` > 1: a driver can clear the first Holm step with room to spare)."""
    if m < 1:
        raise ValueError(f"permutations_for: m must be >= 1, got {m}")
    return math.ceil(margin * m / alpha) - 1


def percentile_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """The bootstrap percentile interval of ``values`` (the statistic over resamples); ``None`` if empty."""
    if len(values) == 0:
        return None
    lo, hi = np.quantile(np.asarray(values, dtype=float), [0.5 - confidence / 2, 0.5 + confidence / 2])
    return float(lo), float(hi)


def binomial_se(p: float, n: int) -> float:
    """The standard error of an accuracy ``p`` measured on ``n`` independent examples: sqrt(p (1 - p) / n)."""
    if n < 1 or not 0 <= p <= 1:
        raise ValueError(f"binomial_se: need 0 <= p <= 1 and n >= 1, got p={p!r}, n={n!r}")
    return math.sqrt(p * (1 - p) / n)


def seeds_for(sd_log: float, ratio: float, alpha: float = ALPHA, power: float = 0.8) -> int:
    """Paired seeds a t test on log-ratios needs to detect ``ratio`` with ``power`` at ``alpha`` (two-sided) when
    the logs spread with SD ``sd_log`` — the normal approximation plus the usual 2 for the t distribution."""
    from scipy import stats

    if ratio <= 0 or ratio == 1 or sd_log <= 0:
        raise ValueError(f"seeds_for: need sd_log > 0 and a ratio > 0 other than 1, got {sd_log!r}, {ratio!r}")
    z = float(stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power))
    return math.ceil((z * sd_log / math.log(ratio)) ** 2) + 2


# ----------------------------------------------------------------------------------------- across blocks


@dataclass(frozen=True)
class Friedman:
    """Friedman's test of ``k`` treatments over ``n`` blocks (lower value = better = rank 1)."""

    treatments: tuple[str, ...]
    n: int
    chi2: float
    p: float
    f: float  # Iman–Davenport's F, (n - 1) chi2 / (n (k - 1) - chi2)
    p_f: float
    mean_ranks: dict[str, float]
    cd: float  # Nemenyi's critical difference of mean ranks at ALPHA
    posthoc: dict[tuple[str, str], float]  # Conover's test, Holm-adjusted p, for each pair (a, b) with a before b


def ranks(table: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """Rank of each treatment within each block (1 = lowest value; ties share the average rank; +inf — "not
    reached" — ranks below every number)."""
    from scipy.stats import rankdata

    return np.vstack([rankdata(np.asarray(b, dtype=float)) for b in table])


def friedman(table: Sequence[Sequence[float]], treatments: Sequence[str], alpha: float = ALPHA) -> Friedman:
    """Friedman (scipy), Iman–Davenport, Conover–Holm post-hoc (scikit-posthocs) and Nemenyi's CD (the studentized
    range) over ``table`` — one row per block, one column per treatment, lower is better, +inf allowed."""
    import scikit_posthocs as sp
    from scipy import stats

    a = np.asarray(table, dtype=float)
    n, k = a.shape
    if k < 3 or n < 2:
        raise ValueError(f"friedman: need >= 3 treatments and >= 2 blocks, got {k} and {n}")
    r = ranks(a)
    chi2, p = stats.friedmanchisquare(*r.T)  # on the ranks: +inf is just the worst rank
    chi2, p = float(chi2), float(p)
    denom = n * (k - 1) - chi2
    f = (n - 1) * chi2 / denom if denom > 0 else math.inf
    p_f = float(stats.f.sf(f, k - 1, (k - 1) * (n - 1))) if math.isfinite(f) else 0.0
    post = sp.posthoc_conover_friedman(r, p_adjust="holm")
    # every block tied: Conover's statistic is 0 / 0 (NaN); no pair is separated, p 1
    pairs = {
        (treatments[i], treatments[j]): (1.0 if math.isnan(v := float(post.iloc[i, j])) else v)
        for i in range(k)
        for j in range(i + 1, k)
    }
    q = float(stats.studentized_range.ppf(1 - alpha, k, np.inf)) / math.sqrt(2)
    cd = q * math.sqrt(k * (k + 1) / (6 * n))
    mean = {t: float(v) for t, v in zip(treatments, r.mean(axis=0))}
    return Friedman(tuple(treatments), n, chi2, p, f, p_f, mean, cd, pairs)
