"""Measuring a trial process from outside: one collector per resource, each degrading on its own.

The parent (the Optuna worker) samples its child trial process between steps, while the child waits for the
parent's decision, so a sample describes exactly the work the trial did up to the end of that step.

* CPU: ``psutil.Process(pid).cpu_times()`` (user + system of the child; a new process starts at zero).
* Memory: ``/proc/<pid>/status`` ``VmRSS`` (now) and ``VmHWM`` (the kernel's exact high-water mark, which catches
  spikes between samples). The child resets VmHWM when it starts (``/proc/self/clear_refs`` ← 5), so the peak is
  the trial's own and not the fork server's.
* Energy: RAPL package counters (``/sys/class/powercap/intel-rapl:N/energy_uj``, wrap-around handled) and NVML
  total energy when ``pynvml`` and a GPU are present. Both are machine-wide: with one trial at a time per machine the
  delta is the trial's; sysprune records ``None`` (missing) when no counter is readable — never zero.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass

import psutil

_KB_PER_MB = 1024.0  # /proc status reports kB


def read_status_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of process ``pid`` in MiB, from ``/proc/<pid>/status``."""
    rss = hwm = float("nan")
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"VmRSS:"):
                rss = int(line.split()[1]) / _KB_PER_MB
            elif line.startswith(b"VmHWM:"):
                hwm = int(line.split()[1]) / _KB_PER_MB
    return rss, hwm


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
    cpu_s: float
    rss_mb: float
    peak_rss_mb: float
    energy_j: float | None


class ProcessMonitor:
    """Samples one trial process; energy collectors are passed in (tests give fakes) or detected once."""

    def __init__(self, pid: int, t0: float, *, energy: list | None = None) -> None:
        self.pid = pid
        self.t0 = t0
        self._proc = psutil.Process(pid)
        self._energy = [e for e in (energy if energy is not None else default_energy()) if e.available]
        for e in self._energy:
            e.start()

    def cpu_s(self) -> float:
        t = self._proc.cpu_times()
        return t.user + t.system

    def sample(self, now: float) -> Sample:
        rss, hwm = read_status_mb(self.pid)
        energy = None
        if self._energy:
            parts = [e.joules() for e in self._energy]
            energy = None if any(p is None for p in parts) else float(sum(parts))
        return Sample(now - self.t0, self.cpu_s(), rss, hwm, energy)


_ENERGY: list | None = None


def default_energy() -> list:
    """The machine's energy collectors (detected once per process)."""
    global _ENERGY
    if _ENERGY is None:
        _ENERGY = [RaplEnergy(), NvmlEnergy()]
    return _ENERGY


def energy_available() -> bool:
    return any(e.available for e in default_energy())
