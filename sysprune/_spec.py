"""Study files (TOML) → :class:`StudySpec`, with every field validated.

Errors are :class:`SpecError` (a ``ValueError``) whose one-line message names the file, the field and what would
be valid, e.g. ``studies/x.toml: search_space.lr: low must be < high, got low=0.1 high=0.01``.
Unknown keys are rejected by name at every level. Nothing here touches a database or imports torch.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sysprune._metrics import METRIC_NAMES, SYSTEM_METRICS
from sysprune._space import CategoricalParam, FixedParam, FloatParam, IntParam, Param


class SpecError(ValueError):
    """A study file (or a command-line override) is invalid. The message is one line, ready for the user."""


SAMPLERS = ("tpe", "random", "nsgaii")
DIRECTIONS = ("maximize", "minimize")


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    subsample: int | None = None  # rows drawn (stratified) before the split; None = all
    val_fraction: float = 0.2
    test_fraction: float = 0.2


@dataclass(frozen=True)
class ObjectiveSpec:
    metrics: tuple[str, ...]
    directions: tuple[str, ...]

    @property
    def is_multi(self) -> bool:
        return len(self.metrics) > 1


@dataclass(frozen=True)
class SamplerSpec:
    name: str = "tpe"
    n_startup_trials: int = 10


@dataclass(frozen=True)
class PrunerSpec:
    policy: str = "none"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrialSpec:
    """How each trial process runs and is measured."""

    threads: int = 1  # torch intra-op + BLAS threads, pinned so metrics repeat
    infer_batch_size: int = 256
    infer_repeats: int = 5
    max_rss_mb: float | None = None  # hard cap: the trial process is killed above it (pruned, infeasible)
    max_wall_s: float | None = None  # hard cap on one trial's wall time


@dataclass(frozen=True)
class StudySpec:
    name: str
    model: str
    dataset: DatasetSpec
    objective: ObjectiveSpec
    steps: int
    n_trials: int
    seed: int
    sampler: SamplerSpec
    pruner: PrunerSpec
    budgets: dict[str, float]
    search_space: dict[str, Param]
    trial: TrialSpec
    description: str = ""
    path: str | None = None
    #: ``[study] max_compute_s``: stop the search once its trials spent this many CPU seconds (None: no limit).
    max_compute_s: float | None = None


# ---------------------------------------------------------------------------------------------------------------
# Validation helpers: each raises SpecError(field: message); load_spec prefixes the file name.


class _Err(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")


def _table(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Err(field, f"must be a table, got {type(value).__name__} {value!r}")
    return value


def _no_unknown(table: dict[str, Any], allowed: tuple[str, ...], field: str) -> None:
    for key in table:
        if key not in allowed:
            where = f"{field}.{key}" if field else key
            raise _Err(where, f"unknown key; valid keys{' in ' + field if field else ''}: {', '.join(allowed)}")


def _int(value: Any, field: str, *, low: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Err(field, f"must be an integer, got {value!r}")
    if low is not None and value < low:
        raise _Err(field, f"must be >= {low}, got {value}")
    return value


def _num(value: Any, field: str, *, low: float | None = None, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise _Err(field, f"must be a number, got {value!r}")
    if positive and value <= 0:
        raise _Err(field, f"must be > 0, got {value}")
    if low is not None and value < low:
        raise _Err(field, f"must be >= {low}, got {value}")
    return float(value)


def _str(value: Any, field: str, choices: tuple[str, ...] | None = None) -> str:
    if not isinstance(value, str) or not value:
        raise _Err(field, f"must be a non-empty string, got {value!r}")
    if choices is not None and value not in choices:
        raise _Err(field, f"unknown value {value!r}; valid: {', '.join(choices)}")
    return value


def _bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise _Err(field, f"must be true or false, got {value!r}")
    return value


def parse_param(value: Any, field: str) -> Param:
    """One search-space entry: a table with ``type`` (float/int/categorical), or a plain value (fixed)."""
    if not isinstance(value, dict):
        if isinstance(value, (list, tuple)):
            raise _Err(field, "a list is not a parameter; write {type = \"categorical\", choices = [...]}")
        return FixedParam(value)
    kind = value.get("type")
    if kind == "float":
        _no_unknown(value, ("type", "low", "high", "log", "step"), field)
        low, high = _num(value.get("low"), f"{field}.low"), _num(value.get("high"), f"{field}.high")
        log = _bool(value.get("log", False), f"{field}.log")
        step = value.get("step")
        step = None if step is None else _num(step, f"{field}.step", positive=True)
        if low >= high:
            raise _Err(field, f"low must be < high, got low={low:g} high={high:g}")
        if log and low <= 0:
            raise _Err(field, f"log scale needs low > 0, got low={low:g}")
        if log and step is not None:
            raise _Err(field, "step and log cannot be used together")
        return FloatParam(low, high, log, step)
    if kind == "int":
        _no_unknown(value, ("type", "low", "high", "log", "step"), field)
        low, high = _int(value.get("low"), f"{field}.low"), _int(value.get("high"), f"{field}.high")
        log = _bool(value.get("log", False), f"{field}.log")
        step = _int(value.get("step", 1), f"{field}.step", low=1)
        if low >= high:
            raise _Err(field, f"low must be < high, got low={low} high={high}")
        if log and low <= 0:
            raise _Err(field, f"log scale needs low > 0, got low={low}")
        if log and step != 1:
            raise _Err(field, "step and log cannot be used together")
        return IntParam(low, high, log, step)
    if kind == "categorical":
        _no_unknown(value, ("type", "choices"), field)
        choices = value.get("choices")
        if not isinstance(choices, list) or not choices:
            raise _Err(f"{field}.choices", f"must be a non-empty list, got {choices!r}")
        for c in choices:
            if not isinstance(c, (str, int, float, bool)):
                raise _Err(f"{field}.choices", f"choices must be strings, numbers or booleans, got {c!r}")
        if len(set(map(repr, choices))) != len(choices):
            raise _Err(f"{field}.choices", f"choices must be distinct, got {choices!r}")
        return CategoricalParam(tuple(choices))
    raise _Err(f"{field}.type", f"unknown parameter type {kind!r}; valid: float, int, categorical")


def parse_search_space(model: str, raw: Any, field: str = "search_space") -> dict[str, Param]:
    """The model's default space, with the file's entries replacing or fixing parameters by name."""
    from sysprune.models import get_model

    space = dict(get_model(model).SPACE)
    table = _table(raw, field)
    for name, value in table.items():
        if name not in space:
            raise _Err(f"{field}.{name}", f"unknown parameter for model {model}; valid: {', '.join(space)}")
        space[name] = parse_param(value, f"{field}.{name}")
    return space


def _objective(raw: Any) -> ObjectiveSpec:
    table = _table(raw, "objective")
    _no_unknown(table, ("metric", "direction"), "objective")
    metric = table.get("metric", "val_accuracy")
    metrics = metric if isinstance(metric, list) else [metric]
    if not metrics:
        raise _Err("objective.metric", "must name at least one metric")
    for m in metrics:
        if m not in METRIC_NAMES:
            raise _Err("objective.metric", f"unknown metric {m!r}; valid: {', '.join(METRIC_NAMES)}")
    if len(set(metrics)) != len(metrics):
        raise _Err("objective.metric", f"metrics must be distinct, got {metrics!r}")
    from sysprune._metrics import METRICS

    default_dirs = [METRICS[m].better for m in metrics]
    direction = table.get("direction", default_dirs if len(metrics) > 1 else default_dirs[0])
    directions = direction if isinstance(direction, list) else [direction]
    if len(directions) != len(metrics):
        raise _Err("objective.direction", f"needs one direction per metric ({len(metrics)}), got {direction!r}")
    for d in directions:
        _str(d, "objective.direction", DIRECTIONS)
    return ObjectiveSpec(tuple(metrics), tuple(directions))


def _budgets(raw: Any) -> dict[str, float]:
    table = _table(raw, "budgets")
    out = {}
    for name, value in table.items():
        if name not in SYSTEM_METRICS:
            raise _Err(f"budgets.{name}", f"unknown system metric; valid: {', '.join(SYSTEM_METRICS)}")
        out[name] = _num(value, f"budgets.{name}", low=0.0)
    return out


def _dataset(raw: Any) -> DatasetSpec:
    from sysprune._data import check_dataset_name

    if isinstance(raw, str):
        raw = {"name": raw}
    table = _table(raw, "dataset")
    _no_unknown(table, ("name", "subsample", "val_fraction", "test_fraction"), "dataset")
    name = _str(table.get("name"), "dataset.name")
    try:
        check_dataset_name(name)
    except ValueError as e:
        raise _Err("dataset.name", str(e)) from None
    subsample = table.get("subsample")
    subsample = None if subsample is None else _int(subsample, "dataset.subsample", low=10)
    vf = _num(table.get("val_fraction", 0.2), "dataset.val_fraction", positive=True)
    tf = _num(table.get("test_fraction", 0.2), "dataset.test_fraction", positive=True)
    if vf + tf >= 1:
        raise _Err("dataset", f"val_fraction + test_fraction must be < 1, got {vf:g} + {tf:g}")
    return DatasetSpec(name, subsample, vf, tf)


def _sampler(raw: Any) -> SamplerSpec:
    if isinstance(raw, str):
        raw = {"name": raw}
    table = _table(raw, "sampler")
    _no_unknown(table, ("name", "n_startup_trials"), "sampler")
    name = _str(table.get("name", "tpe"), "sampler.name", SAMPLERS)
    n = _int(table.get("n_startup_trials", 10), "sampler.n_startup_trials", low=0)
    return SamplerSpec(name, n)


def _pruner(raw: Any, steps: int, budgets: dict[str, float], objective: ObjectiveSpec) -> PrunerSpec:
    from sysprune.pruners._factory import validate_policy

    if isinstance(raw, str):
        raw = {"policy": raw}
    table = _table(raw, "pruner")
    policy = table.get("policy", "none")
    params = {k: v for k, v in table.items() if k != "policy"}
    try:
        policy, params = validate_policy(
            policy, params, steps=steps, budgets=budgets, directions=list(objective.directions)
        )
    except ValueError as e:
        raise _Err("pruner", str(e)) from None
    return PrunerSpec(policy, params)


def _trial(raw: Any) -> TrialSpec:
    table = _table(raw, "trial")
    _no_unknown(table, ("threads", "infer_batch_size", "infer_repeats", "max_rss_mb", "max_wall_s"), "trial")
    cap_rss = table.get("max_rss_mb")
    cap_wall = table.get("max_wall_s")
    return TrialSpec(
        threads=_int(table.get("threads", 1), "trial.threads", low=1),
        infer_batch_size=_int(table.get("infer_batch_size", 256), "trial.infer_batch_size", low=1),
        infer_repeats=_int(table.get("infer_repeats", 5), "trial.infer_repeats", low=1),
        max_rss_mb=None if cap_rss is None else _num(cap_rss, "trial.max_rss_mb", positive=True),
        max_wall_s=None if cap_wall is None else _num(cap_wall, "trial.max_wall_s", positive=True),
    )


TOP_KEYS = (
    "name", "description", "model", "dataset", "objective", "steps", "n_trials", "seed",
    "sampler", "pruner", "budgets", "search_space", "trial", "study",
)  # fmt: skip


def _study(raw: Any) -> float | None:
    """``[study]``: search-level settings; ``max_compute_s`` (CPU seconds of trial processes + worker)."""
    table = _table(raw, "study")
    _no_unknown(table, ("max_compute_s",), "study")
    value = table.get("max_compute_s")
    return None if value is None else _num(value, "study.max_compute_s", positive=True)


def parse_spec(raw: dict[str, Any], *, default_name: str = "study") -> StudySpec:
    """Validate a parsed TOML document. Raises ``_Err`` (field: message); see :func:`load_spec`."""
    from sysprune.models import get_model

    _no_unknown(raw, TOP_KEYS, "")
    for required in ("model", "dataset"):
        if required not in raw:
            raise _Err(required, "missing (required)")
    model = _str(raw["model"], "model")
    try:
        get_model(model)
    except ValueError as e:
        raise _Err("model", str(e)) from None
    dataset = _dataset(raw["dataset"])
    from sysprune._data import dataset_kind

    inputs = get_model(model).INPUTS
    kind = dataset_kind(dataset.name)
    if kind not in inputs:
        raise _Err("dataset.name", f"model {model} needs {'/'.join(sorted(inputs))} data; {dataset.name} is {kind}")
    steps = _int(raw.get("steps", 10), "steps", low=1)
    name = _str(raw.get("name", default_name), "name")
    desc = raw.get("description", "")
    if not isinstance(desc, str):
        raise _Err("description", f"must be a string, got {desc!r}")
    objective = _objective(raw.get("objective", {}))
    budgets = _budgets(raw.get("budgets", {}))
    return StudySpec(
        name=name,
        model=model,
        dataset=dataset,
        objective=objective,
        steps=steps,
        n_trials=_int(raw.get("n_trials", 20), "n_trials", low=1),
        seed=_int(raw.get("seed", 0), "seed", low=0),
        sampler=_sampler(raw.get("sampler", {})),
        pruner=_pruner(raw.get("pruner", {}), steps, budgets, objective),
        budgets=budgets,
        search_space=parse_search_space(model, raw.get("search_space", {})),
        trial=_trial(raw.get("trial", {})),
        description=desc,
        max_compute_s=_study(raw.get("study", {})),
    )


def load_spec(path: str | Path) -> StudySpec:
    """Read and validate a study file. Raises :class:`SpecError` with a one-line ``file: field: message``."""
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"{p}: study file not found" + ("" if p.suffix == ".toml" else " (expected a .toml file)"))
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{p}: invalid TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise SpecError(f"{p}: not a UTF-8 text file ({e.reason})") from None
    try:
        spec = parse_spec(raw, default_name=p.stem)
    except _Err as e:
        raise SpecError(f"{p}: {e}") from None
    from dataclasses import replace

    return replace(spec, path=str(p))


def list_specs(directory: str | Path = "studies") -> list[Path]:
    return sorted(Path(directory).glob("*.toml"))
