"""Running one trial's training in its own process, one step at a time, measured from outside.

Why a process per trial: peak memory, CPU time and energy must belong to the trial alone (a worker that trained
ten models has the peak of the largest). Why a fork server: ``import torch`` costs seconds and ~600 MB; the fork
server imports the stack once and forks each trial process from that image in milliseconds.

The protocol (parent = Optuna worker, child = trial process)::

    child  → ("ready", baseline_rss_mb)                 after resetting its peak-RSS counter
    child  → ("step", -1, {}, gpu_mem_mb, probe_every)  model built, nothing trained: the pre-training probe
    child  → ("step", step, {train_loss, val_accuracy, val_loss, ...}, gpu_mem_mb, probe_every)   trained + validated
    parent    samples the child (wall, cpu, rss, peak, energy) — the child is idle, waiting — and checks the caps
    parent → ("probe",)                                 at step -1, the last step (and every ``probe_every``;
                                                        after step 0 when the pruner asked for a second reading)
    child  → ("probe", {n_params, model_bytes, infer_ms, infer_ms_lo, infer_ms_hi, model_mem_mb})
    parent    samples cpu/wall again: the probe's cost is subtracted from the trial's wall_s and cpu_s
    parent → ("continue",) or ("stop",)                 step -1: after asking the pruner; later steps: at once
    child  → ("done", cpu_s, peak_rss_mb) | ("error", message, traceback)    the process's own totals

Structural metrics (size, latency, model memory: :mod:`sysprune.metrics._measure`) do not change while a built-in model
trains, so they are measured at the pre-training probe and at the last step only — after the first step too when
the pruner asks for a second reading (see :func:`probes_at`); a model whose structure changes
(pruning, growing) says how often to measure it with a ``probe_every = k`` attribute on its Trainer (every k-th
step), and ``TrialJob.probe_every`` overrides both. None of the built-in models needs it.

``total_cpu_s``/``total_wall_s`` are everything the trial process used, probes, set-up and a step cut short by a
prune included (the child's own total when it finishes, a last sample when it is killed): the compute a search
really spent, where the per-step ``cpu_s`` is the training's own.

Hard caps: ``max_rss_mb`` caps the trial process's *peak* RSS (VmHWM, so a spike between two samples counts) and
``max_wall_s`` its total wall time (set-up and probes included). Both are checked on every sample the parent takes —
each step, each ``poll_s`` while it waits — and once more on the child's own totals when it finishes; a breach kills
the child and surfaces as :class:`CapExceeded` (the runner prunes the trial: it is never COMPLETE).

A trial process that dies on its own (a signal such as SIGSEGV, the OOM killer's SIGKILL, an exit during start-up
such as an import error) surfaces as :class:`TrialProcessError` naming the cause and quoting the last lines the
child wrote to stderr: the fork server and every trial process write their stderr to one capture file per worker
(an unlinked temporary file, so nothing is left behind), which the parent reads from where the trial began.

No process outlives its worker: the fork server and each trial process ask the kernel for SIGKILL when their parent
dies (``PR_SET_PDEATHSIG``, :func:`die_with_parent`), so a ``kill -9`` of the worker takes the fork server, the
trial process and then multiprocessing's resource tracker (which exits once nobody holds its pipe) with it.
"""

from __future__ import annotations

import faulthandler
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sysprune.metrics._measure import probe_trainer
from sysprune.metrics._monitor import ProcessMonitor, read_status_mb, reset_peak_rss
from sysprune.exceptions import CapExceeded, TrialProcessError  # defined with every user-catchable error

PRELOAD = ["sysprune.trial._preload"]


