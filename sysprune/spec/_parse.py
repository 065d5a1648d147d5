"""Study files (TOML) → :class:`StudySpec`, with every field validated once, before anything is written.

Validation follows scikit-learn's declared constraints: each field's constraint is declared once in a small table
(``_DATASET``, ``_SAMPLER``, ``_TRIAL``, ...), checked at one entry point (:func:`parse_spec`), and every failure
is one line in one format::

    studies/x.toml: budgets.infer_ms: value inf is invalid; valid: a finite number >= 0

(``file: field: value X is invalid; valid: ...``; an unknown key reads ``field: unknown key; valid: ...``).
A hyperparameter given in ``[search_space]`` is also checked against the model's declared space (``SPACE``): the
same type, and the same sign (see :func:`declared_domain`). Library arguments use the same constraints through
:func:`check_argument` and raise :class:`InvalidArgument`, which names the *argument* (``n_trials``); the command
line renders it with its own flag (``--n-trials``). Nothing here touches a database or imports torch.

:func:`study_identity` is the stored definition of a study: everything that changes the data or the meaning of a
recorded value. The runner refuses to resume a study whose identity differs (see :func:`identity_diff`).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from sysprune.metrics._registry import metric_names, system_metric_names
from sysprune.models._space import CategoricalParam, FixedParam, FloatParam, IntParam, Param


from sysprune.exceptions import SpecError  # defined with every user-catchable error


class InvalidArgument(SpecError):
    """A library function's argument is invalid. ``argument`` names it; :meth:`message_for` renders the same
    message under another name (the command line uses its flag, e.g. ``--n-trials``)."""

    def __init__(self, argument: str, value: Any, valid: str) -> None:
        self.argument, self.value, self.valid = argument, value, valid
        super().__init__(self.message_for(argument))

    def message_for(self, name: str) -> str:
        return invalid(name, self.value, self.valid)


SAMPLERS = ("tpe", "random", "nsgaii")
DIRECTIONS = ("maximize", "minimize")
IDENTITY_VERSION = 2


def invalid(field: str, value: Any, valid: str, why: str | None = None) -> str:
    """The one message format: ``field: value X is invalid (why); valid: ...``."""
    shown = value.text if isinstance(value, _Shown) else repr(value)
    return f"{field}: value {shown} is invalid{f' ({why})' if why else ''}; valid: {valid}"


@dataclass(frozen=True)
class _Shown:
    """A value shown as given (e.g. ``low=32 high=8``) rather than by ``repr``."""

    text: str


# ---------------------------------------------------------------------------------------------------------------
# Declared constraints


def _fmt(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


@dataclass(frozen=True)
class Integer:
    """An integer (not a boolean) in ``[low, high]``; a bound of None is open-ended."""

    low: int | None = None
    high: int | None = None

    def accepts(self, v: Any) -> bool:
        return (
            not isinstance(v, bool)
            and isinstance(v, int)
            and (self.low is None or v >= self.low)
            and (self.high is None or v <= self.high)
        )

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return f"an integer in [{self.low}, {self.high}]"
        if self.low is not None:
            return f"an integer >= {self.low}"
        if self.high is not None:
            return f"an integer <= {self.high}"
        return "an integer"

    def normalise(self, v: Any) -> int:
        return v


@dataclass(frozen=True)
class Real:
    """A finite number (an integer is accepted) in an interval; ``*_open`` makes a bound exclusive."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def accepts(self, v: Any) -> bool:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return False
        if self.low is not None and (v <= self.low if self.low_open else v < self.low):
            return False
        return self.high is None or (v < self.high if self.high_open else v <= self.high)

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            lb, hb = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"a finite number in {lb}{_fmt(self.low)}, {_fmt(self.high)}{hb}"
        if self.low is not None:
            return f"a finite number {'>' if self.low_open else '>='} {_fmt(self.low)}"
        if self.high is not None:
            return f"a finite number {'<' if self.high_open else '<='} {_fmt(self.high)}"
        return "a finite number"

    def normalise(self, v: Any) -> float:
        return float(v)


@dataclass(frozen=True)
class Text:
    """A non-empty string (any string with ``empty``), one of ``choices`` when given."""

    choices: tuple[str, ...] | None = None
    empty: bool = False

    def accepts(self, v: Any) -> bool:
        if not isinstance(v, str) or (not v and not self.empty):
            return False
        return self.choices is None or v in self.choices

    def describe(self) -> str:
        if self.choices is not None:
            return ", ".join(self.choices)
        return "a string" if self.empty else "a non-empty string"

    def normalise(self, v: Any) -> str:
        return v


