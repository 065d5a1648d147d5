"""The benchmark's unmeasured twin of a trial process (a module of its own so fork-server children import it)."""

import time


def bare(conn, job) -> None:
    """Train exactly like a trial process, with no one measuring: send back the per-step times."""
    from sysprune.datasets import open_prepared
    from sysprune.trial._child import _pin_threads
    from sysprune.models import get_model

    _pin_threads(job.threads)
    trainer = get_model(job.model).create(dict(job.params), open_prepared(job.dataset_path), seed=job.seed)
    times = []
    for step in range(job.steps):
        t = time.perf_counter()
        trainer.train_step(step)
        trainer.evaluate()
        times.append(time.perf_counter() - t)
    conn.send(times)
    conn.close()
