"""The validation vocabulary, public: the constraints sysprune declares its own parameters with, for a pruning
policy (or any code) of one's own.

A pruner declares its constructor's parameters once, as scikit-learn's estimators do, and checks them there; a
policy registered with :func:`sysprune.register_policy` takes its ``[pruner]`` keys from the same declaration::

    from sysprune.constraints import Integer, Real, check_params

    class PlateauPruner(optuna.pruners.BasePruner):
        _parameter_constraints = {"patience": Integer(low=1), "min_delta": Real(low=0.0)}

        def __init__(self, patience=2, min_delta=0.01):
            check_params(type(self).__name__, self._parameter_constraints, locals())
            ...

A bad value raises :class:`sysprune.exceptions.InvalidArgument`:
``PlateauPruner: patience: value 0 is invalid; valid: an integer >= 1`` (from a study file:
``s.toml: pruner.patience: value 0 is invalid; ...``). See ``sysprune._validation`` for each constraint.
"""

from sysprune._validation import (
    AnyOf,
    Boolean,
    Constraint,
    Exactly,
    InstanceOf,
    Integer,
    ListOf,
    MappingOf,
    Matches,
    OneOf,
    Real,
    Text,
    check,
    check_params,
    check_table,
)
from sysprune.exceptions import InvalidArgument

__all__ = [
    "AnyOf",
    "Boolean",
    "Constraint",
    "Exactly",
    "InstanceOf",
    "Integer",
    "InvalidArgument",
    "ListOf",
    "MappingOf",
    "Matches",
    "OneOf",
    "Real",
    "Text",
    "check",
    "check_params",
    "check_table",
]
