"""StudySpec → optuna.Study → one measured process per trial → per-step metrics in the study's database.

The parent (this process, the Optuna worker) samples the hyperparameters, starts the trial process from the fork
server, receives one report per step, measures the child from outside (see ``_trial_process``), stores the step's
metrics and reports the objective, and asks the pruner — in multi-objective studies too, since sysprune owns the
step loop. Per-trial user attrs carry each metric's final value so ``trials_dataframe()`` and the dashboard show it.
"""

from __future__ import annotations

import datetime
import hashlib
import math
import platform
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, NoReturn

import optuna

from sysprune import _attrs
from sysprune._logging import get_logger
from sysprune.metrics._registry import PRETRAIN_STEP, metric_names
from sysprune.spec._parse import StudySpec
from sysprune.storage._open import DEFAULT_STORAGE, ensure_sqlite_dir, mask_url  # noqa: F401 - importable from here
from sysprune.storage._open import open_storage as make_storage
from sysprune.pruners import PLAIN_POLICIES
from sysprune.pruners._base import wants_second_reading
from sysprune.pruners._reasons import hard_cap_decision, record_decision
from sysprune.trial._process import CapExceeded, TrialJob, TrialProcess, TrialProcessError
from sysprune.exceptions import StorageError, StudyMismatch  # noqa: F401 - importable from here

_log = get_logger(__name__)

IDENTITY_ATTR = "sysprune:identity"  # study user attr: sysprune.spec._parse.study_identity of the run that created it
HISTORY_ATTR = "sysprune:runs"  # study user attr: one entry per run (what was safe to change is recorded here)


@dataclass
class RunResult:
    study: optuna.Study
    storage_url: str
    n_run: int
    n_existing: int




def make_sampler(spec: StudySpec, seed: int) -> optuna.samplers.BaseSampler:
    s = spec.sampler
    if s.name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if s.name == "nsgaii":
        # Population = the random first generation. Optuna's default (50) keeps a study of a few dozen trials
        # random throughout, the more so as budget-pruned (PRUNED) trials do not fill a generation; see
        # docs/pruners.md, "How the sampler learns where the budget breaks".
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(2, s.n_startup_trials))
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=s.n_startup_trials, multivariate=True)


