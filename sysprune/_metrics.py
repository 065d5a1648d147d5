"""The metric vocabulary: every name, unit and kind is defined here once.

Study files (objective, budgets), the trial process, the store, the pruners and the reports all refer to
metrics by these names; an unknown name is an error wherever it enters.

Kinds:
    ``cumulative``  grows monotonically over a trial (``wall_s``, ``cpu_s``, ``energy_j``); a budget on it can be
                    *predicted* from cost per step times the remaining steps.
    ``level``       a state of the trial at one step (``rss_mb``, ``peak_rss_mb``, ``infer_ms``, ...); most are
                    known from the first step.
    ``structural``  a property of the model itself (``n_params``, ``model_bytes``, ``infer_ms``, ...): constant
                    over training, known from the pre-training probe (step :data:`PRETRAIN_STEP`).
    ``learning``    the learning curve (``val_accuracy``, ``val_loss``, ``train_loss``).

A metric the machine cannot measure (no RAPL counter, no GPU) is *missing* (``None`` in Python, ``NULL`` in the
store, ``NaN`` in a DataFrame): never zero, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["cumulative", "level", "structural", "learning"]

#: The step number of the pre-training probe: structural metrics measured before the first training step.
PRETRAIN_STEP = -1


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    kind: Kind
    description: str
    #: "minimize" if a smaller value is better (every system metric), "maximize" for accuracy.
    better: Literal["minimize", "maximize"] = "minimize"


_ALL = [
    Metric("val_accuracy", "1", "learning", "accuracy on the validation split", "maximize"),
    Metric("val_loss", "1", "learning", "mean cross-entropy on the validation split"),
    Metric("train_loss", "1", "learning", "mean training loss over the step"),
    Metric("wall_s", "s", "cumulative", "wall-clock seconds since the trial process started"),
    Metric("cpu_s", "s", "cumulative", "user+system CPU seconds of the trial process (probe excluded)"),
    Metric("energy_j", "J", "cumulative", "CPU package (RAPL) + GPU (NVML) energy since the trial started"),
    Metric("rss_mb", "MiB", "level", "resident set size of the trial process at the end of the step"),
    Metric("peak_rss_mb", "MiB", "level", "peak resident set size of the trial process so far (VmHWM)"),
    Metric("peak_rss_delta_mb", "MiB", "level", "peak RSS above the process's own RSS when the trial started"),
    Metric("gpu_mem_mb", "MiB", "level", "peak CUDA memory allocated by the trial (torch)"),
    Metric("infer_ms", "ms", "structural", "per-sample inference latency at a fixed batch size, median of repeats"),
    Metric("infer_ms_lo", "ms", "structural", "lower end of a ~95 % confidence interval of infer_ms's median"),
    Metric("infer_ms_hi", "ms", "structural", "upper end of a ~95 % confidence interval of infer_ms's median"),
    Metric("n_params", "1", "structural", "number of trainable parameters"),
    Metric("model_bytes", "B", "structural", "size of the serialised model"),
    Metric("model_mem_mb", "MiB", "structural", "memory the model and its optimizer state take"),
]

METRICS: dict[str, Metric] = {m.name: m for m in _ALL}
METRIC_NAMES: tuple[str, ...] = tuple(METRICS)
CUMULATIVE: frozenset[str] = frozenset(m.name for m in _ALL if m.kind == "cumulative")
LEVEL: frozenset[str] = frozenset(m.name for m in _ALL if m.kind == "level")
LEARNING: frozenset[str] = frozenset(m.name for m in _ALL if m.kind == "learning")
#: Metrics a budget can cap (everything but the learning curve).
SYSTEM_METRICS: tuple[str, ...] = tuple(m.name for m in _ALL if m.kind != "learning")


def check_metric_name(name: object, *, field: str = "metric", allowed: tuple[str, ...] = METRIC_NAMES) -> str:
    """Return ``name`` if it is a known metric, else raise ValueError naming the field and the valid names."""
    if not isinstance(name, str) or name not in allowed:
        raise ValueError(f"{field}: unknown metric {name!r}; valid: {', '.join(allowed)}")
    return name
