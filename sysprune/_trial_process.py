"""Running one trial's training in its own process, one step at a time, measured from outside.

Why a process per trial: peak memory, CPU time and energy must belong to the trial alone (a worker that trained
ten models has the peak of the largest). Why a fork server: ``import torch`` costs seconds and ~600 MB; the fork
server imports the stack once and forks each trial process from that image in milliseconds.

The protocol (parent = Optuna worker, child = trial process), one round per step::

    child  → ("ready", baseline_rss_mb)                 after resetting its peak-RSS counter
    child  → ("step", step, {train_loss, val_accuracy, val_loss})          training + validation done
    parent    samples the child (wall, cpu, rss, peak, energy) — the child is idle, waiting
    parent → ("probe",)
    child  → ("probe", {infer_ms, n_params, model_bytes, gpu_mem_mb})      latency probe + size
    parent    samples cpu/wall again: the probe's cost is subtracted from the trial's wall_s and cpu_s
    parent → ("continue",) or ("stop",)                 after storing the row and asking the pruner
    child  → ("done", cpu_s) | ("error", message, traceback)       cpu_s: the process's own total

``total_cpu_s``/``total_wall_s`` are everything the trial process used, probes, set-up and a step cut short by a
prune included (the child's own total when it finishes, a last sample when it is killed): the compute a search
really spent, where the per-step ``cpu_s`` is the training's own.

Hard caps (``max_rss_mb``, ``max_wall_s``) are checked every ``poll_s`` while the parent waits; a breach kills the
child and surfaces as :class:`CapExceeded`.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sysprune._monitor import ProcessMonitor, read_status_mb, reset_peak_rss

PRELOAD = ["sysprune._preload"]


from sysprune.exceptions import CapExceeded, TrialProcessError  # defined with every user-catchable error


@dataclass(frozen=True)
class TrialJob:
    """Everything a trial process needs; picklable, small."""

    model: str
    params: dict[str, Any]
    dataset_path: str
    seed: int
    steps: int
    threads: int = 1
    infer_batch_size: int = 256
    infer_repeats: int = 5
    plugins: tuple[str, ...] = ()  # modules imported before the model is built (user registrations)


# ----------------------------------------------------------------------------------------------------- child side


def _pin_threads(n: int) -> None:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    from threadpoolctl import threadpool_limits

    threadpool_limits(n)


def probe_latency_ms(trainer: Any, X: Any, repeats: int) -> float:
    """Per-sample inference latency in ms: median over ``repeats`` timed calls on one batch, after one warm-up."""
    import statistics

    trainer.infer(X)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        trainer.infer(X)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3 / len(X)


def _probe_batch(data: Any, size: int) -> Any:
    import numpy as np

    X = data.X_val if len(data.X_val) else data.X_train
    reps = -(-size // len(X))
    return np.ascontiguousarray(np.concatenate([X] * reps)[:size] if reps > 1 else X[:size])


def _child_main(conn: Any, job: TrialJob) -> None:
    try:
        reset_peak_rss()
        baseline = read_status_mb(os.getpid())[0]
        conn.send(("ready", baseline))
        _pin_threads(job.threads)
        from sysprune._data import open_prepared
        from sysprune._plugins import import_plugins
        from sysprune.models import get_model

        import_plugins(job.plugins)
        data = open_prepared(job.dataset_path)
        trainer = get_model(job.model).create(dict(job.params), data, seed=job.seed)
        batch = _probe_batch(data, job.infer_batch_size)
        for step in range(job.steps):
            learned = dict(trainer.train_step(step))
            learned.update(trainer.evaluate())
            conn.send(("step", step, learned))
            msg = conn.recv()
            if msg[0] == "probe":
                system = dict(trainer.size())
                system["infer_ms"] = probe_latency_ms(trainer, batch, job.infer_repeats)
                system["gpu_mem_mb"] = trainer.gpu_mem_mb()
                conn.send(("probe", system))
                msg = conn.recv()
            if msg[0] == "stop":
                break
        t = os.times()
        conn.send(("done", t.user + t.system))
    except BaseException as e:  # report everything, including MemoryError and KeyboardInterrupt
        try:
            conn.send(("error", f"{type(e).__name__}: {e}", traceback.format_exc()))
        except Exception:
            pass
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------------- parent side

_CTX: Any = None


from sysprune._compat import popen_class as _popen_class  # noqa: E402 - the CPython copy lives in _compat


_POPEN: Any = None


class _Handle(mp.context.ForkServerProcess):
    """A fork-server process started through :func:`_popen_class` (picklable: defined at module level)."""

    @staticmethod
    def _Popen(process_obj: Any) -> Any:
        global _POPEN
        if _POPEN is None:
            _POPEN = _popen_class()
        return _POPEN(process_obj)


def context() -> Any:
    """The fork-server multiprocessing context (started lazily; the server imports torch + scikit-learn once)."""
    global _CTX
    if _CTX is None:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        _CTX = ctx
    return _CTX


def _start(target: Any, *args: Any) -> _Handle:
    context()
    p = _Handle(target=target, args=args, daemon=True)
    p.start()
    return p


def warm_up() -> float:
    """Start the fork server now (seconds it took), so the first trial's start is not charged for it."""
    t = time.perf_counter()
    _start(_noop).join()
    return time.perf_counter() - t


def _noop() -> None:
    pass


@dataclass
class StepResult:
    """One step as the parent stores it: every metric of the vocabulary measured for this step."""

    step: int
    metrics: dict[str, float | None]