@dataclass(frozen=True)
class Boolean:
    def accepts(self, v: Any) -> bool:
        return isinstance(v, bool)

    def describe(self) -> str:
        return "true or false"

    def normalise(self, v: Any) -> bool:
        return v


Constraint = Integer | Real | Text | Boolean

#: Shared with the library's arguments (run_study's ``n_trials``, ``seed``): one declaration, two entry points.
N_TRIALS = Integer(low=1)
SEED = Integer(low=0)
STEPS = Integer(low=1)
BUDGET = Real(low=0.0)

_TOP: dict[str, Constraint] = {
    "name": Text(), "description": Text(empty=True), "model": Text(),
    "steps": STEPS, "n_trials": N_TRIALS, "seed": SEED,
}  # fmt: skip
_TABLES = ("dataset", "objective", "sampler", "pruner", "budgets", "search_space", "trial", "study")
TOP_KEYS = (*_TOP, *_TABLES, "plugins")
_DATASET: dict[str, Constraint] = {
    "name": Text(),
    "subsample": Integer(low=10),
    "val_fraction": Real(0.0, 1.0, low_open=True, high_open=True),
    "test_fraction": Real(0.0, 1.0, low_open=True, high_open=True),
}
_SAMPLER: dict[str, Constraint] = {"name": Text(SAMPLERS), "n_startup_trials": Integer(low=0)}
_TRIAL: dict[str, Constraint] = {
    "threads": Integer(low=1),
    "infer_batch_size": Integer(low=1),
    "infer_repeats": Integer(low=1),
    "max_rss_mb": Real(0.0, low_open=True),
    "max_wall_s": Real(0.0, low_open=True),
}
_FLOAT_RANGE: dict[str, Constraint] = {
    "type": Text(), "low": Real(), "high": Real(), "log": Boolean(), "step": Real(0.0, low_open=True),
}  # fmt: skip
_INT_RANGE: dict[str, Constraint] = {
    "type": Text(), "low": Integer(), "high": Integer(), "log": Boolean(), "step": Integer(low=1),
}  # fmt: skip
_CATEGORICAL_KEYS = ("type", "choices")
_PARAM_TYPES = ("float", "int", "categorical")


def check_argument(argument: str, value: Any, constraint: Constraint) -> Any:
    """Validate one library argument against its declared constraint; raise :class:`InvalidArgument`."""
    if not constraint.accepts(value):
        raise InvalidArgument(argument, value, constraint.describe())
    return constraint.normalise(value)


# ---------------------------------------------------------------------------------------------------------------
# What a study file holds


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
    plugins: tuple[str, ...] = ()  # modules imported first (they register models, datasets, metrics)
    #: ``[study] max_compute_s``: stop the search once its trials spent this many CPU seconds (None: no limit).
    max_compute_s: float | None = None


# ---------------------------------------------------------------------------------------------------------------
# The entry point's helpers: each raises _Err (a SpecError) with ``field: ...``; load_spec prefixes the file.


class _Err(SpecError):
    """A field of a study file is invalid (message ``field: ...``, without the file name)."""


def _join(table: str, key: str) -> str:
    return f"{table}.{key}" if table else key


