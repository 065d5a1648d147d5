from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from optuna.study import StudyDirection

from sysprune._validation import Boolean, Integer, ListOf, Real, Text, check_params
from sysprune.pruners._base import MAX_STEPS, DecidingPruner
from sysprune.pruners._forecast import (
    CURVE_FAMILIES,
    Point,
    alpha_spent,
    finite_points,
    fit_curves,
    predicted_final,
    probability_to_beat,
)
from sysprune.pruners._gains import running_best
from sysprune.pruners._reasons import RULE_CURVE, PruneDecision, fmt
from sysprune.pruners._study_view import StudyViews

if TYPE_CHECKING:
    import optuna


class CurvePruner(DecidingPruner):
    """Pruner that stops feasible trials unlikely to beat the best feasible trial, judged by how curves go on.

    Two pieces of evidence, one per decision:

    1. **The study's own finished curves** (``study_gains``, once five COMPLETE trials reported the step): each
       finished trial's *gain* after step ``s`` — its final value over the best value it had reported by ``s`` —
       bounds what the trial at hand can still gain from its own best so far; the trial is pruned when even the
       gains' one-sided prediction bound (Student's t over the finished trials; on the logit scale for values in
       ``[0, 1]``) leaves it short of the best feasible value by more than one reading's noise. The noise of a
       validation reading is in the gains, so no noise model is needed. See :mod:`sysprune.pruners._gains`.
    2. Before that, **a fit of the trial's own curve**, in the spirit of Domhan et al. (2015), "Speeding up
       automatic hyperparameter optimization of deep neural networks by extrapolation of learning curves", but
       cheap: instead of MCMC over eleven families, a few parametric families ``y = c + a * g_theta(step + 1)`` — a
       power law, an exponential approach (a straight line at small rates) and a logarithm — are fitted to the
       trial's intermediate values: ``c`` and ``a`` by least squares in closed form, the shape ``theta``
       integrated over a grid, each giving a Student-t prediction at the last step
       (:func:`sysprune.pruners._forecast.fit_curves`), weighted by their marginal likelihood. The trial is
       pruned when the probability that its final value reaches the best feasible value is below the
       decision's share of ``probability``. About 1 ms per decision.

    "Best" is the best value of a *feasible* completed trial (every constraint <= 0). Works for both directions.

    A curve prune is feasible-but-unpromising: it writes the reason attributes (rule ``curve``) and no
    constraint. In a multi-objective study (no intermediate values) it never prunes.

    A trial whose every reported value is NaN (a diverged run) is pruned, as Optuna's percentile pruner does.

    Args:
        n_warmup_steps:
            Pruning is disabled while the current step is less than ``n_warmup_steps``. Whatever this is, a fit
            needs three finite values (a power-law or exponential fit needs four); the study's gains need one.
        interval_steps:
            Decide only every ``interval_steps`` steps after the warm-up (at least 1).
        probability:
            The trial's false-prune rate, in ``(0, 1)``: a trial is judged at every decision step, so the decisions
            share it as an error budget (half to the first decision, ``probability / 2 / ((n - 1) n)`` to the
            ``n``-th after; :func:`sysprune.pruners._forecast.alpha_spent`), and decision ``n`` prunes when
            P(final value beats the best feasible value) is below its share (the study's gains: their bound at one
            minus the share falls short of it). The shares sum to ``probability``, so a trial whose curve model is
            right is pruned wrongly with probability at most ``probability``, however many steps it reports.
        n_startup_trials:
            Pruning is disabled until this many feasible trials have completed (at least 1: there must be a
            best trial to compare with).
        max_steps:
            Number of steps of a full trial; the forecast is for step ``max_steps - 1``. If :obj:`None`, the
            longest completed trial's last step is used.
        families:
            Curve families to fit, a non-empty subset of ``("pow", "exp", "log")``.
        study_gains:
            Judge by the study's finished curves (1. above) once enough trials finished; ``False``: by the fit only.
    """

    #: Every argument's constraint, declared once: checked here, and the ``curve`` policy's ``[pruner]`` keys.
    _parameter_constraints = {
        "n_warmup_steps": Integer(low=0),
        "interval_steps": Integer(low=1),
        "probability": Real(0.0, 1.0, low_open=True, high_open=True),
        "n_startup_trials": Integer(low=1),
        "max_steps": MAX_STEPS,
        "families": ListOf(Text(CURVE_FAMILIES), distinct=True),
        "study_gains": Boolean(),
    }

    def __init__(
        self,
        *,
        n_warmup_steps: int = 1,
        interval_steps: int = 1,
        probability: float = 0.05,
        n_startup_trials: int = 1,
        max_steps: int | None = None,
        families: Sequence[str] = CURVE_FAMILIES,
        study_gains: bool = True,
    ) -> None:
        args = check_params(type(self).__name__, self._parameter_constraints, locals())

        self._n_warmup_steps = n_warmup_steps
        self._interval_steps = interval_steps
        self._probability: float = args["probability"]
        self._n_startup_trials = n_startup_trials
        self._max_steps = max_steps
        self._families = tuple(families)
        self._study_gains = study_gains
        self._views = StudyViews()

    def _decide(self, study: "optuna.study.Study", trial: "optuna.trial.FrozenTrial") -> PruneDecision | None:
        if len(study.directions) > 1:
            return None
        step = trial.last_step
        if step is None or step < self._n_warmup_steps:
            return None
        if (step - self._n_warmup_steps) % self._interval_steps != 0:
            return None

        view = self._views.get(study)
        if view.n_feasible_complete < self._n_startup_trials or view.best_feasible is None:
            return None
        final_step = self._max_steps - 1 if self._max_steps is not None else view.max_last_step
        if final_step is None or step >= final_step:
            return None

        name = type(self).__name__
        points = finite_points(trial.intermediate_values)
        if not points:
            return PruneDecision(
                rule=RULE_CURVE,
                pruner=name,
                step=step,
                message=f"curve: every reported value is NaN (diverged); decided at step {step}",
                extra={"reason": "nan"},
            )
        maximize = study.direction == StudyDirection.MAXIMIZE
        best = view.best_feasible
        look = curve_looks(points, self._n_warmup_steps, self._interval_steps, final_step)
        allowed = alpha_spent(max(look, 1), self._probability, FIRST_SHARE)
        running = running_best(points, step, maximize=maximize)
        if self._study_gains and view.gains is not None and running is not None:
            gain = view.gains.bound(running, step, 1.0 - allowed)
            if gain is not None:
                if gain.reaches(best):
                    return None
                bar = gain.bar(best)
                return PruneDecision(
                    rule=RULE_CURVE,
                    pruner=name,
                    step=step,
                    message=(
                        f"curve: best so far {fmt(running)} can reach {fmt(gain.optimistic)} by step {final_step}"
                        f" (expected {fmt(gain.expected)}; the gains of {gain.n} finished trials after step {step},"
                        f" at {gain.confidence:.4g} confidence: decision {look}'s share of {self._probability:g})"
                        f" < {fmt(bar)} (best feasible {fmt(best)} less one reading's noise); decided"
                        f" at step {step}"
                    ),
                    value=gain.expected,
                    predicted=True,
                    extra={
                        "evidence": "study_gains",
                        "best_feasible": best,
                        "bar": bar,
                        "optimistic": gain.optimistic,
                        "confidence": gain.confidence,
                        "alpha": allowed,
                        "decision": look,
                        "final_step": final_step,
                        "finished_trials": gain.n,
                        "scale": gain.scale,
                    },
                )
        fits = fit_curves(points, final_step, self._families)
        if not fits:
            return None
        p = probability_to_beat(fits, best, maximize=maximize)
        if p >= allowed:
            return None
        final = predicted_final(fits)
        weights = ", ".join(f"{f.family} {f.weight:.2f}" for f in fits)
        return PruneDecision(
            rule=RULE_CURVE,
            pruner=name,
            step=step,
            message=(
                f"curve: predicted final value {fmt(final)} at step {final_step} ({weights});"
                f" P(beats best feasible {fmt(best)}) = {p:.3g} < {allowed:.3g} (decision {look}'s share of"
                f" {self._probability:g}); decided at step {step}"
            ),
            value=final,
            predicted=True,
            extra={
                "evidence": "fit",
                "best_feasible": best,
                "probability": p,
                "alpha": allowed,
                "decision": look,
                "final_step": final_step,
                "families": {f.family: round(f.weight, 4) for f in fits},
            },
        )


#: Share of the trial's false-prune rate (``probability``) its first curve decision may spend.
FIRST_SHARE = 0.5


def curve_looks(points: Sequence[Point], n_warmup_steps: int, interval_steps: int, final_step: int) -> int:
    """Which curve decision the latest of ``points`` is (1-based; 0: none yet): one per finite point at a step the
    pruner decides at (``>= n_warmup_steps``, on the interval, before ``final_step``) — whether the study's gains
    or a fit (from the third point) could decide there — counted from the trial's values, not from the calls, so
    asking less often never spends more."""
    return sum(1 for s, _ in points if n_warmup_steps <= s < final_step and (s - n_warmup_steps) % interval_steps == 0)
