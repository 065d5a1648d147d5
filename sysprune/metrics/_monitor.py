"""Measuring a trial process from outside: one collector per resource, each degrading on its own.

The parent (the Optuna worker) samples its child trial process between steps, while the child waits for the
parent's decision, so a sample describes exactly the work the trial did up to the end of that step.

* CPU: the trial process's own clock, :func:`process_cpu_s` (``CLOCK_PROCESS_CPUTIME_ID``: nanoseconds, every
  thread; plus the children it waited for), which the child reads at the end of each step and sends with it — or,
  where the process cannot say (killed, died), ``psutil.Process(pid).cpu_times()``, whose user and system times move
  in 10 ms clock ticks (a ~35 ms step would read 30 or 40 ms). Plus the CPU of its descendants still alive
  (``/proc/<pid>/stat``). A new process starts at zero.
* Memory: ``/proc/<pid>/status`` ``VmRSS`` (now) and ``VmHWM`` (the kernel's exact high-water mark, which catches
  spikes between samples). The child resets VmHWM when it starts (``/proc/self/clear_refs`` ← 5), so the peak is
  the trial's own and not the fork server's.
* The process tree: a trial's processes are all its own (a ``subprocess``, an ``os.fork``, a DataLoader's workers).
  Each sample adds what its descendants use that the trial process does not: their *private* memory (USS,
  ``/proc/<pid>/smaps_rollup``; a forked child shares the trial's pages until it writes them, so its RSS would count
  them twice). ``peak_rss_mb`` is the trial process's VmHWM plus the largest sum of its descendants' private memory
  any sample saw — an upper bound of the tree's peak where the two peaks did not coincide — and never less than
  the largest peak RSS of a descendant it waited for (``RUSAGE_CHILDREN``, reported by the child), which catches a
  short-lived child between two samples. Descendants are found through ``/proc/<pid>/task/<tid>/children`` (the
  trial process is a subreaper: an orphaned grandchild becomes its child, so none escapes the walk).
* Energy: RAPL package counters (``/sys/class/powercap/intel-rapl:N/energy_uj``, wrap-around handled) and NVML
  total energy when ``pynvml`` and a GPU are present. Both are machine-wide: with one trial at a time per machine the
  delta is the trial's; sysprune records ``None`` (missing) when no counter is readable — never zero.
"""

from __future__ import annotations

import glob
import os
import time
from dataclasses import dataclass, field

import psutil

_KB_PER_MB = 1024.0  # /proc status reports kB


def process_cpu_s() -> float:
    """CPU seconds of this process (every thread, nanosecond clock) and of the children it waited for (ticks)."""
    t = os.times()
    return time.process_time() + t.children_user + t.children_system


def read_status_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of process ``pid`` in MiB, from ``/proc/<pid>/status`` (NaN for a field it lacks: a kernel
    thread, a zombie). One read and two searches: the parent reads it at every sample of every trial."""
    with open(f"/proc/{pid}/status", "rb") as f:
        text = f.read()
    return _status_kb(text, b"\nVmRSS:") / _KB_PER_MB, _status_kb(text, b"\nVmHWM:") / _KB_PER_MB


def _status_kb(text: bytes, key: bytes) -> float:
    """The number after ``key`` in a ``/proc/<pid>/status`` text (``"VmRSS:\t  1234 kB"`` → 1234.0); NaN if absent."""
    at = text.find(key)
    if at < 0:
        return float("nan")
    end = text.find(b"\n", at + len(key))
    fields = text[at + len(key) : end if end >= 0 else len(text)].split()
    return float(int(fields[0])) if fields else float("nan")


# ---------------------------------------------------------------------------------------------- the process tree

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PROC_CHILDREN: bool | None = None  # whether the kernel lists a task's children (CONFIG_PROC_CHILDREN)


def _has_children_file() -> bool:
    global _PROC_CHILDREN
    if _PROC_CHILDREN is None:
        _PROC_CHILDREN = os.path.exists("/proc/thread-self/children")
    return _PROC_CHILDREN


def children(pid: int) -> list[int]:
    """The direct children of process ``pid`` (of every one of its threads); [] when it is gone."""
    if not _has_children_file():
        try:
            return [c.pid for c in psutil.Process(pid).children()]
        except psutil.Error:
            return []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    out: list[int] = []
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                out.extend(int(x) for x in f.read().split())
        except OSError:  # the thread ended meanwhile
            continue
    return out


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children, ...), parents before their children."""
    out: list[int] = []
    seen = {pid}
    todo = [pid]
    while todo:
        for c in children(todo.pop(0)):
            if c not in seen:
                seen.add(c)
                out.append(c)
                todo.append(c)
    return out