def _table(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Err(invalid(field, value, "a table"))
    return value


def _no_unknown(table: dict[str, Any], allowed: tuple[str, ...], field: str) -> None:
    for key in table:
        if key not in allowed:
            raise _Err(f"{_join(field, key)}: unknown key; valid: {', '.join(allowed)}")


def _check(value: Any, constraint: Constraint, field: str) -> Any:
    if not constraint.accepts(value):
        raise _Err(invalid(field, value, constraint.describe()))
    return constraint.normalise(value)


def _required(table: dict[str, Any], key: str, constraint: Constraint, field: str) -> Any:
    if key not in table:
        raise _Err(f"{_join(field, key)}: missing (required); valid: {constraint.describe()}")
    return _check(table[key], constraint, _join(field, key))


def _fields(raw: Any, constraints: dict[str, Constraint], field: str) -> dict[str, Any]:
    """The given entries of a table, each checked against its declared constraint (unknown keys refused)."""
    table = _table(raw, field)
    _no_unknown(table, tuple(constraints), field)
    return {k: _check(table[k], c, _join(field, k)) for k, c in constraints.items() if k in table}


# ---------------------------------------------------------------------------------------------------------------
# Search space: the file's entries, checked against the model's declared space


@dataclass(frozen=True)
class Domain:
    """The values a model's hyperparameter takes, read from its declared space entry: a type (``int``,
    ``float``, ``str``, ``bool``, or ``any``) and a sign (``low`` 1: counts and sizes; 0: non-negative)."""

    kind: str
    low: int | None = None
    declared: str = ""

    def accepts(self, v: Any) -> bool:
        if isinstance(v, bool):
            return self.kind in ("bool", "any")
        if isinstance(v, str):
            return self.kind in ("str", "any")
        if isinstance(v, int):
            ok = self.kind in ("int", "float", "any")
        elif isinstance(v, float):
            ok = self.kind in ("float", "any") and math.isfinite(v)
        else:
            return False
        return ok and (self.low is None or v >= self.low)

    def describe(self) -> str:
        base = {"int": "an integer", "float": "a finite number", "str": "a string", "bool": "true or false",
                "any": "a string, a finite number or a boolean"}[self.kind]  # fmt: skip
        return base + (f" >= {self.low}" if self.low is not None else "")

    def range_types(self) -> tuple[str, ...]:
        return {"int": ("int", "categorical"), "float": ("float", "categorical")}.get(
            self.kind, _PARAM_TYPES if self.kind == "any" else ("categorical",)
        )


def _sign(values: list[Any], *, counts: bool) -> int | None:
    if counts and all(v >= 1 for v in values):
        return 1
    return 0 if all(v >= 0 for v in values) else None


def _value_kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, str):
        return "str"
    if isinstance(v, int):
        return "int"
    return "float" if isinstance(v, float) else "any"


def declared_domain(param: Param, model: str = "", name: str = "") -> Domain:
    """The domain of a model's declared parameter: its type, and its sign (an int parameter whose declared
    values are all >= 1 takes values >= 1; a parameter whose declared values are all >= 0 takes values >= 0).
    A fixed entry of ``SPACE`` declares only its type."""
    declared = f"{model} declares {name} as {param.describe()}" if model else ""
    if isinstance(param, IntParam):
        return Domain("int", _sign([param.low], counts=True), declared)
    if isinstance(param, FloatParam):
        return Domain("float", _sign([param.low], counts=False), declared)
    if isinstance(param, CategoricalParam):
        kinds = {_value_kind(c) for c in param.choices}
        if kinds == {"int"}:
            return Domain("int", _sign(list(param.choices), counts=True), declared)
        if kinds <= {"int", "float"}:
            return Domain("float", _sign(list(param.choices), counts=False), declared)
        return Domain(kinds.pop() if len(kinds) == 1 else "any", None, declared)
    return Domain(_value_kind(param.value), None, declared)


_ANY = Domain("any")


def _in_domain(value: Any, domain: Domain, field: str) -> None:
    if not domain.accepts(value):
        note = f" ({domain.declared})" if domain.declared else ""
        raise _Err(invalid(field, value, domain.describe() + note))


def _choice_group(v: Any) -> str:
    return "number" if _value_kind(v) in ("int", "float") else _value_kind(v)


