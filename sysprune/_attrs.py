"""Names of the attributes sysprune writes into a study's database: one place, so that the runner, the workers,
the pruners, the dashboard and the analyses read what was written.

Trial user attrs (shown by ``study.trials_dataframe()`` and optuna-dashboard's trial table):
    ``<metric>``          the final value of each metric of the vocabulary (e.g. ``peak_rss_mb``); missing → absent
    PRUNE_REASON          one human-readable line: why the trial was pruned
    PRUNE_DETAIL          dict: {"rule", "pruner", "metric", "value", "budget", "step", "predicted"}
    ERROR                 the message of a failed trial (Optuna also keeps it as ``fail_reason``)
    FIXED_PREFIX + name   a hyperparameter fixed in the study file (not sampled)
    PROCESS_CPU           CPU seconds of the whole trial process (set-up, training, probes, a step cut short)
    PROCESS_WALL          wall seconds of the whole trial process
    PROCESS_START         seconds from asking for the trial process until it was ready
    WORKER_CPU            the worker's own CPU seconds on the trial (sampling, the pruner, storage, publishing)
    WORKER_ATTR           the worker that ran the trial: ``{"host", "pid", "started", "cpus"}``
    HIDDEN_CONSTRAINTS    ``{metric: value - budget}`` of the plain-Optuna baselines, kept from the sampler

Trial system attrs:
    STEP_ATTR_PREFIX + step  one step's metrics ``{metric: value}``, for studies whose storage is not an RDB one
                          (in memory, journal); an RDB storage keeps them in the ``sysprune_step_metrics`` table

Constraints (Optuna 5, ``trial.set_constraint``): key ``budget:<metric>`` (CONSTRAINT_PREFIX), value =
measured/predicted − budget (> 0 means over budget, i.e. infeasible). The plain-Optuna baselines (policies
``plain``, ``precheck``) keep the same values in the user attr HIDDEN_CONSTRAINTS instead, where no sampler reads
them.

Study user attrs (written when the study is created):
    IDENTITY_ATTR         the definition a resumed run must match (``sysprune.spec.study_identity``)
    HISTORY_ATTR          one entry per run: what was safe to change is recorded here
    STUDY_MACHINE         the machine that created it (node, platform, CPUs, Python, energy counter)
    STUDY_BUDGETS         ``{metric: budget}``
    STUDY_PRUNER          ``{"policy": ..., **params}``
    STUDY_MODEL, STUDY_DATASET, STUDY_STEPS, STUDY_SEED   the study file's model, dataset, steps and seed

Study system attrs (the workers' bookkeeping):
    TARGET_KEY            the study's total of trials that count (the last ``sysprune run`` set it)
    WORKERS_KEY           how many workers have registered (each worker's number, and so its sampler seed)
"""

# Trial user attrs
PRUNE_REASON = "prune_reason"
PRUNE_DETAIL = "prune_detail"
ERROR = "error"
FIXED_PREFIX = "fixed:"
PROCESS_CPU = "process_cpu_s"
PROCESS_WALL = "process_wall_s"
PROCESS_START = "process_start_s"
WORKER_CPU = "worker_cpu_s"
WORKER_ATTR = "sysprune:worker"
HIDDEN_CONSTRAINTS = "sysprune:budget_constraints"

# Trial system attrs
STEP_ATTR_PREFIX = "sysprune:step:"

# Constraint keys
CONSTRAINT_PREFIX = "budget:"

# Study user attrs
IDENTITY_ATTR = "sysprune:identity"
HISTORY_ATTR = "sysprune:runs"
STUDY_MACHINE = "machine"
STUDY_BUDGETS = "budgets"
STUDY_PRUNER = "pruner"
STUDY_MODEL = "model"
STUDY_DATASET = "dataset"
STUDY_STEPS = "steps"
STUDY_SEED = "seed"

# Study system attrs
TARGET_KEY = "sysprune:n_trials"
WORKERS_KEY = "sysprune:workers"
