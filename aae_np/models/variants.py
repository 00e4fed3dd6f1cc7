"""The paper's AAE family (Makhzani et al., 2015, sections 2.3 and 5-8) in one model.

Every variant is an encoder, a decoder and one or two discriminators; they differ
in what the encoder outputs, what the decoder and the discriminators see, and
which labels are used:

``unsupervised``     z ~ q(z|x) matched to any prior p(z) (Gaussian, mixture, swiss roll,
                     uniform). With a 2-D z this is the paper's dimensionality reduction.
``conditioned``      (section 2.3) D_z also receives a one-hot of the label, with an extra
                     "unlabelled" slot; labelled prior samples come from the label's
                     component of the prior, so each class is tied to one mixture mode.
``supervised``       (section 5) the decoder receives one-hot(label) beside z, so z
                     only has to carry the style.
``semi-supervised``  (section 6) the encoder outputs a softmax y (categorical prior, its
                     own discriminator D_y) and a style z (its prior, D_z); the decoder
                     sees [z, y]; a supervised cross-entropy phase on the labelled subset.
``clustering``       (section 7) the same with no labels and k = n_classes clusters.

Shapes (s = style_dim, k = n_classes, batches as rows):

* encoder  x (N, input_dim) -> out (N, s [+ k])  ;  z = out[:, :s], y = softmax(out[:, s:])
* decoder  [z, c] (N, s [+ k]) -> logits (N, input_dim), c = y or one-hot(label)
* disc_z   [z, c] (N, s [+ k + 1]) -> logit (N, 1), c = one-hot(label or "unlabelled")
* disc_y   y (N, k) -> logit (N, 1)

The only new derivative is the softmax's (``softmax_backward``): with y = softmax(s),
dL/ds = y * (dL/dy - sum_j y_j dL/dy_j), row by row. A concatenated input splits its
gradient by columns: dL/d[z, c] = [dL/dz, dL/dc]. Both are checked by finite
differences in ``tests/test_variants.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aae_np.nn import losses
from aae_np.nn.activations import sigmoid
from aae_np.models.aae import NetworkSet, config_from_dict, config_to_dict, mlp, network_problems
from aae_np.models.priors import Categorical, Gaussian, Prior, make_prior

__all__ = ["VARIANTS", "VARIANT_PHASES", "VariantConfig", "VariantAAE", "softmax", "softmax_backward",
           "one_hot"]

VARIANTS = ("unsupervised", "conditioned", "supervised", "semi-supervised", "clustering")
VARIANT_PHASES = ("reconstruction", "discriminator", "generator", "supervised")
UNLABELLED = -1


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by the row maximum so exp cannot overflow."""
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def softmax_backward(y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """dL/ds from dL/dy for y = softmax(s): the Jacobian diag(y) - y y^T applied row by row."""
    return y * (dy - np.sum(dy * y, axis=1, keepdims=True))


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
class VariantConfig:
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

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "VariantConfig":
        return config_from_dict(cls, d)


class VariantAAE(NetworkSet):
    """One model for the paper's variants; ``phase_grads`` gives each phase's hand-written gradient."""

    config_class = VariantConfig
    kind = "variant"

    def __init__(self, config: VariantConfig | None = None, *, backend: str | None = None,
                 **overrides: Any) -> None:
        if config is None:
            config = VariantConfig(**overrides)
        elif overrides:
            config = VariantConfig.from_dict({**config.to_dict(), **overrides})
        self.config = c = config
        self.dtype = np.dtype(c.dtype)
        s, k = c.style_dim, c.n_classes
        rng = np.random.default_rng(c.seed)
        nets = {
            "encoder": mlp([c.input_dim, *c.encoder_hidden, s + (k if c.has_y else 0)], c.activation, rng, self.dtype),
            "decoder": mlp([s + (k if c.decoder_gets_label else 0), *c.decoder_hidden, c.input_dim],
                           c.activation, rng, self.dtype),
            "disc_z": mlp([s + (k + 1 if c.variant == "conditioned" else 0), *c.discriminator_hidden, 1],
                          c.activation, rng, self.dtype),
        }
        if c.has_y:
            nets["disc_y"] = mlp([k, *c.discriminator_hidden, 1], c.activation, rng, self.dtype)
        self.prior: Prior = c.make_prior()
        self.prior_y: Prior | None = Categorical(k) if c.has_y else None
        self._setup(nets, backend)

    @property
    def discriminators(self) -> tuple[str, ...]:
        return ("disc_z", "disc_y") if self.config.has_y else ("disc_z",)

    # -- inference -----------------------------------------------------------------
    def _encoder_out(self, x: np.ndarray, batch_size: int) -> np.ndarray:
        return self._batched("encoder", self._as_input(x, self.config.input_dim, "x"), batch_size)

    def encode(self, x: np.ndarray, batch_size: int = 2048) -> np.ndarray:
        """The style z: (N, input_dim) -> (N, style_dim)."""
        return np.ascontiguousarray(self._encoder_out(x, batch_size)[:, :self.config.style_dim])

    def classify(self, x: np.ndarray, batch_size: int = 2048) -> np.ndarray:
        """q(y|x): (N, n_classes) class (or cluster) probabilities; only variants with a y head."""
        if not self.config.has_y:
            raise ValueError(f"the {self.config.variant} variant has no y head to classify with")
        return softmax(self._encoder_out(x, batch_size)[:, self.config.style_dim:])

    def _label_input(self, labels: Any, n: int) -> np.ndarray:
        """The decoder's c: one-hot rows from integer labels, or given (N, k) rows (e.g. probabilities)."""
        k = self.config.n_classes
        if labels is None:
            raise ValueError(f"the {self.config.variant} variant's decoder needs labels (N,) or y (N, {k})")
        labels = np.asarray(labels)
        if labels.ndim == 1:
            return one_hot(labels, k, self.dtype)
        return self._as_input(labels, k, "y")

    def decode(self, z: np.ndarray, labels: Any = None, batch_size: int = 2048) -> np.ndarray:
        """x_hat = sigmoid(dec([z, c])); ``labels`` (N,) ints or (N, k) rows for label-taking decoders."""
        z = self._as_input(z, self.config.style_dim, "z")
        if self.config.decoder_gets_label:
            c = self._label_input(labels, len(z))
            if len(c) != len(z):
                raise ValueError(f"z has {len(z)} rows but the labels have {len(c)}")
            z = np.concatenate([z, c], axis=1)
        return sigmoid(self._batched("decoder", z, batch_size))

    def reconstruct(self, x: np.ndarray, labels: Any = None, batch_size: int = 2048) -> np.ndarray:
        out = self._encoder_out(x, batch_size)
        s = self.config.style_dim
        if self.config.has_y:
            labels = softmax(out[:, s:])
        return self.decode(out[:, :s], labels, batch_size)

    def sample(self, n: int, rng: np.random.Generator, labels: Any = None) -> np.ndarray:
        """Decoded prior samples; label-taking decoders get ``labels`` or uniformly drawn classes."""
        z = self.prior.sample(n, rng, self.dtype)
        if self.config.decoder_gets_label and labels is None:
            labels = rng.integers(0, self.config.n_classes, n)
        return self.decode(z, labels)

    # -- training phases -------------------------------------------------------------
    def phase_grads(self, phase: str, x: np.ndarray, labels: np.ndarray | None = None,
                    z_prior: np.ndarray | None = None,
                    y_prior: np.ndarray | None = None,
                    x_in: np.ndarray | None = None,
                    y_noise: np.ndarray | None = None) -> tuple[float, dict[str, np.ndarray]]:
        """Loss and gradients of one phase; changes no parameter.

        ``x_in``: what the encoder sees instead of ``x`` (e.g. ``x`` plus noise: a denoising
        encoder); the reconstruction target stays ``x``. Data, so no gradient flows into it.
        ``y_noise`` (N, k): "instance noise" added to the encoder's y where D_y sees it (the
        trainer adds the same kind of noise to ``y_prior``), so D_y cannot win on the last
        decimals of a one-hot and y need not saturate its softmax; d(y + n)/dy = I.

        ``labels`` (N,) integers, -1 for unlabelled rows: the decoder's one-hot
        (supervised; all labelled), D_z's condition (conditioned) and the targets of
        the ``supervised`` phase (all labelled). ``z_prior`` (N, style_dim) and, with a
        y head, ``y_prior`` (N, k) one-hot rows are the discriminator phase's real samples.

        ``reconstruction``  L_rec(x, dec([z, c]))                      -> encoder, decoder
        ``discriminator``   BCE(D_z(z_prior), 1) + BCE(D_z(z), 0) [+ the same for D_y]  -> disc_z [, disc_y]
        ``generator``       BCE(D_z(z), 1) [+ BCE(D_y(y), 1)]              -> encoder
        ``supervised``      cross-entropy(y logits, labels)               -> encoder
        """
        if phase not in VARIANT_PHASES:
            raise ValueError(f"phase must be one of {VARIANT_PHASES}, got {phase!r}")
        c = self.config
        if phase == "supervised" and not c.has_y:
            raise ValueError(f"the {c.variant} variant has no supervised phase (no y head)")
        x = self._as_input(x, c.input_dim, "x")
        labels = self._check_labels(phase, labels, len(x))
        self.zero_grad()
        self.last_stats, self.intermediates = {}, {}
        x_enc = x if x_in is None else self._as_input(x_in, c.input_dim, "x_in")
        if len(x_enc) != len(x):
            raise ValueError(f"x_in has {len(x_enc)} rows but x has {len(x)}")
        out = self.run["encoder"].forward(x_enc)
        s = c.style_dim
        z, y_logits = out[:, :s], out[:, s:]
        y = softmax(y_logits) if c.has_y else None
        self._y_noise = None
        if y_noise is not None and c.has_y:
            self._y_noise = self._as_input(y_noise, c.n_classes, "y_noise")
        if phase == "reconstruction":
            loss = self._reconstruction(x, z, y, labels)
            trained = ("encoder", "decoder")
        elif phase == "discriminator":
            loss = self._discriminators(z, y, labels, z_prior, y_prior)
            trained = self.discriminators
        elif phase == "generator":
            loss = self._generator(z, y, labels)
            trained = ("encoder",)
        else:
            loss, d_logits = losses.softmax_cross_entropy(y_logits, labels)   # (softmax - onehot) / N
            self._encoder_backward(np.zeros_like(z), d_logits)
            self.last_stats["sup_loss"] = loss
            self.last_stats["sup_accuracy"] = float(np.mean(np.argmax(y_logits, axis=1) == labels))
            trained = ("encoder",)
        return loss, {k: g for k, g in self.grads.items() if k.split(".", 1)[0] in trained}

    def _check_labels(self, phase: str, labels: np.ndarray | None, n: int) -> np.ndarray | None:
        c = self.config
        needed = ((phase == "reconstruction" and c.variant == "supervised") or phase == "supervised"
                  or (phase in ("discriminator", "generator") and c.variant == "conditioned"))
        if not needed:
            return None
        if labels is None:
            raise ValueError(f"the {phase} phase of the {c.variant} variant needs labels (N,)")
        labels = np.asarray(labels)
        if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be {n} integers, got {labels.dtype} {labels.shape}")
        allow_unlabelled = c.variant == "conditioned" and phase != "supervised"
        low = UNLABELLED if allow_unlabelled else 0
        if n and (labels.min() < low or labels.max() >= c.n_classes):
            raise ValueError(f"the {phase} phase of the {c.variant} variant needs labels in "
                             f"[{low}, {c.n_classes}), got [{labels.min()}, {labels.max()}]")
        return labels

    def _encoder_backward(self, dz: np.ndarray, dy: np.ndarray | None) -> None:
        """Back through the encoder from dL/dz and dL/d(y logits): the output's columns are [z, logits]."""
        d_out = dz if dy is None else np.concatenate([dz, dy], axis=1)
        self.intermediates["d_encoder_out"] = d_out
        self.run["encoder"].backward(np.ascontiguousarray(d_out), need_dx=False)

    def _reconstruction(self, x, z, y, labels) -> float:
        s = self.config.style_dim
        if self.config.variant == "supervised":
            h = np.concatenate([z, one_hot(labels, self.config.n_classes, self.dtype)], axis=1)
        elif y is not None:
            h = np.concatenate([z, y], axis=1)
        else:
            h = np.ascontiguousarray(z)
        logits = self.run["decoder"].forward(h)
        loss, d_logits = self._recon_loss(logits, x)
        dh = self.run["decoder"].backward(d_logits)              # dL/d[z, c]: split by columns
        d_ylogits = softmax_backward(y, dh[:, s:]) if y is not None else None
        self._encoder_backward(dh[:, :s], d_ylogits)             # a one-hot label is data: no gradient
        self.last_stats["recon_loss"] = loss
        return loss

    def _condition(self, labels: np.ndarray) -> np.ndarray:
        return one_hot(labels, self.config.n_classes, self.dtype, unlabelled_slot=True)

    def _discriminators(self, z, y, labels, z_prior, y_prior) -> float:
        c = self.config
        if z_prior is None:
            raise ValueError(f"the discriminator phase needs z_prior: prior samples, (N, {c.style_dim})")
        z_prior = self._as_input(z_prior, c.style_dim, "z_prior")
        fake = np.ascontiguousarray(z)                             # a constant here: only D learns
        if c.variant == "conditioned":                             # both halves carry the batch's labels
            cond = self._condition(labels)
            z_prior, fake = np.concatenate([z_prior, cond], 1), np.concatenate([fake, cond], 1)
        loss, acc = self._real_vs_fake("disc_z", z_prior, fake)
        self.last_stats.update(d_loss=loss, d_accuracy=acc)
        if y is not None:
            if y_prior is None:
                raise ValueError(f"the discriminator phase needs y_prior: one-hot rows, (N, {c.n_classes})")
            loss_y, acc_y = self._real_vs_fake("disc_y", self._as_input(y_prior, c.n_classes, "y_prior"),
                                               self._seen_by_disc_y(y))
            self.last_stats.update(d_loss_y=loss_y, d_accuracy_y=acc_y)
            loss += loss_y
        return loss

    def _seen_by_disc_y(self, y: np.ndarray) -> np.ndarray:
        return y if self._y_noise is None else y + self._y_noise

    def _generator(self, z, y, labels) -> float:
        c = self.config
        inp = np.ascontiguousarray(z)
        if c.variant == "conditioned":
            inp = np.concatenate([inp, self._condition(labels)], axis=1)
        loss, d_inp = self._fool("disc_z", inp)
        self.last_stats["g_loss"] = loss
        d_ylogits = None
        if y is not None:
            loss_y, dy = self._fool("disc_y", self._seen_by_disc_y(y))      # d(y + noise)/dy = I
            d_ylogits = softmax_backward(y, dy)
            self.last_stats["g_loss_y"] = loss_y
            loss += loss_y
        self._encoder_backward(d_inp[:, :c.style_dim], d_ylogits)   # the condition is data: dropped
        return loss
