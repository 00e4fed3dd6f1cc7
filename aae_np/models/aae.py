"""The Adversarial Autoencoder: three networks and the hand-written gradient of each phase.

Networks (all ``Sequential`` MLPs, batches as rows):

* ``encoder``       x (N, input_dim)   -> z (N, latent_dim)        linear output
* ``decoder``       z (N, latent_dim)  -> logits (N, input_dim)    ``decode`` applies the sigmoid
* ``discriminator`` z (N, latent_dim)  -> logit a (N, 1)           D(z) = sigmoid(a)
* ``image_discriminator`` (optional)  x (N, input_dim) -> logit (N, 1): real images against
  decoded prior samples, a second adversary that the paper does not have (``docs/training.md``)

The sigmoids on the decoder and discriminator outputs are kept out of the
``Sequential``s on purpose: every loss is taken on logits (fused sigmoid +
BCE), see ``aae_np/nn/losses.py`` and ``docs/derivations.md``.

Training phases (``PHASES``, run by ``phase_grads``), each a deterministic function of
its inputs that changes no parameter:

``reconstruction``  L_rec(x, dec(enc(x)))                 -> encoder.*, decoder.*
``discriminator``   BCE(D(z_prior), 1) & BCE(D(enc(x)), 0) -> discriminator.*
``generator``       BCE(D(enc(x)), 1)                      -> encoder.*
``joint``           L_rec + adv_weight * BCE(D(enc(x)), 1)  -> encoder.*, decoder.*  (the tutorial's step)

and, with an image discriminator D_x (``IMAGE_PHASES``):

``image_discriminator``  BCE(D_x(x), 1) & BCE(D_x(dec(z_prior)), 0)      -> image_discriminator.*
``image_generator``      image_adv_weight * BCE(D_x(dec(z_prior)), 1)    -> decoder.*
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from aae_np.models.adversarial import fool, real_vs_fake
from aae_np.models.config import ModelConfig, NetSpec, mlp, network_problems
from aae_np.models.network_set import NetworkSet, Phase
from aae_np.models.priors import Gaussian, Prior
from aae_np.nn.activations import sigmoid

__all__ = ["AAEConfig", "AAE", "PHASES", "IMAGE_PHASES"]

PHASES = {
    "reconstruction": Phase(trains=("encoder", "decoder"), uses=("eps",)),
    "discriminator": Phase(trains=("discriminator",), needs=("z_prior",), uses=("eps",)),
    "generator": Phase(trains=("encoder",), uses=("eps",)),
    "joint": Phase(trains=("encoder", "decoder"), uses=("eps",)),
}
IMAGE_PHASES = {                                               # only with an image discriminator
    "image_discriminator": Phase(trains=("image_discriminator",), needs=("z_prior",)),
    "image_generator": Phase(trains=("decoder",), needs=("z_prior",)),
}
IMAGE_DISCRIMINATOR_ACTIVATION = "leaky_relu"                  # the usual choice for a GAN's D


@dataclass
class AAEConfig(ModelConfig):
    """Everything needed to rebuild a model (saved as JSON inside ``model.npz``)."""

    input_dim: int = 784
    latent_dim: int = 8
    encoder_hidden: tuple[int, ...] = (512, 512)
    decoder_hidden: tuple[int, ...] = (512, 512)
    discriminator_hidden: tuple[int, ...] = (512, 512)
    activation: str = "relu"            # hidden activation of all three networks
    recon_loss: str = "bce"             # "bce" (on logits) or "mse" (on sigmoid outputs)
    adv_weight: float = 1.0             # lambda of the joint phase
    prior_std: float = 1.0
    posterior_std: float = 0.0          # q(z|x) = N(enc(x), posterior_std^2 I) while training; 0: deterministic
    # A second adversary in image space: real x against decoded prior samples; () = none, the
    # paper's AAE. The decoder learns from it to decode every prior sample, also those where few
    # codes land, to a digit-like image (docs/training.md).
    image_discriminator_hidden: tuple[int, ...] = ()
    image_adv_weight: float = 1.0       # its weight in the decoder's image_generator loss
    encoder_batchnorm: bool = False     # BatchNorm after every encoder layer (the paper's appendix)
    input_dropout: float = 0.0          # probability of dropping an input pixel while training
    dtype: str = "float32"
    seed: int = 0

    def __post_init__(self) -> None:
        problems = network_problems(self, ("input_dim", "latent_dim"))
        if not self.posterior_std >= 0:
            problems.append(f"posterior_std must be >= 0, got {self.posterior_std}")
        if not self.image_adv_weight > 0:
            problems.append(f"image_adv_weight must be > 0, got {self.image_adv_weight}")
        if problems:
            raise ValueError("AAEConfig: " + "; ".join(problems))


class AAE(NetworkSet):
    """Adversarial Autoencoder (Makhzani et al., 2015) with hand-written phase gradients."""

    config_class = AAEConfig
    INPUTS = {"z_prior": "samples of the prior, (N, latent_dim)",
              "eps": "standard normal noise, (N, latent_dim): z = enc(x) + posterior_std * eps",
              "dropout_mask": "the input dropout's mask, (N, input_dim) of 0 (dropped) and 1 (kept)"}

    def __init__(self, config: AAEConfig | None = None, *, backend: str | None = None,
                 **overrides: Any) -> None:
        """``backend``: "numpy" (the layers themselves), "numba" (fused kernels) or None for
        ``$AAE_NP_BACKEND``, else the fastest installed (``aae_np.fast.backend``)."""
        if config is None:
            config = AAEConfig(**overrides)
        elif overrides:
            config = AAEConfig.from_dict({**config.to_dict(), **overrides})
        self.config = config
        self.dtype = np.dtype(config.dtype)
        rng = np.random.default_rng(config.seed)
        nets = {name: mlp(spec, rng, self.dtype) for name, spec in self.network_specs(config).items()}
        self.encoder, self.decoder, self.discriminator = nets["encoder"], nets["decoder"], nets["discriminator"]
        self.image_discriminator = nets.get("image_discriminator")
        self.prior: Prior = Gaussian(config.latent_dim, config.prior_std)
        # the phases this model can run: PHASES, and IMAGE_PHASES with an image discriminator
        table = {**PHASES, **IMAGE_PHASES} if self.image_discriminator is not None else PHASES
        self._setup(nets, backend, table, encoding=("reconstruction", "discriminator", "generator", "joint"))

    @staticmethod
    def network_specs(c: AAEConfig) -> dict[str, NetSpec]:
        """The networks ``c`` describes, in the order their weights are drawn."""
        specs = {"encoder": NetSpec([c.input_dim, *c.encoder_hidden, c.latent_dim], c.activation,
                                    c.encoder_batchnorm, c.input_dropout),
                 "decoder": NetSpec([c.latent_dim, *c.decoder_hidden, c.input_dim], c.activation),
                 "discriminator": NetSpec([c.latent_dim, *c.discriminator_hidden, 1], c.activation)}
        if c.image_discriminator_hidden:     # drawn last: the other three start the same with or without it
            specs["image_discriminator"] = NetSpec([c.input_dim, *c.image_discriminator_hidden, 1],
                                                   IMAGE_DISCRIMINATOR_ACTIVATION)
        return specs

    def _no_phase(self, phase: str) -> str:
        if phase in IMAGE_PHASES:
            return (f"the {phase} phase needs an image discriminator: "
                    "set AAEConfig.image_discriminator_hidden, e.g. (256,)")
        return super()._no_phase(phase)

    def encode(self, x: np.ndarray, batch_size: int = 2048) -> np.ndarray:
        """z = enc(x): (N, input_dim) -> (N, latent_dim)."""
        return self._batched("encoder", self._as_input(x, self.config.input_dim, "x"), batch_size)

    def decode(self, z: np.ndarray, labels: Any = None, batch_size: int = 2048) -> np.ndarray:
        """x_hat = sigmoid(dec(z)): (N, latent_dim) -> (N, input_dim) in (0, 1); ``labels`` is ignored."""
        z = self._as_input(z, self.config.latent_dim, "z")
        return sigmoid(self._batched("decoder", z, batch_size))

    def reconstruct(self, x: np.ndarray, labels: Any = None, batch_size: int = 2048) -> np.ndarray:
        """dec(enc(x)); ``labels`` is ignored (the plain AAE's decoder takes none), so every model
        of the family is called the same way."""
        return self.decode(self.encode(x, batch_size), batch_size)

    def reconstruction_mse(self, x: np.ndarray, batch_size: int = 2048) -> float:
        """mean((sigmoid(dec(enc(x))) - x)^2) over every pixel: ``reconstruct`` and
        ``metrics.reconstruction_mse`` in one, batch by batch through the fused sigmoid + MSE
        (``kernels.sigmoid_mse``), without keeping the reconstructions (the per-epoch number)."""
        x = self._as_input(x, self.config.input_dim, "x")
        mse, total = self._backend.recon_loss("mse"), 0.0
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size]
            total += mse(self._batched("decoder", self._batched("encoder", xb, batch_size), batch_size), xb)[0] * xb.size
        return total / max(x.size, 1)

    def discriminate(self, z: np.ndarray, batch_size: int = 2048) -> np.ndarray:
        """D(z) = sigmoid(disc(z)): the probability that z came from the prior, (N, 1)."""
        z = self._as_input(z, self.config.latent_dim, "z")
        return sigmoid(self._batched("discriminator", z, batch_size))

    # -- training phases: one method per row of PHASES ----------------------------------
    # ``eps`` (N, latent_dim), standard normal noise, draws z = enc(x) + posterior_std * eps
    # from a Gaussian posterior (paper section 2.1); without it z = enc(x). dz/d enc(x) = I.
    def _phase_reconstruction(self, x: np.ndarray, eps: np.ndarray | None) -> float:
        return self._reconstruction(x, eps, backprop=True)

    def _phase_discriminator(self, x: np.ndarray, z_prior: np.ndarray, eps: np.ndarray | None) -> float:
        """L_D = 1/2 [BCE(D(z_prior), 1) + BCE(D(enc(x)), 0)]: the mean over all 2N samples."""
        z_prior = self._as_input(z_prior, self.config.latent_dim, "z_prior")
        z_fake = self._encode_train(x, eps)                            # a constant here (detached)
        loss, accuracy = real_vs_fake(self.run["discriminator"], z_prior, z_fake)
        self.last_stats.update(d_loss=loss, d_accuracy=accuracy)
        return loss

    def _phase_generator(self, x: np.ndarray, eps: np.ndarray | None) -> float:
        z = self._encode_train(x, eps)
        loss, dz = self._fool_discriminator(z)
        self.run["encoder"].backward(dz, need_dx=False)               # delta_enc through the encoder
        return loss

    def _phase_joint(self, x: np.ndarray, eps: np.ndarray | None) -> float:
        """The tutorial's single step on L_rec + lambda * L_G."""
        rec = self._reconstruction(x, eps, backprop=False)
        dz_rec = self.run["decoder"].backward(self.intermediates["d_logits"])
        adv, dz_adv = self._fool_discriminator(self.intermediates["z"])
        dz = dz_rec + self.config.adv_weight * dz_adv                  # dL/dz adds over the two paths
        self.intermediates["dz"] = dz
        self.run["encoder"].backward(dz, need_dx=False)
        self.last_stats.update(recon_loss=rec, g_loss=adv)
        return rec + self.config.adv_weight * adv

    def _phase_image_discriminator(self, x: np.ndarray, z_prior: np.ndarray) -> float:
        """L_Dx = 1/2 [BCE(D_x(x), 1) + BCE(D_x(x_fake), 0)]; x_fake is a constant here."""
        x_fake = self._decode_prior(z_prior)
        loss, accuracy = real_vs_fake(self.run["image_discriminator"], x, x_fake)
        self.last_stats.update(image_d_loss=loss, image_d_accuracy=accuracy)
        return loss

    def _phase_image_generator(self, x: np.ndarray, z_prior: np.ndarray) -> float:
        """L_Gx = w BCE(D_x(x_fake), 1) with x_fake = s(dec(z_prior)), trained into the decoder.

        dL/dx_fake comes back through D_x (``fool``); the decoder's output sigmoid then gives
        dL/dlogits = w dL/dx_fake * x_fake (1 - x_fake), which runs back through the decoder."""
        x_fake = self._decode_prior(z_prior)
        loss, d_fake = fool(self.run["image_discriminator"], x_fake)
        w = self.config.image_adv_weight
        self.run["decoder"].backward(w * d_fake * x_fake * (1 - x_fake), need_dx=False)
        self.last_stats["image_g_loss"] = w * loss
        return w * loss

    # -- the pieces the phases share ----------------------------------------------------
    def encoder_is_pure(self) -> bool:
        c = self.config                     # (input dropout is a function of its mask, which phase_grads checks)
        return not c.encoder_batchnorm and c.posterior_std == 0

    def _encode_train(self, x: np.ndarray, eps: np.ndarray | None) -> np.ndarray:
        """z = enc(x) (+ posterior_std * eps when the phase was given noise)."""
        z = self._run_encoder(x)
        if eps is None or self.config.posterior_std == 0:
            return z
        return z + self.config.posterior_std * self._as_input(eps, self.config.latent_dim, "eps")

    def _reconstruction(self, x: np.ndarray, eps: np.ndarray | None, backprop: bool) -> float:
        z = self._encode_train(x, eps)
        logits = self.run["decoder"].forward(z)
        loss, d_logits = self._recon_loss(logits, x)
        self.intermediates.update(z=z, d_logits=d_logits)
        self.last_stats["recon_loss"] = loss
        if backprop:
            dz = self.run["decoder"].backward(d_logits)               # dz = delta W_dec^T ...
            self.intermediates["dz"] = dz
            self.run["encoder"].backward(dz, need_dx=False)           # x is data: no dL/dx needed
        return loss

    def _fool_discriminator(self, z: np.ndarray) -> tuple[float, np.ndarray]:
        """L_G = BCE(D(z), 1); returns (L_G, dL_G/dz). D's own gradients are not computed."""
        loss, dz = fool(self.run["discriminator"], z)
        self.intermediates.update(z=z, dz_adv=dz)
        self.last_stats["g_loss"] = loss
        return loss, dz

    def _decode_prior(self, z_prior: np.ndarray) -> np.ndarray:
        """x_fake = sigmoid(dec(z_prior)), keeping the decoder's activations for a backward."""
        z_prior = self._as_input(z_prior, self.config.latent_dim, "z_prior")
        return sigmoid(self.run["decoder"].forward(z_prior))
