"""Study files (TOML) → :class:`StudySpec`, with every field validated once, before anything is written.

Validation follows scikit-learn's declared constraints: each field's constraint is declared once in a small table
(``DATASET``, ``SAMPLER``, ``TRIAL``, ...), checked at one entry point (:func:`parse_spec`), and every failure
is one line in one format::

    studies/x.toml: budgets.infer_ms: value inf is invalid; valid: a finite number >= 0

(``file: field: value X is invalid; valid: ...``; an unknown key reads ``field: unknown key; valid: ...``).
A hyperparameter given in ``[search_space]`` is also checked against the model's declared space (``SPACE``): the
same type, and the same sign (see :func:`declared_domain`). The ``[pruner]`` table is checked by the policy
registry (:func:`sysprune.pruners.validate_policy`) against the pruner's own declared constraints, so a value
reads the same from a study file and from the pruner's constructor. Library arguments use the same constraints
through :func:`check_argument` and raise :class:`InvalidArgument`, which names the *argument* (``n_trials``);
the command line renders it with its own flag (``--n-trials``). Nothing here touches a database or imports
torch.

:func:`study_identity` is the stored definition of a study: everything that changes the data or the meaning of a
recorded value. The runner refuses to resume a study whose identity differs (see :func:`identity_diff`).
"""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

from sysprune._plugins import import_plugins
from sysprune._validation import InvalidArgument, Real, Shown, Text, check, check_table, invalid
from sysprune.datasets import check_dataset_known, check_dataset_name, dataset_kind
from sysprune.exceptions import SpecError
from sysprune.metrics._registry import METRICS, metric_names
from sysprune.models import get_model
from sysprune.pruners import check_budgets, validate_policy
from sysprune.spec._fields import (
    STUDY_NAME,
    DATASET,
    DIRECTIONS,
    SAMPLER,
    TOP,
    TOP_KEYS,
    TRIAL,
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
        raise InvalidArgument("objective.metric", metric, "a metric name, or a list of distinct metric names")
    for m in metrics:
        if m not in METRICS:
            raise InvalidArgument("objective.metric", m, ", ".join(metric_names()))
    default_dirs = [METRICS[m].better for m in metrics]
    direction = table.get("direction", default_dirs if len(metrics) > 1 else default_dirs[0])
    directions = direction if isinstance(direction, list) else [direction]
    if len(directions) != len(metrics):
        raise InvalidArgument("objective.direction", direction, f"one direction per metric ({len(metrics)})")
    for d in directions:
        check(d, Text(DIRECTIONS), "objective.direction")
    return ObjectiveSpec(tuple(metrics), tuple(directions))


def _budgets(raw: Any) -> dict[str, float]:
    """``[budgets]``: checked by the pruners' own :func:`~sysprune.pruners.check_budgets` (one declaration)."""
    return check_budgets(raw)


def _dataset(raw: Any) -> DatasetSpec:

    if isinstance(raw, str):
        raw = {"name": raw}
    given = check_table(raw, DATASET, "dataset")
    name = required(raw, "name", DATASET["name"], "dataset")
    try:
        check_dataset_name(name)
        check_dataset_known(name)
    except ValueError as e:
        raise SpecError(f"dataset.name: {e}") from None
    d = DatasetSpec(name, given.get("subsample"), given.get("val_fraction", 0.2), given.get("test_fraction", 0.2))
    if d.val_fraction + d.test_fraction >= 1:
        shown = f"val_fraction + test_fraction = {d.val_fraction:g} + {d.test_fraction:g}"
        raise invalid("dataset", Shown(shown), "a sum < 1")
    if d.subsample is not None:  # the split's sizes as datasets.prepare computes them (when the set has that many rows)
        n_val, n_test = round(d.val_fraction * d.subsample), round(d.test_fraction * d.subsample)
        if min(n_val, n_test, d.subsample - n_val - n_test) < 1:
            shown = f"subsample={d.subsample} val_fraction={d.val_fraction:g} test_fraction={d.test_fraction:g}"
            raise invalid("dataset", Shown(shown), "at least one row for each of train, val and test")
    return d


def _plugins(raw: Any) -> tuple[str, ...]:
    """Import the plugin modules (their registrations must precede the model/dataset/metric checks)."""

    if not isinstance(raw, list) or not all(isinstance(m, str) for m in raw):
        raise InvalidArgument("plugins", raw, "a list of module names")
    try:
        return import_plugins(raw)
    except ValueError as e:  # PluginError; or a plugin's own registration refused (e.g. a name taken)
        raise SpecError(f"plugins: {e}") from None


def _sampler(raw: Any) -> SamplerSpec:
    return SamplerSpec(**check_table({"name": raw} if isinstance(raw, str) else raw, SAMPLER, "sampler"))


def _pruner(raw: Any, steps: int, budgets: dict[str, float], objective: ObjectiveSpec) -> PrunerSpec:
    """``[pruner]``: the policy registry checks it (unknown keys, each parameter's declared constraint, a warm-up
    shorter than the study, budgets for a policy that needs them, one objective for one that judges curves)."""
    if isinstance(raw, str):
        raw = {"policy": raw}
    table = table_of(raw, "pruner")
    params = {k: v for k, v in table.items() if k != "policy"}
    policy, params = validate_policy(
        table.get("policy", "none"), params, steps=steps, budgets=budgets, directions=list(objective.directions)
    )
    return PrunerSpec(policy, params)


def _trial(raw: Any) -> TrialSpec:
    return TrialSpec(**check_table(raw, TRIAL, "trial"))


def _study(raw: Any) -> float | None:
    """``[study]``: search-level settings; ``max_compute_s`` (CPU seconds of trial processes + worker)."""
    table = table_of(raw, "study")
    no_unknown(table, ("max_compute_s",), "study")
    value = table.get("max_compute_s")
    return None if value is None else check(value, Real(low=0.0, low_open=True), "study.max_compute_s")


def parse_spec(raw: dict[str, Any], *, default_name: str = "study", source: str | None = None) -> StudySpec:
    """Validate a parsed TOML document (the one entry point). Raises :class:`SpecError` with a one-line
    ``field: ...`` message (:class:`InvalidArgument` for an invalid value), prefixed by ``source`` (the file) when
    given."""
    try:
        return _parse(raw, default_name)
    except SpecError as e:
        if source is None:
            raise
        raise e.within(source) from None


def _parse(raw: dict[str, Any], default_name: str) -> StudySpec:

    no_unknown(raw, TOP_KEYS, "")
    plugins = _plugins(raw.get("plugins", []))
    top = check_table({k: v for k, v in raw.items() if k in TOP}, TOP, "")
    model = required(raw, "model", TOP["model"], "")
    if "dataset" not in raw:
        raise InvalidArgument("dataset", None, "a dataset name or a [dataset] table", problem="missing (required)")
    try:
        module = get_model(model)
    except ValueError as e:
        raise SpecError(f"model: {e}") from None
    dataset = _dataset(raw["dataset"])
    kind = dataset_kind(dataset.name)
    if kind not in module.inputs:
        raise SpecError(
            f"dataset.name: model {model} needs {'/'.join(sorted(module.inputs))} data; {dataset.name} is {kind}"
        )
    steps = top.get("steps", 10)
    objective = _objective(raw.get("objective", {}))
    budgets = _budgets(raw.get("budgets", {}))
    return StudySpec(
        name=top.get("name") or check(default_name, STUDY_NAME, "name"),
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
