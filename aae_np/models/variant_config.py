"""A variant's configuration (``VariantConfig``, saved as JSON in its model file) and ``one_hot``.

The model itself is ``aae_np.models.variants.VariantAAE``; the variants are described there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aae_np.models.config import ModelConfig, network_problems
from aae_np.models.priors import Gaussian, Prior, make_prior

__all__ = ["VARIANTS", "UNLABELLED", "VariantConfig", "one_hot"]

VARIANTS = ("unsupervised", "conditioned", "supervised", "semi-supervised", "clustering")
UNLABELLED = -1


def one_hot(labels: np.ndarray, k: int, dtype: Any = np.float32, unlabelled_slot: bool = False) -> np.ndarray:
    """(N, k) one-hot rows; with ``unlabelled_slot`` (N, k + 1) and label -1 -> the last slot."""
    labels = np.asarray(labels)
    width = k + 1 if unlabelled_slot else k
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be a 1-D integer array, got {labels.dtype} {labels.shape}")
    low = UNLABELLED if unlabelled_slot else 0
    if labels.size and (labels.min() < low or labels.max() >= k):
        raise ValueError(f"labels must lie in [{low}, {k}), got [{labels.min()}, {labels.max()}]")
    out = np.zeros((len(labels), width), dtype)
    out[np.arange(len(labels)), np.where(labels < 0, k, labels)] = 1
    return out


@dataclass
class VariantConfig(ModelConfig):
    """Everything needed to rebuild a variant (saved as JSON inside ``model.npz``)."""

    variant: str = "semi-supervised"
    input_dim: int = 784
    n_classes: int = 10                  # k: classes (supervised, conditioned, semi-) or clusters
    style_dim: int = 10                  # s: dimension of z
    encoder_hidden: tuple[int, ...] = (1000, 1000)
    decoder_hidden: tuple[int, ...] = (1000, 1000)
    discriminator_hidden: tuple[int, ...] = (1000, 1000)
    activation: str = "relu"
    recon_loss: str = "bce"
    prior: dict[str, Any] = field(default_factory=dict)   # p(z) as Prior.config(); {}: N(0, I)
    encoder_batchnorm: bool = False      # BatchNorm after every encoder layer, the z and y heads included
    input_dropout: float = 0.0           # probability of dropping an input pixel while training
    dtype: str = "float32"
    seed: int = 0

    def __post_init__(self) -> None:
        problems = network_problems(self, ("input_dim", "style_dim", "n_classes"))
        if self.variant not in VARIANTS:
            problems.append(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if not problems:
            try:
                prior = self.make_prior()
            except (TypeError, ValueError) as err:
                problems.append(f"prior {self.prior}: {err}")
            else:
                if prior.dim != self.style_dim:
                    problems.append(f"the prior is {prior.dim}-D but style_dim is {self.style_dim}")
                if self.variant == "conditioned" and prior.n_components != self.n_classes:
                    problems.append(f"the conditioned variant needs a prior with n_classes = {self.n_classes} "
                                    f"components (mixture or swiss_roll with k={self.n_classes}), "
                                    f"got {prior!r}")
        if problems:
            raise ValueError("VariantConfig: " + "; ".join(problems))

    def make_prior(self) -> Prior:
        return make_prior(self.prior) if self.prior else Gaussian(self.style_dim)

    @property
    def has_y(self) -> bool:
        """Does the encoder output a softmax y (categorical latent)?"""
        return self.variant in ("semi-supervised", "clustering")

    @property
    def decoder_gets_label(self) -> bool:
        return self.variant in ("supervised", "semi-supervised", "clustering")

    @property
    def uses_labels(self) -> bool:
        return self.variant in ("conditioned", "supervised", "semi-supervised")