@dataclass(frozen=True)
class TrialJob:
    """Everything a trial process needs; picklable, small.

    ``cpus``: the CPU set the trial process pins itself to (``os.sched_setaffinity``) before it pins its thread
    pools; None keeps the worker's. ``probe_every``: measure the structural metrics every k-th step as well
    (None: what the model's Trainer declares, 0 for the built-ins: steps -1, 0 and the last only).
    """

    model: str
    params: dict[str, Any]
    dataset_path: str
    seed: int
    steps: int
    threads: int = 1
    infer_batch_size: int = 256
    infer_repeats: int = 5
    cpus: tuple[int, ...] | None = None
    probe_every: int | None = None
    plugins: tuple[str, ...] = ()  # modules imported before the model is built (user registrations)

    def __post_init__(self) -> None:
        if self.cpus is not None:
            cpus = self.cpus
            if (not isinstance(cpus, tuple) or not cpus
                    or any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in cpus)):  # fmt: skip
                raise ValueError(f"cpus must be None or a non-empty tuple of CPU numbers >= 0, but got {cpus!r}.")
        k = self.probe_every
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 0):
            raise ValueError(f"probe_every must be None or an integer >= 0, but got probe_every={k!r}.")


def probes_at(step: int, steps: int, every: int, *, confirm: bool = False) -> bool:
    """Whether the structural metrics are measured after ``step`` (-1: the pre-training probe) of ``steps``: at -1,
    at the last step, every ``every``-th step when the model's structure changes, and after the first training
    step (0) only when ``confirm``: the pruner asked for a second reading (a noisy metric's step -1 reading over
    its budget but not clearly, which needs a second one before it prunes; the ``threshold`` policy, whose first
    reading must come from a training step). A reading nobody waits for is not worth its cost: see
    :meth:`TrialProcess.decide`."""
    return step == -1 or step == steps - 1 or (confirm and step == 0) or (every > 0 and (step + 1) % every == 0)


# ---------------------------------------------------------------------------------------------------- lifetimes

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_LIBC: Any = None
_FORKER = 0  # the pid of the process that is forking (set just before each fork)


def _set_pdeathsig(sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux). False where unsupported."""
    global _LIBC
    if not sys.platform.startswith("linux"):
        return False
    try:
        if _LIBC is None:
            import ctypes

            _LIBC = ctypes.CDLL(None, use_errno=True)
        return _LIBC.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _note_forker() -> None:
    global _FORKER
    _FORKER = os.getpid()


def _child_dies_with_parent() -> None:
    # PR_SET_PDEATHSIG is cleared in a forked child: set it again, then make sure the parent did not die before.
    if _set_pdeathsig() and os.getppid() != _FORKER:
        os._exit(1)


def die_with_parent() -> None:
    """This process, and every process it forks from now on, is killed (SIGKILL) when its parent dies.

    Called once by the fork server (``sysprune.trial._preload``): the fork server dies with its worker, each trial
    process with the fork server. The parent's liveness is checked right after the request, so a parent that died
    just before cannot leave an orphan. Linux only (a no-op elsewhere). The kernel's "parent" is the *thread* that
    started the process: the fork server is started from the thread that starts the first trial process or calls
    :func:`warm_up` (the runner's main thread), and it dies if that thread ends.
    """
    parent = os.getppid()
    if not _set_pdeathsig():
        return
    if os.getppid() != parent:
        os._exit(1)
    os.register_at_fork(before=_note_forker, after_in_child=_child_dies_with_parent)


# ----------------------------------------------------------------------------------------------------- child side


def _pin_threads(n: int, *, native_pools: bool = True) -> None:
    """torch's intra-op threads (cheap) and, with ``native_pools``, every BLAS/OpenMP pool via threadpoolctl
    (~20 ms: it scans the loaded libraries; the child defers it until a configuration passed step -1)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    if native_pools:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)


def warm_linecache() -> None:
    """Read into ``linecache`` the sources a trial process's stack shows when it seeds torch (fork server only).

    Without CUDA, ``torch.manual_seed`` queues a lazy CUDA seeding together with ``traceback.format_stack()``, which
    reads the source of every frame on the stack: ~20 ms of each trial process's start unless the fork server has
    those files cached already (a forked child inherits the cache; it then only ``stat``s the files).
    """
    import linecache

    prefixes = ("torch.random", "torch._compile", "torch._dynamo.eval_frame", "torch.cuda", "multiprocessing",
                "sysprune")  # fmt: skip
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if path and path.endswith(".py") and any(name == p or name.startswith(p + ".") for p in prefixes):
            linecache.getlines(path)


