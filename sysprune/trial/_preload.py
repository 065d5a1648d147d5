"""Imported once by the fork server, so every trial process starts with the heavy stack already loaded.

Besides scikit-learn and torch (each only for a study whose model needs it; torch when installed: the ``torch``
extra), this imports what torch loads lazily on first use: ``torch._dynamo`` (pulled in by every optimizer's constructor, ~2 s and ~200 MB), so that cost is paid once and
not charged to each trial. The model families come from the registry (``sysprune.models``), so a new family needs
no line here. Nothing here runs a torch operation: the server must not start thread pools (or CUDA) before it forks.
"""

import os
import signal

# Ctrl-C goes to the whole process group. The sysprune worker handles it (it stops its trial process and keeps the
# study); the fork server and the trial processes it forks ignore it instead of printing tracebacks of their own.
signal.signal(signal.SIGINT, signal.SIG_IGN)

# The fork server ends with its worker (killing its trials' process trees first), and each trial process with the
# fork server, even on kill -9 (no orphans: sysprune.trial._lifetime).
from sysprune.trial._lifetime import die_with_parent  # noqa: E402
from sysprune.trial._child import warm_linecache

die_with_parent()

import numpy  # noqa: F401, E402
import threadpoolctl  # noqa: F401, E402

import sysprune.datasets  # noqa: F401, E402
import sysprune.models  # noqa: F401, E402
from sysprune._plugins import installed  # noqa: E402
from sysprune.trial._forkserver import PRELOAD_ENV, PRELOAD_TORCH_ENV  # noqa: E402

# scikit-learn (~1 s of CPU and ~60 MB per fork server, scipy with it) likewise only for a model that uses it.
if os.environ.get(PRELOAD_ENV["sklearn"], "1") != "0":
    import sklearn.linear_model  # noqa: F401
    import sklearn.metrics  # noqa: F401

# torch (~3 s of CPU and ~600 MB per fork server) only for a study whose model needs it: the worker says so through
# the environment the server inherits (sysprune.trial._forkserver.preload); unset, as before: when installed.
if installed("torch") and os.environ.get(PRELOAD_TORCH_ENV, "1") != "0":
    import torch  # noqa: F401
    import torch._dynamo  # noqa: F401
    import torch.nn  # noqa: F401
    import torch.optim  # noqa: F401

    import sysprune.models._torch_common  # noqa: F401

# torch.manual_seed in each trial process formats a stack trace (a lazy CUDA seeding): read those sources once here.
warm_linecache()
