"""Pure decision helpers: how far to trust a dry run's prediction (:mod:`sysprune.metrics._dryrun`).

A dry run times a few mini-batches and predicts the whole training's cost; how well that extrapolates depends on
the model, the data and the machine (Python's per-step overhead, the validation pass, the allocator). So the
prediction is never trusted as such: each finished trial of the study that had a dry run gives one ratio
*measured / predicted* of each predicted metric, and a new trial's prediction is scaled by that ratio's
distribution. On the log scale the ratios are treated as normal with unknown mean and spread, with a conjugate
**prior** (normal-inverse-chi-square: :class:`LogRatioPrior`, one per predicted metric, :data:`PRIORS`) that says
how far predictions missed across the study families measured here; the study's own ratios update it. The lower
prediction bound of the new trial's measured value at confidence ``c`` is the posterior predictive's quantile

    pred * exp(mu_n - t(c, nu_0 + n) * sigma_n * sqrt(1 + 1 / (kappa_0 + n)))

    kappa_n = kappa_0 + n,  mu_n = (kappa_0 * mu_0 + n * mean) / kappa_n,
    (nu_0 + n) * sigma_n^2 = nu_0 * sigma_0^2 + sum((r - mean)^2) + kappa_0 * n / kappa_n * (mean - mu_0)^2

(Gelman et al., *Bayesian Data Analysis*, 3.6) over the study's ``n`` ratios ``r``. So the very first trial of a
study is judged already — by the prior alone, a wide interval (a prediction must be several times the budget) —
and the study's own ratios take over as they come: they narrow the interval where the dry run predicts this study
well, and widen it where it does not (the spread term grows with ratios far from the prior's mean). The pruner
prunes at step -1 only when that bound is over the budget, at the confidence the first decision's share of the
trial's false-prune rate gives (:func:`sysprune.pruners._forecast.alpha_spent`).

Why a constant ratio and not a calibration line (``log measured = a + b log predicted``), though a line fits the
pairs better (digits MLP, 147 trials: SD of the log residuals 0.15 against the ratios' 0.29, slope 0.43 — a fixed
per-trial overhead): the trials a pruner must catch lie *beyond* the finished ones (those stayed within budget), and
a line's interval widens with the distance and the slope's own uncertainty. Replayed over the same ten searches
(`benchmarks/bench_dry_run.py`), the ratio pruned 28 of the 53 over-budget trials at step -1 and the line 4, both
with no false prune; in simulation (ratio noise 15 %, six finished trials) a trial twice over budget is pruned at
step -1 in >= 90 % of cases by the ratio and 37 % by the line.

Only COMPLETE trials give ratios (they ran to the last step). With a budget pruner they are the trials that stayed
within budget, so a configuration whose cost the dry run under-predicts is less likely among them: the learned
ratios err low, and the bound with them — towards pruning less, never more.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sysprune.metrics._dryrun import PREDICTS
from sysprune.pruners._forecast import t_quantile


@dataclass(frozen=True)
class LogRatioPrior:
    """A normal-inverse-chi-square prior on a predicted metric's log(measured / predicted): the ratios' mean is
    believed to be about ``mean`` (worth ``weight`` trials) and their spread about ``sd`` (worth ``dof`` degrees of
    freedom)."""

    mean: float
    sd: float
    dof: int
    weight: float


#: The prior of each metric a dry run predicts, measured on this machine (2-core VM) from random-sampled recordings
#: of the built-in study families with no budget in reach (torch MLP and CNN on digits, MLP on MNIST 20k, CNN on
#: MNIST 10k, scikit-learn SGD on letter; 136 COMPLETE trials): the log ratios' SD was 0.13-0.20 within a family for
#: ``cpu_s`` (0.18 pooled, mean -0.10), 0.16-0.24 for ``wall_s`` (0.21 pooled, mean -0.05), 0.01-0.18 for
#: ``peak_rss_delta_mb`` and under 0.02 for ``peak_rss_mb`` (a dry run's peak is measured: a lower bound, ratios
#: >= 1). The prior's mean is the pooled one (a memory metric's 0, its lowest possible), its spread the widest
#: family's, worth three degrees of freedom: replayed in random orders over those recordings with the budget at their
#: lower quartile or median, it pruned 0.3 % of the within-budget trials at step -1 (the first decision may spend
#: 2.5 %; the rule it replaced, Student's t from the third finished trial on, pruned up to 6.7 % in a family), and
#: caught 66 % of the over-budget ones there (46 % among a study's first five trials).
PRIORS: dict[str, LogRatioPrior] = {
    "cpu_s": LogRatioPrior(mean=-0.1, sd=0.2, dof=3, weight=1.0),
    "wall_s": LogRatioPrior(mean=-0.05, sd=0.24, dof=3, weight=1.0),
    "peak_rss_mb": LogRatioPrior(mean=0.0, sd=0.05, dof=3, weight=1.0),
    "peak_rss_delta_mb": LogRatioPrior(mean=0.0, sd=0.2, dof=3, weight=1.0),
}


@dataclass(frozen=True)
class DryRunBound:
    """A dry run's prediction of ``metric`` at the last step, scaled by the study's measured/predicted ratios."""

    value: float  # the prediction times exp(the posterior mean of the log ratio)
    low: float  # its lower prediction bound at ``confidence``
    n: int  # finished trials behind the ratios
    confidence: float


def log_ratios(values: Mapping[str, Any]) -> dict[str, float]:
    """``metric -> log(measured / predicted)`` of one finished trial, from its final values (user attrs) — for
    each metric a dry run predicts and the trial measured, both positive."""
    out = {}
    for metric, pred_name in PREDICTS.items():
        measured, pred = values.get(metric), values.get(pred_name)
        if isinstance(measured, (int, float)) and isinstance(pred, (int, float)) and measured > 0 and pred > 0:
            if math.isfinite(measured) and math.isfinite(pred):
                out[metric] = math.log(measured / pred)
    return out


def bound(pred: float, ratios: Sequence[float], confidence: float, prior: LogRatioPrior) -> DryRunBound | None:
    """The prediction ``pred`` scaled by the log-ratios ``ratios`` under ``prior`` (see the module docstring);
    None for a prediction that is not a positive number."""
    if not (pred > 0 and math.isfinite(pred)):
        return None
    n = len(ratios)
    mean = math.fsum(ratios) / n if n else prior.mean
    squares = math.fsum((r - mean) ** 2 for r in ratios)
    weight = prior.weight + n
    mu = (prior.weight * prior.mean + n * mean) / weight
    dof = prior.dof + n
    var = (prior.dof * prior.sd**2 + squares + prior.weight * n / weight * (mean - prior.mean) ** 2) / dof
    spread = t_quantile(confidence, dof) * math.sqrt(var * (1.0 + 1.0 / weight))
    return DryRunBound(pred * math.exp(mu), pred * math.exp(mu - spread), n, confidence)
