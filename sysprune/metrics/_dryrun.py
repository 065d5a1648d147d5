"""What a dry run predicts: the training's time and memory, known at step -1 (pure arithmetic, no processes).

At step -1 a budget pruner that caps time or memory asks the trial process for a **dry run**
(:meth:`sysprune.Trainer.dry_run`): the first few mini-batches of step 0 trained now, each timed on the process's
CPU clock and the wall clock, and one chunk of the validation split scored. The batches are the start of step 0,
not extra work: ``train_step(0)`` goes on from the next one, so the trained model is unchanged and the dry run's
cost is training's (counted in step 0's ``cpu_s``/``wall_s``; step -1's row excludes it, as it excludes the probe).

From it, :func:`predict` gives the step -1 row these metrics:

``pred_cpu_s``, ``pred_wall_s``
    the cumulative ``cpu_s``/``wall_s`` at the last step: what step -1 spent, plus ``steps`` times the cost of one
    step — the median cost of a mini-batch after the first (the first runs cold) times the mini-batches per step,
    plus the validation pass scaled up from the scored chunk — plus the first batch's extra.
``pred_peak_rss_mb``, ``pred_peak_rss_delta_mb``
    the peak once the dry run trained: activations, gradients and optimizer state of a full mini-batch and of a
    validation chunk are all allocated by then. (A measured peak, and a lower bound of the trial's: the pruner's
    exact rule prunes on it at once when it is over the budget.)
``dry_run_cpu_s``
    what the dry run cost.

A prediction is a model of the cost, not a measurement: the pruner trusts it only through the ratio *measured /
predicted* of the study's own finished trials (:mod:`sysprune.pruners._dryrun`).
"""

from __future__ import annotations

import statistics
from typing import Any

#: Mini-batches a dry run trains (fewer when a step has fewer): the first runs cold, the median of the other four
#: is the rate. A configuration pruned at step -1 has spent these on top of its set-up.
BATCHES = 5
#: The metrics a dry run predicts, by the budgeted metric they predict.
PREDICTS = {
    "cpu_s": "pred_cpu_s",
    "wall_s": "pred_wall_s",
    "peak_rss_mb": "pred_peak_rss_mb",
    "peak_rss_delta_mb": "pred_peak_rss_delta_mb",
}
#: Every metric a dry run adds to the step -1 row (only the runner's trial process runs one).
METRICS = (*PREDICTS.values(), "dry_run_cpu_s")


def _per_step(
    batch_s: tuple[float, ...], batches_per_step: int, eval_s: float, eval_share: float
) -> tuple[float, float]:
    """(the cost of one step, the first batch's extra over the others)."""
    rest = batch_s[1:] or batch_s
    rate = statistics.median(rest)
    return rate * batches_per_step + eval_s / eval_share, max(0.0, batch_s[0] - rate)


def predict(
    dry: Any,
    *,
    steps: int,
    cpu_s: float,
    wall_s: float,
    peak_rss_mb: float,
    baseline_rss_mb: float,
    dry_run_cpu_s: float,
) -> dict[str, float]:
    """The dry run's metrics for the step -1 row (see the module docstring). ``dry``: a
    :class:`sysprune.models._base.DryRun` with at least one batch; ``cpu_s``/``wall_s``: step -1's own (probe and
    dry run excluded); ``peak_rss_mb``: the trial's peak once the dry run ended."""
    if not dry.batch_cpu_s:
        return {"dry_run_cpu_s": dry_run_cpu_s}
    cpu_step, cpu_first = _per_step(dry.batch_cpu_s, dry.batches_per_step, dry.eval_cpu_s, dry.eval_share)
    wall_step, wall_first = _per_step(dry.batch_wall_s, dry.batches_per_step, dry.eval_wall_s, dry.eval_share)
    return {
        "pred_cpu_s": cpu_s + steps * cpu_step + cpu_first,
        "pred_wall_s": wall_s + steps * wall_step + wall_first,
        "pred_peak_rss_mb": peak_rss_mb,
        "pred_peak_rss_delta_mb": peak_rss_mb - baseline_rss_mb,
        "dry_run_cpu_s": dry_run_cpu_s,
    }
