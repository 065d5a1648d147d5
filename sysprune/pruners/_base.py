"""The base class of sysprune's pruners: decide without side effects, then record the decision."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING

from optuna.pruners import BasePruner

from sysprune.pruners._reasons import PruneDecision, record_decision

if TYPE_CHECKING:
    import optuna


class DecidingPruner(BasePruner):
    """A pruner that explains itself.

    Subclasses implement :meth:`_decide`; :meth:`prune` records the decision on the trial (see
    :mod:`sysprune.pruners._reasons`) and returns whether to prune.
    """

    #: Whether the pruner can decide in a multi-objective study (where Optuna has no intermediate values).
    supports_multi_objective: bool = False

    def prune(self, study: "optuna.study.Study", trial: "optuna.trial.FrozenTrial") -> bool:
        decision = self._decide(study, trial)
        if decision is None:
            return False
        record_decision(study, trial, decision)
        return True

    @abc.abstractmethod
    def _decide(self, study: "optuna.study.Study", trial: "optuna.trial.FrozenTrial") -> PruneDecision | None:
        """The decision to prune ``trial`` now, or ``None``. Must not write anything."""
        raise NotImplementedError
