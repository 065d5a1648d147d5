from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from optuna.pruners import BasePruner

from sysprune._validation import InstanceOf, ListOf, check_params
from sysprune.pruners._base import DecidingPruner, wants_dry_run, wants_second_reading
from sysprune.pruners._reasons import PruneDecision, builtin_decision, collect

__all__ = ["CombinedPruner", "builtin_decision"]

if TYPE_CHECKING:
    import optuna


class CombinedPruner(DecidingPruner):
    """Pruner that prunes when any of its members does; the reason names the member.

    Members are asked in the given order and the first that prunes decides; later members are not asked. Put a
    :class:`~sysprune.ResourceBudgetPruner` first so that a trial both over budget and unpromising is booked as
    infeasible (a budget breach) rather than as a feasible curve prune.

    Members may be sysprune pruners (their own reason is recorded, prefixed with ``"<Class> (member i)"``) or any
    Optuna pruner (e.g. :class:`~optuna.pruners.MedianPruner`; the reason then says which pruner judged the
    intermediate value at which step). In a multi-objective study only members that support it are asked (the
    budget pruner); Optuna's built-ins have no intermediate values there.

    Note: with a :class:`~optuna.pruners.HyperbandPruner` member, Optuna's samplers do not restrict themselves to
    the trial's bracket (they only do so when the study's pruner *is* a HyperbandPruner).

    Args:
        pruners: One or more :class:`~optuna.pruners.BasePruner` instances.
    """

    supports_multi_objective = True
    _parameter_constraints = {"pruners": ListOf(InstanceOf(BasePruner, "an optuna.pruners.BasePruner"))}

    def __init__(self, *pruners: BasePruner) -> None:
        check_params(type(self).__name__, self._parameter_constraints, {"pruners": pruners})
        self._pruners = tuple(pruners)

    @property
    def pruners(self) -> tuple[BasePruner, ...]:
        return self._pruners

    def wants_second_reading(self, pretrain: Mapping[str, float | None]) -> bool:
        """Yes when any sysprune member wants one."""
        return any(wants_second_reading(p, pretrain) for p in self._pruners)

    def wants_dry_run(self) -> bool:
        """Yes when any sysprune member wants one."""
        return any(wants_dry_run(p) for p in self._pruners)

    def _decide(self, study: "optuna.study.Study", trial: "optuna.trial.FrozenTrial") -> PruneDecision | None:
        multi = len(study.directions) > 1
        for i, member in enumerate(self._pruners):
            if isinstance(member, DecidingPruner):
                decision = member.decide(study, trial)
            elif multi:
                continue  # Optuna's pruners have no intermediate values to judge there
            else:
                with collect() as inner:  # a wrapper (PatientPruner, ...) around a sysprune pruner
                    pruned = member.prune(study, trial)
                decision = (inner[0] if inner else builtin_decision(member, trial)) if pruned else None
            if decision is not None:
                return decision.relayed(f"{type(self).__name__} member {i}")
        return None
