from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING

from sysprune import _compat
from sysprune._logging import get_logger
from sysprune._validation import Boolean, Integer, Real, check_params
from sysprune.exceptions import BudgetMetricWarning
from sysprune.metrics._dryrun import PREDICTS
from sysprune.metrics._registry import PRETRAIN_STEP, metric_kind, unit_suffix
from sysprune.pruners import _steps
from sysprune.pruners._base import MAX_STEPS, DecidingPruner
from sysprune.pruners._constraints import PRUNER_BUDGETS
from sysprune.pruners._dryrun import PRIORS, DryRunBound, bound
from sysprune.pruners._forecast import (
    FORECAST_FIRST_SHARE,
    Forecast,
    alpha_spent,
    forecast_cumulative,
    forecast_level,
    forecast_looks,
    points_of,
)
from sysprune.pruners._noise import (
    RULE_CLEAR,
    RULE_EXACT,
    Breach,
    confident_breach,
    noise_model,
    pending_breach,
    readings_of,
)
from sysprune.pruners._reasons import RULE_BUDGET, PruneDecision, fmt
from sysprune.pruners._study_view import StudyViews

if TYPE_CHECKING:
    import optuna

_logger = get_logger(__name__)


__all__ = ["BudgetMetricWarning", "ResourceBudgetPruner", "UnreportedWarner"]


class UnreportedWarner:
    """Warns once per budgeted metric that no step reported (or only as missing) by a decision at ``step >= 0``."""

    def __init__(self, budgets: Mapping[str, float]) -> None:
        self._budgets = tuple(budgets)
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    def check(self, steps: Mapping[int, Mapping[str, float | None]], number: int, step: int) -> None:
        if len(self._warned) == len(self._budgets):
            return
        measured = {name for row in steps.values() for name, v in row.items() if v is not None}
        missing = [m for m in self._budgets if m not in measured and m not in self._warned]
        if not missing:
            return
        reported = {name for row in steps.values() for name in row}
        seen = ", ".join(sorted(reported)) or "none"
        with self._lock:
            for metric in missing:
                if metric in self._warned:
                    continue
                self._warned.add(metric)
                if metric in reported:
                    msg = (
                        f"budget on {metric!r} has nothing to act on: trial {number} reported it only as missing up "
                        f"to step {step} (not measurable on this machine?); metrics reported: {seen}"
                    )
                else:
                    msg = (
                        f"budget on {metric!r} has nothing to act on: trial {number} reported no {metric!r} up to "
                        f"step {step} (a misspelt name, or trial.report without sysprune.report?); metrics "
                        f"reported: {seen}"
                    )
                warnings.warn(msg, BudgetMetricWarning, stacklevel=5)
                _logger.warning(msg)