def _sampler_seed(seed: int, n_existing: int) -> int:
    """A resumed study must not replay the random start-up draws of its first run: mix in its size."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{n_existing}".encode()).digest()[:4], "little")


def _trial_seed(seed: int, number: int) -> int:
    return int.from_bytes(hashlib.sha256(f"trial:{seed}:{number}".encode()).digest()[:4], "little")


def open_study(
    spec: StudySpec, storage_url: str, study_name: str, seed: int, *, n_trials: int | None = None
) -> tuple[optuna.Study, int]:
    """Create the study, or load it to resume. A stored study must have been defined the same way (see
    :func:`sysprune.spec._parse.study_identity`), else :class:`StudyMismatch` before anything is written; what is safe
    to change (``n_trials``, an explicit ``n_trials`` argument, the sampler) is recorded in the run history."""
    from sysprune.spec._parse import identity_diff, study_identity
    from sysprune.pruners import build_pruner

    storage = make_storage(storage_url)
    identity = study_identity(spec, seed)
    existing = None
    try:
        existing = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        pass
    # Enqueued (WAITING) trials are still to run: they count toward this run, not toward what exists.
    n_existing = (
        sum(t.state != optuna.trial.TrialState.WAITING for t in existing.get_trials(deepcopy=False))
        if existing is not None
        else 0
    )
    unverified: list[str] = []
    if existing is not None:
        stored = stored_identity(existing)
        diffs = identity_diff(stored, identity)
        if diffs:
            raise StudyMismatch(study_name, mask_url(storage_url), diffs)
        unverified = [k for k in identity if k not in stored and k != "version"]
    directions: list[Literal["minimize", "maximize"]] = [
        "maximize" if d == "maximize" else "minimize" for d in spec.objective.directions
    ]
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        directions=directions,
        sampler=make_sampler(spec, _sampler_seed(seed, n_existing)),
        pruner=build_pruner(spec.pruner.policy, spec.pruner.params, budgets=spec.budgets, steps=spec.steps),
        load_if_exists=True,
    )
    if existing is None or IDENTITY_ATTR not in existing.user_attrs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(spec.objective.metrics))
        study.set_user_attr("machine", machine_info())
    if existing is None or unverified:
        # A new study, or one written before these fields were stored (or by plain Optuna): the full identity
        # now, so that later runs are checked on every field; what could not be checked is named in the history.
        study.set_user_attr(IDENTITY_ATTR, identity)
        study.set_user_attr("budgets", dict(spec.budgets))
        study.set_user_attr("pruner", {"policy": spec.pruner.policy, **spec.pruner.params})
        study.set_user_attr("model", spec.model)
        study.set_user_attr("dataset", spec.dataset.name)
        study.set_user_attr("steps", spec.steps)
        study.set_user_attr("seed", seed)
    history = list(study.user_attrs.get(HISTORY_ATTR, []))
    entry: dict[str, Any] = {
        "at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "trials_before": n_existing,
        "n_trials": spec.n_trials,
        "n_trials_argument": n_trials,
        "sampler": {"name": spec.sampler.name, "n_startup_trials": spec.sampler.n_startup_trials},
    }
    if existing is not None and unverified:
        entry["identity_recorded"] = unverified  # not stored by the version that created the study
    study.set_user_attr(HISTORY_ATTR, [*history, entry])
    return study, n_existing


def stored_identity(study: optuna.Study) -> dict[str, Any]:
    """The identity a study was stored with. A study written by the previous version stored only model, dataset,
    objective and steps: its budgets and pruner come from its ``budgets``/``pruner`` attrs and its search space
    from its trials (so a changed space is refused before Optuna sees it); its seed and trial settings were never
    stored and are taken from the run that resumes it. A study made by plain Optuna has only what its trials say."""
    attrs = study.user_attrs
    stored = dict(attrs.get(IDENTITY_ATTR) or {})
    if "budgets" not in stored and isinstance(attrs.get("budgets"), dict):
        stored["budgets"] = attrs["budgets"]
    if "pruner" not in stored and isinstance(attrs.get("pruner"), dict) and "policy" in attrs["pruner"]:
        params = dict(attrs["pruner"])
        stored["pruner"] = {"policy": params.pop("policy"), "params": params}
    if "search_space" not in stored:
        space = _space_of_trials(study.get_trials(deepcopy=False))
        if space:
            stored["search_space"] = space
    return stored


def _space_of_trials(trials: Sequence[optuna.trial.FrozenTrial]) -> dict[str, Any]:
    """The search space (as :func:`sysprune.spec._parse.param_identity` spells it) of the first trial that sampled
    parameters: each distribution, plus the parameters fixed in its user attrs."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    for t in trials:
        if not t.distributions:
            continue
        space: dict[str, Any] = {}
        for name, d in t.distributions.items():
            if isinstance(d, FloatDistribution):
                space[name] = {"type": "float", "low": d.low, "high": d.high, "log": d.log, "step": d.step}
            elif isinstance(d, IntDistribution):
                space[name] = {"type": "int", "low": d.low, "high": d.high, "log": d.log, "step": d.step}
            elif isinstance(d, CategoricalDistribution):
                space[name] = {"type": "categorical", "choices": list(d.choices)}
        for key, value in t.user_attrs.items():
            if key.startswith(_attrs.FIXED_PREFIX):
                space[key[len(_attrs.FIXED_PREFIX) :]] = {"type": "fixed", "value": value}
        return space
    return {}