def parse_param(value: Any, field: str, domain: Domain = _ANY) -> Param:
    """One search-space entry: a table with ``type`` (float/int/categorical), or a plain value (fixed), checked
    against the model's declared ``domain`` of that parameter."""
    if not isinstance(value, dict):
        if isinstance(value, (list, tuple)):
            raise _Err(invalid(field, value, 'a plain value, or {type = "categorical", choices = [...]} for a list'))
        _in_domain(value, domain, field)
        return FixedParam(value)
    kind = value.get("type")
    note = f" ({domain.declared})" if domain.declared else ""
    if kind not in _PARAM_TYPES or kind not in domain.range_types():
        raise _Err(invalid(f"{field}.type", kind, ", ".join(domain.range_types()) + note))
    if kind == "categorical":
        _no_unknown(value, _CATEGORICAL_KEYS, field)
        choices = value.get("choices")
        if not isinstance(choices, list) or not choices:
            raise _Err(invalid(f"{field}.choices", choices, "a non-empty list"))
        groups = {_choice_group(c) for c in choices}
        if not groups <= {"str", "number", "bool"} or len(groups) != 1:
            raise _Err(invalid(f"{field}.choices", choices, "choices of one type: all strings, all numbers or all "
                                                            "booleans"))  # fmt: skip
        for i, c in enumerate(choices):
            _in_domain(c, domain, f"{field}.choices[{i}]")
        distinct = {(type(c) is bool, c) for c in choices}
        if len(distinct) != len(choices):
            raise _Err(invalid(f"{field}.choices", choices, "distinct choices"))
        return CategoricalParam(tuple(choices))
    table = _fields(value, _FLOAT_RANGE if kind == "float" else _INT_RANGE, field)
    bound = _FLOAT_RANGE["low"] if kind == "float" else _INT_RANGE["low"]
    low, high = _required(value, "low", bound, field), _required(value, "high", bound, field)
    for key, v in (("low", low), ("high", high)):
        _in_domain(v, domain, f"{field}.{key}")
    log: bool = table.get("log", False)
    step: Any = table.get("step", None if kind == "float" else 1)
    shown = _Shown(f"low={_fmt(low)} high={_fmt(high)}")
    if low >= high:
        raise _Err(invalid(field, shown, "low < high"))
    if log and low <= 0:
        raise _Err(invalid(field, _Shown(f"log=true low={_fmt(low)}"), "low > 0 on a log scale"))
    if log and (step is not None if kind == "float" else step != 1):
        raise _Err(invalid(field, _Shown(f"log=true step={_fmt(step)}"), "either log or step, not both"))
    return FloatParam(low, high, log, step) if kind == "float" else IntParam(low, high, log, step)


def parse_search_space(model: str, raw: Any, field: str = "search_space") -> dict[str, Param]:
    """The model's default space, with the file's entries replacing or fixing parameters by name."""
    from sysprune.models import get_model

    space = dict(get_model(model).space)
    table = _table(raw, field)
    for name, value in table.items():
        if name not in space:
            raise _Err(f"{field}.{name}: unknown parameter for model {model}; valid: {', '.join(space)}")
        space[name] = parse_param(value, f"{field}.{name}", declared_domain(space[name], model, name))
    return space


# ---------------------------------------------------------------------------------------------------------------
# The other tables


def _objective(raw: Any) -> ObjectiveSpec:
    from sysprune.metrics._registry import METRICS

    table = _table(raw, "objective")
    _no_unknown(table, ("metric", "direction"), "objective")
    metric = table.get("metric", "val_accuracy")
    metrics = metric if isinstance(metric, list) else [metric]
    if not metrics or len(set(map(repr, metrics))) != len(metrics):
        raise _Err(invalid("objective.metric", metric, "a metric name, or a list of distinct metric names"))
    for m in metrics:
        if m not in METRICS:
            raise _Err(invalid("objective.metric", m, ", ".join(metric_names())))
    default_dirs = [METRICS[m].better for m in metrics]
    direction = table.get("direction", default_dirs if len(metrics) > 1 else default_dirs[0])
    directions = direction if isinstance(direction, list) else [direction]
    if len(directions) != len(metrics):
        raise _Err(invalid("objective.direction", direction, f"one direction per metric ({len(metrics)})"))
    for d in directions:
        _check(d, Text(DIRECTIONS), "objective.direction")
    return ObjectiveSpec(tuple(metrics), tuple(directions))


def _budgets(raw: Any) -> dict[str, float]:
    table = _table(raw, "budgets")
    for name in table:
        if name not in system_metric_names():
            raise _Err(f"budgets.{name}: unknown system metric; valid: {', '.join(system_metric_names())}")
    return {name: _check(value, BUDGET, f"budgets.{name}") for name, value in table.items()}


def _dataset(raw: Any) -> DatasetSpec:
    from sysprune.datasets._core import check_dataset_known, check_dataset_name

    if isinstance(raw, str):
        raw = {"name": raw}
    given = _fields(raw, _DATASET, "dataset")
    name = _required(raw, "name", _DATASET["name"], "dataset")
    try:
        check_dataset_name(name)
        check_dataset_known(name)
    except ValueError as e:
        raise _Err(f"dataset.name: {e}") from None
    d = DatasetSpec(name, given.get("subsample"), given.get("val_fraction", 0.2), given.get("test_fraction", 0.2))
    if d.val_fraction + d.test_fraction >= 1:
        raise _Err(invalid("dataset", _Shown(f"val_fraction + test_fraction = {d.val_fraction:g} + "
                                             f"{d.test_fraction:g}"), "a sum < 1"))  # fmt: skip
    if d.subsample is not None:  # the split's sizes as _data.prepare computes them (when the set has that many rows)
        n_val, n_test = round(d.val_fraction * d.subsample), round(d.test_fraction * d.subsample)
        if min(n_val, n_test, d.subsample - n_val - n_test) < 1:
            shown = f"subsample={d.subsample} val_fraction={d.val_fraction:g} test_fraction={d.test_fraction:g}"
            raise _Err(invalid("dataset", _Shown(shown), "at least one row for each of train, val and test"))
    return d


