"""Pure decision helpers: forecasting a metric at the last step from the steps seen so far.

Everything here takes plain lists of ``(step, value)`` points and returns numbers, so tests can drive the math
with hand-made curves; nothing touches Optuna or a database.

Three forecasts:

:func:`forecast_cumulative`
    A metric that only grows (``wall_s``, ``cpu_s``, ``energy_j``). The cost per step is estimated from the
    *increments* between recorded steps, never from the first value itself, so start-up work charged to step 0
    (imports, data loading, a first slow epoch) counts as cost already spent but does not inflate the rate. With
    ``n`` recent rates of mean ``r`` and standard deviation ``s``, and ``R`` steps left, the total at the last step
    is ``v_last + R * r`` with predictive standard deviation ``s * sqrt(R + R**2 / n)`` (the noise of ``R`` future
    steps plus the uncertainty of the mean rate). The lower bound uses Student's t with ``n - 1`` degrees of
    freedom, so two or three noisy increments never look certain.

:func:`forecast_level`
    A state of the trial (``peak_rss_mb``, ``infer_ms``, ``model_bytes``): an ordinary least-squares line through
    the most recent points, extrapolated to the last step, with the usual prediction interval
    ``sigma * sqrt(1 + 1/n + (x0 - mean(x))**2 / Sxx)`` and ``n - 2`` degrees of freedom.

:func:`fit_curves` / :func:`probability_to_beat`
    Learning-curve extrapolation in the spirit of Domhan et al. (2015), made cheap: a few parametric families,
    each ``y = c + a * g_theta(x)`` with ``x = step + 1`` — linear in ``(c, a)``, so for a given shape parameter
    ``theta`` the least-squares fit is a closed-form simple regression. Instead of Domhan's MCMC, ``theta`` is
    integrated over a log-spaced grid (64 values, vectorised with numpy): with flat priors the weight of each
    ``theta`` is ``RSS(theta) ** (-(n - 2) / 2)`` and its prediction at the last step is Student-t with ``n - 2``
    degrees of freedom (the usual regression prediction interval). Families are weighted by their marginal
    likelihood; the mixture gives the probability that the final value beats a threshold. The uncertainty of the
    shape parameter is part of the answer, so a curve seen for four steps is not extrapolated with confidence.

Bounds are *one-sided lower* bounds at a given confidence: a budget pruner prunes only when even the optimistic
(low) forecast exceeds the budget. A trial is forecast again at every step, so a bound at 95 % checked at every
step is not a 95 % bound over the trial: :func:`alpha_spent` shares the trial's false-prune rate among its
decisions (an error budget), and :func:`forecast_looks` counts which decision a forecast is.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

#: Rates (increments) used for a cumulative forecast: the most recent ones, so a drifting cost is followed.
CUMULATIVE_WINDOW = 10
#: Points used for a level trend: the most recent ones, so an early jump (allocation at step 0) fades out.
LEVEL_WINDOW = 6
#: Share of a trial's false-prune rate its first forecast of a metric may spend (the rest goes to the later ones).
FORECAST_FIRST_SHARE = 0.5
#: Learning-curve families known to :func:`fit_curves`.
CURVE_FAMILIES: tuple[str, ...] = ("pow", "exp", "log")

Point = tuple[int, float]


@dataclass(frozen=True)
class Forecast:
    """A metric forecast at ``final_step``: the point estimate and a one-sided lower bound."""

    value: float
    low: float
    final_step: int
    n: int  # points (level) or increments (cumulative) the forecast rests on
    confidence: float = 0.95  # of the one-sided lower bound


def alpha_spent(n: int, alpha: float, first_share: float) -> float:
    """The part of a false-prune rate ``alpha`` that the ``n``-th (1-based) of a trial's sequential decisions may
    spend: ``first_share * alpha`` for the first, ``(1 - first_share) * alpha / ((n - 1) * n)`` for each later one.
    They sum to ``alpha`` however many decisions come, so by the union bound a trial within its budget is pruned
    with probability at most ``alpha`` over all of them, whatever the reporting schedule."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"decision: value {n!r} is invalid; valid: an integer >= 1")
    if n == 1:
        return alpha * first_share
    return alpha * (1.0 - first_share) / ((n - 1) * n)


