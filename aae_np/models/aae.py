"""The Adversarial Autoencoder: three networks and the hand-written gradient of each phase.

Networks (all ``Sequential`` MLPs, batches as rows):

* ``encoder``       x (N, input_dim)   -> z (N, latent_dim)        linear output
* ``decoder``       z (N, latent_dim)  -> logits (N, input_dim)    ``decode`` applies the sigmoid
* ``discriminator`` z (N, latent_dim)  -> logit a (N, 1)           D(z) = sigmoid(a)
* ``image_discriminator`` (optional)  x (N, input_dim) -> logit (N, 1): real images against
  decoded prior samples, a second adversary that the paper does not have (``docs/training.md``)

The sigmoids on the decoder and discriminator outputs are kept out of the
``Sequential``s on purpose: every loss is taken on logits (fused sigmoid +
BCE), see ``losses.py`` and ``docs/derivations.md``.

Training phases (``phase_grads``), each a deterministic function of its
inputs that changes no parameter:

``reconstruction``  L_rec(x, dec(enc(x)))                 -> encoder.*, decoder.*
``discriminator``   BCE(D(z_prior), 1) & BCE(D(enc(x)), 0) -> discriminator.*
``generator``       BCE(D(enc(x)), 1)                      -> encoder.*
``joint``           L_rec + adv_weight * BCE(D(enc(x)), 1)  -> encoder.*, decoder.*  (the tutorial's step)

and, with an image discriminator D_x (``IMAGE_PHASES``):

``image_discriminator``  BCE(D_x(x), 1) & BCE(D_x(dec(z_prior)), 0)      -> image_discriminator.*
``image_generator``      image_adv_weight * BCE(D_x(dec(z_prior)), 1)    -> decoder.*
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from aae_np.nn import losses
from aae_np.nn.activations import sigmoid
from aae_np.nn.base import NonFiniteError
from aae_np.files import atomic_savez
from aae_np.nn.layers import Dense, Identity, LeakyReLU, ReLU, Sequential, Sigmoid, Tanh
from aae_np.models.priors import Gaussian, Prior

__all__ = ["AAEConfig", "AAE", "NetworkSet", "PHASES", "IMAGE_PHASES", "load_model"]

PHASES = ("reconstruction", "discriminator", "generator", "joint")
IMAGE_PHASES = ("image_discriminator", "image_generator")     # only with an image discriminator
IMAGE_DISCRIMINATOR_ACTIVATION = "leaky_relu"                  # the usual choice for a GAN's D
ACTIVATIONS = {"relu": ReLU, "leaky_relu": LeakyReLU, "tanh": Tanh, "sigmoid": Sigmoid,
               "identity": Identity}
FORMAT_VERSION = 1


@dataclass
class AAEConfig:
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

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "AAEConfig":
        return config_from_dict(cls, d)


def network_problems(config: Any, sizes: tuple[str, ...]) -> list[str]:
    """What is wrong with the fields every model config shares (every ``*_hidden`` field of
    layer sizes becomes a tuple)."""
    hidden = [f.name for f in fields(config) if f.name.endswith("_hidden")]
    for name in hidden:
        setattr(config, name, tuple(int(h) for h in getattr(config, name)))
    problems = []
    if config.activation not in ACTIVATIONS:
        problems.append(f"activation must be one of {sorted(ACTIVATIONS)}, got {config.activation!r}")
    if config.recon_loss not in ("bce", "mse"):
        problems.append(f"recon_loss must be 'bce' or 'mse', got {config.recon_loss!r}")
    if config.dtype not in ("float32", "float64"):
        problems.append(f"dtype must be 'float32' or 'float64', got {config.dtype!r}")
    for name in sizes:
        if int(getattr(config, name)) < 1:
            problems.append(f"{name} must be >= 1, got {getattr(config, name)}")
    for name in hidden:
        if any(h < 1 for h in getattr(config, name)):
            problems.append(f"{name}: hidden layer sizes must be >= 1")
    return problems


def config_to_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as JSON-able values (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}


def config_from_dict(cls: type, d: dict[str, Any]) -> Any:
    unknown = set(d) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown keys {sorted(unknown)}")
    return cls(**d)


def mlp(sizes: list[int], activation: str, rng: np.random.Generator, dtype: np.dtype) -> Sequential:
    """Dense -> act -> ... -> Dense (linear output). He init before ReLU-family, Glorot otherwise."""
    layers = []
    hidden_init = "he" if activation in ("relu", "leaky_relu") else "glorot"
    for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == len(sizes) - 2
        layers.append(Dense(d_in, d_out, rng=rng, dtype=dtype, init="glorot" if last else hidden_init))
        if not last:
            layers.append(ACTIVATIONS[activation]())
    return Sequential(*layers)


class NetworkSet:
    """Named ``Sequential`` networks whose parameters share one flat buffer.

    The plumbing common to every model of the family (``AAE`` here, the paper's
    variants in ``aae_np.models.variants``): qualified parameter names, flat parameter and
    gradient buffers, the numpy/numba backend switch, input checks, batched
    inference, and atomic save/load. Subclasses set ``config_class`` and call
    ``_setup(nets, backend)`` from ``__init__``.
    """

    config_class: type = None            # set by subclasses: a dataclass with to_dict/from_dict
    kind = "aae"                         # stored in the file, so a loader knows what to rebuild

    def _setup(self, nets: dict[str, Sequential], backend: str | None) -> None:
        self.nets = nets
        for name, net in self.nets.items():
            net._set_name(name)
        self._flatten()
        self.set_backend(backend)
        self.last_stats: dict[str, float] = {}
        self.intermediates: dict[str, np.ndarray] = {}

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(dtype={self.dtype.name},\n"
                + "\n".join(f"  {n}={net!r}" for n, net in self.nets.items()) + ")")

    def _flatten(self) -> None:
        """Move every parameter (and gradient) into one flat buffer, encoder first.

        Each layer keeps a view of its slice, so ``encoder.0.W`` is still an
        ``(in, out)`` array; optimizers of the fast path update a network's whole
        contiguous slice in one loop.
        """
        sizes = [p.size for _, p in self.named_params()]
        self.flat_params = np.empty(sum(sizes), self.dtype)
        self.flat_grads = np.zeros(sum(sizes), self.dtype)
        self._offsets: dict[str, tuple[int, int]] = {}
        offset = 0
        for name, net in self.nets.items():
            start = offset
            for layer in net.layers:
                for key, value in list(layer.params.items()):
                    view = self.flat_params[offset:offset + value.size].reshape(value.shape)
                    view[...] = value
                    layer.params[key] = view
                    layer.grads[key] = self.flat_grads[offset:offset + value.size].reshape(value.shape)
                    offset += value.size
            net._collect()
            self._offsets[name] = (start, offset)
        self.params = dict(self.named_params())
        self.grads = {f"{n}.{k}": g for n, net in self.nets.items() for k, g in net.grads.items()}

    def flat_slice(self, *nets: str) -> tuple[np.ndarray, np.ndarray]:
        """(params, grads) views covering the named networks, which must be adjacent."""
        spans = sorted(self._offsets[n] for n in nets)
        if any(a[1] != b[0] for a, b in zip(spans, spans[1:])):
            raise ValueError(f"flat_slice: {nets} are not adjacent in the parameter buffer")
        start, stop = spans[0][0], spans[-1][1]
        return self.flat_params[start:stop], self.flat_grads[start:stop]

    def set_backend(self, backend: str | None) -> None:
        """Choose how the phases compute: the layers ("numpy") or fused kernels ("numba")."""
        from aae_np.fast.runner import FusedMLP
        from aae_np.fast.kernels import default_backend, get_kernels

        self.backend = default_backend() if backend is None else backend
        self.kernels = get_kernels(self.backend)
        self.run = {name: net if self.backend == "numpy" else FusedMLP(net, self.kernels)
                    for name, net in self.nets.items()}

    # -- parameters ----------------------------------------------------------
    def named_params(self) -> Iterator[tuple[str, np.ndarray]]:
        """``("encoder.0.W", array)``, ... for all three networks."""
        for name, net in self.nets.items():
            yield from net.named_params(prefix=f"{name}.")

    def params_of(self, *nets: str) -> dict[str, np.ndarray]:
        """The parameters of the named networks, e.g. ``params_of("encoder", "decoder")``."""
        return {k: v for k, v in self.params.items() if k.split(".", 1)[0] in nets}

    def zero_grad(self) -> None:
        """Start a phase with zero gradients.

        The numba path only marks its networks: their first backward of the phase then
        overwrites every parameter gradient it computes, which is the same as adding to
        zeros without a pass over the whole buffer. (Gradients of networks that a phase
        does not train are not part of its result and may then hold older values.)
        """
        if self.backend == "numpy":
            self.flat_grads.fill(0)
            return
        for runner in self.run.values():
            runner.mark_zeroed()

    def num_params(self) -> int:
        return sum(p.size for p in self.params.values())

    # -- inference -------------------------------------------------------------
    def _as_input(self, x: np.ndarray, dim: int, what: str) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != dim:
            raise ValueError(f"AAE: {what} must have shape (N, {dim}), got {x.shape}")
        if not np.issubdtype(x.dtype, np.number):
            raise ValueError(f"AAE: {what} must be numeric, got dtype {x.dtype}")
        x = x.astype(self.dtype, copy=False)
        if not np.isfinite(x).all():          # the fused path has no per-layer checks: check here
            raise NonFiniteError(f"AAE: {what} of shape {x.shape} contains NaN or inf")
        return x

    def _batched(self, name: str, x: np.ndarray, batch_size: int) -> np.ndarray:
        net = self.run[name]
        return np.concatenate([net.forward(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
                              or [np.zeros((0, self.nets[name].layers[-1].out_dim), self.dtype)])

    # -- the three losses every model of the family is made of ----------------------
    def _recon_loss(self, logits: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Reconstruction loss of the decoder's logits and delta = dL/dlogits."""
        if self.backend != "numpy":                                    # the same, one fused kernel
            d_logits = np.empty_like(logits)
            fused = self.kernels.bce_logits if self.config.recon_loss == "bce" else self.kernels.sigmoid_mse
            return float(fused(logits, x, d_logits)), d_logits
        if self.config.recon_loss == "bce":
            return losses.bce_with_logits(logits, x)                   # delta = (x_hat - x) / n
        x_hat = sigmoid(logits)
        loss, d_xhat = losses.mse(x_hat, x)                            # dL/dx_hat = 2/n (x_hat - x)
        return loss, d_xhat * x_hat * (1 - x_hat)                      # delta = dL/dx_hat * s'(logits)

    def _fool(self, name: str, inp: np.ndarray) -> tuple[float, np.ndarray]:
        """L_G = BCE(D(inp), 1) for discriminator ``name``; returns (L_G, dL_G/d inp).

        Only the input gradient is wanted: the discriminator is not trained by a
        generator phase, so its parameter gradients are discarded (numpy) or never
        computed (numba)."""
        a = self.run[name].forward(inp)
        loss, da = losses.bce_with_logits(a, np.ones_like(a))          # dL/da = (D - 1) / N
        if self.backend == "numpy":
            d_inp = self.run[name].backward(da)                        # da W_D^T ... back through D
            self.nets[name].zero_grad()
        else:
            d_inp = self.run[name].backward(da, param_grads=False)
        return loss, d_inp

    def _real_vs_fake(self, name: str, real: np.ndarray, fake: np.ndarray) -> tuple[float, float]:
        """Train-phase loss of discriminator ``name``: real rows target 1, fake rows 0.

        Both halves go through D as one batch of 2N rows with targets [1; 0]; the
        mean BCE over that batch is exactly the average of the two halves' means
        (for equal halves), and dL/da = (D - t) / 2N row by row. Accumulates D's
        parameter gradients; returns (loss, accuracy)."""
        n = len(real)
        if len(fake) != n:
            raise ValueError(f"the prior sample has {n} rows but the batch has {len(fake)}; "
                             "give one prior sample per input")
        target = np.concatenate([np.ones((n, 1), self.dtype), np.zeros((n, 1), self.dtype)])
        a = self.run[name].forward(np.concatenate([real, fake]))
        loss, da = losses.bce_with_logits(a, target)                   # (D - t) / 2N
        self.run[name].backward(da, need_dx=False)                     # dW_D = inp^T delta, ...
        return loss, float(0.5 * (np.mean(a[:n] > 0) + np.mean(a[n:] <= 0)))

    # -- persistence -------------------------------------------------------------
    def save(self, path: str | os.PathLike, extra: dict[str, np.ndarray] | None = None) -> Path:
        """Write config (JSON) and parameters to one ``.npz``, atomically (temp file + rename)."""
        arrays = {"__config__": np.array(json.dumps(self.config.to_dict())),
                  "__format__": np.array(FORMAT_VERSION), "__kind__": np.array(self.kind)}
        arrays.update({f"param/{k}": v for k, v in self.params.items()})
        arrays.update(extra or {})
        return atomic_savez(path, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "NetworkSet":
        """Rebuild a model saved by ``save`` (no pickle is ever loaded)."""
        model, _ = cls.load_with_extras(path)
        return model

    @classmethod
    def load_with_extras(cls, path: str | os.PathLike) -> tuple["NetworkSet", dict[str, np.ndarray]]:
        arrays = read_model_arrays(path)
        kind = str(arrays.pop("__kind__", "aae"))
        if kind != cls.kind:
            raise ValueError(f"{path} holds a {kind!r} model, not {cls.kind!r}; load it with aae_np.load_model")
        return cls._from_arrays(path, arrays)

    @classmethod
    def _from_arrays(cls, path, arrays: dict[str, np.ndarray]) -> tuple["NetworkSet", dict[str, np.ndarray]]:
        try:
            config = cls.config_class.from_dict(json.loads(str(arrays.pop("__config__"))))
        except (ValueError, KeyError, TypeError, json.JSONDecodeError) as err:
            raise ValueError(f"{path} is not a readable aae_np model file ({err}); "
                             "was it written by AAE.save / aae-np train?") from err
        model = cls(config)
        for name, param in model.params.items():
            stored = arrays.pop(f"param/{name}", None)
            if stored is None or stored.shape != param.shape:
                raise ValueError(f"{path}: parameter {name} is missing or has the wrong shape "
                                 f"({None if stored is None else stored.shape} vs {param.shape})")
            param[...] = stored
        return model, arrays


class AAE(NetworkSet):
    """Adversarial Autoencoder (Makhzani et al., 2015) with hand-written phase gradients."""

    config_class = AAEConfig

    def __init__(self, config: AAEConfig | None = None, *, backend: str | None = None,
                 **overrides: Any) -> None:
        """``backend``: "numpy" (the layers themselves), "numba" (fused kernels) or None for
        ``$AAE_NP_BACKEND``, else the fastest installed (see ``kernels.default_backend``)."""
        if config is None:
            config = AAEConfig(**overrides)
        elif overrides:
            config = AAEConfig.from_dict({**config.to_dict(), **overrides})
        self.config = config
        self.dtype = np.dtype(config.dtype)
        rng = np.random.default_rng(config.seed)
        c = config
        self.encoder = mlp([c.input_dim, *c.encoder_hidden, c.latent_dim], c.activation, rng, self.dtype)
        self.decoder = mlp([c.latent_dim, *c.decoder_hidden, c.input_dim], c.activation, rng, self.dtype)
        self.discriminator = mlp([c.latent_dim, *c.discriminator_hidden, 1], c.activation, rng, self.dtype)
        self.prior: Prior = Gaussian(c.latent_dim, c.prior_std)
        nets = {"encoder": self.encoder, "decoder": self.decoder, "discriminator": self.discriminator}
        self.image_discriminator = None
        if c.image_discriminator_hidden:      # drawn last: the other three start the same with or without it
            self.image_discriminator = mlp([c.input_dim, *c.image_discriminator_hidden, 1],
                                           IMAGE_DISCRIMINATOR_ACTIVATION, rng, self.dtype)
            nets["image_discriminator"] = self.image_discriminator
        self._setup(nets, backend)

    @property
    def phases(self) -> tuple[str, ...]:
        """The phases this model can run."""
        return PHASES + (IMAGE_PHASES if self.image_discriminator is not None else ())

    def encode(self, x: np.ndarray, batch_size: int = 2048) -> np.ndarray:
        """z = enc(x): (N, input_dim) -> (N, latent_dim)."""
        return self._batched("encoder", self._as_input(x, self.config.input_dim, "x"), batch_size)

    def decode(self, z: np.ndarray, batch_size: int = 2048) -> np.ndarray:
        """x_hat = sigmoid(dec(z)): (N, latent_dim) -> (N, input_dim) in (0, 1)."""
        z = self._as_input(z, self.config.latent_dim, "z")
        return sigmoid(self._batched("decoder", z, batch_size))

    def reconstruct(self, x: np.ndarray, batch_size: int = 2048) -> np.ndarray:
        return self.decode(self.encode(x, batch_size), batch_size)

    def discriminate(self, z: np.ndarray, batch_size: int = 2048) -> np.ndarray:
        """D(z) = sigmoid(disc(z)): the probability that z came from the prior, (N, 1)."""
        z = self._as_input(z, self.config.latent_dim, "z")
        return sigmoid(self._batched("discriminator", z, batch_size))

    # -- training phases -------------------------------------------------------
    def phase_grads(self, phase: str, x: np.ndarray, z_prior: np.ndarray | None = None,
                    eps: np.ndarray | None = None) -> tuple[float, dict[str, np.ndarray]]:
        """Loss and gradients of one training phase; changes no parameter.

        Returns ``(loss, grads)`` where ``grads`` maps the qualified names of
        the parameters this phase trains to the model's gradient buffers
        (valid until the next call). ``z_prior`` (N, latent_dim) is required
        by the ``discriminator`` phase. ``eps`` (N, latent_dim), standard normal
        noise, draws z = enc(x) + posterior_std * eps from a Gaussian posterior
        (paper section 2.1); without it z = enc(x). dz/d enc(x) = I either way.
        Extra numbers (D accuracy...) land in ``self.last_stats``; intermediate
        gradients in ``self.intermediates``.
        """
        if phase not in self.phases:
            if phase in IMAGE_PHASES:
                raise ValueError(f"the {phase} phase needs an image discriminator: "
                                 "set AAEConfig.image_discriminator_hidden, e.g. (256,)")
            raise ValueError(f"phase must be one of {self.phases}, got {phase!r}")
        x = self._as_input(x, self.config.input_dim, "x")
        self._eps = None
        if eps is not None and self.config.posterior_std > 0:
            self._eps = self.config.posterior_std * self._as_input(eps, self.config.latent_dim, "eps")
        self.zero_grad()
        self.last_stats, self.intermediates = {}, {}
        if phase == "reconstruction":
            loss = self._reconstruction(x, backprop=True)
            trained = ("encoder", "decoder")
        elif phase in ("discriminator", *IMAGE_PHASES):
            if z_prior is None:
                raise ValueError(f"the {phase} phase needs z_prior: samples of the prior, (N, latent_dim)")
            z_prior = self._as_input(z_prior, self.config.latent_dim, "z_prior")
            if phase == "discriminator":
                loss, trained = self._discriminator(x, z_prior), ("discriminator",)
            elif phase == "image_discriminator":
                loss, trained = self._image_discriminator(x, z_prior), ("image_discriminator",)
            else:
                loss, trained = self._image_generator(z_prior), ("decoder",)
        elif phase == "generator":
            z = self._encode_train(x)
            loss, dz = self._fool_discriminator(z)
            self.run["encoder"].backward(dz, need_dx=False)        # delta_enc through the encoder
            trained = ("encoder",)
        else:  # joint: the tutorial's single step on L_rec + lambda * L_G
            rec = self._reconstruction(x, backprop=False)
            dz_rec = self.run["decoder"].backward(self.intermediates["d_logits"])
            adv, dz_adv = self._fool_discriminator(self.intermediates["z"])
            dz = dz_rec + self.config.adv_weight * dz_adv   # dL/dz adds over the two paths
            self.intermediates["dz"] = dz
            self.run["encoder"].backward(dz, need_dx=False)
            loss = rec + self.config.adv_weight * adv
            self.last_stats.update(recon_loss=rec, g_loss=adv)
            trained = ("encoder", "decoder")
        return loss, {k: g for k, g in self.grads.items() if k.split(".", 1)[0] in trained}

    def _encode_train(self, x: np.ndarray) -> np.ndarray:
        """z = enc(x) (+ posterior_std * eps when the phase was given noise)."""
        z = self.run["encoder"].forward(x)
        return z if self._eps is None else z + self._eps

    def _reconstruction(self, x: np.ndarray, backprop: bool) -> float:
        z = self._encode_train(x)
        logits = self.run["decoder"].forward(z)
        loss, d_logits = self._recon_loss(logits, x)
        self.intermediates.update(z=z, d_logits=d_logits)
        self.last_stats["recon_loss"] = loss
        if backprop:
            dz = self.run["decoder"].backward(d_logits)                       # dz = delta W_dec^T ...
            self.intermediates["dz"] = dz
            self.run["encoder"].backward(dz, need_dx=False)       # x is data: no dL/dx needed
        return loss

    def _fool_discriminator(self, z: np.ndarray) -> tuple[float, np.ndarray]:
        """L_G = BCE(D(z), 1); returns (L_G, dL_G/dz). The discriminator's own grads are discarded."""
        loss, dz = self._fool("discriminator", z)
        self.intermediates.update(z=z, dz_adv=dz)
        self.last_stats["g_loss"] = loss
        return loss, dz

    def _discriminator(self, x: np.ndarray, z_prior: np.ndarray) -> float:
        """L_D = 1/2 [BCE(D(z_prior), 1) + BCE(D(enc(x)), 0)]: the mean over all 2N samples."""
        z_fake = self._encode_train(x)                                 # a constant here (detached)
        n = len(z_prior)
        if len(z_fake) != n:
            raise ValueError(f"z_prior has {n} rows but x has {len(z_fake)}; give one prior sample per input")
        loss, accuracy = self._real_vs_fake("discriminator", z_prior, z_fake)
        self.last_stats.update(d_loss=loss, d_accuracy=accuracy)
        return loss

    def _decode_prior(self, z_prior: np.ndarray) -> np.ndarray:
        """x_fake = sigmoid(dec(z_prior)), keeping the decoder's activations for a backward."""
        return sigmoid(self.run["decoder"].forward(z_prior))

    def _image_discriminator(self, x: np.ndarray, z_prior: np.ndarray) -> float:
        """L_Dx = 1/2 [BCE(D_x(x), 1) + BCE(D_x(x_fake), 0)]; x_fake is a constant here."""
        loss, accuracy = self._real_vs_fake("image_discriminator", x, self._decode_prior(z_prior))
        self.last_stats.update(image_d_loss=loss, image_d_accuracy=accuracy)
        return loss

    def _image_generator(self, z_prior: np.ndarray) -> float:
        """L_Gx = w BCE(D_x(x_fake), 1) with x_fake = s(dec(z_prior)), trained into the decoder.

        dL/dx_fake comes back through D_x (``_fool``); the decoder's output sigmoid then gives
        dL/dlogits = w dL/dx_fake * x_fake (1 - x_fake), which runs back through the decoder."""
        x_fake = self._decode_prior(z_prior)
        loss, d_fake = self._fool("image_discriminator", x_fake)
        w = self.config.image_adv_weight
        self.run["decoder"].backward(w * d_fake * x_fake * (1 - x_fake), need_dx=False)
        self.last_stats["image_g_loss"] = w * loss
        return w * loss


def read_model_arrays(path: str | os.PathLike, only: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """Every array (or those named in ``only``) of a model file, checked to be one (no pickle
    is ever loaded)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"model file {path} does not exist; train one with `aae-np train --out DIR`")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a readable aae_np model file (not an .npz archive); "
                         "was it written by AAE.save / aae-np train?")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files if only is None or k in only}
    except (OSError, ValueError, EOFError) as err:
        raise ValueError(f"{path} is not a readable aae_np model file ({err}); "
                         "was it written by AAE.save / aae-np train?") from err
    if "__config__" not in arrays:
        raise ValueError(f"{path} is not a readable aae_np model file (no config inside); "
                         "was it written by AAE.save / aae-np train?")
    arrays.pop("__format__", None)
    return arrays


def model_kind(path: str | os.PathLike) -> str:
    """"aae" or "variant": which class wrote the model file (or checkpoint) at ``path``.

    Reads only the config and kind entries of the archive, not the parameters."""
    return str(read_model_arrays(path, only=("__config__", "__kind__")).get("__kind__", "aae"))


def load_model(path: str | os.PathLike) -> tuple[NetworkSet, dict[str, np.ndarray]]:
    """Load any model of the family (plain AAE or a paper variant) and its extra arrays."""
    arrays = read_model_arrays(path)
    kind = str(arrays.pop("__kind__", "aae"))
    if kind == "aae":
        return AAE._from_arrays(path, arrays)
    if kind == "variant":
        from aae_np.models.variants import VariantAAE
        return VariantAAE._from_arrays(path, arrays)
    raise ValueError(f"{path} holds an unknown kind of model ({kind!r}); is aae_np older than the file?")
