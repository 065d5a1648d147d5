"""Running one trial's training in its own process, one step at a time, measured from outside.

Why a process per trial: peak memory, CPU time and energy must belong to the trial alone (a worker that trained
ten models has the peak of the largest). Why a fork server: ``import torch`` costs seconds and ~600 MB; the fork
server imports the stack once and forks each trial process from that image in milliseconds.

The protocol (parent = Optuna worker, child = trial process)::

    child  → ("ready", baseline_rss_mb)                 after resetting its peak-RSS counter
    child  → ("step", -1, {}, gpu_mem_mb, probe_every, waited_peak_mb, cpu_s)  model built, nothing trained: the
                                                        pre-training probe
    child  → ("step", step, {train_loss, val_accuracy, val_loss, ...}, gpu_mem_mb, probe_every, waited_peak_mb, cpu_s)
    parent    samples the child (wall, cpu, rss, peak, energy) — the child is idle, waiting — and checks the caps
    parent → ("probe",)                                 at step -1, the last step (and every ``probe_every``;
                                                        after step 0 when the pruner asked for a second reading)
    child  → ("probe", {n_params, model_bytes, infer_ms, infer_ms_lo, infer_ms_hi, model_mem_mb}, cpu_s)
    parent    the probe's wall and CPU are subtracted from the trial's wall_s and cpu_s
    parent → ("dry_run", k)                             step -1, when the pruner predicts time or memory: train the
                                                        first k mini-batches of step 0 now (Trainer.dry_run)
    child  → ("dry_run", DryRun | None, cpu_s)          parent samples memory again; the predictions join the row
    parent → ("continue",) or ("stop",)                 step -1: after asking the pruner; later steps: at once
    child  → ("done", cpu_s, peak_rss_mb, waited_peak_mb)                 its totals, descendants ended and reaped
           | ("error", message, traceback, cpu_s, peak_rss_mb, waited_peak_mb)

Structural metrics (size, latency, model memory: :mod:`sysprune.metrics._measure`) do not change while a built-in model
trains, so they are measured at the pre-training probe and at the last step only — after the first step too when
the pruner asks for a second reading (see :func:`probes_at`); a model whose structure changes
(pruning, growing) says how often to measure it with a ``probe_every = k`` attribute on its Trainer (every k-th
step), and ``TrialJob.probe_every`` overrides both. None of the built-in models needs it.

A trial is its process *tree*: whatever the trial process starts (a ``subprocess``, an ``os.fork``, a DataLoader's
workers) is measured with it — CPU, memory (:mod:`sysprune.metrics._monitor`) — and ends with it
(:mod:`sysprune.trial._lifetime`: a process group and a subreaper).

``total_cpu_s``/``total_wall_s`` are everything the trial's processes used, probes, set-up and a step cut short by a
prune included, however the trial ends: the child's own totals when it finishes or fails (sent after it ended and
reaped its descendants), a sample taken just before it is killed (a prune, a cap, an interrupt; its totals if it
had already sent them: a prune at the last step), or the last sample when it died on its own: the compute a search
really spent, where the per-step ``cpu_s`` is the training's own. They are None only for a process that never
reported ready.

Hard caps: ``max_rss_mb`` caps the trial's *peak* memory (the trial process's VmHWM, so a spike between two samples
counts, plus its descendants', see :mod:`sysprune.metrics._monitor`) and ``max_wall_s`` its total wall time (set-up
and probes included). Both are checked on every sample the parent takes — each step, each ``poll_s`` while it
waits (a wall cap also at its deadline) — and once more on the child's own totals when it finishes; a breach kills
the tree and surfaces as :class:`CapExceeded` (the runner prunes the trial: it is never COMPLETE). With no memory cap
and no live descendant to sample, the parent looks at the waiting child only every :data:`IDLE_POLL_S`.

A trial process that dies on its own (a signal such as SIGSEGV, the OOM killer's SIGKILL, an exit during start-up
such as an import error) surfaces as :class:`TrialProcessError` naming the cause and quoting the last lines the
child wrote to stderr: the fork server and every trial process write their stderr to one capture file per worker
(an unlinked temporary file, so nothing is left behind), which the parent reads from where the trial began.

No process outlives its worker: the fork server ends the trees of its trial processes when its worker dies, and
each trial process gets SIGKILL when the fork server dies (``PR_SET_PDEATHSIG``, :func:`die_with_parent`), so a
``kill -9`` of the worker takes the fork server, the trials' processes and then multiprocessing's resource tracker
(which exits once nobody holds its pipe) with it.

A Ctrl-C or SIGTERM in a study run is raised while the parent waits for the child (:func:`_wait`, a safe point of
:mod:`sysprune._signals`), never while it stores a step.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psutil

from sysprune._signals import interruptible
from sysprune.exceptions import CapExceeded, TrialProcessError
from sysprune.metrics._dryrun import predict
from sysprune.metrics._monitor import ProcessMonitor, read_status_mb
from sysprune.metrics._registry import PRETRAIN_STEP
from sysprune.trial._child import _child_main
from sysprune.trial._forkserver import _capture, _server_failed, _start, context
from sysprune.trial._job import TrialJob, probes_at
from sysprune.trial._lifetime import kill_tree


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


#: How often the parent looks at a trial process it waits for when nothing needs a closer look (no memory cap, no
#: live descendant): a step's wait cost the worker ~0.3 ms of CPU per ``poll_s`` look (2026-12-07), 6 ms per
#: second of training at 0.05 s — more than the worker's whole bookkeeping of a trial.
IDLE_POLL_S = 0.25


@interruptible
def _wait(conn: Any, timeout: float) -> bool:
    """Whether a message arrives within ``timeout``: where a Ctrl-C / SIGTERM stops a study run at once."""
    return bool(conn.poll(timeout))


class TrialProcess:
    """A running trial process. Iterate :meth:`steps`; call :meth:`decide` after each step; always :meth:`close`.

    ``with TrialProcess(job) as tp: for r in tp.steps(): ...; tp.decide(stop=...)``. The first result is step -1,
    the pre-training probe. ``start=False``: :meth:`start` it later (the caller then holds the object even when
    starting fails, and :meth:`close` still records what the process used).
    """

    def __init__(
        self,
        job: TrialJob,
        *,
        max_rss_mb: float | None = None,
        max_wall_s: float | None = None,
        poll_s: float = 0.05,
        energy: list | None = None,
        start: bool = True,
    ) -> None:
        self.job = job
        self._energy = energy
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
        self._proc: Any = None
        self._ps: psutil.Process | None = None  # the trial process, told apart from a later one with its pid
        self._pid = 0
        self.monitor: ProcessMonitor | None = None
        self.ready_s: float | None = None
        self.baseline_rss_mb = 0.0
        self._ended = True
        self._conn: Any = None
        self._has_descendants = False  # at the last poll: then they are sampled every poll_s
        self.t0 = time.perf_counter()
        if start:
            self.start()

    def start(self) -> "TrialProcess":
        """Fork the trial process and wait until it is ready (caps apply from the start)."""
        if self._conn is not None:
            raise RuntimeError("this TrialProcess was started already")
        self._capture = _capture()
        self._stderr_at = self._capture.begin()
        self._ended = False
        self._conn, child_conn = context().Pipe()
        self.t0 = time.perf_counter()
        try:
            self._proc = _start(_child_main, child_conn, self.job)
        except (OSError, EOFError) as e:  # the fork server died (or never started): say why, from its stderr
            self._end_capture()
            raise TrialProcessError(_server_failed(e, self._capture.tail(self._stderr_at))) from None
        except BaseException:
            self._end_capture()
            raise
        finally:
            child_conn.close()
        self._pid = int(self._proc.pid)  # set once the process started
        try:
            self._ps = psutil.Process(self._pid)
        except psutil.Error:  # gone already: _recv says how it ended
            self._ps = None
        try:
            msg = self._recv()
            self.ready_s = time.perf_counter() - self.t0
            self.baseline_rss_mb = float(msg[1])
            self._step = -2
            self.monitor = ProcessMonitor(self._pid, self.t0, energy=self._energy)
            self.monitor.sample(time.perf_counter())  # a first figure, should the process die before a step
        except psutil.Error:
            self.kill()
            raise TrialProcessError(self._death()) from None
        except BaseException:
            self.kill()
            raise
        self._check_caps()  # a child quicker than the first poll is checked all the same
        return self

    # -- caps -----------------------------------------------------------------------------------------------------

    def _at(self) -> int:
        """The step the child is in now (-1: building and probing the model; a probe belongs to its step)."""
        if self._probing is not None:
            return self._probing
        return PRETRAIN_STEP if self._step is None else self._step + 1

    def _breach(self, wall_s: float | None, peak_mb: float | None, step: int) -> None:
        """Kill the child and raise CapExceeded if ``wall_s`` or ``peak_mb`` passed its cap."""
        if self.max_wall_s is not None and wall_s is not None and wall_s > self.max_wall_s:
            self.kill()
            raise CapExceeded("wall_s", wall_s, self.max_wall_s, step)
        if self.max_rss_mb is not None and peak_mb is not None and peak_mb > self.max_rss_mb:
            self.kill()
            raise CapExceeded("peak_rss_mb", peak_mb, self.max_rss_mb, step)

    def _check_caps(self) -> None:
        """While waiting: the wall time so far and the tree's peak now (the trial process's VmHWM and what its
        descendants hold: descendants sampled on every poll, capped or not, so that a child's memory is in the
        trial's peak; the process's own VmHWM read only to hold a memory cap — the kernel keeps it for the next
        step's sample)."""
        peak = None
        try:
            if self.monitor is not None:
                self._has_descendants = bool(self.monitor.sample_descendants().pids)
                if self.max_rss_mb is not None:
                    peak = self.monitor.tree_peak_mb(read_status_mb(self._pid)[1])
            elif self.max_rss_mb is not None:
                peak = read_status_mb(self._pid)[1]
        except OSError:  # gone: _recv reports how it ended
            peak = None
        if self.max_wall_s is not None or self.max_rss_mb is not None:
            self._breach(time.perf_counter() - self.t0, peak, self._at())

    def _poll_interval(self) -> float:
        """How long to wait for the child's next message before looking at it again: ``poll_s`` while a memory cap
        is held or descendants are alive (their memory is sampled), else :data:`IDLE_POLL_S` (what is looked at
        then: that the child lives, and whether it started a descendant); never past the wall cap's deadline."""
        close = self.max_rss_mb is not None or self._has_descendants or self.monitor is None
        interval = self.poll_s if close else max(self.poll_s, IDLE_POLL_S)
        if self.max_wall_s is not None:
            interval = min(interval, max(0.0, self.max_wall_s - (time.perf_counter() - self.t0)) + 0.001)
        return interval

    # -- messages -------------------------------------------------------------------------------------------------

    def _recv(self) -> tuple:
        while True:
            if _wait(self._conn, self._poll_interval()):
                try:
                    msg = self._conn.recv()
                except EOFError:
                    msg = None
                if msg is None:
                    break
                if msg[0] == "error":
                    if len(msg) > 3:  # its totals, sent after it ended its descendants
                        self._set_totals(*msg[3:6])
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
        elif at == PRETRAIN_STEP:
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
                wall, peak = self._set_totals(*msg[1:4])
                # The end of the trial: its whole wall time and its peak, wherever it fell.
                self._breach(wall, peak, self._step if self._step is not None else -1)
                return
            _, step, learned, gpu_mem_mb, self._every, waited_mb, own_cpu_s = msg
            self._step = step
            now = time.perf_counter()
            monitor = self._monitor()
            monitor.waited_peak_mb = max(monitor.waited_peak_mb, float(waited_mb))
            s = monitor.sample(now, own_cpu_s=own_cpu_s)
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
            if step == PRETRAIN_STEP:  # nothing learned yet: no learning metrics in the pre-training row
                for name in ("val_accuracy", "val_loss", "train_loss"):
                    del metrics[name]
            self.last_probe_s = 0.0
            confirm, self._confirm = self._confirm, False
            if probes_at(step, self.job.steps, self._every, confirm=confirm):
                self._conn.send(("probe",))
                self._probing = step
                _, structural, probed_cpu_s = self._recv()
                self._probing = None
                self.last_probe_s = time.perf_counter() - now - self.last_sample_s
                self._probe_wall += time.perf_counter() - now
                self._probe_cpu += float(probed_cpu_s) - float(own_cpu_s)  # the child's clock, both ends
                metrics.update(structural)
                own_cpu_s = probed_cpu_s
            if step == PRETRAIN_STEP and self.job.dry_run_batches > 0:
                metrics.update(self._dry_run(monitor, float(own_cpu_s), metrics))
            for k, v in learned.items():  # a trainer's own extra learning metrics are kept too
                metrics.setdefault(k, v)
            self._decided = False
            yield StepResult(step, metrics)

    def _dry_run(self, monitor: ProcessMonitor, cpu_before: float, row: dict[str, float | None]) -> dict:
        """Step -1's dry run (see :mod:`sysprune.metrics._dryrun`): its predictions, and the row's memory once it
        trained. Its CPU and wall time are step 0's (its batches are), so they stay out of step -1's row."""
        self._conn.send(("dry_run", self.job.dry_run_batches))
        _, dry, cpu_after = self._recv()  # a death or a cap in it is step 0's: its batches are
        s = monitor.sample(time.perf_counter(), own_cpu_s=cpu_after)
        self._breach(s.wall_s, s.peak_rss_mb, self._at())
        out: dict[str, float | None] = {
            "rss_mb": s.rss_mb,
            "peak_rss_mb": s.peak_rss_mb,
            "peak_rss_delta_mb": s.peak_rss_mb - self.baseline_rss_mb,
        }
        if dry is not None:  # a model without Trainer.dry_run predicts nothing
            out.update(
                predict(
                    dry,
                    steps=self.job.steps,
                    cpu_s=float(row["cpu_s"] or 0.0),
                    wall_s=float(row["wall_s"] or 0.0),
                    peak_rss_mb=s.peak_rss_mb,
                    baseline_rss_mb=self.baseline_rss_mb,
                    dry_run_cpu_s=float(cpu_after) - cpu_before,
                )
            )
        return out

    def decide(self, *, stop: bool, probe_next: bool = False) -> None:
        """Tell the child to go on with the next step (after step -1: to start training) or to stop.

        ``probe_next``: measure the structural metrics after the next step as well, where :func:`probes_at` would
        not (the runner asks for it at step -1 when the pruner wants a second reading of them).
        """
        self._conn.send(("stop",) if stop else ("continue",))
        self._confirm = bool(probe_next) and not stop
        self._decided = True

    def _monitor(self) -> ProcessMonitor:
        if self.monitor is None:
            raise RuntimeError("the trial process is not ready: start() it first")
        return self.monitor

    def _set_totals(self, cpu_s: float, own_peak_mb: float, waited_peak_mb: float) -> tuple[float, float]:
        """The child's own totals (its descendants ended and reaped: their CPU is in ``cpu_s``): (wall, peak)."""
        self.total_cpu_s = float(cpu_s)
        wall = self.total_wall_s = time.perf_counter() - self.t0
        if self.monitor is None:
            peak = max(float(own_peak_mb), float(waited_peak_mb))
        else:
            self.monitor.waited_peak_mb = max(self.monitor.waited_peak_mb, float(waited_peak_mb))
            peak = self.monitor.tree_peak_mb(float(own_peak_mb))
        self.peak_rss_mb = peak
        return wall, peak

    def _take_totals(self) -> None:
        """Before the tree is killed: what it used. The child's totals if they are waiting in the pipe (a prune at
        the last step: it finished while the parent decided), else a sample now, else the last sample taken."""
        try:
            while self._conn is not None and self._conn.poll(0):
                msg = self._conn.recv()
                if msg[0] == "done" or (msg[0] == "error" and len(msg) > 3):
                    self._set_totals(*(msg[1:4] if msg[0] == "done" else msg[3:6]))
                    return
        except (EOFError, OSError):
            pass
        monitor = self.monitor
        try:
            if self._ps is None or not self._ps.is_running():
                raise psutil.NoSuchProcess(self._pid)
            if monitor is not None:
                self.total_cpu_s = monitor.cpu_s()
                self.peak_rss_mb = monitor.peak_now()
            else:  # before it was ready: its own CPU so far
                t = self._ps.cpu_times()
                self.total_cpu_s = t.user + t.system + t.children_user + t.children_system
        except (psutil.Error, OSError):  # died on its own: its last known figures
            if monitor is not None and monitor.last is not None:
                self.total_cpu_s = monitor.last.cpu_s
                self.peak_rss_mb = monitor.last.peak_rss_mb
        self.total_wall_s = time.perf_counter() - self.t0

    def kill(self) -> None:
        """Kill the trial process and every process it started, after keeping what they used (:meth:`_take_totals`)."""
        if self._proc is None:
            self._end_capture()
            return
        if self.total_cpu_s is None:
            self._take_totals()
        kill_tree(self._pid, self._ps)
        self._proc.join(5.0)
        self._end_capture()

    def _end_capture(self) -> None:
        if not self._ended:
            self._ended = True
            self._capture.end()

    def close(self) -> None:
        """Stop the child (if it still runs) and release the pipe. Safe to call twice."""
        if self._proc is not None and self._proc.is_alive():
            try:
                if not self._decided:
                    self._conn.send(("stop",))
                self._proc.join(2.0)
            except (OSError, ValueError):
                pass
        self.kill()
        if self._conn is not None:
            self._conn.close()

    def __enter__(self) -> "TrialProcess":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
