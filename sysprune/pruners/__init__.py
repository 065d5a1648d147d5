"""sysprune's pruners (Optuna ``BasePruner`` subclasses) and the study-file policy factory."""

from sysprune.pruners._factory import build_pruner, policy_names, validate_policy

__all__ = ["build_pruner", "policy_names", "validate_policy"]
