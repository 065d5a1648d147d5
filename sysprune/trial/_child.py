"""The trial process's side of the step protocol: build the model, then train and report one step at a time."""

from __future__ import annotations

import faulthandler
import os
import resource
import sys
import traceback
from typing import Any

from sysprune._plugins import import_plugins
from sysprune.datasets import open_prepared
from sysprune.metrics._measure import probe_trainer
from sysprune.metrics._monitor import process_cpu_s, read_status_mb, reset_peak_rss
from sysprune.metrics._registry import PRETRAIN_STEP
from sysprune.models import get_model
from sysprune.trial._forkserver import THREAD_POOL_VARS, TRIAL_THREADS_ENV
from sysprune.trial._job import TrialJob
from sysprune.trial._lifetime import become_tree_root, end_descendants


def _pin_threads(n: int, *, native_pools: bool = True) -> None:
    """torch's intra-op threads (cheap) and, with ``native_pools``, every BLAS/OpenMP pool via threadpoolctl
    (~20 ms: it scans the loaded libraries; the child defers it until a configuration passed step -1) — unless the
    fork server loaded them at ``n`` threads already (``_forkserver.TRIAL_THREADS_ENV``)."""
    sized = os.environ.get(TRIAL_THREADS_ENV) == str(n)  # set in the fork server's environment, which this inherits
    for var in THREAD_POOL_VARS:
        os.environ[var] = str(n)  # torch imported later (a plugin's model) reads OMP_NUM_THREADS
    torch = sys.modules.get("torch")  # never imported here: a study whose model does not use it does without
    if torch is not None:
        torch.set_num_threads(n)
    if native_pools and not sized:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)


def warm_linecache() -> None:
    """Read into ``linecache`` the sources a trial process's stack shows when it seeds torch (fork server only).

    Without CUDA, ``torch.manual_seed`` queues a lazy CUDA seeding together with ``traceback.format_stack()``, which
    reads the source of every frame on the stack: ~20 ms of each trial process's start unless the fork server has
    those files cached already (a forked child inherits the cache; it then only ``stat``s the files).
    """
    import linecache

    prefixes = (
        "torch.random",
        "torch._compile",
        "torch._dynamo.eval_frame",
        "torch.cuda",
        "multiprocessing",
        "sysprune",
    )
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if path and path.endswith(".py") and any(name == p or name.startswith(p + ".") for p in prefixes):
            linecache.getlines(path)


def _pin_cpus(cpus: tuple[int, ...]) -> None:
    try:
        os.sched_setaffinity(0, cpus)
    except OSError as e:
        raise ValueError(
            f"cannot pin the trial process to cpus={cpus!r}: {e.strerror}; this machine has CPUs "
            f"{sorted(os.sched_getaffinity(0))}"
        ) from None


def _probe_batch(data: Any, size: int) -> Any:
    import numpy as np

    X = data.X_val if len(data.X_val) else data.X_train
    reps = -(-size // len(X))
    return np.ascontiguousarray(np.concatenate([X] * reps)[:size] if reps > 1 else X[:size])


def _waited_peak_mb() -> float:
    """The largest peak RSS of a descendant this process waited for (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0


def _totals() -> tuple[float, float, float]:
    """(CPU seconds of this process and every descendant it waited for, its own peak RSS, the waited peak)."""
    return process_cpu_s(), read_status_mb(os.getpid())[1], _waited_peak_mb()


def _child_main(conn: Any, job: TrialJob) -> None:
    become_tree_root()  # first: whatever the trial starts is in its process group, and orphans come back to it
    faulthandler.enable()  # a crash in native code prints where it happened to the captured stderr
    try:
        reset_peak_rss()
        baseline = read_status_mb(os.getpid())[0]
        conn.send(("ready", baseline))
        if job.cpus is not None:
            _pin_cpus(job.cpus)  # before the thread pools start, so their threads inherit the CPU set
        _pin_threads(job.threads, native_pools=False)  # torch's own pool now: the step -1 probe runs torch

        import_plugins(job.plugins)
        data = open_prepared(job.dataset_path)
        trainer = get_model(job.model).create(dict(job.params), data, seed=job.seed)
        batch = _probe_batch(data, job.infer_batch_size)
        every = job.probe_every if job.probe_every is not None else int(getattr(trainer, "probe_every", 0) or 0)
        step = PRETRAIN_STEP
        pinned = False
        learned: dict[str, Any] = {}
        while True:
            gpu_mb = trainer.gpu_mem_mb()
            conn.send(("step", step, learned, gpu_mb, every, _waited_peak_mb(), process_cpu_s()))
            msg = conn.recv()
            if msg[0] == "probe":
                # A freshly forked process runs its first forward passes slower (first-touch page faults, cold
                # allocator): the pre-training probe warms up for a whole extra round, the later ones for one call
                # (none at all, measured: the last step's reading strayed up to 11 % from an every-step median).
                warmup = job.infer_repeats if step == PRETRAIN_STEP else 1
                structural = probe_trainer(trainer, batch, job.infer_repeats, warmup=warmup)
                conn.send(("probe", structural, process_cpu_s()))
                msg = conn.recv()
            if msg[0] == "dry_run":  # step -1: the first batches of step 0 now, timed (see Trainer.dry_run)
                _pin_threads(job.threads)
                pinned = True
                dry = trainer.dry_run(int(msg[1]))
                conn.send(("dry_run", dry, process_cpu_s()))
                msg = conn.recv()
            step += 1
            if msg[0] == "stop" or step >= job.steps:
                break
            if step == 0 and not pinned:  # the configuration passed the pre-training decision: the native pools too
                _pin_threads(job.threads)
            learned = dict(trainer.train_step(step))
            learned.update(trainer.evaluate())
        end_descendants()  # what the trial started ends with it, and its CPU time is in the totals
        conn.send(("done", *_totals()))
    except BaseException as e:  # report everything, including MemoryError and KeyboardInterrupt
        try:
            end_descendants()
            conn.send(("error", f"{type(e).__name__}: {e}", traceback.format_exc(), *_totals()))
        except Exception:
            pass
    finally:
        conn.close()
