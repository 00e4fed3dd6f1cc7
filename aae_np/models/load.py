"""``load_model``: rebuild whichever model of the family a file holds."""

from __future__ import annotations

import os

import numpy as np

from aae_np.models.aae import AAE
from aae_np.models.checkpoint import read_model_arrays
from aae_np.models.network_set import NetworkSet
from aae_np.models.reduction import ReductionAAE
from aae_np.models.variants import VariantAAE

__all__ = ["MODEL_CLASSES", "load_model"]

MODEL_CLASSES: dict[str, type[NetworkSet]] = {cls.kind: cls for cls in (AAE, VariantAAE, ReductionAAE)}


def load_model(path: str | os.PathLike, backend: str | None = None) -> tuple[NetworkSet, dict[str, np.ndarray]]:
    """Load any model of the family (plain AAE or a paper variant) and its extra arrays
    (a checkpoint's trainer and optimizer state; empty for a model file)."""
    arrays = read_model_arrays(path)
    kind = str(arrays.pop("__kind__", "aae"))
    if kind not in MODEL_CLASSES:
        raise ValueError(f"{path} holds an unknown kind of model ({kind!r}); is aae_np older than the file?")
    return MODEL_CLASSES[kind].from_arrays(path, arrays, backend)
