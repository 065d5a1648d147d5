"""StudySpec → optuna.Study → one measured process per trial → per-step metrics in the study's database.

The parent (this process, the Optuna worker) samples the hyperparameters, starts the trial process from the fork
server, receives one report per step, measures the child from outside (see ``_trial_process``), stores the step's
metrics and reports the objective, and asks the pruner — in multi-objective studies too, since sysprune owns the
step loop. Per-trial user attrs carry each metric's final value so ``trials_dataframe()`` and the dashboard show it.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from sysprune import _attrs
from sysprune._logging import get_logger
from sysprune._metrics import METRIC_NAMES
from sysprune._spec import SpecError, StudySpec
from sysprune._store import tune_sqlite_engine
from sysprune._trial_process import CapExceeded, TrialJob, TrialProcess, TrialProcessError

_log = get_logger(__name__)

DEFAULT_STORAGE = "sqlite:///results/sysprune.db"

# What identifies a study's definition: resuming with a file that changed these would mix incomparable trials.
_IDENTITY_FIELDS = ("model", "dataset", "objective", "steps")


class StudyMismatch(SpecError):
    """The database already holds a study of that name, defined differently."""


@dataclass
class RunResult:
    study: optuna.Study
    storage_url: str
    n_run: int
    n_existing: int


def _identity(spec: StudySpec) -> dict[str, Any]:
    from dataclasses import asdict

    d = asdict(spec)
    return json.loads(json.dumps({k: d[k] for k in _IDENTITY_FIELDS}, default=str))


def ensure_sqlite_dir(url: str) -> None:
    """Create the folder of a relative or absolute SQLite file URL (``sqlite:///results/x.db``)."""
    if url.startswith("sqlite:///") and ":memory:" not in url:
        Path(url[len("sqlite:///") :].split("?")[0]).parent.mkdir(parents=True, exist_ok=True)


class StorageError(ValueError):
    """The storage URL cannot be used (unparsable, unreachable, missing driver, folder not creatable)."""


def _shown(url: str) -> str:
    """The URL with any password masked, for messages."""
    try:
        import sqlalchemy

        return sqlalchemy.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def make_storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage with heartbeats (a killed worker's RUNNING trials become FAIL) and SQLite tuned.

    Raises:
        StorageError: one line naming the URL (password masked) and the reason.
    """
    import sqlalchemy.exc

    try:
        ensure_sqlite_dir(url)
        with warnings.catch_warnings():  # heartbeats are "experimental" since Optuna 2.9; relied on knowingly
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = optuna.storages.RDBStorage(url, heartbeat_interval=60, grace_period=180)
    except sqlalchemy.exc.ArgumentError:
        raise StorageError(
            f"--storage {url!r}: not an SQLAlchemy URL (e.g. sqlite:///results/sysprune.db or "
            f"postgresql+psycopg2://user:password@host/db)"
        ) from None
    except (sqlalchemy.exc.SQLAlchemyError, OSError, ImportError) as e:
        reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        raise StorageError(f"--storage {_shown(url)!r}: cannot open the database ({reason})") from None
    tune_sqlite_engine(storage.engine)
    return storage


def make_sampler(spec: StudySpec, seed: int) -> optuna.samplers.BaseSampler:
    s = spec.sampler
    if s.name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if s.name == "nsgaii":
        return optuna.samplers.NSGAIISampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=s.n_startup_trials, multivariate=True)


def _sampler_seed(seed: int, n_existing: int) -> int:
    """A resumed study must not replay the random start-up draws of its first run: mix in its size."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{n_existing}".encode()).digest()[:4], "little")


def _trial_seed(seed: int, number: int) -> int:
    return int.from_bytes(hashlib.sha256(f"trial:{seed}:{number}".encode()).digest()[:4], "little")


