"""Imported once by the fork server, so every trial process starts with the heavy stack already loaded.

Besides torch and scikit-learn this imports what torch loads lazily on first use: ``torch._dynamo`` (pulled in by
every optimizer's constructor, ~2 s and ~200 MB), so that cost is paid once and not charged to each trial.
Nothing here runs a torch operation: the server must not start thread pools (or CUDA) before it forks.
"""

import signal

# Ctrl-C goes to the whole process group. The sysprune worker handles it (it stops its trial process and keeps the
# study); the fork server and the trial processes it forks ignore it instead of printing tracebacks of their own.
signal.signal(signal.SIGINT, signal.SIG_IGN)

# The fork server dies with its worker, and each trial process with the fork server, even on kill -9 (no orphans).
from sysprune._trial_process import die_with_parent  # noqa: E402

die_with_parent()

import numpy  # noqa: F401, E402
import sklearn.linear_model  # noqa: F401, E402
import sklearn.metrics  # noqa: F401, E402
import threadpoolctl  # noqa: F401, E402
import torch  # noqa: F401, E402
import torch._dynamo  # noqa: F401, E402
import torch.nn  # noqa: F401, E402
import torch.optim  # noqa: F401, E402

import sysprune._data  # noqa: F401, E402
import sysprune._trial_process  # noqa: E402
import sysprune.models  # noqa: F401, E402
import sysprune.models._torch_common  # noqa: F401, E402
import sysprune.models.sklearn_sgd  # noqa: F401, E402
import sysprune.models.torch_cnn  # noqa: F401, E402
import sysprune.models.torch_mlp  # noqa: F401, E402

# torch.manual_seed in each trial process formats a stack trace (a lazy CUDA seeding): read those sources once here.
sysprune._trial_process.warm_linecache()
