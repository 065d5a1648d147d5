"""Integrations with training frameworks: their training loop reports and prunes as a sysprune objective does.

* :class:`SyspruneCallback` — a PyTorch Lightning callback (the ``lightning`` extra: ``pip install
  'sysprune[lightning]'``): the system metrics per epoch through :func:`sysprune.measure`, pruned by the study's
  pruner through :func:`sysprune.report` / :func:`sysprune.should_prune`.

Imported on its own (``from sysprune.integration import SyspruneCallback``), like ``optuna.integration``:
``import sysprune`` does not import Lightning.
"""

from sysprune.integration._lightning import SyspruneCallback

__all__ = ["SyspruneCallback"]
