"""A PyTorch Lightning callback that measures a trial's system metrics per epoch and prunes it with the study's
pruner: what ``optuna_integration.PyTorchLightningPruningCallback`` does for learning curves, for budgets too."""

from __future__ import annotations

from typing import Any

import optuna

from sysprune.exceptions import MissingDependency
from sysprune.metrics._measure import Measurer, measure
from sysprune.metrics._registry import PRETRAIN_STEP
from sysprune.pruners._step_api import report, should_prune

try:
    import pytorch_lightning as pl
except ImportError as e:  # pragma: no cover - the extra is installed wherever the tests run
    raise MissingDependency(
        "sysprune.integration.SyspruneCallback needs PyTorch Lightning: pip install 'sysprune[lightning]'"
    ) from e


class SyspruneCallback(pl.Callback):
    """Report each epoch's ``monitor`` value and system metrics to ``trial``; prune when the study's pruner says so.

    Before the first epoch the model's structural metrics (``n_params``, ``model_bytes``, ``model_mem_mb``, and
    ``infer_ms`` when ``batch`` is given) are reported at :data:`sysprune.PRETRAIN_STEP`, so a model over a size or
    latency budget is pruned before it trains. After each validation epoch: the monitored value and the process's
    metrics (``wall_s``, ``cpu_s``, ``rss_mb``, ``peak_rss_mb``, ...; the structural ones again at the last epoch).
    A pruned trial raises :class:`optuna.TrialPruned` out of ``trainer.fit`` (Lightning stops and re-raises it), so
    an objective needs no loop of its own::

        def objective(trial):
            model = MyModule(width=trial.suggest_int("width", 8, 512, log=True))
            trainer = pl.Trainer(max_epochs=10, callbacks=[SyspruneCallback(trial, "val_acc", batch=x_val[:256])])
            trainer.fit(model, train_loader, val_loader)
            return trainer.callback_metrics["val_acc"].item()

    Args:
        trial: the Optuna trial.
        monitor: a metric the module logs (``self.log(monitor, ...)``) in its validation step: the objective value.
        batch: inputs for the latency probe (``infer_ms`` is per sample); None: no latency.
        repeats: timed inference calls per latency probe.

    Measuring happens in the training process (see :func:`sysprune.measure` for what that cannot isolate).
    """

    def __init__(self, trial: optuna.Trial, monitor: str, *, batch: Any = None, repeats: int = 5) -> None:
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(f"monitor must be the name of a logged metric, but got {monitor!r}.")
        self.trial, self.monitor, self.batch, self.repeats = trial, monitor, batch, repeats
        self.meter: Measurer | None = None

    def _prune_if_told(self, epoch: int) -> None:
        if should_prune(self.trial):
            where = "before training" if epoch == PRETRAIN_STEP else f"at epoch {epoch}"
            raise optuna.TrialPruned(f"trial {self.trial.number} pruned {where}")

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        optimizer = trainer.optimizers[0] if trainer.optimizers else None
        self.meter = measure(model=pl_module, batch=self.batch, optimizer=optimizer, repeats=self.repeats)
        report(self.trial, PRETRAIN_STEP, None, self.meter.sample())
        self._prune_if_told(PRETRAIN_STEP)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self.meter is None:
            return
        epoch = trainer.current_epoch
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            logged = ", ".join(sorted(trainer.callback_metrics)) or "none"
            raise ValueError(
                f"monitor {self.monitor!r} was not logged in the validation epoch; logged: {logged} "
                "(log it with self.log in validation_step)"
            )
        last = trainer.max_epochs is not None and epoch >= trainer.max_epochs - 1
        report(self.trial, epoch, float(value), self.meter.sample(structural=last))
        self._prune_if_told(epoch)
