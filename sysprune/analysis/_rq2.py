"""RQ2 inference: each policy against a reference over paired seeds, and the policies ranked across every study and
seed (Friedman). Pure functions of the digests (:mod:`._digest`, :mod:`._replay`): no database, no plotting.

A policy's **saving** against a reference at one seed is the reference's compute-to-target over the policy's. Over
seeds it is summarised by its geometric mean with a paired-t 95 % interval on the logs (:func:`._inference.ratio_ci`);
a seed where either side did not reach the target is *censored*: it has no ratio, so it is counted (``reached``),
ranked last in the Friedman test, and compared at equal compute instead (:func:`at_equal_compute`: the best
feasible objective each had found when the cheaper of the two searches ended). Two runs that made **identical
decisions** (the same configurations, each stopped at the same step in the same state) differ only by measurement
noise: that is reported as such, never as a ratio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sysprune.analysis._digest import CompareResult, RunStats
from sysprune.analysis._inference import Estimate, Friedman, difference_ci, friedman, proportion_ci, ratio_ci
from sysprune.analysis._inference import wilcoxon_p


def decisions(run: RunStats) -> list[tuple]:
    """What a search decided, trial by trial: the configuration, the final state and the step it stopped at."""
    return [
        (t.number, sorted(t.params.items()), t.state, t.last_step) for t in sorted(run.rows, key=lambda t: t.number)
    ]


def same_decisions(a: RunStats, b: RunStats) -> bool:
    return decisions(a) == decisions(b)


def best_at(curve: list[tuple[float, float | None]], compute: float) -> float | None:
    """The best feasible objective an anytime curve had reached once it had spent ``compute``."""
    best = None
    for c, v in curve:
        if c > compute:
            break
        best = v
    return best


def at_equal_compute(policy: RunStats, reference: RunStats, direction: str) -> float | None:
    """The policy's best feasible objective minus the reference's (sign: positive = the policy is better), both
    read when the cheaper of the two searches had ended; ``None`` if either had nothing feasible by then."""
    if not policy.curve or not reference.curve:
        return None
    c = min(policy.curve[-1][0], reference.curve[-1][0])
    a, b = best_at(policy.curve, c), best_at(reference.curve, c)
    if a is None or b is None:
        return None
    return a - b if direction == "maximize" else b - a


@dataclass(frozen=True)
class Versus:
    """A policy against a reference over the seeds that have a target (``none`` found something feasible)."""

    policy: str
    reference: str
    seeds: int
    reached: int  # seeds where the policy reached the target
    ref_reached: int  # ... and the reference
    identical: int  # seeds with identical decisions
    saving: Estimate  # geometric mean of reference / policy compute-to-target, seeds where both reached
    wilcoxon: float | None  # exact Wilcoxon on the same log-ratios (beside the t test)
    at_equal: Estimate  # difference of best feasible objectives at equal compute, every seed where both had one

    @property
    def censored(self) -> int:
        return self.seeds - self.saving.n

    @property
    def all_identical(self) -> bool:
        return self.seeds > 0 and self.identical == self.seeds


def versus(result: CompareResult, policy: str, reference: str) -> Versus:
    """``policy`` against ``reference`` at every seed of ``result`` that has a target."""
    ratios, logs, equal = [], [], []
    seeds = reached = ref_reached = identical = 0
    for s in result.seeds:
        p, r = result.runs[(policy, s)], result.runs[(reference, s)]
        if p.reference is None:
            continue
        seeds += 1
        reached += p.ctt is not None
        ref_reached += r.ctt is not None
        identical += same_decisions(p, r)
        if p.ctt is not None and r.ctt is not None and p.ctt > 0 and r.ctt > 0:
            ratios.append(r.ctt / p.ctt)
            logs.append(math.log(r.ctt / p.ctt))
        d = at_equal_compute(p, r, result.direction)
        if d is not None:
            equal.append(d)
    return Versus(
        policy,
        reference,
        seeds,
        reached,
        ref_reached,
        identical,
        ratio_ci(ratios),
        wilcoxon_p(logs),
        difference_ci(equal),
    )


def held_out_difference(result: CompareResult, policy: str, reference: str = "none") -> Estimate:
    """The held-out test score of the policy's best feasible configuration minus the reference's, paired by seed
    (seeds where both have one)."""
    key = "test_" + result.spec.objective.metrics[0].removeprefix("val_")
    diffs = []
    for s in result.seeds:
        a = (result.runs[(policy, s)].test or {}).get(key)
        b = (result.runs[(reference, s)].test or {}).get(key)
        if a is not None and b is not None:
            diffs.append(a - b if result.direction == "maximize" else b - a)
    return difference_ci(diffs)


def false_prunes(flags: list[bool | None]) -> Estimate:
    """How often the truly best feasible trial was pruned, over replay orders, with its exact binomial interval
    (orders without a best feasible trial are left out)."""
    known = [f for f in flags if f is not None]
    return proportion_ci(sum(known), len(known))


def overhead_share(runs: list[RunStats]) -> float | None:
    """The share of a search's compute that a replay does not count: everything but the trial processes' own
    recorded ``cpu_s`` (the worker's CPU, the latency probes, what follows the last step). ``None``: not measured."""
    training = total = 0.0
    for run in runs:
        for t in run.rows:
            if t.finished and t.compute is not None and "cpu_s" in t.metrics:
                training += t.metrics["cpu_s"]
                total += t.compute
    return 1 - training / total if total > 0 else None


def live_from_replay(saving: float, overhead: float) -> float:
    """The live saving a replay saving becomes when a share ``overhead`` of the reference's compute is a per-trial
    cost every trial pays whether pruned or not: 1 / ((1 - overhead) / saving + overhead)."""
    return 1 / ((1 - overhead) / saving + overhead)


# ---------------------------------------------------------------------------------------- across studies


def common_policies(results: list[CompareResult]) -> list[str]:
    """The policies every comparison ran, in the first one's order."""
    if not results:
        return []
    return [p for p in results[0].policies if all(p in r.policies for r in results)]


def block_table(results: list[CompareResult], policies: list[str]) -> tuple[list[str], list[list[float]]]:
    """One block per (study, seed) with a target: each policy's compute-to-target, +inf where it was not reached
    (censored: the worst rank). Seeds where ``none`` found nothing feasible have no target and no block."""
    labels, table = [], []
    for r in results:
        for s in r.seeds:
            runs = [r.runs[(p, s)] for p in policies]
            if runs[0].reference is None:
                continue
            labels.append(f"{r.spec.name} s{s}")
            table.append([x.ctt if x.ctt is not None else math.inf for x in runs])
    return labels, table


def across_studies(results: list[CompareResult]) -> Friedman | None:
    """Friedman's test of the common policies over every study x seed block (None: fewer than 3 policies or 2
    blocks)."""
    policies = common_policies(results)
    _, table = block_table(results, policies)
    if len(policies) < 3 or len(table) < 2:
        return None
    return friedman(table, policies)
