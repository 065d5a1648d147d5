from __future__ import annotations

from typing import TYPE_CHECKING

from optuna.pruners import BasePruner

from sysprune.pruners._base import DecidingPruner
from sysprune.pruners._reasons import RULE_INTERMEDIATE, PruneDecision, fmt, record_decision

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

    def __init__(self, *pruners: BasePruner) -> None:
        if not pruners:
            raise ValueError("pruners must name at least one pruner, but got none.")
        for i, p in enumerate(pruners):
            if not isinstance(p, BasePruner):
                raise ValueError(f"pruners[{i}] must be an optuna.pruners.BasePruner, but got {p!r}.")
        self._pruners = tuple(pruners)

    @property
    def pruners(self) -> tuple[BasePruner, ...]:
        return self._pruners

    def prune(self, study: "optuna.study.Study", trial: "optuna.trial.FrozenTrial") -> bool:
        found = self._decide_with_member(study, trial)
        if found is None:
            return False
        i, decision = found
        record_decision(study, trial, decision, via=f"{type(self).__name__} member {i}")
        return True

    def _decide(self, study: "optuna.study.Study", trial: "optuna.trial.FrozenTrial") -> PruneDecision | None:
        found = self._decide_with_member(study, trial)
        return None if found is None else found[1]

    def _decide_with_member(
        self, study: "optuna.study.Study", trial: "optuna.trial.FrozenTrial"
    ) -> tuple[int, PruneDecision] | None:
        multi = len(study.directions) > 1
        for i, member in enumerate(self._pruners):
            if isinstance(member, DecidingPruner):
                if multi and not member.supports_multi_objective:
                    continue
                decision = member._decide(study, trial)
            else:
                if multi:
                    continue
                decision = builtin_decision(member, trial) if member.prune(study, trial) else None
            if decision is not None:
                return i, decision
        return None


def builtin_decision(pruner: BasePruner, trial: "optuna.trial.FrozenTrial") -> PruneDecision:
    """The decision of an Optuna pruner (which says only yes or no), described from the trial's last report."""
    step = trial.last_step
    value = trial.intermediate_values.get(step) if step is not None else None
    name = type(pruner).__name__
    return PruneDecision(
        rule=RULE_INTERMEDIATE,
        pruner=name,
        step=step,
        message=f"{name}: intermediate value {fmt(value)} at step {step} is not promising",
        value=value,
    )
