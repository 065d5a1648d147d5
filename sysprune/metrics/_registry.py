"""The metric vocabulary: one registry of every metric's name, unit, kind and direction.

Study files (objective, budgets), the trial process, the store, the pruners, figures and reports all refer to
metrics by these names and read their unit and kind from here; an unknown name is an error wherever it enters.
A metric of one's own is one :func:`register_metric` call (see docs/extending.md); a trainer then reports it from
``train_step``/``evaluate`` and it can be an objective or, unless it is a ``learning`` metric, a budget.

Kinds:
    ``cumulative``  grows monotonically over a trial (``wall_s``, ``cpu_s``, ``energy_j``); a budget on it can be
                    *predicted* from cost per step times the remaining steps.
    ``level``       a state of the trial at one step (``rss_mb``, ``peak_rss_mb``, ...); forecast from its trend.
    ``structural``  a property of the model itself (``n_params``, ``model_bytes``, ``infer_ms``, ...): constant
                    over training, known from the pre-training probe (step :data:`PRETRAIN_STEP`); and what the
                    dry run at that step predicts of the training's cost (``pred_cpu_s``, ...; only in a study
                    whose budget pruner asks for one: :mod:`sysprune.metrics._dryrun`).
    ``learning``    the learning curve (``val_accuracy``, ``val_loss``, ``train_loss``); never a budget.

The lookups are functions, not tuples frozen at import, so a metric registered later is seen everywhere.

A metric the machine cannot measure (no RAPL counter, no GPU) is *missing* (``None`` in Python, ``NULL`` in the
store, ``NaN`` in a DataFrame): never zero, never a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

Kind = Literal["cumulative", "level", "structural", "learning"]
Better = Literal["minimize", "maximize"]
KINDS: tuple[str, ...] = get_args(Kind)

#: The step number of the pre-training probe: structural metrics measured before the first training step.
PRETRAIN_STEP = -1

_NAME = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class Metric:
    """One metric of the vocabulary.

    Attributes:
        name: how study files, the store and user attrs name it (lower case, digits, ``_``).
        unit: a short unit shown after values (``"s"``, ``"MiB"``, ``"ms"``); ``"1"`` for counts and ratios.
        kind: ``cumulative``, ``level``, ``structural`` or ``learning`` (see the module docstring).
        description: one line for ``sysprune metrics``, figures and reports.
        better: ``"minimize"`` if a smaller value is better (every system metric), ``"maximize"`` for accuracy.
    """

    name: str
    unit: str
    kind: Kind
    description: str = ""
    better: Better = "minimize"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ValueError(
                f"metric name must be lower case letters, digits and '_' starting with a letter, got {self.name!r}"
            )
        if not isinstance(self.unit, str) or not self.unit:
            raise ValueError(
                f'unit of metric {self.name!r} must be a non-empty string ("1" for a count), got {self.unit!r}'
            )
        if self.kind not in KINDS:
            raise ValueError(f"kind of metric {self.name!r} must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.better not in get_args(Better):
            raise ValueError(f"better of metric {self.name!r} must be 'minimize' or 'maximize', got {self.better!r}")
        if not isinstance(self.description, str):
            raise ValueError(f"description of metric {self.name!r} must be a string, got {self.description!r}")

    @property
    def is_system(self) -> bool:
        """True for every kind but ``learning``: the metrics a budget can cap."""
        return self.kind != "learning"


_BUILTIN = (
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
    Metric("pred_cpu_s", "s", "structural", "cpu_s at the last step, predicted at step -1 from a dry run"),
    Metric("pred_wall_s", "s", "structural", "wall_s at the last step, predicted at step -1 from a dry run"),
    Metric("pred_peak_rss_mb", "MiB", "structural", "peak_rss_mb once the dry run trained (step -1)"),
    Metric("pred_peak_rss_delta_mb", "MiB", "structural", "peak_rss_delta_mb once the dry run trained (step -1)"),
    Metric("dry_run_cpu_s", "s", "structural", "CPU seconds of the dry run: the first mini-batches of step 0"),
)

#: Every registered metric by name, in registration order (built-ins first). Read it; add with register_metric.
METRICS: dict[str, Metric] = {m.name: m for m in _BUILTIN}


def register_metric(name: str, *, unit: str, kind: Kind, description: str = "", better: Better = "minimize") -> Metric:
    """Add a metric to the vocabulary so study files can use it as an objective or (unless ``learning``) a budget.

    Registering the same definition again is a no-op (a plugin module may be imported more than once); a
    different definition under a registered name is a ValueError.
    """
    metric = Metric(name, unit, kind, description, better)
    known = METRICS.get(name)
    if known is not None and known != metric:
        raise ValueError(f"metric {name!r} is already registered as {known}; pick another name")
    METRICS[name] = metric
    return metric


def metric_names(*kinds: str) -> tuple[str, ...]:
    """Names of the registered metrics, in registration order; only those of ``kinds`` if given."""
    return tuple(m.name for m in METRICS.values() if not kinds or m.kind in kinds)


def system_metric_names() -> tuple[str, ...]:
    """Names of the metrics a budget can cap: every kind but ``learning``."""
    return tuple(m.name for m in METRICS.values() if m.is_system)


def get_metric(name: str, *, field: str = "metric") -> Metric:
    """The registered metric ``name``, else a ValueError naming the field and the valid names."""
    return METRICS[check_metric_name(name, field=field)]


def metric_kind(name: str) -> Kind:
    """The kind of registered metric ``name`` (ValueError for an unknown name)."""
    return get_metric(name).kind


def unit_suffix(name: str) -> str:
    """``" ms"`` for a metric with a unit, ``""`` for a count or ratio (``"1"``) and for an unknown name."""
    metric = METRICS.get(name)
    return "" if metric is None or metric.unit == "1" else f" {metric.unit}"


def check_metric_name(name: object, *, field: str = "metric", allowed: tuple[str, ...] | None = None) -> str:
    """Return ``name`` if it is a registered metric (and in ``allowed`` if given), else raise ValueError naming
    the field and the valid names."""
    valid = metric_names() if allowed is None else allowed
    if not isinstance(name, str) or name not in valid:
        raise ValueError(f"{field}: unknown metric {name!r}; valid: {', '.join(valid)}")
    return name
