"""StudySpec → optuna.Study → one measured process per trial → per-step metrics in the study's database.

The parent (this process, the Optuna worker) samples the hyperparameters, starts the trial process from the fork
server, receives one report per step, measures the child from outside (see ``_trial_process``), stores the step's
metrics and reports the objective, and asks the pruner — in multi-objective studies too, since sysprune owns the
step loop. Per-trial user attrs carry each metric's final value so ``trials_dataframe()`` and the dashboard show it.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import optuna

from sysprune._logging import get_logger
from sysprune._signals import signals_deferred
from sysprune.spec import StudySpec
from sysprune.storage._open import DEFAULT_STORAGE, mask_url  # noqa: F401 - importable from here
from sysprune.exceptions import StorageError, StudyMismatch  # noqa: F401 - importable from here
from sysprune.spec import N_TRIALS, SEED, STUDY_NAME, check_argument
from sysprune._validation import Real
from sysprune.study import _counting, _launch, _workers
from sysprune.study._dataset import prepare_dataset
from sysprune.study._ray import run_on_ray

_log = get_logger(__name__)


@dataclass
class RunResult:
    study: optuna.Study
    storage_url: str
    n_run: int
    n_existing: int


@signals_deferred()  # Ctrl-C / SIGTERM raised at safe points only, never inside a storage call (sysprune._signals)
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

    if n_trials is not None:
        check_argument("n_trials", n_trials, N_TRIALS)
    if seed is not None:
        check_argument("seed", seed, SEED)
    if study_name is not None:
        check_argument("study_name", study_name, STUDY_NAME)
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
    prepare_dataset(spec, seed, data_dir=data_dir, cache_dir=cache_dir)
    study, _ = _workers.open_for_workers(spec, storage_url, study_name, seed, n_trials=n_trials)
    with _workers.database_lock(storage_url):
        counted = _counting.count_in_storage(study)
        target = counted + n_trials if n_trials is not None else spec.n_trials
        _counting.set_target(study, target)
    todo = max(0, target - counted)
    if on_start is not None:
        on_start(study, counted, todo)
    if todo > 0:
        cfg = _workers.WorkerConfig(
            spec=spec,
            storage_url=storage_url,
            study_name=study_name,
            seed=seed,
            target=target,
            data_dir=data_dir,
            cache_dir=cache_dir,
            max_compute_s=max_compute_s,
            since=since,
        )
        if ray_address is not None:
            run_on_ray(cfg, study, n_workers=workers, address=ray_address, callbacks=callbacks)
        elif len(cpu_sets) > 1:
            feed = _launch.TrialFeed(study, callbacks)
            _launch.launch([replace(cfg, cpus=c, opened=True) for c in cpu_sets], poll=feed.poll)
        else:
            _workers.run_worker(cfg, callbacks, study=study)
    return RunResult(study, storage_url, todo, counted)
