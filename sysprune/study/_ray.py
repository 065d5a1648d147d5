"""Ray as the cluster executor: sysprune workers as Ray tasks on an existing cluster (a local one by default).

Each task is a whole sysprune worker (:func:`sysprune.study._workers.run_worker`): it prepares the dataset on its node
(from the same data/cache folders, or downloads it there), opens the study's storage — which must be reachable
from every node: PostgreSQL for a real cluster — and runs trials until the study holds its target, each in its own
measured trial process from the task's own fork server. Tasks coordinate through the database exactly as local
workers do (a claimed slot per trial, lost trials retried), so a task that dies loses only its running trial.
A task asks Ray for ``trial.threads`` CPUs and runs in a fresh Ray worker process (``max_calls=1``), so its fork
server ends with it. Ray does not pin tasks to cores: on a shared node, budgets on time and latency need the same
care as with ``--oversubscribe``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sysprune.exceptions import RayUnavailable, SpecError
from sysprune.study._launch import TrialFeed
from sysprune.study._workers import Callback, WorkerConfig
from sysprune.study._workers import run_worker

POLL_S = 1.0


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RayUnavailable("--ray: ray is not installed; install the extra: pip install 'sysprune[ray]'") from None
    return ray


def _task(cfg: WorkerConfig, verbosity: int) -> int:
    """One sysprune worker inside a Ray worker process; returns how many trials it ran."""
    import optuna

    optuna.logging.set_verbosity(verbosity)
    return run_worker(cfg)


def run_on_ray(
    cfg: WorkerConfig,
    study: Any,
    *,
    n_workers: int | None,
    address: str,
    callbacks: Sequence[Callback] = (),
    poll_s: float = POLL_S,
) -> list[int]:
    """Run ``n_workers`` sysprune workers as Ray tasks and wait for them; ``callbacks`` run here for each trial
    of ``study`` that finishes (read from the storage). Uses the Ray session of this process if one is initialised, else
    connects to ``address`` (``""``: start a local cluster, stopped again at the end).

    ``n_workers=None``: one per ``trial.threads`` CPUs of the cluster. Returns the trials each task ran.
    """
    import optuna

    ray = _import_ray()
    if n_workers is not None and (isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1):
        raise SpecError(f"--workers must be an integer >= 1, got {n_workers!r}")
    started = False
    if not ray.is_initialized():
        ray.init(
            address=address or None,
            include_dashboard=False,
            log_to_driver=True,
            logging_level="WARNING",
            configure_logging=True,
        )
        started = True
    try:
        threads = cfg.spec.trial.threads
        if n_workers is None:
            n_workers = max(1, int(ray.cluster_resources().get("CPU", 1)) // threads)
        task = ray.remote(num_cpus=threads, max_calls=1)(_task)
        feed = TrialFeed(study, callbacks)
        pending = [task.remote(cfg, optuna.logging.get_verbosity()) for _ in range(n_workers)]
        refs = list(pending)
        while pending:
            _, pending = ray.wait(pending, num_returns=len(pending), timeout=poll_s)
            feed.poll()
        return [int(n) for n in ray.get(refs)]
    finally:
        if started:
            ray.shutdown()
