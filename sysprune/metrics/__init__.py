"""The metric vocabulary and how each metric is measured and written.

* ``_registry``: every metric's name, unit, kind (cumulative / level / structural / learning) and direction
  (:func:`sysprune.register_metric`); ``PRETRAIN_STEP``.
* ``_monitor``: measuring a process from outside (CPU time, RSS, peak RSS, energy counters).
* ``_measure``: measuring a model inside its own process (latency probe, size, model memory) and
  :func:`sysprune.measure` for plain Optuna objectives; ``_interval``: the median's distribution-free interval.
* ``_format``: how numbers, units, budgets, missing values and tables are written everywhere.
"""
