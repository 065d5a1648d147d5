"""Where a study lives: one database, Optuna's tables and sysprune's step metrics side by side.

* ``_open``: opening a storage URL for running (created, heartbeats) or reading (existing only, nothing
  created); SQLite's WAL/sync/busy-timeout settings; masking credentials (``mask_url``).
* ``_step_table``: the per-step metrics (the ``sysprune_step_metrics`` table of an RDB storage, trial system attrs
  of any other) and their reader, :func:`sysprune.load_step_metrics`.
* ``_lock``: sysprune's lock on a database for short pieces of work concurrent workers must not interleave.
"""
