"""Metric families for RQ1: the eleven system metrics are about five things — time, memory, latency, size, energy.

A family is read from the metric registry's unit (seconds: time, joules: energy, MiB: memory, milliseconds:
latency, bytes and structural counts: size); a metric of one's own with another unit is a family of its own. Each
family is answered once, on its **representative** (the metric a budget of that kind caps); the other members are
reported by how closely they follow it (Spearman's rho over the recorded trials), which is what justifies merging
them. The bounds of a metric's interval (``infer_ms_lo``/``infer_ms_hi``) are not members: they are that metric.
"""

from __future__ import annotations

from collections.abc import Iterable

from sysprune.metrics._registry import METRICS

_BY_UNIT = {"s": "time", "J": "energy", "MiB": "memory", "ms": "latency", "B": "size"}
#: Each family's representative, when present: what a budget of that kind caps in the RQ2 studies.
REPRESENTATIVE = {
    "time": "cpu_s",
    "memory": "peak_rss_delta_mb",
    "latency": "infer_ms",
    "size": "model_bytes",
    "energy": "energy_j",
}
ORDER = ("time", "memory", "latency", "size", "energy")


def is_bound(metric: str) -> bool:
    """``x_lo`` / ``x_hi`` of a registered metric ``x``: the ends of its interval, not a metric of their own."""
    base, _, end = metric.rpartition("_")
    return end in ("lo", "hi") and base in METRICS


def family(metric: str) -> str:
    m = METRICS.get(metric)
    if m is None:
        return metric
    if m.unit in _BY_UNIT:
        return _BY_UNIT[m.unit]
    if m.kind == "structural" and m.unit == "1":
        return "size"
    return metric


def families(metrics: Iterable[str]) -> dict[str, list[str]]:
    """``family -> its members among metrics``, the representative first (else the first member), families in
    :data:`ORDER` then any of one's own; interval bounds left out."""
    out: dict[str, list[str]] = {}
    for name in metrics:
        if not is_bound(name):
            out.setdefault(family(name), []).append(name)
    for fam, members in out.items():
        rep = REPRESENTATIVE.get(fam)
        if rep in members:
            members.remove(rep)
            members.insert(0, rep)
    ranked = sorted(out, key=lambda f: (ORDER.index(f) if f in ORDER else len(ORDER), f))
    return {f: out[f] for f in ranked}
