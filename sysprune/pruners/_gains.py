"""Pure decision helpers: how far a learning curve can still climb, learned from the study's finished trials.

A parametric fit to a trial's own first few points (:func:`sysprune.pruners._forecast.fit_curves`) extrapolates a
handful of noisy values over the rest of training: honest about its uncertainty, it is too wide to prune much.
The study's COMPLETE trials know better how curves of *this* model on *this* data go on: each gives, at every step
``s``, its **gain** — how much its final value improved on the best value it had reported by step ``s`` (the
running best: a validation reading that dips by noise is not taken for the trial's level). A new trial at step
``s`` with running best ``v`` can then reach at most ``v + gain`` — and the gains' distribution, treated as normal
with unknown mean and spread (Student's t over the ``n`` finished trials), gives the one-sided bound

    optimistic = v + mean + t(c, n - 1) * sd * sqrt(1 + 1 / n)

at confidence ``c``. The trial cannot beat the best feasible value when ``optimistic`` falls short of it by more
than one reading's noise (the best is itself the best of noisy readings, so it errs high by about that much; the
noise is the SD of the finished trials' last reading minus the one before it, over sqrt 2). Values in ``[0, 1]``
(an accuracy) are taken on the logit scale, where a gain from 0.90 and one from 0.99 are alike (errors shrink by
factors); anything else on its own scale. A minimised objective's gain is a decrease.

The gains come from every COMPLETE trial, within budget or not: how a curve goes on is a matter of training, not
of the budget. The noise of a validation reading is in them (each finished trial's reading at step ``s`` was as
noisy as the new one's), so the bound needs no noise model of its own. It needs :data:`MIN_TRIALS` finished
trials: the first to finish under a budget are the cheap configurations, whose gains can be alike by chance.

Measured (``sysprune replay``, the recorded order and 20 shuffled ones, the curve pruner at its defaults: decisions
from step 1, ``probability`` 5 %; docs/pruners.md has the table): over random recordings of the three digits RQ2
studies, the MNIST-sized time study and scikit-learn SGD on letter, budget + curve saved 1.08-1.36x of the compute
over the budget pruner alone and pruned the truly best feasible trial in 0 of 21 orders on each (with three
finished trials instead of five, in 4 of 21 on SGD); the fit alone saved 1.01-1.06x. In simulation
(tests/pruners/test_gains.py), a trial whose final reading beats every finished one's is pruned in under 5 % of
studies when errors shrink by a factor as training goes on (as accuracy curves do); were accuracy gains instead the
same in absolute terms at every level, the logit scale would make the best trials' gains look larger than the
pool's and that rate rose to 15 % (with three finished trials and no noise allowance) — the limit of treating gains
as exchangeable across trials.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sysprune.pruners._forecast import Point, finite_points, t_quantile

#: Finished trials with a value at the step a decision needs.
MIN_TRIALS = 5
#: Values are clipped to ``[EPS, 1 - EPS]`` before the logit (an accuracy of 1.0 stays finite).
EPS = 1e-3


def _logit(v: float) -> float:
    v = min(max(v, EPS), 1.0 - EPS)
    return math.log(v / (1.0 - v))


def _expit(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


@dataclass
class _Moments:
    """Welford's running mean and spread."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, x: float) -> None:
        self.n += 1
        d = x - self.mean
        self.mean += d / self.n
        self.m2 += d * (x - self.mean)

    @property
    def sd(self) -> float:
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else 0.0