def stat_cpu_s(pid: int) -> float:
    """CPU seconds of process ``pid`` and of the children it waited for (utime + stime + cutime + cstime)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        text = f.read()
    fields = text[text.rfind(b")") + 2 :].split()  # after "pid (comm) ": field 3 (state) is fields[0]
    return sum(int(x) for x in fields[11:15]) / _CLK_TCK


def private_mb(pid: int) -> float:
    """Memory only process ``pid`` maps (USS: Private_Clean + Private_Dirty of ``smaps_rollup``), in MiB; its
    anonymous RSS where the kernel has no ``smaps_rollup`` (< 4.14: an upper bound for a forked child)."""
    kb = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith((b"Private_Clean:", b"Private_Dirty:")):
                    kb += int(line.split()[1])
        return kb / _KB_PER_MB
    except FileNotFoundError:
        if os.path.exists(f"/proc/{pid}"):
            with open(f"/proc/{pid}/status", "rb") as f:
                for line in f:
                    if line.startswith(b"RssAnon:"):
                        return int(line.split()[1]) / _KB_PER_MB
        raise


@dataclass
class Descendants:
    """What the descendants of a process use now, beyond the process itself."""

    pids: list[int] = field(default_factory=list)
    cpu_s: float = 0.0  # their CPU, and that of the children they waited for
    private_mb: float = 0.0  # their private memory (USS)


def sample_descendants(pid: int) -> Descendants:
    """The descendants of ``pid`` now: one ``/proc`` read per thread when there are none."""
    out = Descendants()
    for d in descendants(pid):
        try:
            cpu = stat_cpu_s(d)
            mb = private_mb(d)
        except (OSError, ValueError, IndexError):  # ended between the walk and the read: its parent counts it
            continue
        out.pids.append(d)
        out.cpu_s += cpu
        out.private_mb += mb
    return out


def reset_peak_rss() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux ≥ 4.0). False where the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class RaplEnergy:
    """Cumulative CPU package energy in joules from RAPL, or None when no counter is readable."""

    def __init__(self, root: str = "/sys/class/powercap") -> None:
        self._domains: list[tuple[str, int]] = []
        for d in sorted(glob.glob(os.path.join(root, "intel-rapl:[0-9]*"))):
            if os.path.basename(d).count(":") != 1:  # sub-zones (core, uncore, dram) are inside the package
                continue
            try:
                with open(os.path.join(d, "max_energy_range_uj")) as f:
                    wrap = int(f.read())
                self._read(d)
            except (OSError, ValueError):
                continue
            self._domains.append((d, wrap))
        self._last: list[int] | None = None
        self._total_uj = 0

    @staticmethod
    def _read(d: str) -> int:
        with open(os.path.join(d, "energy_uj")) as f:
            return int(f.read())

    @property
    def available(self) -> bool:
        return bool(self._domains)

    def start(self) -> None:
        self._last = [self._read(d) for d, _ in self._domains] if self._domains else None
        self._total_uj = 0

    def joules(self) -> float | None:
        if not self._domains or self._last is None:
            return None
        now = [self._read(d) for d, _ in self._domains]
        for (_, wrap), prev, cur in zip(self._domains, self._last, now):
            self._total_uj += cur - prev if cur >= prev else cur + wrap - prev
        self._last = now
        return self._total_uj / 1e6


class NvmlEnergy:
    """Cumulative GPU energy in joules from NVML (all visible GPUs), or None without pynvml or a GPU."""

    def __init__(self) -> None:
        self._handles = []
        try:
            import pynvml  # optional

            pynvml.nvmlInit()
            for i in range(pynvml.nvmlDeviceGetCount()):
                h = pynvml.nvmlDeviceGetHandleByIndex(i)
                pynvml.nvmlDeviceGetTotalEnergyConsumption(h)  # raises where unsupported
                self._handles.append(h)
            self._nvml = pynvml
        except Exception:
            self._handles = []
        self._start: list[int] = []

    @property
    def available(self) -> bool:
        return bool(self._handles)

    def _read(self) -> list[int]:
        return [self._nvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in self._handles]  # mJ

    def start(self) -> None:
        self._start = self._read() if self._handles else []

    def joules(self) -> float | None:
        if not self._handles:
            return None
        return sum(c - s for c, s in zip(self._read(), self._start)) / 1e3


@dataclass
class Sample:
    wall_s: float
    cpu_s: float  # the whole tree's
    rss_mb: float  # the trial process's RSS + its descendants' private memory
    peak_rss_mb: float  # see the module docstring
    energy_j: float | None
    descendants: int = 0  # how many processes below the trial process were running


class ProcessMonitor:
    """Samples one trial process and the processes it started; energy collectors are passed in (tests give fakes)
    or detected once."""

    def __init__(self, pid: int, t0: float, *, energy: list | None = None) -> None:
        self.pid = pid
        self.t0 = t0
        self._proc = psutil.Process(pid)
        self._energy = [e for e in (energy if energy is not None else default_energy()) if e.available]
        for e in self._energy:
            e.start()
        self.descendants_peak_mb = 0.0  # the largest sum of the descendants' private memory sampled
        self.waited_peak_mb = 0.0  # the largest peak RSS of a descendant the trial process waited for (its report)
        self.last: Sample | None = None  # the last full sample: a trial process that died keeps these figures

    def _own_cpu_s(self) -> float:
        if self.pid == os.getpid():  # measuring oneself (sysprune.measure): the nanosecond clock
            return process_cpu_s()
        t = self._proc.cpu_times()
        return t.user + t.system + t.children_user + t.children_system

    def sample_descendants(self) -> Descendants:
        """The descendants now (their peak kept for :meth:`tree_peak_mb`)."""
        return self._descendants()

    def _descendants(self) -> Descendants:
        d = sample_descendants(self.pid)
        self.descendants_peak_mb = max(self.descendants_peak_mb, d.private_mb)
        return d

    def cpu_s(self) -> float:
        """CPU seconds of the whole tree so far: never less than the last sample's (CPU time only grows, and the
        last sample may hold the trial process's own nanosecond reading where psutil counts 10 ms ticks: a trial of
        a few ms of CPU read 0.0 when killed)."""
        now = self._own_cpu_s() + self._descendants().cpu_s
        return max(now, self.last.cpu_s) if self.last is not None else now

    def tree_peak_mb(self, own_peak_mb: float) -> float:
        """The tree's peak given the trial process's own (VmHWM): see the module docstring."""
        return max(own_peak_mb + self.descendants_peak_mb, self.waited_peak_mb)

    def peak_now(self) -> float:
        """The tree's peak so far (a cap check while waiting: the descendants are sampled now)."""
        self._descendants()
        return self.tree_peak_mb(read_status_mb(self.pid)[1])

    def sample(self, now: float, *, own_cpu_s: float | None = None) -> Sample:
        """Wall, CPU, memory and energy now. ``own_cpu_s``: the trial process's CPU as it read it itself
        (:func:`process_cpu_s`, sent with its step; it waits idle while sampled), in place of psutil's ticks."""
        rss, hwm = read_status_mb(self.pid)
        d = self._descendants()
        energy = None
        if self._energy:
            parts = [e.joules() for e in self._energy]
            energy = None if any(p is None for p in parts) else float(sum(parts))
        cpu = (self._own_cpu_s() if own_cpu_s is None else float(own_cpu_s)) + d.cpu_s
        self.last = Sample(now - self.t0, cpu, rss + d.private_mb, self.tree_peak_mb(hwm), energy, len(d.pids))
        return self.last


_ENERGY: list | None = None


def default_energy() -> list:
    """The machine's energy collectors (detected once per process)."""
    global _ENERGY
    if _ENERGY is None:
        _ENERGY = [RaplEnergy(), NvmlEnergy()]
    return _ENERGY


def energy_available() -> bool:
    return any(e.available for e in default_energy())
