"""When is a measured reading a budget breach? Noise-aware rules as pure functions, testable with hand-made numbers.

A budget pruner prunes on a *measured* breach. For an **exact** metric (``n_params``, ``model_bytes``, a memory
peak the process did reach, a cumulative cost it did spend) one reading over the budget is a fact: prune at once.
A **noisy** metric (``infer_ms``: a timing on a shared machine) is an estimate: one reading over the budget is
weak evidence, and the configuration the user wants may sit just under it. For a noisy metric, readings in step
order are a confident breach when

1. one reading is a **clear** breach: ``value >= (1 + margin) * budget``, where ``margin`` covers the metric's
   probe-to-probe spread (:data:`NOISY_METRICS`, measured with ``benchmarks/bench_noise.py``); or
2. ``k`` consecutive readings are over budget. A reading is "over" when its lower confidence bound
   ``<metric>_lo`` is above the budget if the measurement reports one (contract 3: the latency probe's
   distribution-free ~95 % interval of its median from the repeats' order statistics), else when its value is.

Why not prune on one ``lo > budget``: the probe's interval covers the noise *within* a probe (its repeats), not
between probes. Measured here on a loaded machine, a whole probe is often shifted (the machine was busy for all of
its repeats): the 5-repeat interval missed the configuration's true median in 32 % of probes (nominal 6 %), and
``lo`` exceeded 1.11x the true median (a configuration at 0.9x its budget reading "confidently" over it) in ~4 %
of probes; two consecutive readings make that ~0.2 %. See docs/pruners.md, "Noise".

Which metrics are noisy is declared in :data:`NOISY_METRICS`; a metric whose ``<metric>_lo`` is reported is treated
as noisy too (with the default :class:`NoiseModel`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sysprune._validation import Integer, Real, check_params
from sysprune.metrics._format import finite_or_none

#: ``Breach.rule`` values.
RULE_EXACT = "exact"  # an exact metric: one reading over budget
RULE_CLEAR = "clear"  # one reading over budget by more than the metric's noise margin
RULE_CONSECUTIVE = "consecutive"  # k consecutive readings over budget (their lower bounds, where reported)
RULE_LOWER_BOUND = "lower_bound"  # k = 1: one reading whose lower confidence bound is over budget


@dataclass(frozen=True)
class NoiseModel:
    """How far one reading of a noisy metric may stray from the metric's true value.

    Args:
        margin: a reading ``>= (1 + margin) * budget`` is a clear breach (prunes on its own). > 0. The default is
            the margin measured for ``infer_ms`` (see :data:`NOISY_METRICS`).
        k: otherwise ``k`` consecutive readings over budget are needed. >= 1 (1: any reading prunes).
    """

    margin: float = 1.0
    k: int = 2

    def __post_init__(self) -> None:
        check_params(type(self).__name__, {"margin": Real(0.0, low_open=True), "k": Integer(low=1)}, vars(self))


#: Noisy metrics and their models. ``infer_ms``: 1,000 probes of four digits MLPs on this 2-core VM, loaded by
#: other work (benchmarks/bench_noise.py, 2026-11-29 07:46 UTC, load average ~1): reading / true median reached
#: 2.11 at its 99.9th percentile and 2.31 at most. A clear breach is therefore twice the budget (margin 1.0): a
#: configuration at 0.9x its budget would need a reading of 2.22x its true median. Nearer the budget, a breach
#: needs k = 2 consecutive readings over budget (their lower bounds, where the probe reports them).
NOISY_METRICS: dict[str, NoiseModel] = {"infer_ms": NoiseModel(margin=1.0, k=2)}


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
    #: Readings over budget that decided (1, or ``k`` for :data:`RULE_CONSECUTIVE`).
    n: int = 1
    low: float | None = None


def low_key(metric: str) -> str:
    """The name of a metric's reported lower confidence bound (``infer_ms`` → ``infer_ms_lo``)."""
    return f"{metric}_lo"


def noise_model(metric: str, readings: Sequence[Reading] = ()) -> NoiseModel | None:
    """The metric's noise model: declared in :data:`NOISY_METRICS`, the default if it reports a lower bound, or
    ``None`` (an exact metric)."""
    model = NOISY_METRICS.get(metric)
    if model is None and any(r.low is not None for r in readings):
        model = NoiseModel()
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


def confident_breach(readings: Sequence[Reading], budget: float, noise: NoiseModel | None) -> Breach | None:
    """The first reading at which ``readings`` (in step order) show a confident breach of ``budget``, or ``None``.

    ``noise=None`` (an exact metric): the first reading above the budget. Otherwise the rules of the module
    docstring, checked reading by reading, so the answer does not depend on when the question is asked.
    """
    run = 0
    for r in readings:
        if noise is None:
            if r.value > budget:
                return Breach(r.step, r.value, RULE_EXACT)
            continue
        if r.value > budget and r.value >= (1.0 + noise.margin) * budget:
            return Breach(r.step, r.value, RULE_CLEAR, low=r.low)
        over = r.low > budget if r.low is not None else r.value > budget
        run = run + 1 if over else 0
        if run >= noise.k:
            rule = RULE_CONSECUTIVE if noise.k > 1 or r.low is None else RULE_LOWER_BOUND
            return Breach(r.step, r.value, rule, n=run, low=r.low)
    return None


def pending_breach(readings: Sequence[Reading], budget: float, noise: NoiseModel | None) -> bool:
    """Whether one more reading could turn ``readings`` into a confident breach of ``budget``: a noisy metric whose
    last readings are over budget (their lower bounds, where reported) but fewer than ``k`` and not clearly. The
    trial process then measures the structural metrics again after the first training step; otherwise that
    reading would change no decision and is not taken."""
    if noise is None or not readings or confident_breach(readings, budget, noise) is not None:
        return False
    run = 0
    for r in readings:
        over = r.low > budget if r.low is not None else r.value > budget
        run = run + 1 if over else 0
    return 0 < run < noise.k


def settled_value(metric: str, final: float, budget: float, steps: Mapping[int, Mapping[str, float | None]]) -> float:
    """The value a finishing trial's ``budget:<metric>`` constraint is computed from (constraint = value − budget).

    An exact metric: ``final``. A noisy one is booked infeasible only on a confident breach (the same rule as the
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
    breach = confident_breach(readings, budget, noise)
    return breach.value if breach is not None else min(final, budget)