def machine_info() -> dict[str, Any]:
    import os

    from sysprune.metrics._monitor import energy_available

    return {
        "node": platform.node(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "energy_counter": energy_available(),
    }


def _report_and_decide(trial: optuna.Trial, step: int, value: float | None, metrics: dict[str, Any]) -> bool:
    from sysprune.pruners._step_api import report, should_prune

    report(trial, step, value, metrics)
    return should_prune(trial)


def _finalise(trial: optuna.Trial, last: dict[str, Any], budgets: dict[str, float], *, plain: bool = False) -> None:
    """Each metric's final value as a user attr; budget constraints so the sampler learns feasibility (kept from
    it for the plain-Optuna baselines, ``plain``: see :data:`sysprune.pruners.PLAIN_POLICIES`)."""
    for name in metric_names():
        v = last.get(name)
        if v is not None and not (isinstance(v, float) and math.isnan(v)):
            trial.set_user_attr(name, v)
    if budgets:
        from sysprune.pruners import record_constraints

        record_constraints(trial, budgets, last, hidden=plain)


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _report_nan(trial: optuna.Trial, step: int, value: Any, metrics: dict[str, Any]) -> None:
    """Keep the step's measurements (the step table row) of a step whose objective is NaN; no pruner is asked."""
    from sysprune.pruners._step_api import report

    report(trial, step, value, metrics)


def _fail(trial: optuna.Trial, error: str) -> NoReturn:
    trial.set_user_attr(_attrs.ERROR, error)
    raise TrialProcessError(error)


class Objective:
    """The Optuna objective: one trial = one trial process, driven step by step."""

    def __init__(self, spec: StudySpec, dataset_path: str, seed: int) -> None:
        self.spec = spec
        self.dataset_path = dataset_path
        self.seed = seed

    def __call__(self, trial: optuna.Trial) -> float | Sequence[float]:
        from sysprune.models._space import FixedParam, sample

        spec = self.spec
        params = sample(spec.search_space, trial)
        for name, p in spec.search_space.items():
            if isinstance(p, FixedParam):
                trial.set_user_attr(_attrs.FIXED_PREFIX + name, p.value)
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
        )
        objective = spec.objective
        single = not objective.is_multi
        plain = spec.pruner.policy in PLAIN_POLICIES  # a plain-Optuna baseline: no constraints for the sampler
        last: dict[str, Any] = {}
        last_step = -2  # -1: the pre-training probe
        tp = None
        try:
            tp = TrialProcess(job, max_rss_mb=spec.trial.max_rss_mb, max_wall_s=spec.trial.max_wall_s)
            trial.set_user_attr("process_start_s", round(tp.ready_s, 6))
            for result in tp.steps():
                # The latest measured value of each metric (structural ones are measured at step -1 and the last).
                last = {**last, **{k: v for k, v in result.metrics.items() if v is not None or k not in last}}
                last_step = result.step
                if result.step == PRETRAIN_STEP:
                    # The model is built, nothing trained: the pruner decides on its structural metrics first,
                    # so a configuration over a size or latency budget costs only the fork, the build and the probe.
                    prune = _report_and_decide(trial, result.step, None, result.metrics)
                    if not prune:  # measured again after step 0 only if the pruner waits for that reading
                        tp.decide(stop=False, probe_next=wants_second_reading(trial.study.pruner, result.metrics))
                else:
                    value = last.get(objective.metrics[0]) if single else None
                    if single and value is None:
                        raise TrialProcessError(
                            f"objective metric {objective.metrics[0]!r} is missing at step {result.step}"
                        )
                    if single and _is_nan(value):  # a diverged model: Optuna would fail it later, without a reason
                        _report_nan(trial, result.step, value, result.metrics)
                        raise TrialProcessError(
                            f"objective metric {objective.metrics[0]!r} was NaN at step {result.step}"
                        )
                    # The child starts the next step at once, while this process stores the row and asks the
                    # pruner (SQLite writes and a MedianPruner's scan cost milliseconds each): bookkeeping overlaps
                    # training instead of adding to it. A prune then stops the child mid-step, at once.
                    tp.decide(stop=False)
                    prune = _report_and_decide(trial, result.step, value, result.metrics)
                if prune:  # should_prune has recorded the reason (sysprune's pruners and Optuna's alike)
                    tp.kill()
                    _finalise(trial, last, spec.budgets, plain=plain)
                    raise optuna.TrialPruned(trial.user_attrs.get(_attrs.PRUNE_REASON))
        except CapExceeded as e:
            # reason, detail and the cap's (positive) constraint; kept from the sampler in a plain baseline
            record_decision(trial, replace(hard_cap_decision(e), hidden=plain))
            if last:
                _finalise(trial, last, spec.budgets, plain=plain)
            raise optuna.TrialPruned(str(e)) from None
        except TrialProcessError as e:
            trial.set_user_attr(_attrs.ERROR, str(e))
            if last:
                _finalise(trial, last, spec.budgets, plain=plain)
            raise
        except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM: Optuna marks the trial FAIL and re-raises; say why
            from sysprune.study._workers import interrupted_reason

            step = f"step {last_step + 1}" if tp is not None else "start"
            trial.set_user_attr(_attrs.ERROR, f"{interrupted_reason(e)} during {step}")
            raise
        finally:
            if tp is not None:
                tp.close()
                if tp.total_cpu_s is not None:  # the whole process's cost, for budget comparisons
                    trial.set_user_attr("process_cpu_s", round(tp.total_cpu_s, 4))
                if tp.total_wall_s is not None:
                    trial.set_user_attr("process_wall_s", round(tp.total_wall_s, 4))
        if not last:
            raise TrialProcessError("the trial process finished without reporting a step")
        _finalise(trial, last, spec.budgets, plain=plain)
        values = [last.get(m) for m in objective.metrics]
        if any(v is None for v in values):
            missing = [m for m, v in zip(objective.metrics, values) if v is None]
            _fail(trial, f"objective metric(s) missing at the last step: {', '.join(missing)}")
        nan = [m for m, v in zip(objective.metrics, values) if _is_nan(v)]
        if nan:
            _fail(trial, f"objective metric(s) {', '.join(nan)} NaN at the last step ({last_step})")
        numbers = [float(v) for v in values if v is not None]  # none is None: checked above
        return numbers[0] if single else numbers