@dataclass(frozen=True)
class GainBound:
    """What a trial whose running best is ``running`` at ``step`` may still reach at the last step."""

    expected: float  # the running best plus the mean gain
    optimistic: float  # ... plus the gains' one-sided prediction bound at ``confidence``
    n: int  # finished trials behind the gains
    confidence: float
    scale: str  # "logit" or "identity"
    maximize: bool
    noise: float  # the SD of one reading, on the bound's scale (0: not known yet)
    _optimistic_x: float  # the optimistic bound on its scale (the logit's is not clipped)

    def _bar_x(self, best: float) -> float:
        b = _logit(best) if self.scale == "logit" else best
        return b - self.noise if self.maximize else b + self.noise

    def bar(self, best: float) -> float:
        """What the optimistic bound must reach: ``best`` less one reading's noise (``best`` is itself the best of
        noisy readings, so it errs high by about that much)."""
        x = self._bar_x(best)
        return _expit(x) if self.scale == "logit" else x

    def reaches(self, best: float) -> bool:
        """Whether the optimistic bound reaches :meth:`bar` (compared on the bound's scale, so that a best of 1.0
        is the clipped logit's top, not out of reach)."""
        x = self._bar_x(best)
        return self._optimistic_x >= x if self.maximize else self._optimistic_x <= x


@dataclass
class StudyGains:
    """The gains of a study's COMPLETE trials, per step, on both scales (updated one finished trial at a time)."""

    maximize: bool = True
    unit: bool = True  # every value seen so far is in [0, 1]: the logit scale applies
    _logit: dict[int, _Moments] = field(default_factory=dict)
    _identity: dict[int, _Moments] = field(default_factory=dict)
    #: the last reading minus the one before it, per finished trial: on a curve's flat tail the difference of two
    #: noisy readings, so its SD / sqrt(2) estimates one reading's noise (a tail still moving makes it larger)
    _tail_logit: _Moments = field(default_factory=_Moments)
    _tail_identity: _Moments = field(default_factory=_Moments)

    def add(self, values: Mapping[int, float]) -> None:
        """Take one COMPLETE trial's intermediate values (``step -> value``); its last step is its final value."""
        points = finite_points(values)
        if len(points) < 2:
            return
        if any(not 0.0 <= v <= 1.0 for _, v in points):
            self.unit = False
        sign = 1.0 if self.maximize else -1.0
        final = points[-1][1]
        before = points[-2][1]
        self._tail_identity.add(final - before)
        if self.unit:
            self._tail_logit.add(_logit(final) - _logit(before))
        running: float | None = None
        for s, v in points[:-1]:
            running = v if running is None else (max(running, v) if self.maximize else min(running, v))
            self._identity.setdefault(s, _Moments()).add(sign * (final - running))
            if self.unit:
                self._logit.setdefault(s, _Moments()).add(sign * (_logit(final) - _logit(running)))

    def bound(self, running: float, step: int, confidence: float) -> GainBound | None:
        """The bound for a trial whose running best at ``step`` is ``running``; None with fewer than
        :data:`MIN_TRIALS` finished trials that reported ``step``."""
        logit = self.unit and 0.0 <= running <= 1.0
        m = (self._logit if logit else self._identity).get(step)
        if m is None or m.n < MIN_TRIALS or not math.isfinite(running):
            return None
        sign = 1.0 if self.maximize else -1.0
        x = _logit(running) if logit else running
        spread = t_quantile(confidence, m.n - 1) * m.sd * math.sqrt(1.0 + 1.0 / m.n)
        back = _expit if logit else float
        top = x + sign * (m.mean + spread)
        tail = self._tail_logit if logit else self._tail_identity
        return GainBound(
            expected=back(x + sign * m.mean),
            optimistic=back(top),
            n=m.n,
            confidence=confidence,
            scale="logit" if logit else "identity",
            maximize=self.maximize,
            noise=tail.sd / math.sqrt(2.0),
            _optimistic_x=top,
        )


def running_best(points: Sequence[Point], step: int, *, maximize: bool) -> float | None:
    """The best of the finite ``points`` (:func:`~sysprune.pruners._forecast.finite_points`) at steps up to
    ``step``; None if there is none."""
    vals = [v for s, v in points if s <= step]
    if not vals:
        return None
    return max(vals) if maximize else min(vals)
