"""A comparison's runs digested: one :class:`RunStats` per (policy, seed) study, compute-to-target and savings.

Pure bookkeeping over :class:`~sysprune.analysis._trials.TrialRow` lists: no database, no plotting, so the
figures and the tables read the same digest.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sysprune.analysis import _stats
from sysprune.analysis._inference import binomial_se
from sysprune.analysis._trials import TrialRow, best_feasible
from sysprune.pruners import reference_groups
from sysprune.spec import StudySpec


def references() -> tuple[str, ...]:
    """What every policy is measured against, read from the policy registry (``reference=`` of
    :func:`sysprune.register_policy`): ``none`` (sysprune, no pruning: its sampler still learns the budgets from the
    finished trials' constraints), ``builtin`` (the best of Optuna's median and hyperband at each seed),
    ``threshold``, ``plain`` (no pruning, sampler not told: a plain Optuna study) and ``precheck`` (a plain study
    with a hand-written pre-training check), then any a policy of one's own registers."""
    return tuple(reference_groups())


#: Policies whose ceiling row is shown: their own trials with every over-budget one free.
CEILING_OF = ("none", "plain")


DEFAULT_TOLERANCE = 0.005


def noise_tolerance(reference: float, n_val: int) -> float:
    """The target's tolerance set from the validation noise: one binomial standard error of the reference accuracy
    on the ``n_val`` validation examples (0.97 on 359 digits examples: 0.009). Two searches whose best accuracies
    differ by less cannot be told apart on that split."""
    return binomial_se(min(max(reference, 0.0), 1.0), n_val)


@dataclass
class RunStats:
    """One (policy, seed) study, digested."""

    policy: str
    seed: int
    study_name: str
    rows: list[TrialRow]
    compute: float
    process_cpu: float
    worker_cpu: float
    wall: float
    n_complete: int
    n_failed: int
    pruned: dict[str, int]
    over_budget_complete: int
    unmeasured: int
    best: TrialRow | None
    curve: list[tuple[float, float | None]]
    ctt: float | None = None
    #: ``none``/``plain`` only (:data:`CEILING_OF`): the compute-to-target had its over-budget trials cost nothing
    #: (:func:`_stats.ceiling_curve`).
    ceiling_ctt: float | None = None
    reference: float | None = None  # the best feasible value of `none` at this seed (None: none feasible)
    tolerance: float | None = None  # the target's tolerance at this seed (None: no target)
    test: dict[str, float | None] | None = None
    savings: dict[str, float | str] = field(default_factory=dict)

    @property
    def n_pruned(self) -> int:
        return sum(self.pruned.values())


def digest(policy: str, seed: int, study_name: str, rows: list[TrialRow], direction: str) -> RunStats:
    fin = [r for r in rows if r.finished]
    proc = sum(r.process_cpu or 0.0 for r in fin)
    work = sum(r.worker_cpu or 0.0 for r in fin)
    wall = sum((r.complete - r.start).total_seconds() for r in fin if r.complete and r.start)
    return RunStats(
        policy=policy,
        seed=seed,
        study_name=study_name,
        rows=rows,
        compute=proc + work,
        process_cpu=proc,
        worker_cpu=work,
        wall=wall,
        n_complete=sum(r.state == "COMPLETE" for r in fin),
        n_failed=sum(r.state == "FAIL" for r in fin),
        pruned=dict(Counter(r.rule or "unknown" for r in fin if r.state == "PRUNED")),
        over_budget_complete=sum(r.state == "COMPLETE" and not r.feasible for r in fin),
        unmeasured=_stats.unmeasured(fin),
        best=best_feasible(fin, direction),
        curve=_stats.anytime(fin, direction),
    )


def fill_targets(
    runs: dict[tuple[str, int], RunStats], tolerance: float | None, direction: str, *, n_val: int | None = None
) -> None:
    """Compute-to-target of every run against ``none`` at its seed, and the savings against the references.

    ``tolerance`` is absolute, in objective units; ``None`` sets it at each seed from the validation noise
    (:func:`noise_tolerance` of the reference on ``n_val`` examples: an accuracy objective)."""
    if tolerance is None and not n_val:
        raise ValueError("fill_targets: a tolerance from the validation noise needs n_val, the validation size")
    seeds = sorted({s for _, s in runs})
    for seed in seeds:
        ref_run = runs.get(("none", seed))
        reference = ref_run.best.value if ref_run is not None and ref_run.best is not None else None
        tol = None
        if reference is not None:
            tol = tolerance if tolerance is not None else noise_tolerance(reference, int(n_val or 0))
        at_seed = {p: r for (p, s), r in runs.items() if s == seed}
        for r in at_seed.values():
            r.reference, r.tolerance = reference, tol
            r.ctt = _stats.compute_to_target(r.curve, reference, tol or 0.0, direction)
        for p in CEILING_OF:
            if p in at_seed:
                at_seed[p].ceiling_ctt = _stats.compute_to_target(
                    _stats.ceiling_curve(at_seed[p].rows, direction), reference, tol or 0.0, direction
                )
        refs: dict[str, float | None] = {}
        present: dict[str, bool] = {}
        for key, members in reference_groups().items():  # a group's reference: its best member at this seed
            reached = [at_seed[m].ctt for m in members if m in at_seed and at_seed[m].ctt is not None]
            refs[key] = min(c for c in reached if c is not None) if reached else None
            present[key] = any(m in at_seed for m in members)
        for r in at_seed.values():
            r.savings = {k: _stats.saving(v, r.ctt) for k, v in refs.items() if present[k]}


@dataclass
class CompareResult:
    spec: StudySpec
    policies: list[str]
    seeds: list[int]
    tolerance: float | None  # absolute; None: one binomial standard error of the reference on n_val examples
    sampler: str
    storage_url: str
    runs: dict[tuple[str, int], RunStats]
    n_val: int | None = None

    @property
    def direction(self) -> str:
        return self.spec.objective.directions[0]
