"""Named model + training settings for ``aae-np train --preset NAME``.

``default``
    the best model a user gets from ``aae-np train`` in about a minute on a
    2-core CPU (numbers in README.md).
``tutorial``
    the tutorial's program: 784-256-64 encoder (ReLU, linear z), 64-256-784
    sigmoid decoder, 64-256-1 discriminator, MSE reconstruction, Adam 1e-3,
    batch 128, 50 epochs. With ``--schedule joint`` it reproduces the
    tutorial's failure; with the default phased schedule it learns.
"""

from __future__ import annotations

from aae_np.model import AAEConfig
from aae_np.train import TrainConfig

__all__ = ["PRESETS", "get_preset"]

PRESETS: dict[str, tuple[AAEConfig, TrainConfig]] = {
    "default": (
        AAEConfig(latent_dim=6, encoder_hidden=(512, 512), decoder_hidden=(512, 512),
                  discriminator_hidden=(256, 256), activation="relu", recon_loss="bce"),
        TrainConfig(epochs=15, batch_size=50, lr_ae=1e-3, lr_d=2e-4, lr_g=4e-4,
                    beta1_ae=0.9, beta1_adv=0.5, lr_decay_start=0.5),
    ),
    "tutorial": (
        AAEConfig(latent_dim=64, encoder_hidden=(256,), decoder_hidden=(256,),
                  discriminator_hidden=(256,), activation="relu", recon_loss="mse", adv_weight=1.0),
        TrainConfig(epochs=50, batch_size=128, lr_ae=1e-3, lr_d=1e-3, lr_g=1e-3,
                    beta1_ae=0.9, beta1_adv=0.5, lr_decay_start=0.5),
    ),
}


def get_preset(name: str) -> tuple[AAEConfig, TrainConfig]:
    """Fresh copies of a preset's configs (callers may modify them)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    model, train = PRESETS[name]
    return AAEConfig.from_dict(model.to_dict()), TrainConfig.from_dict(vars(train))
