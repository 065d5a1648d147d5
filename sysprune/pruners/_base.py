"""The base class of sysprune's pruners: decide, explain, write nothing."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

from optuna.pruners import BasePruner

from sysprune._validation import AnyOf, Constraint, Exactly, Integer
from sysprune.pruners._reasons import PruneDecision, offer

if TYPE_CHECKING:
    import optuna

#: ``max_steps`` of a pruner that forecasts: the steps of a full trial, or None (inferred from the study).
MAX_STEPS = AnyOf((Integer(low=1), Exactly(None)))


class DecidingPruner(BasePruner):
    """A pruner that explains itself.

    A subclass implements one method, :meth:`_decide` (``(study, trial) -> PruneDecision | None``), which reads
    what it needs and writes nothing. :meth:`prune` keeps Optuna's contract — it answers and leaves the trial as it
    was — and hands the decision to :func:`sysprune.should_prune`, which records it (see
    :mod:`sysprune.pruners._reasons`). So an Optuna wrapper (``PatientPruner``, ...) around a sysprune pruner leaves
    no trace on a trial it lets go on. Set :attr:`supports_multi_objective` if the pruner can decide without
    intermediate values.
    """

    #: Whether the pruner can decide in a multi-objective study (where Optuna has no intermediate values).
    supports_multi_objective: bool = False
    #: The constructor's arguments and their constraints, declared once (scikit-learn's ``_parameter_constraints``):
    #: the constructor checks them (:func:`sysprune.constraints.check_params`), and a policy registered on the
    #: class (:func:`sysprune.register_policy`) takes its ``[pruner]`` keys from them.
    _parameter_constraints: ClassVar[Mapping[str, Constraint]] = {}

    def wants_second_reading(self, pretrain: "Mapping[str, float | None]") -> bool:
        """Whether this pruner needs the structural metrics (size, latency, model memory) measured again after the
        first training step, given the pre-training probe's readings ``pretrain`` (step -1). The sysprune runner
        measures them at step -1 and the last step, and after step 0 only when the study's pruner says so here:
        a probe costs milliseconds per trial. Default: no."""
        return False

    def wants_dry_run(self) -> bool:
        """Whether this pruner predicts a trial's training time or memory from a dry run at step -1 (the runner's
        trial process then trains the first mini-batches of step 0 before the pre-training decision: see
        :mod:`sysprune.metrics._dryrun`). Default: no."""
        return False

    def prune(self, study: "optuna.study.Study", trial: "optuna.trial.FrozenTrial") -> bool:
        decision = self.decide(study, trial)
        if decision is None:
            return False
        offer(decision)
        return True

    def decide(self, study: "optuna.study.Study", trial: "optuna.trial.FrozenTrial") -> PruneDecision | None:
        """The decision to prune ``trial`` now, or ``None`` (writes nothing; :meth:`prune` without the answer
        reduced to a boolean)."""
        if len(study.directions) > 1 and not self.supports_multi_objective:
            return None
        return self._decide(study, trial)

    @abc.abstractmethod
    def _decide(self, study: "optuna.study.Study", trial: "optuna.trial.FrozenTrial") -> PruneDecision | None:
        """The decision to prune ``trial`` now, or ``None``. Must not write anything."""
        raise NotImplementedError


def wants_second_reading(pruner: BasePruner, pretrain: Mapping[str, float | None]) -> bool:
    """Whether ``pruner`` (any Optuna pruner) asks for the structural metrics again after step 0, given step -1's
    readings: :meth:`DecidingPruner.wants_second_reading` for sysprune's pruners, no for the others. Asked by the
    runner (live) and by replay, so both follow one probe schedule."""
    return isinstance(pruner, DecidingPruner) and pruner.wants_second_reading(pretrain)


def wants_dry_run(pruner: BasePruner) -> bool:
    """Whether ``pruner`` (any Optuna pruner) asks for a dry run at step -1: :meth:`DecidingPruner.wants_dry_run`
    for sysprune's pruners, no for the others."""
    return isinstance(pruner, DecidingPruner) and pruner.wants_dry_run()
