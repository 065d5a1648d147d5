"""The held-out test score of a configuration: retrain it on train + validation, score the test split once.

Why retrain rather than reuse the trial's weights: trials do not keep their weights, and the validation split
chose the configuration, so its model is refit on all the data the search may use (train + validation) for the
same number of steps, with the trial's own seed, in a fresh process from the fork server (its memory and threads
are the trial's). The test split (``sysprune.datasets.prepare`` holds it out, stratified, from the start) is touched here
only. The score is the trainer's ``evaluate()`` on the test split: ``test_accuracy`` and ``test_loss``.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from sysprune.datasets import open_prepared
from sysprune.trial._child import _pin_threads
from sysprune.trial._forkserver import _start, context
from sysprune.models import get_model

#: Learning metrics the trainer reports on the split it evaluates; here that split is the test split.
_RENAME = {"val_accuracy": "test_accuracy", "val_loss": "test_loss"}


def _child(
    conn: Any, model: str, params: dict[str, Any], dataset_path: str, seed: int, steps: int, threads: int
) -> None:
    try:
        import numpy as np

        _pin_threads(threads)
        d = open_prepared(dataset_path)
        merged = dataclasses.replace(
            d,
            X_train=np.concatenate([np.asarray(d.X_train), np.asarray(d.X_val)]),
            y_train=np.concatenate([np.asarray(d.y_train), np.asarray(d.y_val)]),
            X_val=np.asarray(d.X_test),
            y_val=np.asarray(d.y_test),
        )
        trainer = get_model(model).create(dict(params), merged, seed=seed)
        for step in range(steps):
            trainer.train_step(step)
        scores = trainer.evaluate()
        conn.send(("ok", {_RENAME.get(k, k): v for k, v in scores.items() if k in _RENAME}))
    except BaseException as e:  # the parent reports it; a test score is never invented
        conn.send(("error", f"{type(e).__name__}: {e}"))
    finally:
        conn.close()


def test_score(
    *,
    model: str,
    params: dict[str, Any],
    dataset_path: str,
    seed: int,
    steps: int,
    threads: int = 1,
    timeout_s: float = 3600.0,
) -> dict[str, float | None]:
    """``{"test_accuracy": ..., "test_loss": ...}`` of the configuration retrained on train + validation.

    Raises RuntimeError naming the cause if the retraining fails or takes longer than ``timeout_s``.
    """

    recv, send = context().Pipe(duplex=False)
    proc = _start(_child, send, model, dict(params), str(dataset_path), int(seed), int(steps), int(threads))
    send.close()
    try:
        if not recv.poll(timeout_s):
            raise RuntimeError(f"retraining {model} {params} for the test score took over {timeout_s:g} s")
        status, payload = recv.recv()
    except EOFError:
        raise RuntimeError(f"retraining {model} {params} for the test score: the process died") from None
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(5.0)
        recv.close()
    if status != "ok":
        raise RuntimeError(f"retraining {model} {params} for the test score failed: {payload}")
    return payload


setattr(test_score, "__test__", False)  # not a pytest test, despite its name