class ResourceBudgetPruner(DecidingPruner):
    """Pruner that stops a trial which exceeds, or will exceed, a resource budget.

    ``budgets`` maps system metrics of sysprune's vocabulary (``wall_s``, ``cpu_s``, ``energy_j``,
    ``peak_rss_mb``, ``infer_ms``, ``model_bytes``, ...) to upper limits. The pruner reads the trial's own step
    metrics — those :func:`sysprune.report` recorded — and prunes when

    1. a **measured** value of a budgeted metric exceeds its budget (at any step, warm-up or not: the trial is
       infeasible already). For an exact metric (a size, a peak reached, a cost spent) one reading decides; a
       noisy one (``infer_ms``) is judged by a sequential test on its recent readings (their lower confidence
       bounds ``<metric>_lo`` where reported) against its measured noise — see :mod:`sysprune.pruners._noise`;
       or
    2. with ``predict``, the **forecast** at the last step exceeds the budget with confidence: the one-sided lower
       bound of the forecast is above the budget. Cumulative metrics are forecast from the cost so far plus the
       recent cost per step times the steps left (increments only, so a slow first step does not inflate the
       rate); level metrics from the linear trend of their recent points; structural metrics (a property of the
       model: ``n_params``, ``infer_ms``) have no trend and are never forecast. See
       :mod:`sysprune.pruners._forecast`. A forecast needs three recorded steps and ``step >= n_warmup_steps``;
       or
    3. with ``predict``, for a budget on time or memory (``cpu_s``, ``wall_s``, ``peak_rss_mb``,
       ``peak_rss_delta_mb``), at step -1: the **dry run**'s prediction (the sysprune runner trains the first
       mini-batches of step 0 before the pre-training decision when this pruner asks, :meth:`wants_dry_run`)
       scaled by how the study's finished trials bore such predictions out, confidently over the budget — see
       :mod:`sysprune.pruners._dryrun`: from the first trial on, with a prior on how predictions miss (so with
       few finished trials only a prediction several times the budget is pruned). The dry run's peak memory
       is a measured value: over a memory budget, rule 1 prunes on it at once.

    Every decision on a metric is one of a sequence (one per step), so ``confidence`` holds over the whole trial:
    the false-prune rate ``1 - confidence`` is an error budget that the metric's decisions share (half to the
    first forecast, ever smaller shares to the later ones; most of it to the second reading of a noisy metric), so
    a trial within its budget is pruned with probability at most ``1 - confidence`` per budgeted metric, whatever
    the reporting schedule.

    A pruned trial is *infeasible*: besides the reason attributes, the pruner sets the constraint
    ``budget:<metric>`` = value − budget (> 0) for every breached metric, measured or predicted, so TPE and
    NSGA-II learn to avoid the region and ``study.best_trial`` skips the trial. The decision uses the trial's own
    data only (an in-process cache written by :func:`sysprune.report`, else one indexed query of the metric
    store), so its cost does not grow with the number of trials — unless ``max_steps`` is left to be inferred.

    It needs no intermediate values and works in multi-objective studies through :func:`sysprune.should_prune`.

    A budgeted metric that no step has reported by a decision at a training step (``step >= 0``) — a misspelt
    name, or ``trial.report`` without metrics — or that was only reported as missing, gives the pruner nothing to
    act on: it says so once per metric with a :class:`BudgetMetricWarning` and on the ``sysprune`` logger.

    Example:

        .. code-block:: python

            import optuna
            import sysprune

            pruner = sysprune.ResourceBudgetPruner({"wall_s": 60.0, "infer_ms": 2.0}, max_steps=20)
            study = optuna.create_study(direction="maximize", pruner=pruner)

            def objective(trial):
                for step in range(20):
                    ...  # train one epoch, measure
                    sysprune.report(trial, step, accuracy, {"wall_s": wall, "infer_ms": latency})
                    if sysprune.should_prune(trial):
                        raise optuna.TrialPruned()
                return accuracy

    Args:
        budgets:
            Metric name → upper limit (finite, >= 0). At least one.
        predict:
            Also prune on forecasts, not only on measured values.
        n_warmup_steps:
            Forecasts are not acted on while the current step is less than ``n_warmup_steps``. Measured breaches
            prune at any step.
        max_steps:
            Number of steps of a full trial (steps ``0 .. max_steps - 1``); forecasts are made for step
            ``max_steps - 1``. If :obj:`None`, it is inferred from the longest completed trial's intermediate
            values (so no forecast before one trial completed, and none in a multi-objective study); that costs
            a look at the study's trial list per decision, so pass it when you know it.
        confidence:
            Confidence, over the whole trial, that a pruned trial is over its budget (per budgeted metric, given
            the noise model of a noisy metric), in ``[0.5, 1)``. A single forecast's lower bound is taken at the
            higher confidence its share of the error budget gives.
    """

    supports_multi_objective = True
    #: Every argument's constraint, declared once: checked here, and the ``budget`` policy's ``[pruner]`` keys.
    _parameter_constraints = {
        "budgets": PRUNER_BUDGETS,
        "predict": Boolean(),
        "n_warmup_steps": Integer(low=0),
        "max_steps": MAX_STEPS,
        "confidence": Real(0.5, 1.0, high_open=True),
    }

    def __init__(
        self,
        budgets: Mapping[str, float],
        *,
        predict: bool = True,
        n_warmup_steps: int = 0,
        max_steps: int | None = None,
        confidence: float = 0.95,
    ) -> None:
        args = check_params(type(self).__name__, self._parameter_constraints, locals())
        self._budgets: dict[str, float] = args["budgets"]
        self._predict = predict
        self._n_warmup_steps = n_warmup_steps
        self._max_steps = max_steps
        self._confidence: float = args["confidence"]
        self._views = StudyViews()
        self._unreported = UnreportedWarner(self._budgets)

    @property
    def budgets(self) -> dict[str, float]:
        return dict(self._budgets)

    def wants_second_reading(self, pretrain: Mapping[str, float | None]) -> bool:
        """Yes when a noisy budgeted metric read over its budget at step -1, but not clearly: one more reading
        decides (see :func:`sysprune.pruners._noise.pending_breach`); and when a budgeted structural metric could
        not be measured before training (a scikit-learn estimator is not fitted yet): step 0 gives its first."""
        steps = {-1: pretrain}
        for metric, budget in self._budgets.items():
            readings = readings_of(steps, metric)
            if not readings and metric_kind(metric) == "structural":
                return True
            if pending_breach(readings, budget, noise_model(metric, readings), alpha=1.0 - self._confidence):
                return True
        return False

    def wants_dry_run(self) -> bool:
        """Yes with ``predict`` and a budget on time or memory: a dry run at step -1 predicts them."""
        return self._predict and any(m in PREDICTS for m in self._budgets)

    def _decide(self, study: "optuna.study.Study", trial: "optuna.trial.FrozenTrial") -> PruneDecision | None:
        steps = _steps.trial_steps(_compat.study_storage(study), _compat.trial_id(trial), trial.datetime_start)
        if not steps:
            if trial.last_step is not None and trial.last_step >= 0:  # plain trial.report, no metrics
                self._unreported.check(steps, trial.number, trial.last_step)
            return None
        step = max(steps)
        if step >= 0:
            self._unreported.check(steps, trial.number, step)

        alpha = 1.0 - self._confidence
        measured = _measured_breaches(steps, self._budgets, alpha)
        predicted: dict[str, Forecast] = {}
        if self._predict and step == PRETRAIN_STEP and not measured:
            dry = self._dry_run_breaches(study, steps[PRETRAIN_STEP], alpha)
            if dry:
                return self._dry_run_decision(study, dry)
        if self._predict and step >= self._n_warmup_steps:
            final_step = self._final_step(study)
            if final_step is not None and step < final_step:
                predicted = {
                    m: f
                    for m, f in _forecasts(steps, self._budgets, final_step, alpha, self._n_warmup_steps).items()
                    if m not in measured and f.low > self._budgets[m]
                }
        if not measured and not predicted:
            return None

        constraints = {m: b.value - self._budgets[m] for m, b in measured.items()}
        constraints.update({m: f.value - self._budgets[m] for m, f in predicted.items()})
        if measured:
            metric = max(measured, key=lambda m: _ratio(measured[m].value, self._budgets[m]))
            breach = measured[metric]
            value, at = breach.value, breach.step
            unit = _unit_suffix(metric)
            message = (
                f"budget: {metric} measured {fmt(value)}{unit} > budget {fmt(self._budgets[metric])}{unit}"
                f" at step {at}{_how(breach, unit)}"
            )
            extra: dict[str, object] = {"measured_step": at}
            if breach.rule != RULE_EXACT:
                extra.update(noise_rule=breach.rule, p=breach.p, alpha=breach.alpha, decision=breach.decision)
                if breach.low is not None:
                    extra["low"] = breach.low
            return self._decision(step, metric, value, message, constraints, extra, predicted=False)
        metric = max(predicted, key=lambda m: _ratio(predicted[m].low, self._budgets[m]))
        f = predicted[metric]
        unit = _unit_suffix(metric)
        kind = "cumulative" if metric_kind(metric) == "cumulative" else "trend"
        message = (
            f"budget: {metric} predicted {fmt(f.value)}{unit} at step {f.final_step}"
            f" (>= {fmt(f.low)}{unit} at {_pct(f.confidence)} confidence, {kind} forecast from {f.n}"
            f" {'increments' if kind == 'cumulative' else 'points'}) > budget {fmt(self._budgets[metric])}{unit};"
            f" decided at step {step}"
        )
        extra = {
            "low": f.low,
            "final_step": f.final_step,
            "confidence": f.confidence,
            "trial_confidence": self._confidence,
        }
        return self._decision(step, metric, f.value, message, constraints, extra, predicted=True)

    def _dry_run_breaches(
        self, study: "optuna.study.Study", row: Mapping[str, float | None], alpha: float
    ) -> dict[str, DryRunBound]:
        """``metric -> bound`` for each budgeted metric whose dry-run prediction, scaled by the study's
        measured/predicted ratios, is over its budget at the first decision's confidence."""
        out: dict[str, DryRunBound] = {}
        wanted = {m: row.get(PREDICTS[m]) for m in self._budgets if m in PREDICTS}
        if not any(v is not None for v in wanted.values()):
            return out
        ratios = self._views.get(study).dry_run_log_ratios
        confidence = 1.0 - alpha_spent(1, alpha, FORECAST_FIRST_SHARE)
        for metric, pred in wanted.items():
            if pred is None:
                continue
            b = bound(float(pred), tuple(ratios.get(metric, ())), confidence, PRIORS[metric])
            if b is not None and b.low > self._budgets[metric]:
                out[metric] = b
        return out

    def _dry_run_decision(self, study: "optuna.study.Study", breaches: Mapping[str, DryRunBound]) -> PruneDecision:
        metric = max(breaches, key=lambda m: _ratio(breaches[m].low, self._budgets[m]))
        b = breaches[metric]
        unit = _unit_suffix(metric)
        final = self._final_step(study)
        at = "at the last step" if final is None else f"at step {final}"
        message = (
            f"budget: {metric} predicted {fmt(b.value)}{unit} {at} (>= {fmt(b.low)}{unit} at {_pct(b.confidence)}"
            f" confidence: a dry run of the first mini-batches, scaled by measured/predicted of {b.n} finished"
            f" trials and the study families' prior) > budget {fmt(self._budgets[metric])}{unit};"
            f" decided at step {PRETRAIN_STEP}"
        )
        constraints = {m: x.value - self._budgets[m] for m, x in breaches.items()}
        extra: dict[str, object] = {
            "low": b.low,
            "confidence": b.confidence,
            "trial_confidence": self._confidence,
            "dry_run_trials": b.n,
        }
        if final is not None:
            extra["final_step"] = final
        return self._decision(PRETRAIN_STEP, metric, b.value, message, constraints, extra, predicted=True)

    def _decision(
        self,
        step: int,
        metric: str,
        value: float,
        message: str,
        constraints: dict[str, float],
        extra: dict[str, object],
        *,
        predicted: bool,
    ) -> PruneDecision:
        return PruneDecision(
            rule=RULE_BUDGET,
            pruner=type(self).__name__,
            step=step,
            message=message,
            metric=metric,
            value=value,
            budget=self._budgets[metric],
            predicted=predicted,
            constraints=constraints,
            extra=extra,
        )

    def _final_step(self, study: "optuna.study.Study") -> int | None:
        if self._max_steps is not None:
            return self._max_steps - 1
        return self._views.get(study).max_last_step


