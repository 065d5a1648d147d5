"""When is a measured reading a budget breach? Noise-aware, sequential rules as pure functions, testable with
hand-made numbers.

A budget pruner prunes on a *measured* breach. For an **exact** metric (``n_params``, ``model_bytes``, a memory
peak the process did reach, a cumulative cost it did spend) one reading over the budget is a fact: prune at once.
A **noisy** metric (``infer_ms``: a timing on a shared machine) is an estimate: one reading over the budget is
weak evidence, and the configuration the user wants may sit just under it.

A noisy metric is judged by a **sequential test with an error budget**. Its :class:`NoiseModel` is the measured
distribution of one reading's ratio to the metric's true value (and of the reading's lower confidence bound
``<metric>_lo``, where the measurement reports one). If the true value were exactly the budget, a reading at
``x`` times the budget, or higher, would come with probability ``S(x)`` (the model's survival function); a
configuration under its budget makes high readings rarer still. Each new reading is one **decision**; decision
``n`` looks at the most recent ``m = min(n, WINDOW)`` readings and computes

    p_n = max(S(x_i) for the m readings) ** m       (every one of them over budget)

the chance that ``m`` independent readings of a configuration within its budget would all be that high. The breach
is confident when ``p_n <= alpha_n``, where the decisions share the trial's false-prune rate ``alpha`` (the
pruner's ``1 - confidence``) as an **error budget**: ``alpha_1 = FIRST_SHARE * alpha`` for a decision on one
reading, ``alpha_n = (1 - FIRST_SHARE) * alpha / ((n - 1) * n)`` after. These sum to ``alpha``, so by the union
bound a configuration within its budget is pruned with probability at most ``alpha`` over the whole trial —
whatever the number of readings: the runner's two (the pre-training probe and the last step), or a plain objective
reporting one every step. One reading prunes only when it is far over (its share of the budget is small); two
readings carry most of it, so a configuration well over its budget is pruned at the second.

Which metrics are noisy is declared in :data:`NOISY_METRICS`; a metric whose ``<metric>_lo`` is reported is treated
as noisy too (with the latency probe's model, :data:`LATENCY_NOISE`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sysprune._validation import invalid
from sysprune.metrics._format import finite_or_none
from sysprune.pruners._forecast import alpha_spent

#: ``Breach.rule`` values.
RULE_EXACT = "exact"  # an exact metric: one reading over budget
RULE_CLEAR = "clear"  # a noisy metric: one reading far enough over budget to spend the first decision's share
RULE_CONSECUTIVE = "consecutive"  # a noisy metric: the last m >= 2 readings over budget, jointly confident

#: A noisy metric's false-prune rate over one trial when no pruner says otherwise (``1 - confidence``).
DEFAULT_ALPHA = 0.05
#: Share of the error budget a decision on a single reading may spend.
FIRST_SHARE = 0.05
#: Readings one decision looks at: the most recent ones, so an early low reading does not block a breach for good.
WINDOW = 4


def decision_alpha(n: int, alpha: float = DEFAULT_ALPHA) -> float:
    """The false-prune rate decision ``n`` (1-based: the ``n``-th reading) may spend; they sum to ``alpha``."""
    return alpha_spent(n, alpha, FIRST_SHARE)


@dataclass(frozen=True)
class NoiseModel:
    """How far one reading of a noisy metric strays from the metric's true value: measured quantiles.

    Args:
        probs: cumulative probabilities, strictly increasing, from 0 to below 1.
        value: reading / true value at each of ``probs`` (non-decreasing, > 0).
        low: the reading's lower confidence bound / true value at each of ``probs``, if the measurement reports one.

    Between quantiles the distribution is linear (as :func:`numpy.interp` samples it); above the last one its
    survival decays exponentially, as fast as over the heavier of its last two intervals (a tail no lighter than
    the one measured).
    """

    probs: tuple[float, ...]
    value: tuple[float, ...]
    low: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        name = type(self).__name__
        p = self.probs
        if len(p) < 3 or p[0] != 0.0 or not all(0.0 <= a < b < 1.0 for a, b in zip(p, p[1:])):
            raise invalid(f"{name}: probs", p, "3 or more strictly increasing probabilities, the first 0, all < 1")
        for field, q in (("value", self.value), ("low", self.low)):
            if q is None and field == "low":
                continue
            ok = q is not None and len(q) == len(p) and all(math.isfinite(v) and v > 0 for v in q)
            if q is None or not ok or not all(a <= b for a, b in zip(q, q[1:])):
                raise invalid(f"{name}: {field}", q, f"{len(p)} finite, positive, non-decreasing ratios (one per prob)")

    def survival(self, x: float, *, low: bool = False) -> float:
        """P(reading / true value >= x) (of the lower bound with ``low``): a reading's p-value if the true value
        were the budget and ``x`` = reading / budget."""
        q = self.low if low and self.low is not None else self.value
        p = self.probs
        if x <= q[0]:
            return 1.0
        if x > q[-1]:
            s_top = 1.0 - p[-1]
            tau = max((q[i + 1] - q[i]) / math.log((1.0 - p[i]) / (1.0 - p[i + 1])) for i in (len(p) - 3, len(p) - 2))
            return s_top * math.exp(-(x - q[-1]) / tau) if tau > 0 else 0.0
        for i in range(1, len(q)):
            if x <= q[i]:
                if q[i] == q[i - 1]:
                    return 1.0 - p[i]
                f = p[i - 1] + (p[i] - p[i - 1]) * (x - q[i - 1]) / (q[i] - q[i - 1])
                return 1.0 - f
        return 1.0 - p[-1]  # pragma: no cover - x <= q[-1] was handled above


#: The latency probe (``infer_ms``: the median of 5 timed forward passes of a 256-sample batch, with its
#: order-statistics interval ``infer_ms_lo``): 1,000 probes of four digits MLPs measured with
#: ``benchmarks/bench_noise.py`` on this 2-core AMD EPYC VM on 2026-11-29 07:46 UTC while six other sessions
#: loaded it (load average ~1.05; sd of log(reading / true median) 0.11, against 0.05 at load ~0.5): a wide
#: spread, the conservative side for false prunes. The last quantile is the largest of the 1,000 probes, placed at
#: 1 - 1/2000. A whole probe slowed by a busy machine moves reading and lower bound alike: the probe's own interval
#: missed the true median in 32 % of probes, which is why ``low`` has a measured distribution of its own here
#: rather than being trusted as a 95 % bound.
LATENCY_NOISE = NoiseModel(
    probs=(0.0, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995),
    value=(0.8873, 0.8896, 0.8952, 0.9143, 0.956, 0.9758, 1.0, 1.0448, 1.1377, 1.2813, 1.6877, 1.9274, 2.112, 2.3067),
    low=(0.8699, 0.8714, 0.877, 0.8851, 0.8992, 0.9422, 0.9671, 0.9848, 1.0261, 1.067, 1.333, 1.5139, 1.7189, 1.7676),
)

#: Noisy metrics and their models.
NOISY_METRICS: dict[str, NoiseModel] = {"infer_ms": LATENCY_NOISE}


@dataclass(frozen=True)
class Reading:
    """One measured value of a metric at a step, with its lower confidence bound if the measurement gave one."""

    step: int
    value: float
    low: float | None = None


@dataclass(frozen=True)
class Breach:
    """A confident measured breach: at which reading it became confident, and by which rule."""

    step: int
    value: float
    rule: str
    #: Readings over budget that decided (1 for an exact metric or a clear breach).
    n: int = 1
    low: float | None = None
    #: A noisy metric's test: its p-value, the share of the error budget its decision could spend, and which
    #: decision (the how-manieth reading) it was.
    p: float | None = None
    alpha: float | None = None
    decision: int | None = None


def low_key(metric: str) -> str:
    """The name of a metric's reported lower confidence bound (``infer_ms`` → ``infer_ms_lo``)."""
    return f"{metric}_lo"