def _plugins(raw: Any) -> tuple[str, ...]:
    """Import the plugin modules (their registrations must precede the model/dataset/metric checks)."""
    from sysprune._plugins import import_plugins

    if not isinstance(raw, list) or not all(isinstance(m, str) for m in raw):
        raise _Err(invalid("plugins", raw, "a list of module names"))
    try:
        return import_plugins(raw)
    except ValueError as e:
        raise _Err(f"plugins: {e}") from None


def _sampler(raw: Any) -> SamplerSpec:
    return SamplerSpec(**_fields({"name": raw} if isinstance(raw, str) else raw, _SAMPLER, "sampler"))


def _warmups(policy: Any, params: dict[str, Any]) -> list[tuple[str, Any]]:
    """(field, value) of every ``n_warmup_steps`` in a raw [pruner] table (a combined policy's members too)."""
    found = [("pruner.n_warmup_steps", params["n_warmup_steps"])] if "n_warmup_steps" in params else []
    if policy == "combined":
        for member, sub in params.items():
            if isinstance(sub, dict) and "n_warmup_steps" in sub:
                found.append((f"pruner.{member}.n_warmup_steps", sub["n_warmup_steps"]))
    return found


def _pruner(raw: Any, steps: int, budgets: dict[str, float], objective: ObjectiveSpec) -> PrunerSpec:
    from sysprune.pruners._factory import validate_policy

    if isinstance(raw, str):
        raw = {"policy": raw}
    table = _table(raw, "pruner")
    policy = table.get("policy", "none")
    params = {k: v for k, v in table.items() if k != "policy"}
    for where, value in _warmups(policy, params):
        if Integer(low=0).accepts(value) and value >= steps:
            raise _Err(invalid(where, value, f"an integer in [0, {steps - 1}]",
                               why=f"the pruner could never act: the study has steps = {steps}"))  # fmt: skip
    try:
        policy, params = validate_policy(
            policy, params, steps=steps, budgets=budgets, directions=list(objective.directions)
        )
    except ValueError as e:
        raise _Err(f"pruner: {e}") from None
    return PrunerSpec(policy, params)


def _trial(raw: Any) -> TrialSpec:
    return TrialSpec(**_fields(raw, _TRIAL, "trial"))


def _study(raw: Any) -> float | None:
    """``[study]``: search-level settings; ``max_compute_s`` (CPU seconds of trial processes + worker)."""
    table = _table(raw, "study")
    _no_unknown(table, ("max_compute_s",), "study")
    value = table.get("max_compute_s")
    return None if value is None else _check(value, Real(low=0.0, low_open=True), "study.max_compute_s")


def parse_spec(raw: dict[str, Any], *, default_name: str = "study", source: str | None = None) -> StudySpec:
    """Validate a parsed TOML document (the one entry point). Raises :class:`SpecError` with a one-line
    ``field: ...`` message, prefixed by ``source`` (the file) when given."""
    try:
        return _parse(raw, default_name)
    except _Err as e:
        raise SpecError(f"{source}: {e}" if source else str(e)) from None