def forecast_looks(points: Sequence[Point], first_step: int, final_step: int) -> int:
    """Which forecast of a metric the latest of ``points`` is (1-based; 0: none yet): one look per recorded point
    from the third on (a forecast needs three) at a step in ``[first_step, final_step)``, counted whether or not
    the pruner was asked at each — so the count, and the error budget spent, never depend on when it is asked."""
    pts = _dedup(points)
    return sum(1 for i, (s, _) in enumerate(pts) if i >= 2 and first_step <= s < final_step)


def points_of(steps: Mapping[int, Mapping[str, float | None]], metric: str) -> list[Point]:
    """The finite values of ``metric`` as ``(step, value)`` sorted by step (missing and NaN dropped)."""
    out = []
    for step in sorted(steps):
        value = steps[step].get(metric)
        if value is None:
            continue
        value = float(value)
        if math.isfinite(value):
            out.append((int(step), value))
    return out


def finite_points(values: Mapping[int, float]) -> list[Point]:
    """``{step: value}`` (e.g. Optuna's intermediate values) → sorted finite ``(step, value)`` points."""
    return [(int(s), float(values[s])) for s in sorted(values) if math.isfinite(values[s])]


@functools.lru_cache(maxsize=256)
def t_quantile(confidence: float, df: int) -> float:
    """One-sided quantile of Student's t with ``df`` degrees of freedom (cached: scipy's ppf costs ~50 µs)."""
    from scipy import stats

    return float(stats.t.ppf(confidence, df))


def forecast_cumulative(
    points: Sequence[Point], final_step: int, *, confidence: float = 0.95, window: int = CUMULATIVE_WINDOW
) -> Forecast | None:
    """Forecast a cumulative metric at ``final_step`` from its recorded points.

    Needs at least three points (two increments) at distinct steps; returns ``None`` otherwise. When the trial is
    already at (or past) ``final_step`` the forecast is the last value.
    """
    pts = _dedup(points)
    if len(pts) < 3:
        return None
    last_step, last_value = pts[-1]
    remaining = final_step - last_step
    if remaining <= 0:
        return Forecast(last_value, last_value, final_step, 0, confidence)
    rates = np.array([(v1 - v0) / (s1 - s0) for (s0, v0), (s1, v1) in zip(pts[:-1], pts[1:])][-window:], dtype=float)
    n = rates.size
    mean = float(rates.mean())
    sd = float(rates.std(ddof=1))
    value = last_value + remaining * mean
    spread = sd * math.sqrt(remaining + remaining**2 / n)
    low = value - t_quantile(confidence, n - 1) * spread
    return Forecast(value, low, final_step, n, confidence)


def forecast_level(
    points: Sequence[Point], final_step: int, *, confidence: float = 0.95, window: int = LEVEL_WINDOW
) -> Forecast | None:
    """Forecast a level metric at ``final_step`` from the linear trend of its most recent points.

    Needs at least three points at distinct steps; returns ``None`` otherwise.
    """
    pts = _dedup(points)[-window:]
    if len(pts) < 3:
        return None
    last_step, last_value = pts[-1]
    if final_step <= last_step:
        return Forecast(last_value, last_value, final_step, len(pts), confidence)
    x = np.array([p[0] for p in pts], dtype=float)
    y = np.array([p[1] for p in pts], dtype=float)
    n = x.size
    xm, ym = x.mean(), y.mean()
    sxx = float(((x - xm) ** 2).sum())
    slope = float(((x - xm) * (y - ym)).sum() / sxx)
    intercept = ym - slope * xm
    value = float(intercept + slope * final_step)
    resid = y - (intercept + slope * x)
    sigma = math.sqrt(float((resid**2).sum()) / (n - 2))
    se = sigma * math.sqrt(1 + 1 / n + (final_step - xm) ** 2 / sxx)
    low = value - t_quantile(confidence, n - 2) * se
    return Forecast(value, low, final_step, n, confidence)