def noise_model(metric: str, readings: Sequence[Reading] = ()) -> NoiseModel | None:
    """The metric's noise model: declared in :data:`NOISY_METRICS`, the latency probe's if it reports a lower
    bound, or ``None`` (an exact metric)."""
    model = NOISY_METRICS.get(metric)
    if model is None and any(r.low is not None for r in readings):
        model = LATENCY_NOISE
    return model


def readings_of(
    steps: Mapping[int, Mapping[str, float | None]], metric: str, *, min_step: int | None = None
) -> list[Reading]:
    """The non-missing readings of ``metric`` in step order (steps ``>= min_step`` if given), with ``<metric>_lo``."""
    lo_name = low_key(metric)
    out = []
    for step in sorted(steps):
        if min_step is not None and step < min_step:
            continue
        row = steps[step]
        value = finite_or_none(row.get(metric))
        if value is None:
            continue
        out.append(Reading(step, value, finite_or_none(row.get(lo_name))))
    return out


def _over(r: Reading, budget: float) -> bool:
    """Over budget: its lower bound, where reported, else its value."""
    return (r.low if r.low is not None else r.value) > budget


def reading_p(r: Reading, budget: float, noise: NoiseModel) -> float:
    """One reading's p-value: the chance of a reading this high if the true value were the budget."""
    if budget <= 0:
        return 0.0 if r.value > 0 else 1.0
    if r.low is not None and noise.low is not None:
        return noise.survival(r.low / budget, low=True)
    return noise.survival(r.value / budget)


