"""Benchmark: how noisy is one latency probe (``infer_ms``) on this machine?

Builds a few digits MLP configurations with the trainer the trial process uses
(``sysprune.models.get_model("torch_mlp").create(...)``, threads pinned to 1 as in a trial) and runs the trial
process's own probe, :func:`sysprune.trial._process.probe_latency_ms` (one warm-up call, then the median of
``--repeats`` timed calls on a 256-sample batch), many times per configuration, round-robin over the
configurations so that load changes on the machine hit all of them alike. Each timed call inside the probe is
observed through a thin proxy of the trainer, so each probe's distribution-free ~95 % interval of its median
(:func:`sysprune.metrics._interval.median_interval`, the repeats' order statistics, contract 3) is known too.

The "true median" of a configuration is the median of all its probe readings. Printed, over all probes of all
configurations: quantiles of reading / true median, of lo / true and hi / true, the standard deviation of
log(reading / true), how often the interval missed the true median (and how often it sat wholly above it: a
false "confident breach"), and the fitted parameters ``tests/pruners/test_noise.py`` simulates with.

A machine loaded by other work gives a *wider* spread than a quiet one: numbers measured under load are the
conservative side for a false-prune rate. Run time with the defaults: ~25 s on the 2-core VM at load ~1, 75 s at
load ~7 (< 2 min).

Usage: python benchmarks/bench_noise.py [--probes 250] [--repeats 5] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from typing import Any

import numpy as np
from _machine import cpu_name

#: (n_layers, width) of the probed MLPs: small to large on digits.
CONFIGS = [(1, 32), (2, 128), (2, 512), (3, 1024)]
QUANTILES = [0.001, 0.01, 0.05, 0.5, 0.95, 0.99, 0.999]
#: Quantile grid of the empirical noise model printed for the simulation test (0 and 1: the extremes seen).
GRID = [0.0, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 1.0]


class _Observed:
    """A trainer whose ``infer`` calls are timed from outside (the probe's own timing is unchanged)."""

    def __init__(self, trainer: Any) -> None:
        self._trainer = trainer
        self.times: list[float] = []

    def infer(self, X: Any) -> Any:
        t = time.perf_counter()
        out = self._trainer.infer(X)
        self.times.append(time.perf_counter() - t)
        return out


def machine() -> str:
    cpu = cpu_name()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{platform.platform()} | {cpu} | {os.cpu_count()} CPUs | load average {load} | Python {platform.python_version()}"


def _reading(result: Any) -> float:
    """The probe's median reading, whether it returns a float or a metric dict (``{"infer_ms": ...}``)."""
    if isinstance(result, dict):
        return float(result["infer_ms"])
    if isinstance(result, tuple):
        return float(result[0])
    return float(result)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--probes", type=int, default=250, help="probes per configuration")
    ap.add_argument("--repeats", type=int, default=5, help="timed calls per probe (the study default is 5)")
    ap.add_argument("--batch", type=int, default=256, help="probe batch size (the study default is 256)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from sysprune.datasets import load
    from sysprune.trial._child import _pin_threads, _probe_batch
    from sysprune.metrics._measure import probe_latency_ms
    from sysprune.models import get_model
    from sysprune.metrics._interval import median_interval

    _pin_threads(1)
    data = load("digits", seed=args.seed)
    batch = _probe_batch(data, args.batch)
    model = get_model("torch_mlp")
    trainers = [
        _Observed(model.create({"n_layers": n, "width": w, "dropout": 0.0}, data, seed=args.seed)) for n, w in CONFIGS
    ]
    readings: list[list[float]] = [[] for _ in CONFIGS]
    bounds: list[list[tuple[float, float]]] = [[] for _ in CONFIGS]
    coverage = median_interval(range(args.repeats))[2]
    t0 = time.perf_counter()
    for _ in range(args.probes):
        for i, tr in enumerate(trainers):
            tr.times.clear()
            value = _reading(probe_latency_ms(tr, batch, args.repeats))
            timed = tr.times[1:]  # the first call is the probe's warm-up
            lo, hi, _ = median_interval([t * 1e3 / len(batch) for t in timed])
            readings[i].append(value)
            bounds[i].append((lo, hi))
    elapsed = time.perf_counter() - t0

    ratio, lo_r, hi_r = [], [], []
    print(f"# bench_noise — {machine()}")
    print(
        f"# {args.probes} probes x {len(CONFIGS)} configurations, {args.repeats} repeats each, batch {len(batch)};"
        f" interval coverage {coverage:.2%} (order statistics); {elapsed:.1f} s"
    )
    print(f"{'config':>14} {'true median ms':>15} {'sd(log r)':>10} {'max r':>7}")
    for (n, w), rs, bs in zip(CONFIGS, readings, bounds):
        true = statistics.median(rs)
        r = np.array(rs) / true
        ratio.extend(r)
        lo_r.extend(lo / true for lo, _ in bs)
        hi_r.extend(hi / true for _, hi in bs)
        print(f"{f'{n}x{w}':>14} {true:15.6f} {np.std(np.log(r)):10.4f} {r.max():7.3f}")
    ratio_a, lo_a, hi_a = np.array(ratio), np.array(lo_r), np.array(hi_r)
    print("\nquantiles over all probes (value / true median):")
    print(f"{'q':>7} {'reading':>9} {'lo':>9} {'hi':>9}")
    for q in QUANTILES:
        print(f"{q:7.3f} {np.quantile(ratio_a, q):9.4f} {np.quantile(lo_a, q):9.4f} {np.quantile(hi_a, q):9.4f}")
    print(f"{'max':>7} {ratio_a.max():9.4f} {lo_a.max():9.4f} {hi_a.max():9.4f}")
    log_r = np.log(ratio_a)
    log_lo = np.log(ratio_a / lo_a)  # how far below its reading a probe's lower bound sits
    print(
        f"\ninterval missed the true median in {np.mean((lo_a > 1) | (hi_a < 1)):.2%} of probes;"
        f" wholly above it (lo > true) in {np.mean(lo_a > 1):.2%}"
    )
    print("fitted noise model (log reading/true ~ Student-t; lower bound = reading * exp(-w)):")
    print(
        f"  sd(log r) = {np.std(log_r):.4f}; robust sd (1.4826 * MAD) = "
        f"{1.4826 * np.median(np.abs(log_r - np.median(log_r))):.4f}; "
        f"q99.9(r) = {np.quantile(ratio_a, 0.999):.4f}"
    )
    print(
        f"  w = log(reading / lo): median {np.median(log_lo):.4f}, q05 {np.quantile(log_lo, 0.05):.4f},"
        f" q95 {np.quantile(log_lo, 0.95):.4f}"
    )
    print("empirical noise model for tests/pruners/test_noise.py (quantiles at GRID of reading/true and lo/true):")
    print(f"  GRID = {GRID}")
    print(f"  READING_Q = {[round(float(np.quantile(ratio_a, q)), 4) for q in GRID]}")
    print(f"  LO_Q = {[round(float(np.quantile(lo_a, q)), 4) for q in GRID]}")


if __name__ == "__main__":
    main()
