"""The Optuna objective of a sysprune study: one trial = one measured trial process, driven step by step.

The parent (the Optuna worker) samples the hyperparameters, starts the trial process from the fork server,
receives one report per step, measures the child from outside (see :mod:`sysprune.trial`), stores the step's
metrics and reports the objective, and asks the pruner — in multi-objective studies too, since sysprune owns the
step loop. Per-trial user attrs carry each metric's final value so ``trials_dataframe()`` and the dashboard show it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, NoReturn

import optuna

from sysprune import _attrs, _compat
from sysprune._logging import get_logger
from sysprune.metrics._registry import PRETRAIN_STEP, metric_names
from sysprune.models._space import FixedParam, sample
from sysprune.pruners import get_policy, record_constraints
from sysprune.metrics._dryrun import BATCHES as DRY_RUN_BATCHES
from sysprune.pruners._base import wants_dry_run, wants_second_reading
from sysprune.pruners._reasons import hard_cap_decision, record_decision
from sysprune.pruners._step_api import Held, hold, report_held, should_prune, store_held
from sysprune.spec import StudySpec
from sysprune.study._interrupts import interrupted_reason
from sysprune.study._lost import DATABASE_PENDING
from sysprune.storage._faults import database_fault
from sysprune.study._progress import notify_step
from sysprune.exceptions import CapExceeded, TrialProcessError, first_line
from sysprune.trial._job import TrialJob
from sysprune.trial._process import TrialProcess


def _trial_seed(seed: int, number: int) -> int:
    return int.from_bytes(hashlib.sha256(f"trial:{seed}:{number}".encode()).digest()[:4], "little")


def _report_and_decide(
    trial: optuna.Trial, step: int, value: float | None, metrics: dict[str, Any], held: Held | None
) -> bool:
    report_held(trial, step, value, metrics, held=held)
    return should_prune(trial)


def _finalise(
    trial: optuna.Trial, last: dict[str, Any], budgets: dict[str, float], attrs: dict[str, Any], *, plain: bool = False
) -> None:
    """Each metric's final value as a user attr (into ``attrs``, written with the trial's other attrs); budget
    constraints so the sampler learns feasibility (kept from it for the plain-Optuna baselines, ``plain``: see
    :func:`sysprune.register_policy`)."""
    for name in metric_names():
        v = last.get(name)
        if v is not None and not (isinstance(v, float) and math.isnan(v)):
            attrs[name] = v
    if budgets:
        record_constraints(trial, budgets, last, hidden=plain)


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _report_nan(trial: optuna.Trial, step: int, value: Any, metrics: dict[str, Any], held: Held | None) -> None:
    """Keep the step's measurements (the step table row) of a step whose objective is NaN; no pruner is asked."""
    report_held(trial, step, value, metrics, held=held)


_log = get_logger(__name__)


def _error_of(e: Exception) -> str:
    """The ``error`` attr of a trial ended by an exception the objective did not foresee: a database fault
    (:data:`DATABASE_PENDING`: the next worker start runs its configuration again), else the exception itself."""
    fault = database_fault(e)
    if fault is not None:
        return f"{DATABASE_PENDING}: {fault.kind}"
    return f"{type(e).__name__}: {first_line(e)}" if str(e).strip() else type(e).__name__


def _write_while_failing(trial: optuna.Trial, attrs: dict[str, Any]) -> None:
    """The attrs of a trial that is failing: a database fault while writing them is logged, not raised (the
    exception that ended the trial is the one to report; the next worker start retries a trial left without its
    ``error``)."""
    try:
        _compat.set_trial_user_attrs(trial, attrs)
    except Exception as e:
        if database_fault(e) is None:
            raise
        _log.debug("trial %d: its attrs were not written (%s)", trial.number, e)


class _Attrs(dict):
    """The trial's user attrs as the objective collects them, and which of them are written already (the last
    step writes them with its rows; what is set after that — an error, a prune's totals — is written at the end)."""

    def __init__(self) -> None:
        super().__init__()
        self._written: dict[str, Any] = {}

    def mark_written(self) -> None:
        self._written = dict(self)

    def unwritten(self) -> dict[str, Any]:
        return {k: v for k, v in self.items() if k not in self._written or self._written[k] != v}


def _totals(tp: TrialProcess, attrs: dict[str, Any]) -> None:
    """What the trial's processes used, as attrs (None only if it never got going: nothing set)."""
    if tp.total_cpu_s is not None:
        attrs[_attrs.PROCESS_CPU] = round(tp.total_cpu_s, 4)
    if tp.total_wall_s is not None:
        attrs[_attrs.PROCESS_WALL] = round(tp.total_wall_s, 4)


