"""Imported once by the fork server a launch's workers are forked from (:mod:`sysprune.study._worker_server`).

Besides the worker's own code, what a worker would otherwise import while it opens the study — under the database
lock, so one worker after another: alembic, Optuna's storage models, SQLAlchemy's SQLite and PostgreSQL dialects,
~0.5 s of CPU each, measured — is imported here, by opening a throwaway in-memory study database (closed again:
no connection, file or thread is left for the workers to inherit).
"""

import warnings

import optuna
import sqlalchemy.dialects.postgresql  # noqa: F401
import sqlalchemy.dialects.sqlite  # noqa: F401

import sysprune.study._launch  # noqa: F401

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    _storage = optuna.storages.RDBStorage("sqlite:///:memory:")
_storage.engine.dispose()
del _storage
