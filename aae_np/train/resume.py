"""What a resumed run may change, and the trainer's part of a checkpoint, checked before use."""

from __future__ import annotations

import json
from dataclasses import fields, replace
from typing import Any

import numpy as np

__all__ = ["with_learning_rate", "read_trainer_state"]


def with_learning_rate(config: Any, lr: float | None) -> Any:
    """``config`` with every learning rate (each ``lr_*`` field) set to ``lr``; None: unchanged."""
    if lr is None:
        return config
    return replace(config, **{f.name: lr for f in fields(config) if f.name.startswith("lr_")
                              and f.name != "lr_decay_start"})


def read_trainer_state(path: Any, extra: dict[str, np.ndarray]) -> dict[str, Any]:
    """The trainer's part of a checkpoint, with every field's type checked."""
    if "__trainer__" not in extra:
        raise ValueError(f"{path} is a model file without trainer state; resume needs a checkpoint.npz")
    try:
        state = json.loads(str(extra["__trainer__"]))
    except (json.JSONDecodeError, TypeError) as err:
        raise ValueError(f"{path}: the trainer state is not JSON ({err}); the checkpoint is damaged") from None
    checks = {"epoch": lambda v: isinstance(v, int) and v >= 0, "train_config": lambda v: isinstance(v, dict),
              "history": lambda v: isinstance(v, dict) and all(
                  isinstance(s, list) and all(isinstance(x, (int, float)) for x in s) for s in v.values()),
              "rng": lambda v: isinstance(v, dict)}
    bad = [k for k, ok in checks.items() if not (isinstance(state, dict) and k in state and ok(state[k]))]
    if bad:
        raise ValueError(f"{path}: the trainer state has a missing or malformed {', '.join(bad)}; "
                         "the checkpoint is damaged or was edited")
    return state