def confident_breach(
    readings: Sequence[Reading], budget: float, noise: NoiseModel | None, *, alpha: float = DEFAULT_ALPHA
) -> Breach | None:
    """The first reading at which ``readings`` (in step order) show a confident breach of ``budget``, or ``None``.

    ``noise=None`` (an exact metric): the first reading above the budget. Otherwise the sequential test of the
    module docstring with false-prune rate ``alpha`` over all the readings, checked reading by reading, so the
    answer does not depend on when the question is asked.
    """
    if noise is None:
        for r in readings:
            if r.value > budget:
                return Breach(r.step, r.value, RULE_EXACT)
        return None
    ps: list[float] = []
    for n, r in enumerate(readings, start=1):
        ps.append(reading_p(r, budget, noise) if _over(r, budget) else 1.0)
        m = min(n, WINDOW)
        p = max(ps[-m:]) ** m
        a = decision_alpha(n, alpha)
        if p <= a:
            rule = RULE_CLEAR if m == 1 else RULE_CONSECUTIVE
            return Breach(r.step, r.value, rule, n=m, low=r.low, p=p, alpha=a, decision=n)
    return None


def pending_breach(
    readings: Sequence[Reading], budget: float, noise: NoiseModel | None, *, alpha: float = DEFAULT_ALPHA
) -> bool:
    """Whether one more reading could turn ``readings`` into a confident breach of ``budget``: a noisy metric whose
    last readings are over budget, and jointly so far over that even the most extreme next reading would make the
    next decision's test pass. The trial process then measures the structural metrics again after the first
    training step; otherwise that reading would change no decision and is not taken."""
    if noise is None or not readings or confident_breach(readings, budget, noise, alpha=alpha) is not None:
        return False
    n = len(readings) + 1
    m = min(n, WINDOW)
    last = readings[-(m - 1) :]
    if not all(_over(r, budget) for r in last):
        return False
    return max(reading_p(r, budget, noise) for r in last) ** m <= decision_alpha(n, alpha)


def settled_value(
    metric: str,
    final: float,
    budget: float,
    steps: Mapping[int, Mapping[str, float | None]],
    *,
    alpha: float = DEFAULT_ALPHA,
) -> float:
    """The value a finishing trial's ``budget:<metric>`` constraint is computed from (constraint = value − budget).

    An exact metric: ``final``. A noisy one is booked infeasible only on a confident breach (the same test as the
    pruner, over the trial's readings plus ``final`` if it is not the last of them): then the breach's value;
    otherwise ``min(final, budget)`` — feasible, so that one noisy last reading does not make the configuration the
    user wants infeasible and drop it from ``study.best_trial``.
    """
    readings = readings_of(steps, metric)
    if not readings or readings[-1].value != final:
        readings.append(Reading(readings[-1].step + 1 if readings else 0, final))
    noise = noise_model(metric, readings)
    if noise is None:
        return final
    breach = confident_breach(readings, budget, noise, alpha=alpha)
    return breach.value if breach is not None else min(final, budget)