class TrialProcess:
    """A running trial process. Iterate :meth:`steps`; call :meth:`decide` after each step; always :meth:`close`.

    ``with TrialProcess(job) as tp: for r in tp.steps(): ...; tp.decide(stop=...)``
    """

    def __init__(
        self,
        job: TrialJob,
        *,
        max_rss_mb: float | None = None,
        max_wall_s: float | None = None,
        poll_s: float = 0.05,
        energy: list | None = None,
    ) -> None:
        self.job = job
        self.max_rss_mb, self.max_wall_s, self.poll_s = max_rss_mb, max_wall_s, poll_s
        # All state first: the caps are checked (and the child may be killed) while waiting for "ready".
        self._step = -1
        self._probe_cpu = 0.0
        self._probe_wall = 0.0
        self._decided = True
        self.finished = False
        self.last_sample_s = self.last_probe_s = 0.0  # the parent's own cost in the last step (benchmarks)
        self.total_cpu_s: float | None = None
        self.total_wall_s: float | None = None
        self._conn, child_conn = context().Pipe()
        self.t0 = time.perf_counter()
        self._proc = _start(_child_main, child_conn, job)
        child_conn.close()
        msg = self._recv()
        self.ready_s = time.perf_counter() - self.t0
        self.baseline_rss_mb = float(msg[1])
        self.monitor = ProcessMonitor(self._proc.pid, self.t0, energy=energy)

    def _check_caps(self) -> None:
        if self.max_wall_s is not None:
            wall = time.perf_counter() - self.t0 - self._probe_wall
            if wall > self.max_wall_s:
                self.kill()
                raise CapExceeded("wall_s", wall, self.max_wall_s, self._step + 1)
        if self.max_rss_mb is not None:
            try:
                rss = read_status_mb(self._proc.pid)[0]
            except OSError:
                return
            if rss > self.max_rss_mb:
                self.kill()
                raise CapExceeded("rss_mb", rss, self.max_rss_mb, self._step + 1)

    def _recv(self) -> tuple:
        while True:
            if self._conn.poll(self.poll_s):
                try:
                    msg = self._conn.recv()
                except EOFError:
                    msg = None
                if msg is None:
                    break
                if msg[0] == "error":
                    self.kill()
                    raise TrialProcessError(msg[1])
                return msg
            if not self._proc.is_alive() and not self._conn.poll(0):
                break
            self._check_caps()
        self._proc.join(1.0)
        code = self._proc.exitcode
        hint = " (killed: out of memory?)" if code == -9 else ""
        raise TrialProcessError(f"trial process died with exit code {code}{hint} during step {self._step + 1}")

    def steps(self) -> Iterator[StepResult]:
        """Yield one fully measured :class:`StepResult` per training step."""
        while True:
            if not self._decided:
                raise RuntimeError("call decide() after each step before asking for the next one")
            msg = self._recv()
            if msg[0] == "done":
                self.finished = True
                self.total_cpu_s = float(msg[1])
                self.total_wall_s = time.perf_counter() - self.t0
                return
            _, step, learned = msg
            self._step = step
            now = time.perf_counter()
            s = self.monitor.sample(now)
            self.last_sample_s = time.perf_counter() - now
            # The sample excludes the probes of earlier steps; this step's probe runs after the sample.
            wall_s, cpu_s = s.wall_s - self._probe_wall, s.cpu_s - self._probe_cpu
            self._conn.send(("probe",))
            _, system = self._recv()
            self.last_probe_s = time.perf_counter() - now - self.last_sample_s
            self._probe_wall += time.perf_counter() - now
            self._probe_cpu += self.monitor.cpu_s() - s.cpu_s
            metrics: dict[str, float | None] = {
                "val_accuracy": learned.get("val_accuracy"),
                "val_loss": learned.get("val_loss"),
                "train_loss": learned.get("train_loss"),
                "wall_s": wall_s,
                "cpu_s": cpu_s,
                "energy_j": s.energy_j,
                "rss_mb": s.rss_mb,
                "peak_rss_mb": s.peak_rss_mb,
                "peak_rss_delta_mb": s.peak_rss_mb - self.baseline_rss_mb,
                "gpu_mem_mb": system.get("gpu_mem_mb"),
                "infer_ms": system.get("infer_ms"),
                "n_params": system.get("n_params"),
                "model_bytes": system.get("model_bytes"),
            }
            for k, v in learned.items():  # a trainer's own extra learning metrics are kept too
                metrics.setdefault(k, v)
            self._decided = False
            yield StepResult(step, metrics)

    def decide(self, *, stop: bool) -> None:
        """Tell the child to go on with the next step or to stop."""
        self._conn.send(("stop",) if stop else ("continue",))
        self._decided = True

    def kill(self) -> None:
        if self._proc.is_alive():
            try:
                self.total_cpu_s = self.monitor.cpu_s()
                self.total_wall_s = time.perf_counter() - self.t0
            except Exception:  # not started far enough to have a monitor, or already gone
                pass
            self._proc.kill()
        self._proc.join(5.0)

    def close(self) -> None:
        """Stop the child (if it still runs) and release the pipe. Safe to call twice."""
        if self._proc.is_alive():
            try:
                if not self._decided:
                    self._conn.send(("stop",))
                self._proc.join(2.0)
            except (OSError, ValueError):
                pass
        self.kill()
        self._conn.close()

    def __enter__(self) -> "TrialProcess":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
