"""Running a study: a StudySpec becomes an Optuna study whose trials run in measured processes.

* ``_runner``: :func:`sysprune.run_study` (one worker here, local worker processes, or Ray tasks);
* ``_open``: creating or resuming the study (its stored identity, the sampler, the run history);
* ``_objective``: the Optuna objective — one trial driven step by step, reported and pruned;
* ``_workers``: one worker's loop (an exact trial count, seeds, CPU sets); ``_launch``: local worker processes;
  ``_ray``: workers as Ray tasks; ``_lost``: trials of a gone worker failed and retried;
* ``_interrupts``: Ctrl-C and SIGTERM; ``_progress``: the live progress line; ``_compute``: what a search burned
  and the search-level compute budget; ``_dataset``: preparing the study's dataset.
"""
