"""aae_np: Adversarial Autoencoders from scratch in NumPy, every gradient derived by hand.

The public API, importable from here::

    from aae_np import AAE, AAEConfig, Trainer, TrainConfig, get_preset, resolve, load_model
    from aae_np import AAEEstimator      # scikit-learn's conventions: fit, transform, ...

Read the package from the bottom up (``docs/architecture.md``): ``nn`` (the from-scratch
core), ``fast`` (the numba path), ``models``, ``train``, ``eval``, ``teach``, then
``data`` and ``cli``. Names are imported on first use, so ``import aae_np.nn`` stays light.
"""

import importlib as _importlib

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
    "aae_np.estimator": ("AAEEstimator",),
}
_WHERE = {name: module for module, names in _PUBLIC.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> object:
    if name not in _WHERE:
        raise AttributeError(f"module 'aae_np' has no attribute {name!r}")
    return getattr(_importlib.import_module(_WHERE[name]), name)


def __dir__() -> list[str]:
    """The public API, the version and the subpackages already imported; no helpers."""
    loaded = [k for k, v in globals().items() if type(v).__name__ == "module" and not k.startswith("_")]
    return sorted(set(__all__) | {"__version__"} | set(loaded))
