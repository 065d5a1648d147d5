from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from optuna.study import StudyDirection

from sysprune._validation import Integer, ListOf, Real, Text, check_params
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
from sysprune.pruners._reasons import RULE_CURVE, PruneDecision, fmt
from sysprune.pruners._study_view import StudyViews

if TYPE_CHECKING:
    import optuna


class CurvePruner(DecidingPruner):
    """Pruner that extrapolates the learning curve and stops trials unlikely to beat the best feasible trial.

    In the spirit of Domhan et al. (2015), "Speeding up automatic hyperparameter optimization of deep neural
    networks by extrapolation of learning curves", but cheap: instead of MCMC over eleven families, a few
    parametric families ``y = c + a * g_theta(step + 1)`` — a power law, an exponential approach (a straight line
    at small rates) and a logarithm — are fitted to the trial's intermediate values: ``c`` and ``a`` by least
    squares in closed form, the shape ``theta`` integrated over a grid, each giving a Student-t prediction at the
    last step (:func:`sysprune.pruners._forecast.fit_curves`). Families are weighted by their marginal likelihood.
    The trial is pruned when the probability that its final value reaches the best value of a *feasible* completed
    trial (every constraint <= 0) is below the share of ``probability`` this decision may spend. Works for both directions. About 1 ms per decision for
    the fits, plus a look at the trials finished since the last decision.

    A curve prune is feasible-but-unpromising: it writes the reason attributes (rule ``curve``) and no
    constraint. In a multi-objective study (no intermediate values) it never prunes.

    A trial whose every reported value is NaN (a diverged run) is pruned, as Optuna's percentile pruner does.

    Args:
        n_warmup_steps:
            Pruning is disabled while the current step is less than ``n_warmup_steps``. Whatever this is, a fit
            needs three finite values (a power-law or exponential fit needs four).
        interval_steps:
            Decide only every ``interval_steps`` steps after the warm-up (at least 1).
        probability:
            The trial's false-prune rate, in ``(0, 1)``: a trial is judged at every decision step, so the decisions
            share it as an error budget (half to the first decision, ``probability / 2 / ((n - 1) n)`` to the
            ``n``-th after; :func:`sysprune.pruners._forecast.alpha_spent`), and decision ``n`` prunes when
            P(final value beats the best feasible value) is below its share. The shares sum to ``probability``, so
            a trial whose curve model is right is pruned wrongly with probability at most ``probability``, however
            many steps it reports.
        n_startup_trials:
            Pruning is disabled until this many feasible trials have completed (at least 1: there must be a
            best trial to compare with).
        max_steps:
            Number of steps of a full trial; the forecast is for step ``max_steps - 1``. If :obj:`None`, the
            longest completed trial's last step is used.
        families:
            Curve families to fit, a non-empty subset of ``("pow", "exp", "log")``.
    """

    #: Every argument's constraint, declared once: checked here, and the ``curve`` policy's ``[pruner]`` keys.
    _parameter_constraints = {
        "n_warmup_steps": Integer(low=0),
        "interval_steps": Integer(low=1),
        "probability": Real(0.0, 1.0, low_open=True, high_open=True),
        "n_startup_trials": Integer(low=1),
        "max_steps": MAX_STEPS,
        "families": ListOf(Text(CURVE_FAMILIES), distinct=True),
    }

    def __init__(
        self,
        *,
        n_warmup_steps: int = 3,
        interval_steps: int = 1,
        probability: float = 0.05,
        n_startup_trials: int = 1,
        max_steps: int | None = None,
        families: Sequence[str] = CURVE_FAMILIES,
    ) -> None:
        args = check_params(type(self).__name__, self._parameter_constraints, locals())

        self._n_warmup_steps = n_warmup_steps
        self._interval_steps = interval_steps
        self._probability: float = args["probability"]
        self._n_startup_trials = n_startup_trials
        self._max_steps = max_steps
        self._families = tuple(families)
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
        fits = fit_curves(points, final_step, self._families)
        if not fits:
            return None
        maximize = study.direction == StudyDirection.MAXIMIZE
        best = view.best_feasible
        p = probability_to_beat(fits, best, maximize=maximize)
        look = curve_looks(points, self._n_warmup_steps, self._interval_steps, final_step)
        allowed = alpha_spent(max(look, 1), self._probability, FIRST_SHARE)
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
    """Which curve decision the latest of ``points`` is (1-based; 0: none yet): one per finite point, from the third
    on (a fit needs three), at a step the pruner decides at (``>= n_warmup_steps``, on the interval, before
    ``final_step``) — counted from the trial's values, not from the calls, so asking less often never spends more."""
    return sum(
        1
        for i, (s, _) in enumerate(points)
        if i >= 2 and n_warmup_steps <= s < final_step and (s - n_warmup_steps) % interval_steps == 0
    )