def open_study(spec: StudySpec, storage_url: str, study_name: str, seed: int) -> tuple[optuna.Study, int]:
    """Create the study, or load it to resume. Checks that a stored study was defined the same way."""
    from sysprune.pruners import build_pruner

    storage = make_storage(storage_url)
    identity = _identity(spec)
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
    if existing is not None:
        stored = existing.user_attrs.get("sysprune:identity")
        if stored is not None and stored != identity:
            diff = [k for k in _IDENTITY_FIELDS if stored.get(k) != identity.get(k)]
            raise StudyMismatch(
                f"study {study_name!r} in {storage_url} was defined with a different {', '.join(diff)}; "
                f"use --study-name to start a new study"
            )
    directions = list(spec.objective.directions)
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        directions=directions,
        sampler=make_sampler(spec, _sampler_seed(seed, n_existing)),
        pruner=build_pruner(spec.pruner.policy, spec.pruner.params, budgets=spec.budgets, steps=spec.steps),
        load_if_exists=True,
    )
    if existing is None:
        study.set_user_attr("sysprune:identity", identity)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(spec.objective.metrics))
        study.set_user_attr("budgets", dict(spec.budgets))
        study.set_user_attr("pruner", {"policy": spec.pruner.policy, **spec.pruner.params})
        study.set_user_attr("model", spec.model)
        study.set_user_attr("dataset", spec.dataset.name)
        study.set_user_attr("steps", spec.steps)
        study.set_user_attr("machine", machine_info())
    return study, n_existing