def _dedup(points: Iterable[Point]) -> list[Point]:
    """Sorted by step; a repeated step keeps its first value (as ``Trial.report`` does)."""
    seen: dict[int, float] = {}
    for s, v in points:
        seen.setdefault(int(s), float(v))
    return sorted(seen.items())


# ---------------------------------------------------------------------------------------------------------------
# Learning curves


@dataclass(frozen=True)
class CurveFit:
    """One family fitted to a learning curve: a posterior over its shape parameter and the prediction it makes.

    ``means``, ``scales`` and ``theta_weights`` hold, for each shape parameter on the grid, the Student-t
    predictive at the final step (location, scale; ``df`` degrees of freedom) and its posterior weight.
    """

    family: str
    theta: float | None  # posterior mode of the shape parameter (None for a family without one)
    mean: float  # posterior mean prediction at the final step
    rss: float  # residual sum of squares at the mode
    df: int
    weight: float  # posterior weight of the family among those fitted
    means: np.ndarray
    scales: np.ndarray
    theta_weights: np.ndarray


# Shape functions g_theta(x) and the log-spaced range of theta. For "exp", x is scaled by the final x so that the
# range does not depend on how many steps a trial runs; a small theta makes it a straight line.
_GRID = 64  # coarse grid over the whole range...
_FINE = 17  # ...then this many points between the neighbours of the coarse mode
_THETA_RANGE = {"pow": (0.01, 5.0), "exp": (0.01, 50.0)}


def _shape(family: str, log_thetas: np.ndarray, x: np.ndarray, x_final: float) -> np.ndarray:
    """``g[i, j] = g_theta_i(x_j)``."""
    if family == "log":  # y = c + a * log(x): never saturates, the optimistic member
        return np.log(x)[None, :]
    thetas = np.exp(log_thetas)[:, None]
    if family == "pow":  # y = c + a * x^-alpha: power law
        return np.power(x[None, :], -thetas)
    if family == "exp":  # y = c + a * exp(-beta * x / x_final): exponential approach
        return np.exp(-thetas * (x[None, :] / x_final))
    raise ValueError(f"unknown curve family {family!r}; valid: {', '.join(CURVE_FAMILIES)}")


