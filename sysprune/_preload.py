"""Imported once by the fork server, so every trial process starts with the heavy stack already loaded."""

import numpy  # noqa: F401
import sklearn.linear_model  # noqa: F401
import sklearn.metrics  # noqa: F401
import torch  # noqa: F401
import torch.nn  # noqa: F401
import threadpoolctl  # noqa: F401

import sysprune._data  # noqa: F401
import sysprune.models  # noqa: F401