def machine_info() -> dict[str, Any]:
    import os

    from sysprune._monitor import energy_available

    return {
        "node": platform.node(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "energy_counter": energy_available(),
    }


def _report_and_decide(trial: optuna.Trial, step: int, value: float | None, metrics: dict[str, Any]) -> bool:
    from sysprune._report import report, should_prune

    report(trial, step, value, metrics)
    return should_prune(trial)


def _finalise(trial: optuna.Trial, last: dict[str, Any], budgets: dict[str, float]) -> None:
    """Each metric's final value as a user attr; budget constraints so the sampler learns feasibility."""
    for name in METRIC_NAMES:
        v = last.get(name)
        if v is not None and not (isinstance(v, float) and math.isnan(v)):
            trial.set_user_attr(name, v)
    if budgets:
        from sysprune.pruners import record_constraints

        record_constraints(trial, budgets, last)


class Objective:
    """The Optuna objective: one trial = one trial process, driven step by step."""

    def __init__(self, spec: StudySpec, dataset_path: str, seed: int) -> None:
        self.spec = spec
        self.dataset_path = dataset_path
        self.seed = seed

    def __call__(self, trial: optuna.Trial) -> float | Sequence[float]:
        from sysprune._space import FixedParam, sample

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
        )
        objective = spec.objective
        single = not objective.is_multi
        last: dict[str, Any] = {}
        tp = None
        try:
            tp = TrialProcess(job, max_rss_mb=spec.trial.max_rss_mb, max_wall_s=spec.trial.max_wall_s)
            trial.set_user_attr("process_start_s", round(tp.ready_s, 6))
            for result in tp.steps():
                last = result.metrics
                value = last.get(objective.metrics[0]) if single else None
                if single and value is None:
                    raise TrialProcessError(f"objective metric {objective.metrics[0]!r} is missing at step {result.step}")
                # The child starts the next step at once, while this process stores the row and asks the
                # pruner (SQLite writes and a MedianPruner's scan cost milliseconds each): bookkeeping overlaps
                # training instead of adding to it. A prune then stops the child mid-step, at once.
                tp.decide(stop=False)
                prune = _report_and_decide(trial, result.step, value, last)
                if prune:  # should_prune has recorded the reason (sysprune's pruners and Optuna's alike)
                    tp.kill()
                    _finalise(trial, last, spec.budgets)
                    raise optuna.TrialPruned(trial.user_attrs.get(_attrs.PRUNE_REASON))
        except CapExceeded as e:
            trial.set_user_attr(_attrs.PRUNE_REASON, str(e))
            trial.set_user_attr(_attrs.PRUNE_DETAIL, {"rule": "hard_cap", "pruner": "TrialProcess", "metric": e.metric,
                                                      "value": e.value, "budget": e.cap, "step": e.step,
                                                      "predicted": False})  # fmt: skip
            # The cap's (positive) constraint first: Optuna keeps the first value per key, and the last
            # recorded step of a budgeted metric may still have been within budget.
            trial.set_constraint(_attrs.CONSTRAINT_PREFIX + e.metric, e.value - e.cap)
            if last:
                _finalise(trial, last, spec.budgets)
            raise optuna.TrialPruned(str(e)) from None
        except TrialProcessError as e:
            trial.set_user_attr(_attrs.ERROR, str(e))
            if last:
                _finalise(trial, last, spec.budgets)
            raise
        finally:
            if tp is not None:
                tp.close()
                if tp.total_cpu_s is not None:  # the whole process's cost, for budget comparisons
                    trial.set_user_attr("process_cpu_s", round(tp.total_cpu_s, 4))
                    trial.set_user_attr("process_wall_s", round(tp.total_wall_s, 4))
        if not last:
            raise TrialProcessError("the trial process finished without reporting a step")
        _finalise(trial, last, spec.budgets)
        values = [last.get(m) for m in objective.metrics]
        if any(v is None for v in values):
            missing = [m for m, v in zip(objective.metrics, values) if v is None]
            raise TrialProcessError(f"objective metric(s) missing at the last step: {', '.join(missing)}")
        return values[0] if single else values


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
    workers: int | None = None,
    oversubscribe: bool = False,
    ray_address: str | None = None,
) -> RunResult:
    """Run (or resume) a study.

    ``n_trials=None`` runs until the study holds ``spec.n_trials`` trials (so running the same command again
    after an interruption finishes the study, and after completion does nothing); an explicit ``n_trials``
    adds that many trials. Trials lost with a killed worker (or interrupted) do not count and run again.
    Raises SpecError/DatasetUnavailable before touching the database on bad input.

    ``workers`` local worker processes share the study (default 1: this process), each pinned to its own cores
    (``oversubscribe`` allows more workers than that); ``ray_address`` (``""``: a local Ray cluster) runs them
    as Ray tasks instead (default: one per ``trial.threads`` CPUs of the cluster). ``callbacks`` always run in
    this process, for every trial of the run as it finishes (read from the storage when workers run elsewhere).
    See docs/workers.md.
    """
    from sysprune import _workers
    from sysprune._data import prepare

    if n_trials is not None and (isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1):
        raise SpecError(f"--n-trials must be an integer >= 1, got {n_trials!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise SpecError(f"--seed must be an integer >= 0, got {seed!r}")
    cpu_sets: list = [None]
    if ray_address is None and workers is not None:
        cpu_sets = _workers.cpu_sets(workers, spec.trial.threads, oversubscribe=oversubscribe)
        if workers == 1:
            cpu_sets = [None]  # one worker in this process: not pinned
    elif workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise SpecError(f"--workers must be an integer >= 1, got {workers!r}")
    seed = spec.seed if seed is None else seed
    study_name = study_name or spec.name
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
    study, _ = _workers.open_for_workers(spec, storage_url, study_name, seed)
    with _workers.database_lock(storage_url):
        counted = _workers.count_in_storage(study)
        target = counted + n_trials if n_trials is not None else spec.n_trials
        _workers.set_target(study, target)
    todo = max(0, target - counted)
    if on_start is not None:
        on_start(study, counted, todo)
    if todo > 0:
        cfg = _workers.WorkerConfig(spec=spec, storage_url=storage_url, study_name=study_name, seed=seed,
                                    target=target, data_dir=data_dir, cache_dir=cache_dir)  # fmt: skip
        if ray_address is not None:
            from sysprune._ray import run_on_ray

            run_on_ray(cfg, study, n_workers=workers, address=ray_address, callbacks=callbacks)
        elif len(cpu_sets) > 1:
            from dataclasses import replace

            feed = _workers.TrialFeed(study, callbacks)
            _workers.launch([replace(cfg, cpus=c) for c in cpu_sets], poll=feed.poll)
        else:
            _workers.run_worker(cfg, callbacks, study=study)
    return RunResult(study, storage_url, todo, counted)
