"""Pure decision helpers: how far to trust a dry run's prediction (:mod:`sysprune.metrics._dryrun`).

A dry run times a few mini-batches and predicts the whole training's cost; how well that extrapolates depends on
the model, the data and the machine (Python's per-step overhead, the validation pass, the allocator). So the
prediction is never trusted as such: each finished trial of the study that had a dry run gives one ratio
*measured / predicted* of each predicted metric, and a new trial's prediction is scaled by that ratio's
distribution. On the log scale the ratios are treated as normal with unknown mean and spread, so the lower
prediction bound of the new trial's measured value at confidence ``c`` is

    pred * exp(mean - t(c, n - 1) * sd * sqrt(1 + 1 / n))

over ``n`` >= :data:`MIN_TRIALS` ratios (Student's t, so three trials never look certain). The pruner prunes at
step -1 only when that bound is over the budget, at the confidence the first decision's share of the trial's
false-prune rate gives (:func:`sysprune.pruners._forecast.alpha_spent`).

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

#: Finished trials with a dry run a prediction needs before the pruner acts on it.
MIN_TRIALS = 3


@dataclass(frozen=True)
class DryRunBound:
    """A dry run's prediction of ``metric`` at the last step, scaled by the study's measured/predicted ratios."""

    value: float  # the prediction times the ratios' geometric mean
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


def bound(pred: float, ratios: Sequence[float], confidence: float) -> DryRunBound | None:
    """The prediction ``pred`` scaled by the log-ratios ``ratios`` (see the module docstring); None with fewer
    than :data:`MIN_TRIALS` of them."""
    n = len(ratios)
    if n < MIN_TRIALS or not (pred > 0 and math.isfinite(pred)):
        return None
    mean = math.fsum(ratios) / n
    sd = math.sqrt(math.fsum((r - mean) ** 2 for r in ratios) / (n - 1))
    spread = t_quantile(confidence, n - 1) * sd * math.sqrt(1.0 + 1.0 / n)
    return DryRunBound(pred * math.exp(mean), pred * math.exp(mean - spread), n, confidence)