def _parse(raw: dict[str, Any], default_name: str) -> StudySpec:
    from sysprune.datasets._core import dataset_kind
    from sysprune.models import get_model

    _no_unknown(raw, TOP_KEYS, "")
    plugins = _plugins(raw.get("plugins", []))
    top = _fields({k: v for k, v in raw.items() if k in _TOP}, _TOP, "")
    model = _required(raw, "model", _TOP["model"], "")
    if "dataset" not in raw:
        raise _Err("dataset: missing (required); valid: a dataset name or a [dataset] table")
    try:
        module = get_model(model)
    except ValueError as e:
        raise _Err(f"model: {e}") from None
    dataset = _dataset(raw["dataset"])
    kind = dataset_kind(dataset.name)
    if kind not in module.inputs:
        raise _Err(f"dataset.name: model {model} needs {'/'.join(sorted(module.inputs))} data; {dataset.name} is {kind}")
    steps = top.get("steps", 10)
    objective = _objective(raw.get("objective", {}))
    budgets = _budgets(raw.get("budgets", {}))
    return StudySpec(
        name=top.get("name", default_name),
        model=model,
        dataset=dataset,
        objective=objective,
        steps=steps,
        n_trials=top.get("n_trials", 20),
        seed=top.get("seed", 0),
        sampler=_sampler(raw.get("sampler", {})),
        pruner=_pruner(raw.get("pruner", {}), steps, budgets, objective),
        budgets=budgets,
        search_space=parse_search_space(model, raw.get("search_space", {})),
        trial=_trial(raw.get("trial", {})),
        description=top.get("description", ""),
        plugins=plugins,
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
    return replace(parse_spec(raw, default_name=p.stem, source=str(p)), path=str(p))


def list_specs(directory: str | Path = "studies") -> list[Path]:
    return sorted(Path(directory).glob("*.toml"))


# ---------------------------------------------------------------------------------------------------------------
# Study identity: what a resumed study must share with the run that created it

#: Compared on resume (dotted paths below these name what differs). Safe to change on resume, and recorded in the
#: study's run history instead: ``n_trials``, ``sampler``, ``name``, ``description``.
IDENTITY_KEYS = ("model", "dataset", "objective", "steps", "seed", "budgets", "pruner", "search_space", "trial")


def param_identity(p: Param) -> dict[str, Any]:
    """A search-space entry as plain data: type, bounds, log, step, choices (or the fixed value)."""
    if isinstance(p, FloatParam):
        return {"type": "float", "low": float(p.low), "high": float(p.high), "log": bool(p.log),
                "step": None if p.step is None else float(p.step)}  # fmt: skip
    if isinstance(p, IntParam):
        return {"type": "int", "low": int(p.low), "high": int(p.high), "log": bool(p.log), "step": int(p.step)}
    if isinstance(p, CategoricalParam):
        return {"type": "categorical", "choices": list(p.choices)}
    return {"type": "fixed", "value": p.value}


def _plain(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value, default=str))


def study_identity(spec: StudySpec, seed: int | None = None) -> dict[str, Any]:
    """The stored definition of a study run with ``seed`` (default: the file's): JSON-ready plain data."""
    return _plain({
        "version": IDENTITY_VERSION,
        "model": spec.model,
        "dataset": asdict(spec.dataset),
        "objective": asdict(spec.objective),
        "steps": spec.steps,
        "seed": spec.seed if seed is None else seed,
        "budgets": dict(spec.budgets),
        "pruner": {"policy": spec.pruner.policy, "params": spec.pruner.params},
        "search_space": {name: param_identity(p) for name, p in spec.search_space.items()},
        "trial": asdict(spec.trial),
    })  # fmt: skip


_ABSENT = object()


def _flatten(value: Any, path: str, out: dict[str, Any]) -> dict[str, Any]:
    if isinstance(value, Mapping):  # an empty table has no leaves: {} -> {"wall_s": 5} reads budgets.wall_s
        for k, v in value.items():
            _flatten(v, f"{path}.{k}", out)
    else:
        out[path] = value
    return out


def identity_diff(stored: Mapping[str, Any], current: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(field, stored value, current value)`` for every leaf that differs, over the keys ``stored`` has of
    :data:`IDENTITY_KEYS` (a study written before a key was stored is not judged on it)."""
    diffs = []
    for key in IDENTITY_KEYS:
        if key not in stored:
            continue
        old = _flatten(_plain(stored[key]), key, {})
        new = _flatten(_plain(current.get(key)), key, {})
        for path in dict.fromkeys([*old, *new]):
            o, n = old.get(path, _ABSENT), new.get(path, _ABSENT)
            if _show(o) != _show(n):  # JSON spelling: true != 1, 1 != 1.0
                diffs.append((path, o, n))
    return diffs


def describe_diff(diffs: list[tuple[str, Any, Any]]) -> str:
    """``seed 0 -> 7; search_space.lr.log false -> true`` (JSON spelling, as in the stored identity)."""
    return "; ".join(f"{path} {_show(o)} -> {_show(n)}" for path, o, n in diffs)


def _show(v: Any) -> str:
    import json

    return "(absent)" if v is _ABSENT else json.dumps(v, sort_keys=True)
