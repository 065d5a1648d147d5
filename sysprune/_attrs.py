"""Names of the trial attributes sysprune writes (one place, so the runner, pruners and dashboard agree).

User attrs (shown by ``study.trials_dataframe()`` and optuna-dashboard's trial table):
    ``<metric>``          the final value of each metric of the vocabulary (e.g. ``peak_rss_mb``); missing → absent
    PRUNE_REASON          one human-readable line: why the trial was pruned
    PRUNE_DETAIL          dict: {"rule", "pruner", "metric", "value", "budget", "step", "predicted"}
    ERROR                 the message of a failed trial (Optuna also keeps it as ``fail_reason``)
    FIXED_PREFIX + name   a hyperparameter fixed in the study file (not sampled)

System attrs:
    STEP_ATTR_PREFIX + step  one step's metrics ``{metric: value}``, for studies whose storage is not an RDB one
                          (in memory, journal); an RDB storage keeps them in the ``sysprune_step_metrics`` table

Constraints (Optuna 5, ``trial.set_constraint``): key ``budget:<metric>``, value = measured/predicted − budget
(> 0 means over budget, i.e. infeasible). The plain-Optuna baselines (policies ``plain``, ``precheck``) keep the
same values in the user attr HIDDEN_CONSTRAINTS instead, where no sampler reads them.
"""

PRUNE_REASON = "prune_reason"
PRUNE_DETAIL = "prune_detail"
ERROR = "error"
FIXED_PREFIX = "fixed:"
CONSTRAINT_PREFIX = "budget:"
HIDDEN_CONSTRAINTS = "sysprune:budget_constraints"  # {metric: value - budget}, kept from the sampler
STEP_ATTR_PREFIX = "sysprune:step:"
