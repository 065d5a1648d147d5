"""Measuring from outside: energy counters on a hand-made sysfs tree, missing counters, /proc readings."""

from __future__ import annotations

import os
import sys

from sysprune.metrics._monitor import NvmlEnergy, ProcessMonitor, RaplEnergy, read_status_mb


def _zone(root, name: str, energy: int, wrap: int) -> None:
    d = root / name
    d.mkdir(parents=True)
    (d / "energy_uj").write_text(f"{energy}\n")
    (d / "max_energy_range_uj").write_text(f"{wrap}\n")


def test_rapl_sums_packages_and_handles_wrap_around(tmp_path):
    _zone(tmp_path, "intel-rapl:0", 1_000_000, 10_000_000)
    _zone(tmp_path, "intel-rapl:1", 9_500_000, 10_000_000)
    _zone(tmp_path, "intel-rapl:0:0", 5, 10_000_000)  # a sub-zone (core) is inside its package: not added
    rapl = RaplEnergy(str(tmp_path))
    assert rapl.available
    rapl.start()
    (tmp_path / "intel-rapl:0" / "energy_uj").write_text("3000000\n")  # +2 J
    (tmp_path / "intel-rapl:1" / "energy_uj").write_text("500000\n")  # wrapped: +1 J
    assert rapl.joules() == 3.0
    (tmp_path / "intel-rapl:0" / "energy_uj").write_text("4000000\n")  # +1 J more, cumulative
    assert rapl.joules() == 4.0


def test_no_counter_is_missing_not_zero(tmp_path):
    rapl = RaplEnergy(str(tmp_path))  # no powercap zones (as on this VM)
    assert not rapl.available and rapl.joules() is None
    unreadable = tmp_path / "locked"
    _zone(unreadable, "intel-rapl:0", 1, 10)
    os.chmod(unreadable / "intel-rapl:0" / "energy_uj", 0)
    if os.geteuid() != 0:  # root reads anything; the zone is then simply available
        assert not RaplEnergy(str(unreadable)).available
    mon = ProcessMonitor(os.getpid(), 0.0, energy=[rapl])
    assert mon.sample(1.0).energy_j is None


def test_nvml_without_pynvml_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    nvml = NvmlEnergy()
    assert not nvml.available and nvml.joules() is None


def test_proc_status_readings_are_consistent():
    rss, hwm = read_status_mb(os.getpid())
    assert 0 < rss <= hwm


def test_the_trees_cpu_so_far_never_falls_below_the_last_samples_nanosecond_reading():
    """A killed trial's CPU is read with psutil (10 ms ticks); its last step's sample holds the trial process's own
    nanosecond clock. A trial of a few ms of CPU read 0.0 when killed: the total now keeps the larger, as CPU only
    grows."""
    import subprocess
    import time

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        monitor = ProcessMonitor(child.pid, time.perf_counter(), energy=[])
        assert monitor.cpu_s() >= 0.0  # no sample yet: the ticks alone
        ticks = monitor.cpu_s()
        monitor.sample(time.perf_counter(), own_cpu_s=ticks + 5.0)  # a reading well above the ticks
        assert monitor.cpu_s() >= ticks + 5.0
    finally:
        child.kill()
        child.wait()