def _report_final(
    trial: optuna.Trial,
    held: Held | None,
    final: tuple[int, Any, dict[str, Any]] | None,
    *,
    failing: bool = False,
) -> None:
    """Rows not stored yet when the trial ends another way — step -1's (a cap or a death in step 0), the last step's
    row and value (a cap met or a death at the process's end, an interrupt while it exited) — stored as they were
    measured. ``failing`` (an interrupt or an unforeseen exception is on its way up, and is the one to report): a
    write that fails is logged, not raised."""
    try:
        if final is not None:
            report_held(trial, final[0], final[1], final[2], held=held)
        elif held:
            store_held(trial, held)
    except Exception as e:
        if not failing:
            raise
        _log.debug("trial %d: its held rows were not written (%s)", trial.number, e)


def _fail(attrs: dict[str, Any], error: str) -> NoReturn:
    attrs[_attrs.ERROR] = error
    raise TrialProcessError(error)


class Objective:
    """The Optuna objective: one trial = one trial process, driven step by step.

    The trial's user attrs (fixed parameters, each metric's final value, the process's totals, an error) are
    collected while it runs and written in one transaction when it ends, still RUNNING: one write instead of ~18
    (Optuna writes each attr in its own transaction) — for a trial that runs to its last step, in that step's own
    transaction with its rows and value (``report_held``: the trial process has ended by then, so its totals
    are known); otherwise, or for what is set after it, by ``_compat.set_trial_user_attrs``."""

    def __init__(
        self, spec: StudySpec, dataset_path: str, seed: int, *, worker_cpu: Callable[[], float] | None = None
    ) -> None:
        self.spec = spec
        self.dataset_path = dataset_path
        self.seed = seed
        #: The worker's CPU on this trial so far (:meth:`sysprune.study._compute.WorkerCompute.charge`), written
        #: with the trial's other attrs as ``worker_cpu_s``: one transaction less per trial.
        self.worker_cpu = worker_cpu

    def __call__(self, trial: optuna.Trial) -> float | Sequence[float]:
        attrs = _Attrs()
        try:
            value = self._run(trial, attrs)
        except optuna.TrialPruned:
            _compat.set_trial_user_attrs(trial, self._unwritten(attrs))
            raise
        except Exception as e:  # every failure says why; an unforeseen one (a database fault, a bug) too
            attrs.setdefault(_attrs.ERROR, _error_of(e))
            _write_while_failing(trial, self._unwritten(attrs))
            raise
        except BaseException:  # KeyboardInterrupt (its reason recorded in _run), SystemExit
            _write_while_failing(trial, self._unwritten(attrs))
            raise
        _compat.set_trial_user_attrs(trial, self._unwritten(attrs))
        return value

    def _unwritten(self, attrs: _Attrs) -> dict[str, Any]:
        """The attrs not written yet, charged with the worker's CPU so far; nothing (no write) when every attr was
        written with the last step (the CPU since is the next trial's, as ``tell`` is)."""
        pending = attrs.unwritten()
        return self._charged(pending) if pending else pending

    def _charged(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """``attrs`` with the worker's CPU on the trial up to this instant (when a :class:`WorkerCompute` runs it)."""
        if self.worker_cpu is not None:
            attrs[_attrs.WORKER_CPU] = self.worker_cpu()
        return attrs

    def _run(self, trial: optuna.Trial, attrs: _Attrs) -> float | Sequence[float]:
        spec = self.spec
        params = sample(spec.search_space, trial)
        for name, p in spec.search_space.items():
            if isinstance(p, FixedParam):
                attrs[_attrs.FIXED_PREFIX + name] = p.value
        job = TrialJob(
            model=spec.model,
            params=params,
            dataset_path=self.dataset_path,
            seed=_trial_seed(self.seed, trial.number),
            steps=spec.steps,
            threads=spec.trial.threads,
            infer_batch_size=spec.trial.infer_batch_size,
            infer_repeats=spec.trial.infer_repeats,
            plugins=spec.plugins,
            dry_run_batches=DRY_RUN_BATCHES if wants_dry_run(trial.study.pruner) else 0,
        )
        objective = spec.objective
        single = not objective.is_multi
        plain = get_policy(spec.pruner.policy).plain  # a plain-Optuna baseline: no constraints for the sampler
        last: dict[str, Any] = {}
        last_step = -2  # -1: the pre-training probe
        finalised = False  # final values and constraints recorded (with the last step)
        final: tuple[int, Any, dict[str, Any]] | None = None  # the last step, reported once the process has ended
        held: Held | None = None  # step -1's row: decided on at once, stored with step 0's (one transaction less)
        # Held before it starts: however the trial ends — a cap passed while it starts, an interrupt — what its
        # processes used is recorded in the finally below.
        tp = TrialProcess(job, max_rss_mb=spec.trial.max_rss_mb, max_wall_s=spec.trial.max_wall_s, start=False)
        try:
            tp.start()
            attrs[_attrs.PROCESS_START] = round(tp.ready_s or 0.0, 6)
            for result in tp.steps():
                # The latest measured value of each metric (structural ones are measured at step -1 and the last).
                last = {**last, **{k: v for k, v in result.metrics.items() if v is not None or k not in last}}
                last_step = result.step
                notify_step(trial.number, result.step, spec.steps)  # the progress display's step, if one listens
                if result.step == PRETRAIN_STEP:
                    # The model is built, nothing trained: the pruner decides on its structural metrics first,
                    # so a configuration over a size or latency budget costs only the fork, the build and the probe.
                    held = hold(trial, result.step, result.metrics)
                    prune = should_prune(trial)
                    if prune:
                        store_held(trial, held)
                        held = None
                    else:  # measured again after step 0 only if the pruner waits for that reading
                        tp.decide(stop=False, probe_next=wants_second_reading(trial.study.pruner, result.metrics))
                else:
                    value = last.get(objective.metrics[0]) if single else None
                    if single and value is None:
                        raise TrialProcessError(
                            f"objective metric {objective.metrics[0]!r} is missing at step {result.step}"
                        )
                    if single and _is_nan(value):  # a diverged model: Optuna would fail it later, without a reason
                        _report_nan(trial, result.step, value, result.metrics, held)
                        held = None
                        raise TrialProcessError(
                            f"objective metric {objective.metrics[0]!r} was NaN at step {result.step}"
                        )
                    # The child starts the next step at once, while this process stores the row and asks the
                    # pruner (SQLite writes and a MedianPruner's scan cost milliseconds each): bookkeeping overlaps
                    # training instead of adding to it. A prune then stops the child mid-step, at once.
                    tp.decide(stop=False)
                    if result.step == spec.steps - 1:  # the last: with the trial's attrs once its totals are in
                        final = (result.step, value, result.metrics)
                        continue
                    prune, held = _report_and_decide(trial, result.step, value, result.metrics, held), None
                if prune:  # should_prune has recorded the reason (sysprune's pruners and Optuna's alike)
                    tp.kill()
                    _finalise(trial, last, spec.budgets, attrs, plain=plain)
                    raise optuna.TrialPruned(trial.user_attrs.get(_attrs.PRUNE_REASON))
            if final is not None:  # the process has ended: the last step's rows, value and the trial's attrs at once
                _totals(tp, attrs)
                _finalise(trial, last, spec.budgets, attrs, plain=plain)
                step, value, metrics = final
                final = None
                report_held(trial, step, value, metrics, held=held, user_attrs=self._charged(attrs))
                held = None
                attrs.mark_written()
                if should_prune(trial):  # a pruner may still prune at the last step
                    raise optuna.TrialPruned(trial.user_attrs.get(_attrs.PRUNE_REASON))
                finalised = True
        except CapExceeded as e:
            _report_final(trial, held, final)
            # reason, detail and the cap's (positive) constraint; kept from the sampler in a plain baseline
            record_decision(trial, replace(hard_cap_decision(e), hidden=plain))
            if last:
                _finalise(trial, last, spec.budgets, attrs, plain=plain)
            raise optuna.TrialPruned(str(e)) from None
        except TrialProcessError as e:
            _report_final(trial, held, final)
            attrs[_attrs.ERROR] = str(e)
            if last:
                _finalise(trial, last, spec.budgets, attrs, plain=plain)
            raise
        except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM: Optuna marks the trial FAIL and re-raises; say why
            tp.kill()  # at once: the step it is in will not be used
            _report_final(trial, held, final, failing=True)
            during = f"step {last_step + 1}" if tp.ready_s is not None else "start"
            attrs[_attrs.ERROR] = f"{interrupted_reason(e)} during {during}"
            raise
        except optuna.TrialPruned:
            raise
        except Exception:  # unforeseen (a database fault, a pruner's bug): the rows measured so far are kept
            _report_final(trial, held, final, failing=True)
            raise
        finally:
            # Whatever the ending (complete, pruned at any step, a cap, a failure, an interrupt): what the trial's
            # processes used, for the budget comparisons and the summary. None only if it never got going.
            tp.close()
            _totals(tp, attrs)
        if not last:
            raise TrialProcessError("the trial process finished without reporting a step")
        if not finalised:
            _finalise(trial, last, spec.budgets, attrs, plain=plain)
        values = [last.get(m) for m in objective.metrics]
        if any(v is None for v in values):
            missing = [m for m, v in zip(objective.metrics, values) if v is None]
            _fail(attrs, f"objective metric(s) missing at the last step: {', '.join(missing)}")
        nan = [m for m, v in zip(objective.metrics, values) if _is_nan(v)]
        if nan:
            _fail(attrs, f"objective metric(s) {', '.join(nan)} NaN at the last step ({last_step})")
        numbers = [float(v) for v in values if v is not None]  # none is None: checked above
        return numbers[0] if single else numbers
