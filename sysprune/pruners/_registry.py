"""The policy registry: a pruning policy that study files name (``[pruner] policy = "..."``) is one registration.

A registration (:func:`register_policy`) says everything the rest of sysprune asks about a policy — its pruner,
its ``[pruner]`` parameters, whether it needs the study's budgets, whether it is a plain-Optuna baseline, whether it
judges learning curves, whether it may be a member of ``combined``, and which reference of ``sysprune compare`` it
is — so the factory (:mod:`sysprune.pruners._factory`), the runner, ``compare``, ``replay``, the results plan and
the exports read this one table. sysprune's own policies register exactly as a plugin module's do.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna

from sysprune._validation import Constraint, InvalidArgument, Matches, Text, check, check_table, join
from sysprune._plugins import check_registrant
from sysprune.exceptions import SpecError

#: Constructor arguments the study supplies itself (not ``[pruner]`` keys): its budgets and its steps.
STUDY_ARGUMENTS = ("budgets", "max_steps")
#: A ``[pruner]`` parameter of this name is a warm-up, which must be shorter than the study.
WARMUP = "n_warmup_steps"

_NAME_TEXT = Matches(r"[a-z][a-z0-9_]*", "a name of lower-case letters, digits and '_'")

Defaults = Callable[[int], Mapping[str, Any]]
CrossCheck = Callable[[dict[str, Any], int, str], None]


@dataclass(frozen=True, eq=False)
class Policy:
    """A registered pruning policy (see :func:`register_policy`)."""

    name: str
    pruner: Callable[..., optuna.pruners.BasePruner]
    needs_budgets: bool = False
    plain: bool = False
    judges_curves: bool = False
    member: bool = False
    reference: str | None = None
    parameters: Mapping[str, Constraint] = field(default_factory=dict)
    defaults: Defaults | None = None
    cross_check: CrossCheck | None = None

    def takes(self) -> frozenset[str]:
        """The names of the pruner's arguments."""
        return _arguments(self.pruner)

    def validate(self, params: Mapping[str, Any], steps: int, where: str = "pruner") -> dict[str, Any]:
        """The ``[pruner]`` parameters checked and completed with their defaults, in the declared order.

        Each key must be declared (``pruner.x: unknown key; valid: ...``) and valid for its constraint; a key left
        out takes the study's default (:attr:`defaults`, from its ``steps``) or else the pruner's own default; a
        warm-up (``n_warmup_steps``) must be shorter than the study; :attr:`cross_check` then checks the rules
        between parameters."""
        given = check_table(params, self.parameters, where)
        defaults = {**_signature_defaults(self.pruner), **(self.defaults(steps) if self.defaults else {})}
        out = {}
        for key, constraint in self.parameters.items():
            if key in given:
                out[key] = given[key]
            elif key in defaults:  # normalised as a given value would be (a tuple default is a list)
                default = defaults[key]
                out[key] = constraint.normalise(default) if constraint.accepts(default) else default
            else:
                raise InvalidArgument(join(where, key), None, constraint.describe(), problem="missing (required)")
        if WARMUP in out and isinstance(out[WARMUP], int) and out[WARMUP] >= steps:
            raise InvalidArgument(
                join(where, WARMUP),
                out[WARMUP],
                f"an integer in [0, {steps - 1}]",
                why=f"the pruner could never act: the study has steps = {steps}",
            )
        if self.cross_check is not None:
            self.cross_check(out, steps, where)
        return out

    def build(self, params: Mapping[str, Any], budgets: Mapping[str, float], steps: int) -> optuna.pruners.BasePruner:
        """The pruner for validated ``params``: the study's ``budgets`` and ``steps`` (as ``max_steps``) go to a
        pruner that takes them."""
        if self.needs_budgets and not budgets:
            raise SpecError(no_budgets(self.name))
        study = {"budgets": dict(budgets), "max_steps": steps}
        kwargs = {k: v for k, v in study.items() if k in self.takes()}
        return self.pruner(**kwargs, **params)

    def parts(self, params: Mapping[str, Any]) -> tuple[str, ...]:
        """The policies a study under this one runs (itself; ``combined``: its members)."""
        return (self.name,)


def no_budgets(policy: str) -> str:
    return f"policy {policy!r} needs a [budgets] table naming at least one metric"


def _arguments(fn: Callable[..., Any]) -> frozenset[str]:
    try:
        return frozenset(inspect.signature(fn).parameters)
    except (TypeError, ValueError):  # a builtin without a signature
        return frozenset()


