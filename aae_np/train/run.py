"""One way to start or resume training any model of the family from a data set."""

from __future__ import annotations

import os
from typing import Any

from aae_np.models.aae import AAE
from aae_np.models.checkpoint import model_kind
from aae_np.models.variants import VariantAAE, VariantConfig
from aae_np.train.trainer import Trainer
from aae_np.train.variant import VariantTrainer

__all__ = ["new_trainer", "resume_trainer"]


def new_trainer(model_config: Any, train_config: Any, data: Any, out_dir: str | os.PathLike | None = None,
                backend: str | None = None, progress: bool = True) -> Trainer:
    """A fresh model built from ``model_config`` and its trainer on ``data`` (``aae_np.data.MnistData``);
    the configs are what ``aae_np.train.presets.resolve`` returns."""
    if isinstance(model_config, VariantConfig):
        return VariantTrainer(VariantAAE(model_config, backend=backend), train_config, data.x_train, data.y_train,
                              data.x_test, data.y_test, out_dir=out_dir, progress=progress)
    return Trainer(AAE(model_config, backend=backend), train_config, data.x_train, data.x_test,
                   out_dir=out_dir, progress=progress)


def resume_trainer(checkpoint: str | os.PathLike, data: Any, epochs: int | None = None,
                   backend: str | None = None, progress: bool = True) -> Trainer:
    """The trainer saved in ``checkpoint``, ready to ``fit()`` on as if never stopped."""
    if model_kind(checkpoint) == VariantAAE.kind:
        return VariantTrainer.resume(checkpoint, data.x_train, data.y_train, data.x_test, data.y_test,
                                     epochs=epochs, progress=progress, backend=backend)
    return Trainer.resume(checkpoint, data.x_train, data.x_test, epochs=epochs, progress=progress,
                          backend=backend)
