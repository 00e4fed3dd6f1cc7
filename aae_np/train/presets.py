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

from aae_np.models.aae import AAEConfig
from aae_np.train.trainer import TrainConfig

__all__ = ["PRESETS", "get_preset"]

PRESETS: dict[str, tuple[AAEConfig, TrainConfig]] = {
    "default": (
        AAEConfig(latent_dim=5, encoder_hidden=(512, 512), decoder_hidden=(512, 512),
                  discriminator_hidden=(256, 256), activation="relu", recon_loss="bce"),
        TrainConfig(epochs=22, batch_size=50, lr_ae=2e-3, lr_d=2e-4, lr_g=4e-4,
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


def _variant_presets() -> dict:
    from aae_np.train.variant import VariantTrainConfig
    from aae_np.models.variants import VariantConfig

    wide = dict(encoder_hidden=(1000, 1000), decoder_hidden=(1000, 1000), discriminator_hidden=(1000, 1000))
    adam = dict(batch_size=100, lr_ae=1e-3, lr_d=2e-4, lr_g=4e-4, lr_sup=1e-3, beta1_ae=0.9, beta1_adv=0.5,
                lr_decay_start=0.5)
    mixture = {"name": "mixture", "k": 10, "radius": 4.0}
    return {
        # section 8, without labels: a 2-D Gaussian code
        "unsupervised": (VariantConfig(variant="unsupervised", style_dim=2, **wide),
                         VariantTrainConfig(epochs=20, n_labels=0, **adam)),
        # section 2.3 (and 8 with labels): a 2-D mixture of 10, every image labelled; a stronger
        # adversary than the other variants' (docs/variants.md)
        "conditioned": (VariantConfig(variant="conditioned", style_dim=2, prior=mixture, **wide),
                        VariantTrainConfig(epochs=20, n_labels=-1, **{**adam, "lr_d": 4e-4, "lr_g": 1e-3})),
        # section 5: label to the decoder, z = style; an 8-D z kept the digit too (docs/variants.md)
        "supervised": (VariantConfig(variant="supervised", style_dim=3, **wide),
                       VariantTrainConfig(epochs=20, n_labels=-1, **adam)),
        # section 6: 100 labels; a 4-D style leaves the class to y; noisy inputs (docs/variants.md)
        "semi-supervised": (VariantConfig(variant="semi-supervised", style_dim=4, **wide),
                            VariantTrainConfig(epochs=40, n_labels=100, input_noise=0.3, **adam)),
        # section 7: 16 clusters; warm-up and instance noise on D_y keep every cluster alive
        "clustering": (VariantConfig(variant="clustering", n_classes=16, style_dim=5, **wide),
                       VariantTrainConfig(epochs=60, n_labels=0, warmup_epochs=3, y_instance_noise=0.15, **adam)),
    }


def get_variant_preset(variant: str):
    """Fresh (VariantConfig, VariantTrainConfig) for ``aae-np train --variant NAME``."""
    from aae_np.train.variant import VariantTrainConfig
    from aae_np.models.variants import VARIANTS, VariantConfig

    presets = _variant_presets()
    if variant not in presets:
        raise ValueError(f"unknown variant {variant!r}; choose one of {list(VARIANTS)}")
    model, train = presets[variant]
    return VariantConfig.from_dict(model.to_dict()), VariantTrainConfig.from_dict(vars(train))