def _signature_defaults(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


_POLICIES: dict[str, Policy] = {}


def add_policy(policy: Policy) -> Policy:
    """Register ``policy`` (a :class:`Policy` or a subclass with its own validation, as ``combined``). Registering
    the same pruner under its name again (a module imported twice) replaces it; another pruner under a registered
    name is refused."""
    known = _POLICIES.get(policy.name)
    check_registrant("register_policy", policy.name, known.pruner if known is not None else None, policy.pruner)
    _POLICIES[policy.name] = policy
    return policy


def register_policy(
    name: str,
    pruner: Callable[..., optuna.pruners.BasePruner],
    *,
    needs_budgets: bool = False,
    plain: bool = False,
    judges_curves: bool = False,
    member: bool = False,
    reference: str | None = None,
    parameters: Mapping[str, Constraint] | None = None,
    defaults: Defaults | None = None,
    cross_check: CrossCheck | None = None,
) -> Policy:
    """Make pruning policy ``name`` usable in study files (``[pruner] policy = "<name>"``), ``sysprune compare
    --policies`` and ``sysprune replay --policies``. Call it in a plugin module (``plugins = ["my_policy"]``).

    Args:
        name: the name study files use (lower-case letters, digits and ``_``).
        pruner: an Optuna pruner class (or a function returning a pruner). It is called with the ``[pruner]``
            table's parameters as keyword arguments, plus ``budgets`` (the study's ``[budgets]``) and ``max_steps``
            (the study's ``steps``) if it takes arguments of those names.
        needs_budgets: the policy prunes on the study's budgets: a study without ``[budgets]`` is refused.
        plain: a plain-Optuna baseline: its trials' budget constraints are kept from the sampler (as ``plain``).
        judges_curves: it reads Optuna's intermediate values (the learning curve): single-objective studies only.
        member: it may be a member of ``combined`` (``members = ["budget", "<name>"]``).
        reference: the column of ``sysprune compare``'s savings this policy is a reference in: every policy's saving
            against it is reported (``none``, ``threshold``; a group name shared by several — ``builtin``, Optuna's
            median and hyperband — makes the best of them at each seed the reference). Default: not a reference.
        parameters: the ``[pruner]`` keys and their constraints (:mod:`sysprune.constraints`). Default: the
            pruner class's ``_parameter_constraints``, less ``budgets`` and ``max_steps``. A key left out of the
            table takes the pruner's own default.
        defaults: ``steps -> {parameter: default}`` for defaults that depend on the study (optional).
        cross_check: ``(params, steps, where)`` raising :class:`sysprune.exceptions.InvalidArgument` for a rule
            between parameters (optional).

    Registering the same pruner again (a module imported twice) is a no-op; another pruner under a registered name
    is refused. Raises :class:`~sysprune.exceptions.InvalidArgument` naming a bad argument.
    """
    where = "register_policy"
    check(name, _NAME_TEXT, "name", where=where)
    if not callable(pruner):
        raise InvalidArgument("pruner", pruner, "an Optuna pruner class or a function returning one", where=where)
    if parameters is None:
        declared = getattr(pruner, "_parameter_constraints", {})
        parameters = {k: c for k, c in declared.items() if k not in STUDY_ARGUMENTS}
    for key, c in parameters.items():
        if not isinstance(c, Constraint):
            raise InvalidArgument(f"parameters.{key}", c, "a constraint of sysprune.constraints", where=where)
    if needs_budgets and "budgets" not in _arguments(pruner):
        raise InvalidArgument(
            "needs_budgets", needs_budgets, "false for a pruner that takes no 'budgets' argument", where=where
        )
    if reference is not None:
        check(reference, _NAME_TEXT, "reference", where=where)
    return add_policy(
        Policy(
            name,
            pruner,
            needs_budgets=bool(needs_budgets),
            plain=bool(plain),
            judges_curves=bool(judges_curves),
            member=bool(member),
            reference=reference,
            parameters=dict(parameters),
            defaults=defaults,
            cross_check=cross_check,
        )
    )


def policy_names() -> tuple[str, ...]:
    """The registered policies, in registration order."""
    return tuple(_POLICIES)


def member_names() -> tuple[str, ...]:
    """The policies that may be members of ``combined``."""
    return tuple(n for n, p in _POLICIES.items() if p.member)


#: A registered policy's name (the registry's names when checked, so later registrations count).
POLICY_NAME = Text(policy_names)


def get_policy(name: str) -> Policy:
    """The registered policy ``name``; :class:`~sysprune.exceptions.InvalidArgument` (``policy: value 'x' is
    invalid; valid: none, median, ...``) for an unknown one."""
    return _POLICIES[check(name, POLICY_NAME, "policy")]


def reference_groups() -> dict[str, tuple[str, ...]]:
    """``sysprune compare``'s references, in registration order: ``reference -> the policies in it`` (``none``:
    ``("none",)``; ``builtin``: ``("median", "hyperband")``)."""
    groups: dict[str, tuple[str, ...]] = {}
    for name, p in _POLICIES.items():
        if p.reference is not None:
            groups[p.reference] = (*groups.get(p.reference, ()), name)
    return groups
