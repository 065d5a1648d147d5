"""What a trial process is asked to do (:class:`TrialJob`) and when it measures the model (:func:`probes_at`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sysprune.metrics._registry import PRETRAIN_STEP


@dataclass(frozen=True)
class TrialJob:
    """Everything a trial process needs; picklable, small.

    ``cpus``: the CPU set the trial process pins itself to (``os.sched_setaffinity``) before it pins its thread
    pools; None keeps the worker's. ``probe_every``: measure the structural metrics every k-th step as well
    (None: what the model's Trainer declares, 0 for the built-ins: steps -1, 0 and the last only).
    ``dry_run_batches``: at step -1, train that many mini-batches of step 0 first (``Trainer.dry_run``), from which
    the time and memory of the whole training are predicted (0: no dry run; the budget pruner asks for one).
    """

    model: str
    params: dict[str, Any]
    dataset_path: str
    seed: int
    steps: int
    threads: int = 1
    infer_batch_size: int = 256
    infer_repeats: int = 5
    cpus: tuple[int, ...] | None = None
    probe_every: int | None = None
    plugins: tuple[str, ...] = ()  # modules imported before the model is built (user registrations)
    dry_run_batches: int = 0

    def __post_init__(self) -> None:
        if self.cpus is not None:
            cpus = self.cpus
            if (
                not isinstance(cpus, tuple)
                or not cpus
                or any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in cpus)
            ):
                raise ValueError(f"cpus must be None or a non-empty tuple of CPU numbers >= 0, but got {cpus!r}.")
        d = self.dry_run_batches
        if isinstance(d, bool) or not isinstance(d, int) or d < 0:
            raise ValueError(f"dry_run_batches must be an integer >= 0, but got dry_run_batches={d!r}.")
        k = self.probe_every
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 0):
            raise ValueError(f"probe_every must be None or an integer >= 0, but got probe_every={k!r}.")


def probes_at(step: int, steps: int, every: int, *, confirm: bool = False) -> bool:
    """Whether the structural metrics are measured after ``step`` (-1: the pre-training probe) of ``steps``: at -1,
    at the last step, every ``every``-th step when the model's structure changes, and after the first training
    step (0) only when ``confirm``: the pruner asked for a second reading (a noisy metric's step -1 reading over
    its budget but not clearly, which needs a second one before it prunes; the ``threshold`` policy, whose first
    reading must come from a training step). A reading nobody waits for is not worth its cost: see
    :meth:`TrialProcess.decide`."""
    return (
        step == PRETRAIN_STEP or step == steps - 1 or (confirm and step == 0) or (every > 0 and (step + 1) % every == 0)
    )
