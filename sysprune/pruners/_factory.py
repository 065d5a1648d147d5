"""Pruning policies as named in study files: sysprune's own registrations, and the two calls that read the
registry for a study — :func:`validate_policy` (the ``[pruner]`` table checked and completed) and
:func:`build_pruner` (the Optuna pruner).

Policies (``[pruner] policy = "..."``; every other key of the table is a parameter, unknown keys are errors; a
policy's parameters are its pruner's declared constraints, ``_parameter_constraints``, and their defaults the
pruner's own unless said otherwise):

``none``       no pruning.
``median``     :class:`optuna.pruners.MedianPruner` — ``n_startup_trials`` (5), ``n_warmup_steps`` (0),
               ``interval_steps`` (1).
``hyperband``  :class:`optuna.pruners.HyperbandPruner` — ``min_resource`` (1), ``max_resource`` (the study's
               ``steps``, or ``"auto"``), ``reduction_factor`` (3), ``bootstrap_count`` (0).
``budget``     :class:`sysprune.ResourceBudgetPruner` on the study's ``[budgets]`` — ``predict`` (true),
               ``n_warmup_steps`` (0), ``confidence`` (0.95); ``max_steps`` is the study's ``steps``.
``curve``      :class:`sysprune.CurvePruner` — ``n_warmup_steps`` (3, at most ``steps - 1``), ``interval_steps``
               (1), ``probability`` (0.05), ``n_startup_trials`` (1), ``families`` (["pow", "exp", "log"]);
               ``max_steps`` = ``steps``.
``threshold``  :class:`sysprune.ThresholdBudgetPruner` on the study's ``[budgets]`` (no parameters): prunes when one
               value measured at a training step (step >= 0) is over its budget; no forecast, no noise allowance,
               no decision on the pre-training probe — the baseline of Ray Tune's stoppers and hand-written checks.
``plain``      no pruning, and the sampler is not told about the budgets: the trials carry no Optuna constraints
               (the runner keeps them where only the analyses read them) — a plain Optuna study, the "no pruning"
               of a user without sysprune. A baseline for ``sysprune compare``.
``precheck``   :class:`sysprune.pruners.PrecheckPruner` on the study's ``[budgets]`` (no parameters), with the
               sampler not told about budgets, as ``plain``: one reading of each budgeted structural metric at the
               pre-training probe, nothing later — the hand-written pre-check of a savvy plain-Optuna user.
``combined``   :class:`sysprune.CombinedPruner` — ``members`` (two or more distinct names of the policies that may
               be members: budget, curve, median, hyperband; the budget ones first), and one optional sub-table per
               member with that member's parameters, e.g. ``[pruner.curve] probability = 0.1``.

A policy of one's own is one :func:`sysprune.register_policy` call in a plugin module (docs/extending.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna

from sysprune._validation import AnyOf, Exactly, Integer, InvalidArgument, ListOf, Text, check, join, unknown_key
from sysprune.exceptions import SpecError
from sysprune.pruners._budget import ResourceBudgetPruner
from sysprune.pruners._combined import CombinedPruner
from sysprune.pruners._curve import CurvePruner
from sysprune.pruners._precheck import PrecheckPruner
from sysprune.pruners._registry import (
    POLICY_NAME,
    Policy,
    add_policy,
    get_policy,
    member_names,
    no_budgets,
    policy_names,
    register_policy,
)
from sysprune.pruners._threshold import ThresholdBudgetPruner

# ---------------------------------------------------------------------------------------------------------------
# Reading the registry for a study


def validate_policy(
    policy: Any,
    params: Mapping[str, Any],
    *,
    steps: int,
    budgets: Mapping[str, float] | None = None,
    directions: Sequence[str] | None = None,
    where: str = "pruner",
) -> tuple[str, dict[str, Any]]:
    """Check a policy name and its parameters (a study file's ``[pruner]`` table); return them normalised.
    :class:`~sysprune.exceptions.InvalidArgument` names a bad value (``pruner.probability: value 2.0 is invalid;
    valid: ...``); :class:`~sysprune.exceptions.SpecError` a policy the study cannot run.

    With ``budgets`` (the study's validated ``[budgets]``), a policy that needs budgets (or a member of it that
    does) must have at least one. With ``directions`` (one per objective), a multi-objective study may only use
    policies that do not judge learning curves: those need Optuna's intermediate values, which exist for a single
    objective only.
    """
    name = check(policy, POLICY_NAME, join(where, "policy"))
    registered = get_policy(name)
    params = registered.validate(dict(params), steps, where)
    parts = registered.parts(params)
    if budgets is not None and not budgets:
        for part in parts:
            if get_policy(part).needs_budgets:
                raise SpecError(f"{where}: {no_budgets(part)}")
    if directions is not None and len(directions) > 1:
        bad = [p for p in parts if get_policy(p).judges_curves]
        if bad:
            fine = ", ".join(repr(p) for p in policy_names() if not get_policy(p).judges_curves and p != "combined")
            raise SpecError(
                f"{where}: policy {name!r} uses {', '.join(bad)}, which needs a single-objective study; this study "
                f"has {len(directions)} objectives (use one of {fine})"
            )
    return name, params


def build_pruner(
    policy: str, params: Mapping[str, Any], *, budgets: Mapping[str, float], steps: int
) -> optuna.pruners.BasePruner:
    """The Optuna pruner for a validated policy. SpecError if a policy that needs budgets has none."""
    return get_policy(policy).build(params, budgets, steps)


def budget_bound(policy: str, params: Mapping[str, Any] | None = None) -> bool:
    """Whether ``policy`` (with ``params``: a ``combined``'s members) means anything only with budgets: it, or a
    member, prunes on them, or it is a plain-Optuna baseline (without budgets no different from ``none``)."""
    parts = get_policy(policy).parts(params or {}) or (policy,)
    return any(get_policy(p).needs_budgets or get_policy(p).plain for p in parts)


# ---------------------------------------------------------------------------------------------------------------
# combined: its parameters are other policies' tables


@dataclass(frozen=True, eq=False)
class CombinedPolicy(Policy):
    """``combined``: ``members`` names two or more member policies, and each may have a sub-table of its own."""

    def validate(self, params: Mapping[str, Any], steps: int, where: str = "pruner") -> dict[str, Any]:
        members_of = ListOf(Text(member_names), min_len=2, distinct=True)
        allowed = ("members", *member_names())
        for key in params:
            if key not in allowed:
                raise unknown_key(join(where, str(key)), allowed)
        if "members" not in params:
            raise InvalidArgument(join(where, "members"), None, members_of.describe(), problem="missing (required)")
        members: list[str] = check(params["members"], members_of, join(where, "members"))
        budget_first = sorted(members, key=lambda m: not get_policy(m).needs_budgets)
        if members != budget_first:
            raise InvalidArgument(
                join(where, "members"),
                members,
                f"the members that prune on budgets first ({', '.join(budget_first)})",
                why="a budget breach makes a trial infeasible and must win over a learning-curve prune",
            )
        out: dict[str, Any] = {"members": members}
        for key in member_names():
            if key in params and key not in members:
                raise InvalidArgument(
                    join(where, key),
                    params[key],
                    f"parameters of a member ({', '.join(members)})",
                    why=f"{key} is not in members",
                )
        for m in members:
            out[m] = get_policy(m).validate(params.get(m, {}), steps, join(where, m))
        return out

    def build(self, params: Mapping[str, Any], budgets: Mapping[str, float], steps: int) -> optuna.pruners.BasePruner:
        return CombinedPruner(*(get_policy(m).build(params[m], budgets, steps) for m in params["members"]))

    def parts(self, params: Mapping[str, Any]) -> tuple[str, ...]:
        members = params.get("members")
        return tuple(members) if isinstance(members, (list, tuple)) else ()


# ---------------------------------------------------------------------------------------------------------------
# sysprune's own policies, registered as a plugin's are (the order is the order of every list of policies)


def _hyperband_checks(params: dict[str, Any], steps: int, where: str) -> None:
    max_resource = params["max_resource"]
    if max_resource == "auto":
        if params["bootstrap_count"] > 0:
            raise InvalidArgument(
                join(where, "bootstrap_count"),
                params["bootstrap_count"],
                '0 with max_resource = "auto"',
                why="a bootstrap needs an integer max_resource",
            )
        return
    if max_resource > steps:
        raise InvalidArgument(
            join(where, "max_resource"), max_resource, f'an integer in [1, {steps}] (the study\'s steps) or "auto"'
        )
    if params["min_resource"] > max_resource:
        raise InvalidArgument(
            join(where, "min_resource"), params["min_resource"], f"an integer in [1, {max_resource}] (max_resource)"
        )


register_policy("none", optuna.pruners.NopPruner, reference="none")
register_policy(
    "median",
    optuna.pruners.MedianPruner,
    judges_curves=True,
    member=True,
    reference="builtin",
    parameters={"n_startup_trials": Integer(low=0), "n_warmup_steps": Integer(low=0), "interval_steps": Integer(low=1)},
)
register_policy(
    "hyperband",
    optuna.pruners.HyperbandPruner,
    judges_curves=True,
    member=True,
    reference="builtin",
    parameters={
        "min_resource": Integer(low=1),
        "max_resource": AnyOf((Integer(low=1), Exactly("auto"))),
        "reduction_factor": Integer(low=2),
        "bootstrap_count": Integer(low=0),
    },
    defaults=lambda steps: {"max_resource": steps},
    cross_check=_hyperband_checks,
)
register_policy("budget", ResourceBudgetPruner, needs_budgets=True, member=True)
register_policy(
    "curve", CurvePruner, judges_curves=True, member=True, defaults=lambda steps: {"n_warmup_steps": min(1, steps - 1)}
)
add_policy(CombinedPolicy("combined", CombinedPruner))
register_policy("threshold", ThresholdBudgetPruner, needs_budgets=True, reference="threshold")
register_policy("plain", optuna.pruners.NopPruner, plain=True, reference="plain")
register_policy("precheck", PrecheckPruner, needs_budgets=True, plain=True, reference="precheck")