def _regressions(
    family: str, log_thetas: np.ndarray, x: np.ndarray, y: np.ndarray, x_final: float, noise_floor: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For each theta: least squares of y on [1, g_theta] (closed form, vectorised).

    Returns the log-likelihood of theta (up to a constant), the prediction and its standard error at ``x_final``,
    and the residual sum of squares.
    """
    n = x.size
    g_all = _shape(family, log_thetas, np.append(x, x_final), x_final)
    g, g_final = g_all[:, :n], g_all[:, n]
    gm = g.mean(axis=1)
    dg = g - gm[:, None]
    sgg = (dg**2).sum(axis=1)
    yc = y - y.mean()
    ok = sgg > 1e-300
    safe = np.where(ok, sgg, 1.0)
    sgy = dg @ yc
    slope = np.where(ok, sgy / safe, 0.0)
    rss = np.maximum(float(yc @ yc) - slope * sgy, 0.0)
    means = y.mean() + slope * (g_final - gm)
    lever = 1 + 1 / n + np.where(ok, (g_final - gm) ** 2 / safe, 0.0)
    scales = np.sqrt(rss / (n - 2) * lever)
    log_like = np.where(ok, -((n - 2) / 2) * np.log(np.maximum(rss, noise_floor)), -np.inf)
    return log_like, means, scales, rss


def _cell_widths(v: np.ndarray) -> np.ndarray:
    """Width of each point's cell on a sorted grid (the prior mass of a point under a flat prior)."""
    if v.size == 1:
        return np.ones(1)
    edges = np.concatenate(([v[0]], (v[1:] + v[:-1]) / 2, [v[-1]]))
    return np.diff(edges)


def _fit_family(family: str, x: np.ndarray, y: np.ndarray, x_final: float, noise_floor: float) -> CurveFit:
    """Closed-form least squares in ``(c, a)`` for each ``theta``, and a grid posterior on ``theta``.

    With flat priors on ``c`` and ``a`` (for a standardised basis), ``p(sigma) ~ 1/sigma`` and a flat prior on
    ``log(theta)``, the marginal likelihood of ``theta`` is proportional to ``RSS(theta) ** (-(n - 2) / 2)`` and the
    predictive at the final step given ``theta`` is Student-t with ``n - 2`` degrees of freedom. The grid is coarse
    over the whole range and fine around the coarse mode.
    """
    if family == "log":
        grid = np.zeros(1)
    else:
        lo, hi = _THETA_RANGE[family]
        coarse = np.linspace(math.log(lo), math.log(hi), _GRID)
        i = int(np.argmax(_regressions(family, coarse, x, y, x_final, noise_floor)[0]))
        a, b = max(i - 1, 0), min(i + 1, _GRID - 1)
        grid = np.concatenate((coarse[:a], np.linspace(coarse[a], coarse[b], _FINE), coarse[b + 1 :]))
    log_like, means, scales, rss = _regressions(family, grid, x, y, x_final, noise_floor)
    prior = _cell_widths(grid)
    prior = prior / prior.sum()
    top = float(log_like.max())
    w = prior * np.exp(log_like - top)
    total = float(w.sum())
    w /= total
    mode = int(np.argmax(log_like))
    return CurveFit(
        family=family,
        theta=None if family == "log" else float(math.exp(grid[mode])),
        mean=float(w @ means),
        rss=float(rss[mode]),
        df=x.size - 2,
        weight=top + math.log(total),  # log evidence; normalised across families by fit_curves
        means=means,
        scales=scales,
        theta_weights=w,
    )


def fit_curves(points: Sequence[Point], final_step: int, families: Sequence[str] = CURVE_FAMILIES) -> list[CurveFit]:
    """Fit each family to the points; weight the families by their marginal likelihood.

    Needs three points at distinct steps (returns an empty list otherwise); a family with a shape parameter (pow,
    exp) needs four, so that a curve through three points is not taken for certain.
    """
    for family in families:
        if family not in CURVE_FAMILIES:
            raise ValueError(f"unknown curve family {family!r}; valid: {', '.join(CURVE_FAMILIES)}")
    pts = _dedup(points)
    if len(pts) < 3:
        return []
    x = np.array([s + 1.0 for s, _ in pts])
    y = np.array([v for _, v in pts])
    spread = float(y.max() - y.min())
    # Residuals below a millionth of the curve's range count as an exact fit (keeps the logs finite).
    noise_floor = x.size * (1e-6 * spread) ** 2 + 1e-300
    fits = [
        _fit_family(fam, x, y, float(final_step + 1), noise_floor) for fam in families if fam == "log" or x.size >= 4
    ]
    if not fits:
        return []
    log_ev = np.array([f.weight for f in fits])
    w = np.exp(log_ev - log_ev.max())
    w /= w.sum()
    return [replace(f, weight=float(wi)) for f, wi in zip(fits, w)]


def predicted_final(fits: Sequence[CurveFit]) -> float:
    """The posterior mean prediction at the final step, over families and shape parameters."""
    return float(sum(f.weight * f.mean for f in fits))


def probability_to_beat(fits: Sequence[CurveFit], threshold: float, *, maximize: bool) -> float:
    """P(final value beats ``threshold``) under the posterior predictive mixture of the fits.

    "Beats" means ``>= threshold`` when maximizing and ``<= threshold`` when minimizing. An exact fit is a point
    mass at its prediction.
    """
    from scipy.special import stdtr  # Student-t CDF as a bare ufunc (scipy.stats.t.cdf costs ~100 us a call)

    total = 0.0
    for f in fits:
        exact = f.scales <= 0
        z = (threshold - f.means) / np.where(exact, 1.0, f.scales)
        below = np.where(
            exact, np.where(f.means < threshold, 1.0, np.where(f.means > threshold, 0.0, 0.5)), stdtr(f.df, z)
        )
        p_below = float(f.theta_weights @ below)
        total += f.weight * ((1.0 - p_below) if maximize else p_below)
    return min(max(total, 0.0), 1.0)