def _pin_cpus(cpus: tuple[int, ...]) -> None:
    try:
        os.sched_setaffinity(0, cpus)
    except OSError as e:
        raise ValueError(f"cannot pin the trial process to cpus={cpus!r}: {e.strerror}; this machine has CPUs "
                         f"{sorted(os.sched_getaffinity(0))}") from None  # fmt: skip


def _probe_batch(data: Any, size: int) -> Any:
    import numpy as np

    X = data.X_val if len(data.X_val) else data.X_train
    reps = -(-size // len(X))
    return np.ascontiguousarray(np.concatenate([X] * reps)[:size] if reps > 1 else X[:size])


def _child_main(conn: Any, job: TrialJob) -> None:
    faulthandler.enable()  # a crash in native code prints where it happened to the captured stderr
    try:
        reset_peak_rss()
        baseline = read_status_mb(os.getpid())[0]
        conn.send(("ready", baseline))
        if job.cpus is not None:
            _pin_cpus(job.cpus)  # before the thread pools start, so their threads inherit the CPU set
        _pin_threads(job.threads, native_pools=False)  # torch's own pool now: the step -1 probe runs torch
        from sysprune.datasets._core import open_prepared
        from sysprune._plugins import import_plugins
        from sysprune.models import get_model

        import_plugins(job.plugins)
        data = open_prepared(job.dataset_path)
        trainer = get_model(job.model).create(dict(job.params), data, seed=job.seed)
        batch = _probe_batch(data, job.infer_batch_size)
        every = job.probe_every if job.probe_every is not None else int(getattr(trainer, "probe_every", 0) or 0)
        step = -1
        learned: dict[str, Any] = {}
        while True:
            conn.send(("step", step, learned, trainer.gpu_mem_mb(), every))
            msg = conn.recv()
            if msg[0] == "probe":
                # A freshly forked process runs its first forward passes slower (first-touch page faults, cold
                # allocator): the pre-training probe warms up for a whole extra round, the later ones for one call
                # (none at all, measured: the last step's reading strayed up to 11 % from an every-step median).
                warmup = job.infer_repeats if step == -1 else 1
                conn.send(("probe", probe_trainer(trainer, batch, job.infer_repeats, warmup=warmup)))
                msg = conn.recv()
            step += 1
            if msg[0] == "stop" or step >= job.steps:
                break
            if step == 0:  # the configuration passed the pre-training decision: pin the native pools too
                _pin_threads(job.threads)
            learned = dict(trainer.train_step(step))
            learned.update(trainer.evaluate())
        t = os.times()
        conn.send(("done", t.user + t.system, read_status_mb(os.getpid())[1]))
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


class _StderrCapture:
    """Where the fork server and its trial processes write stderr: one unlinked temporary file per worker.

    The file is opened with O_APPEND and handed to the fork server as its fd 2 when it starts (every trial process
    inherits it); the parent keeps its own descriptor to read it, and empties it when no trial process of this
    worker is running, so it never grows beyond what the trials of the moment wrote.
    """

    def __init__(self) -> None:
        import tempfile

        fd, path = tempfile.mkstemp(prefix="sysprune-trial-stderr-")
        os.close(fd)
        self.fd = os.open(path, os.O_RDWR | os.O_APPEND)
        os.unlink(path)
        self._lock = threading.Lock()
        self._live = 0

    def begin(self) -> int:
        """A trial process starts: the offset its stderr will begin at."""
        with self._lock:
            if self._live == 0:
                os.ftruncate(self.fd, 0)
            self._live += 1
            return os.fstat(self.fd).st_size

    def end(self) -> None:
        with self._lock:
            self._live = max(0, self._live - 1)

    @property
    def live(self) -> int:
        """Trial processes of this worker between :meth:`begin` and :meth:`end`."""
        return self._live

    def is_stderr_of(self, pid: int) -> bool:
        """Whether process ``pid`` writes its stderr to this file."""
        try:
            theirs = os.stat(f"/proc/{pid}/fd/2")
        except OSError:
            return False
        ours = os.fstat(self.fd)
        return (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino)

    def tail(self, offset: int, *, lines: int = 6, max_bytes: int = 32768) -> list[str]:
        """The last lines written since ``offset``, condensed by :func:`condense_stderr`."""
        size = os.fstat(self.fd).st_size
        start = max(offset, size - max_bytes)
        text = os.pread(self.fd, max(0, size - start), start).decode("utf-8", "replace")
        return condense_stderr(text.splitlines())[-lines:]


def condense_stderr(lines: list[str], *, width: int = 200) -> list[str]:
    """Stderr lines worth quoting: blank lines and faulthandler's list of extension modules dropped, a
    faulthandler stack ("most recent call first") cut to its first frame, each line cut to ``width``."""
    out: list[str] = []
    frames = "no"  # "no" | "first" (keep the next frame) | "rest" (drop frames)
    for line in lines:
        text = line.rstrip()
        if not text.strip() or text.startswith("Extension modules:"):
            continue
        is_frame = text.lstrip().startswith("File ")
        if "(most recent call first)" in text:
            frames = "first"
        elif is_frame and frames == "first":
            frames = "rest"
        elif is_frame and frames == "rest":
            continue
        else:
            frames = "no"
        out.append(text if len(text) <= width else text[: width - 3] + "...")
    return out


_CAPTURE: _StderrCapture | None = None


def _capture() -> _StderrCapture:
    global _CAPTURE
    if _CAPTURE is None:
        _CAPTURE = _StderrCapture()
    return _CAPTURE


def _ensure_server() -> None:
    """Start the fork server if it is not running, with the stderr capture file as its fd 2.

    multiprocessing starts the server with this process's fd 2, so fd 2 points at the capture file for the
    moment that takes (nothing is swapped while the server runs). A server started elsewhere in this process
    without the capture file is replaced when no trial process of this worker uses it. The resource tracker is
    started first, with the real stderr (its warnings are the worker's business).
    """
    from multiprocessing import forkserver, resource_tracker

    from sysprune._compat import forkserver_pid

    context()
    cap = _capture()
    pid = forkserver_pid()
    if pid is not None and _running(pid):
        if cap.is_stderr_of(pid) or cap.live > 1:
            return  # capturing already (or in use by another trial process of this worker: left alone)
        # Started elsewhere, without the capture file (a test, a user's own forkserver process): restart it.
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5.0
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.005)
    resource_tracker.ensure_running()
    saved = os.dup(2)
    try:
        os.dup2(cap.fd, 2)
        forkserver.ensure_running()
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _running(pid: int) -> bool:
    """Whether ``pid`` is alive and not a zombie (without reaping it: multiprocessing does that)."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _start(target: Any, *args: Any) -> _Handle:
    _ensure_server()
    p = _Handle(target=target, args=args, daemon=True)
    p.start()
    return p


def warm_up() -> float:
    """Start the fork server now (seconds it took), so the first trial's start is not charged for it.

    Raises:
        TrialProcessError: the fork server could not start a process (the message quotes its stderr).
    """
    t = time.perf_counter()
    cap = _capture()
    at = cap.begin()
    try:
        _start(_noop).join()
    except (OSError, EOFError) as e:
        raise TrialProcessError(_server_failed(e, cap.tail(at))) from None
    finally:
        cap.end()
    return time.perf_counter() - t


def _server_failed(e: BaseException, stderr_lines: list[str]) -> str:
    return f"the fork server could not start the trial process ({type(e).__name__}: {e})" + (
        "; last stderr: " + " | ".join(stderr_lines) if stderr_lines else ""
    )


def _noop() -> None:
    pass


@dataclass
class StepResult:
    """One step as the parent stores it: every metric of the vocabulary measured for this step.

    Step -1 is the pre-training probe (the model built, nothing trained): set-up cost, memory and the structural
    metrics. The structural metrics appear only at the steps where they are measured (:func:`probes_at`).
    """

    step: int
    metrics: dict[str, float | None]


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


_SIGNAL_HINTS: dict[int, str] = {
    signal.SIGKILL: "killed: out of memory? (the kernel's OOM killer sends SIGKILL)",
    signal.SIGSEGV: "a crash in native code",
    signal.SIGBUS: "a crash in native code",
    signal.SIGABRT: "aborted by native code",
    signal.SIGFPE: "a crash in native code",
}


def death_message(exitcode: int | None, where: str, stderr_lines: list[str]) -> str:
    """One line: how a trial process ended on its own, where, and the last lines it wrote to stderr."""
    if exitcode is not None and exitcode < 0:
        name = _signal_name(-exitcode)
        hint = _SIGNAL_HINTS.get(-exitcode)
        cause = f"was killed by {name}" + (f" ({hint})" if hint else "")
    elif exitcode is None:
        cause = "stopped answering"
    else:
        cause = f"exited with code {exitcode}"
    msg = f"trial process {cause} {where}"
    if stderr_lines:
        msg += "; last stderr: " + " | ".join(stderr_lines)
    else:
        msg += "; it wrote nothing to stderr"
    return msg


class TrialProcess:
    """A running trial process. Iterate :meth:`steps`; call :meth:`decide` after each step; always :meth:`close`.

    ``with TrialProcess(job) as tp: for r in tp.steps(): ...; tp.decide(stop=...)``. The first result is step -1,
    the pre-training probe.
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
        self._step: int | None = None  # the last step reported (None: not ready yet)
        self._probing: int | None = None  # the step whose structural metrics are being measured now
        self._every = 0
        self._confirm = False  # measure the structural metrics after the next step too (decide(probe_next=True))
        self._probe_cpu = 0.0
        self._probe_wall = 0.0
        self._decided = True
        self.finished = False
        self.last_sample_s = self.last_probe_s = 0.0  # the parent's own cost in the last step (benchmarks)
        self.total_cpu_s: float | None = None
        self.total_wall_s: float | None = None
        self.peak_rss_mb: float | None = None
        self._capture = _capture()
        self._stderr_at = self._capture.begin()
        self._ended = False
        self._conn, child_conn = context().Pipe()
        self.t0 = time.perf_counter()
        try:
            self._proc = _start(_child_main, child_conn, job)
        except (OSError, EOFError) as e:  # the fork server died (or never started): say why, from its stderr
            self._end_capture()
            raise TrialProcessError(_server_failed(e, self._capture.tail(self._stderr_at))) from None
        except BaseException:
            self._end_capture()
            raise
        child_conn.close()
        self._pid = int(self._proc.pid)  # type: ignore[arg-type]  # set once the process started
        try:
            msg = self._recv()
        except BaseException:
            self.kill()
            raise
        self.ready_s = time.perf_counter() - self.t0
        self.baseline_rss_mb = float(msg[1])
        self._step = -2
        self.monitor = ProcessMonitor(self._pid, self.t0, energy=energy)
        self._check_caps()  # a child quicker than the first poll is checked all the same

    # -- caps -----------------------------------------------------------------------------------------------------

    def _at(self) -> int:
        """The step the child is in now (-1: building and probing the model; a probe belongs to its step)."""
        if self._probing is not None:
            return self._probing
        return -1 if self._step is None else self._step + 1

    def _breach(self, wall_s: float | None, peak_mb: float | None, step: int) -> None:
        """Kill the child and raise CapExceeded if ``wall_s`` or ``peak_mb`` passed its cap."""
        if self.max_wall_s is not None and wall_s is not None and wall_s > self.max_wall_s:
            self.kill()
            raise CapExceeded("wall_s", wall_s, self.max_wall_s, step)
        if self.max_rss_mb is not None and peak_mb is not None and peak_mb > self.max_rss_mb:
            self.kill()
            raise CapExceeded("peak_rss_mb", peak_mb, self.max_rss_mb, step)

    def _check_caps(self) -> None:
        """While waiting: the wall time so far and the child's peak RSS (VmHWM) now."""
        if self.max_wall_s is None and self.max_rss_mb is None:
            return
        peak = None
        if self.max_rss_mb is not None:
            try:
                peak = read_status_mb(self._pid)[1]
            except OSError:  # gone: _recv reports how it ended
                peak = None
        self._breach(time.perf_counter() - self.t0, peak, self._at())

    # -- messages -------------------------------------------------------------------------------------------------

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
        raise TrialProcessError(self._death())

    def _death(self) -> str:
        at = self._at()
        if self._step is None:
            where = "while starting (before it could run any sysprune code)"
        elif self._probing is not None:
            where = f"while measuring the model (latency probe, size) at step {at}"
        elif at == -1:
            where = "while building the model (step -1)"
        else:
            where = f"during step {at}"
        return death_message(self._proc.exitcode, where, self._capture.tail(self._stderr_at))

    def steps(self) -> Iterator[StepResult]:
        """Yield one fully measured :class:`StepResult` per step: -1 (pre-training probe), then 0 .. steps-1."""
        while True:
            if not self._decided:
                raise RuntimeError("call decide() after each step before asking for the next one")
            msg = self._recv()
            if msg[0] == "done":
                self.finished = True
                self.total_cpu_s = float(msg[1])
                self.total_wall_s = time.perf_counter() - self.t0
                self.peak_rss_mb = float(msg[2])
                # The end of the trial: its whole wall time and its peak, wherever it fell.
                self._breach(self.total_wall_s, self.peak_rss_mb, self._step if self._step is not None else -1)
                return
            _, step, learned, gpu_mem_mb, self._every = msg
            self._step = step
            now = time.perf_counter()
            s = self.monitor.sample(now)
            self.last_sample_s = time.perf_counter() - now
            self._breach(s.wall_s, s.peak_rss_mb, step)  # every sample: a fast step cannot slip past a cap
            # The sample excludes the probes of earlier steps; this step's probe runs after the sample.
            metrics: dict[str, float | None] = {
                "val_accuracy": learned.get("val_accuracy"),
                "val_loss": learned.get("val_loss"),
                "train_loss": learned.get("train_loss"),
                "wall_s": s.wall_s - self._probe_wall,
                "cpu_s": s.cpu_s - self._probe_cpu,
                "energy_j": s.energy_j,
                "rss_mb": s.rss_mb,
                "peak_rss_mb": s.peak_rss_mb,
                "peak_rss_delta_mb": s.peak_rss_mb - self.baseline_rss_mb,
                "gpu_mem_mb": gpu_mem_mb,
            }
            if step == -1:  # nothing learned yet: no learning metrics in the pre-training row
                for name in ("val_accuracy", "val_loss", "train_loss"):
                    del metrics[name]
            self.last_probe_s = 0.0
            confirm, self._confirm = self._confirm, False
            if probes_at(step, self.job.steps, self._every, confirm=confirm):
                self._conn.send(("probe",))
                self._probing = step
                _, structural = self._recv()
                self._probing = None
                self.last_probe_s = time.perf_counter() - now - self.last_sample_s
                self._probe_wall += time.perf_counter() - now
                self._probe_cpu += self.monitor.cpu_s() - s.cpu_s
                metrics.update(structural)
            for k, v in learned.items():  # a trainer's own extra learning metrics are kept too
                metrics.setdefault(k, v)
            self._decided = False
            yield StepResult(step, metrics)

    def decide(self, *, stop: bool, probe_next: bool = False) -> None:
        """Tell the child to go on with the next step (after step -1: to start training) or to stop.

        ``probe_next``: measure the structural metrics after the next step as well, where :func:`probes_at` would
        not (the runner asks for it at step -1 when the pruner wants a second reading of them).
        """
        self._conn.send(("stop",) if stop else ("continue",))
        self._confirm = bool(probe_next) and not stop
        self._decided = True

    def kill(self) -> None:
        if self._proc.is_alive() and not self.finished:
            try:
                self.total_cpu_s = self.monitor.cpu_s()
                self.total_wall_s = time.perf_counter() - self.t0
            except Exception:  # not started far enough to have a monitor, or already gone
                pass
        if self._proc.is_alive():
            self._proc.kill()
        self._proc.join(5.0)
        self._end_capture()

    def _end_capture(self) -> None:
        if not self._ended:
            self._ended = True
            self._capture.end()

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