def _ratio(value: float, budget: float) -> float:
    return math.inf if budget <= 0 else value / budget


def _pct(confidence: float) -> str:
    """``97.5%``, ``95%``: a confidence with the digits its share of the error budget needs."""
    return f"{100 * confidence:.4g}%"


def _measured_breaches(
    steps: Mapping[int, Mapping[str, float | None]], budgets: Mapping[str, float], alpha: float
) -> dict[str, Breach]:
    """``metric -> breach`` for every budgeted metric confidently measured above its budget.

    An exact metric reports its largest reading over budget (the reason names the worst); a noisy one the reading
    at which the breach became confident (:func:`sysprune.pruners._noise.confident_breach`).
    """
    out = {}
    for metric, budget in budgets.items():
        readings = readings_of(steps, metric)
        if not readings:
            continue
        breach = confident_breach(readings, budget, noise_model(metric, readings), alpha=alpha)
        if breach is None:
            continue
        if breach.rule == RULE_EXACT:
            worst = max(readings, key=lambda r: r.value)
            breach = Breach(worst.step, worst.value, RULE_EXACT)
        out[metric] = breach
    return out


def _how(breach: Breach, unit: str) -> str:
    """How a noisy metric's breach became confident, for the reason line (nothing for an exact metric)."""
    if breach.rule == RULE_EXACT or breach.p is None or breach.alpha is None:
        return ""
    test = f"p = {breach.p:.2g} <= {breach.alpha:.2g}, reading {breach.decision}'s share of the false-prune rate"
    if breach.rule == RULE_CLEAR:
        what = "lower bound" if breach.low is not None else "reading"
        return f" (one {what} far over budget: {test})"
    if breach.low is not None:
        return f" ({breach.n} consecutive readings with lower bound over budget, last {fmt(breach.low)}{unit}: {test})"
    return f" ({breach.n} consecutive readings over budget: {test})"


