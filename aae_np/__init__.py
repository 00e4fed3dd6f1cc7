"""aae_np: Adversarial Autoencoders from scratch in NumPy, every gradient derived by hand.

The public API, importable from here::

    from aae_np import AAE, AAEConfig, Trainer, TrainConfig, get_preset, resolve, load_model

Read the package from the bottom up (``docs/architecture.md``): ``nn`` (the from-scratch
core), ``fast`` (the numba path), ``models``, ``train``, ``eval``, ``teach``, then
``data`` and ``cli``. Names are imported on first use, so ``import aae_np.nn`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "aae_np.models": ("AAE", "AAEConfig", "VariantAAE", "VariantConfig", "VARIANTS", "load_model", "model_kind"),
    "aae_np.models.priors": ("PRIORS", "make_prior"),
    "aae_np.train.trainer": ("Trainer", "TrainConfig", "TrainingDiverged"),
    "aae_np.train.variant": ("VariantTrainer", "VariantTrainConfig"),
    "aae_np.train.presets": ("PRESETS", "get_preset", "get_variant_preset", "resolve"),
    "aae_np.train.run": ("new_trainer", "resume_trainer"),
    "aae_np.eval.report": ("evaluate", "write_figures"),
    "aae_np.data": ("load",),
}
_WHERE = {name: module for module, names in _PUBLIC.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'aae_np' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