def run_study(
    spec: StudySpec,
    *,
    storage_url: str = DEFAULT_STORAGE,
    study_name: str | None = None,
    n_trials: int | None = None,
    seed: int | None = None,
    callbacks: Sequence[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] = (),
    data_dir: str | None = None,
    cache_dir: str | None = None,
    on_start: Callable[[optuna.Study, int, int], None] | None = None,
    max_compute_s: float | None = None,
    workers: int | None = None,
    oversubscribe: bool = False,
    ray_address: str | None = None,
) -> RunResult:
    """Run (or resume) a study.

    ``n_trials=None`` runs until the study holds ``spec.n_trials`` trials (so running the same command again
    after an interruption finishes the study, and after completion does nothing); an explicit ``n_trials``
    adds that many trials. Trials lost with a killed worker (or interrupted) do not count and run again.
    ``max_compute_s`` (default: the file's ``[study] max_compute_s``) stops the run once the trials it finished
    (every worker's) spent that many CPU seconds (trial processes + workers). Raises SpecError
    (``InvalidArgument`` naming the argument, ``StudyMismatch``) or DatasetUnavailable before writing to the
    database on bad input.

    ``workers`` local worker processes share the study (default 1: this process), each pinned to its own cores
    (``oversubscribe`` allows more workers than that); ``ray_address`` (``""``: a local Ray cluster) runs them
    as Ray tasks instead (default: one per ``trial.threads`` CPUs of the cluster). ``callbacks`` always run in
    this process, for every trial of the run as it finishes (read from the storage when workers run elsewhere).
    See docs/workers.md.
    """
    from sysprune.study import _workers
    from sysprune.datasets._core import prepare
    from sysprune.spec._parse import N_TRIALS, SEED, Real, Text, check_argument

    if n_trials is not None:
        check_argument("n_trials", n_trials, N_TRIALS)
    if seed is not None:
        check_argument("seed", seed, SEED)
    if study_name is not None:
        check_argument("study_name", study_name, Text())
    if workers is not None:
        check_argument("workers", workers, N_TRIALS)
    cpu_sets: list = [None]
    if ray_address is None and workers is not None:
        cpu_sets = _workers.cpu_sets(workers, spec.trial.threads, oversubscribe=oversubscribe)
        if workers == 1:
            cpu_sets = [None]  # one worker in this process: not pinned
    seed = spec.seed if seed is None else seed
    study_name = study_name or spec.name
    if max_compute_s is not None:
        check_argument("max_compute_s", max_compute_s, Real(low=0.0, low_open=True))
    max_compute_s = spec.max_compute_s if max_compute_s is None else max_compute_s
    since = datetime.datetime.now()  # the run's own trials (every worker's) count toward max_compute_s
    d = spec.dataset
    prepare(
        d.name,
        seed=seed,
        subsample=d.subsample,
        val_fraction=d.val_fraction,
        test_fraction=d.test_fraction,
        data_dir=data_dir,
        cache_dir=cache_dir,
    )
    study, _ = _workers.open_for_workers(spec, storage_url, study_name, seed, n_trials=n_trials)
    with _workers.database_lock(storage_url):
        counted = _workers.count_in_storage(study)
        target = counted + n_trials if n_trials is not None else spec.n_trials
        _workers.set_target(study, target)
    todo = max(0, target - counted)
    if on_start is not None:
        on_start(study, counted, todo)
    if todo > 0:
        cfg = _workers.WorkerConfig(spec=spec, storage_url=storage_url, study_name=study_name, seed=seed,
                                    target=target, data_dir=data_dir, cache_dir=cache_dir,
                                    max_compute_s=max_compute_s, since=since)  # fmt: skip
        if ray_address is not None:
            from sysprune.study._ray import run_on_ray

            run_on_ray(cfg, study, n_workers=workers, address=ray_address, callbacks=callbacks)
        elif len(cpu_sets) > 1:
            feed = _workers.TrialFeed(study, callbacks)
            _workers.launch([replace(cfg, cpus=c) for c in cpu_sets], poll=feed.poll)
        else:
            _workers.run_worker(cfg, callbacks, study=study)
    return RunResult(study, storage_url, todo, counted)