def _forecasts(
    steps: Mapping[int, Mapping[str, float | None]],
    budgets: Mapping[str, float],
    final_step: int,
    alpha: float,
    first_step: int,
) -> dict[str, Forecast]:
    """The forecast of each budgeted cumulative or level metric, its lower bound at the confidence that this look's
    share of the error budget ``alpha`` gives. Structural metrics are not forecast: a property of the model does not
    trend, and a line fitted to its noisy readings would only find the noise."""
    out = {}
    for metric in budgets:
        kind = metric_kind(metric)
        if kind == "structural":
            continue
        pts = points_of(steps, metric)
        look = forecast_looks(pts, first_step, final_step)
        if look < 1:
            continue
        if metric in PREDICTS and steps.get(PRETRAIN_STEP, {}).get(PREDICTS[metric]) is not None:
            look += 1  # the dry run's decision at step -1 was this metric's first: it spent the first share
        confidence = 1.0 - alpha_spent(look, alpha, FORECAST_FIRST_SHARE)
        if kind == "cumulative":
            f = forecast_cumulative(pts, final_step, confidence=confidence)
        else:
            f = forecast_level(pts, final_step, confidence=confidence)
        if f is not None:
            out[metric] = f
    return out


def _unit_suffix(metric: str) -> str:
    """`` ms`` for a metric with a unit, nothing for a count (``n_params``)."""
    return unit_suffix(metric)
