"""Study files (TOML) → :class:`StudySpec`, with every field validated once, before anything is written.

Validation follows scikit-learn's declared constraints: each field's constraint is declared once in a small table
(``DATASET``, ``SAMPLER``, ``TRIAL``, ...), checked at one entry point (:func:`parse_spec`), and every failure
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

import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

from sysprune._plugins import import_plugins
from sysprune._validation import Integer, Real, Shown, Text, invalid
from sysprune.datasets import check_dataset_known, check_dataset_name, dataset_kind
from sysprune.exceptions import SpecError
from sysprune.metrics._registry import METRICS, metric_names, system_metric_names
from sysprune.models import get_model
from sysprune.pruners._factory import validate_policy
from sysprune.spec._fields import (
    BUDGET,
    DATASET,
    DIRECTIONS,
    SAMPLER,
    TOP,
    TOP_KEYS,
    TRIAL,
    Err,
    check,
    fields,
    no_unknown,
    required,
    table_of,
)
from sysprune.spec._model import DatasetSpec, ObjectiveSpec, PrunerSpec, SamplerSpec, StudySpec, TrialSpec
from sysprune.spec._search_space import parse_search_space

# ---------------------------------------------------------------------------------------------------------------
# The other tables


def _objective(raw: Any) -> ObjectiveSpec:

    table = table_of(raw, "objective")
    no_unknown(table, ("metric", "direction"), "objective")
    metric = table.get("metric", "val_accuracy")
    metrics = metric if isinstance(metric, list) else [metric]
    if not metrics or len(set(map(repr, metrics))) != len(metrics):
        raise Err(invalid("objective.metric", metric, "a metric name, or a list of distinct metric names"))
    for m in metrics:
        if m not in METRICS:
            raise Err(invalid("objective.metric", m, ", ".join(metric_names())))
    default_dirs = [METRICS[m].better for m in metrics]
    direction = table.get("direction", default_dirs if len(metrics) > 1 else default_dirs[0])
    directions = direction if isinstance(direction, list) else [direction]
    if len(directions) != len(metrics):
        raise Err(invalid("objective.direction", direction, f"one direction per metric ({len(metrics)})"))
    for d in directions:
        check(d, Text(DIRECTIONS), "objective.direction")
    return ObjectiveSpec(tuple(metrics), tuple(directions))


def _budgets(raw: Any) -> dict[str, float]:
    table = table_of(raw, "budgets")
    for name in table:
        if name not in system_metric_names():
            raise Err(f"budgets.{name}: unknown system metric; valid: {', '.join(system_metric_names())}")
    return {name: check(value, BUDGET, f"budgets.{name}") for name, value in table.items()}


def _dataset(raw: Any) -> DatasetSpec:

    if isinstance(raw, str):
        raw = {"name": raw}
    given = fields(raw, DATASET, "dataset")
    name = required(raw, "name", DATASET["name"], "dataset")
    try:
        check_dataset_name(name)
        check_dataset_known(name)
    except ValueError as e:
        raise Err(f"dataset.name: {e}") from None
    d = DatasetSpec(name, given.get("subsample"), given.get("val_fraction", 0.2), given.get("test_fraction", 0.2))
    if d.val_fraction + d.test_fraction >= 1:
        raise Err(
            invalid(
                "dataset",
                Shown(f"val_fraction + test_fraction = {d.val_fraction:g} + {d.test_fraction:g}"),
                "a sum < 1",
            )
        )
    if d.subsample is not None:  # the split's sizes as datasets.prepare computes them (when the set has that many rows)
        n_val, n_test = round(d.val_fraction * d.subsample), round(d.test_fraction * d.subsample)
        if min(n_val, n_test, d.subsample - n_val - n_test) < 1:
            shown = f"subsample={d.subsample} val_fraction={d.val_fraction:g} test_fraction={d.test_fraction:g}"
            raise Err(invalid("dataset", Shown(shown), "at least one row for each of train, val and test"))
    return d


def _plugins(raw: Any) -> tuple[str, ...]:
    """Import the plugin modules (their registrations must precede the model/dataset/metric checks)."""

    if not isinstance(raw, list) or not all(isinstance(m, str) for m in raw):
        raise Err(invalid("plugins", raw, "a list of module names"))
    try:
        return import_plugins(raw)
    except ValueError as e:
        raise Err(f"plugins: {e}") from None


def _sampler(raw: Any) -> SamplerSpec:
    return SamplerSpec(**fields({"name": raw} if isinstance(raw, str) else raw, SAMPLER, "sampler"))


def _warmups(policy: Any, params: dict[str, Any]) -> list[tuple[str, Any]]:
    """(field, value) of every ``n_warmup_steps`` in a raw [pruner] table (a combined policy's members too)."""
    found = [("pruner.n_warmup_steps", params["n_warmup_steps"])] if "n_warmup_steps" in params else []
    if policy == "combined":
        for member, sub in params.items():
            if isinstance(sub, dict) and "n_warmup_steps" in sub:
                found.append((f"pruner.{member}.n_warmup_steps", sub["n_warmup_steps"]))
    return found


def _pruner(raw: Any, steps: int, budgets: dict[str, float], objective: ObjectiveSpec) -> PrunerSpec:

    if isinstance(raw, str):
        raw = {"policy": raw}
    table = table_of(raw, "pruner")
    policy = table.get("policy", "none")
    params = {k: v for k, v in table.items() if k != "policy"}
    for where, value in _warmups(policy, params):
        if Integer(low=0).accepts(value) and value >= steps:
            raise Err(
                invalid(
                    where,
                    value,
                    f"an integer in [0, {steps - 1}]",
                    why=f"the pruner could never act: the study has steps = {steps}",
                )
            )
    try:
        policy, params = validate_policy(
            policy, params, steps=steps, budgets=budgets, directions=list(objective.directions)
        )
    except ValueError as e:
        raise Err(f"pruner: {e}") from None
    return PrunerSpec(policy, params)


def _trial(raw: Any) -> TrialSpec:
    return TrialSpec(**fields(raw, TRIAL, "trial"))


def _study(raw: Any) -> float | None:
    """``[study]``: search-level settings; ``max_compute_s`` (CPU seconds of trial processes + worker)."""
    table = table_of(raw, "study")
    no_unknown(table, ("max_compute_s",), "study")
    value = table.get("max_compute_s")
    return None if value is None else check(value, Real(low=0.0, low_open=True), "study.max_compute_s")


def parse_spec(raw: dict[str, Any], *, default_name: str = "study", source: str | None = None) -> StudySpec:
    """Validate a parsed TOML document (the one entry point). Raises :class:`SpecError` with a one-line
    ``field: ...`` message, prefixed by ``source`` (the file) when given."""
    try:
        return _parse(raw, default_name)
    except Err as e:
        raise SpecError(f"{source}: {e}" if source else str(e)) from None


def _parse(raw: dict[str, Any], default_name: str) -> StudySpec:

    no_unknown(raw, TOP_KEYS, "")
    plugins = _plugins(raw.get("plugins", []))
    top = fields({k: v for k, v in raw.items() if k in TOP}, TOP, "")
    model = required(raw, "model", TOP["model"], "")
    if "dataset" not in raw:
        raise Err("dataset: missing (required); valid: a dataset name or a [dataset] table")
    try:
        module = get_model(model)
    except ValueError as e:
        raise Err(f"model: {e}") from None
    dataset = _dataset(raw["dataset"])
    kind = dataset_kind(dataset.name)
    if kind not in module.inputs:
        raise Err(f"dataset.name: model {model} needs {'/'.join(sorted(module.inputs))} data; {dataset.name} is {kind}")
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
