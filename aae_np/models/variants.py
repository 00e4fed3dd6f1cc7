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

The only new derivative is the softmax's (``nn.activations.softmax_backward``): with y = softmax(s),
dL/ds = y * (dL/dy - sum_j y_j dL/dy_j), row by row. A concatenated input splits its
gradient by columns: dL/d[z, c] = [dL/dz, dL/dc]. Both are checked by finite
differences in ``tests/test_variants.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aae_np.models.adversarial import fool, real_vs_fake
from aae_np.models.config import NetSpec, mlp
from aae_np.models.network_set import NetworkSet, Phase
from aae_np.models.priors import Categorical, Prior
from aae_np.models.variant_config import UNLABELLED, VARIANTS, VariantConfig, one_hot
from aae_np.nn.activations import sigmoid, softmax, softmax_backward
from aae_np.nn.losses import marginal_kl_to_uniform, soft_cross_entropy, softmax_cross_entropy, uniform_kl_to_marginal

__all__ = ["VARIANTS", "UNLABELLED", "VariantConfig", "VariantAAE", "one_hot"]

class VariantAAE(NetworkSet):
    """One model for the paper's variants; ``phase_grads`` gives each phase's hand-written gradient."""

    config_class = VariantConfig
    kind = "variant"
    INPUTS = {"labels": "integer labels (N,), -1 for an unlabelled row",
              "z_prior": "prior samples of the style z, (N, style_dim)",
              "y_prior": "one-hot rows, (N, n_classes): samples of the categorical prior",
              "x_in": "what the encoder sees instead of x, (N, input_dim), e.g. x plus noise",
              "y_noise": "instance noise on y where D_y sees it, (N, n_classes)",
              "dropout_mask": "the input dropout's mask, (N, input_dim) of 0 (dropped) and 1 (kept)",
              "y_target": "(N, n_classes) probabilities q(y|x) the encoder's y on x_in is pulled towards",
              "balance": "weight w >= 0 of w * KL(batch mean of y || uniform) in the consistency phase",
              "revive": "weight w >= 0 of w * KL(uniform || batch mean of y) in the consistency phase",
              "y_weight": "(N,) weights >= 0 of the consistency phase's rows (e.g. 0 where the target is unsure)",
              "z_style": "styles (N, style_dim) the decoded_class phase decodes, e.g. prior samples",
              "classes": "integer classes (N,) in [0, n_classes) the decoded_class phase decodes them with"}

    def __init__(self, config: VariantConfig | None = None, *, backend: str | None = None,
                 **overrides: Any) -> None:
        if config is None:
            config = self.config_class(**overrides)
        elif overrides:
            config = self.config_class.from_dict({**config.to_dict(), **overrides})
        self.config = c = config
        self.dtype = np.dtype(c.dtype)
        rng = np.random.default_rng(c.seed)
        nets = {name: mlp(spec, rng, self.dtype) for name, spec in self.network_specs(c).items()}
        k = c.n_classes
        self.prior: Prior = c.make_prior()
        self.prior_y: Prior | None = Categorical(k) if c.has_y else None
        self._setup(nets, backend, self._phase_table(), encoding=("reconstruction", "discriminator", "generator",
                                                                  "supervised", "consistency"))

    @staticmethod
    def network_specs(c: VariantConfig) -> dict[str, NetSpec]:
        """The networks ``c`` describes, in the order their weights are drawn."""
        s, k = c.style_dim, c.n_classes
        specs = {
            "encoder": NetSpec([c.input_dim, *c.encoder_hidden, s + (k if c.has_y else 0)], c.activation,
                               c.encoder_batchnorm, c.input_dropout),
            "decoder": NetSpec([s + (k if c.decoder_gets_label else 0), *c.decoder_hidden, c.input_dim], c.activation),
            "disc_z": NetSpec([s + (k + 1 if c.variant == "conditioned" else 0), *c.discriminator_hidden, 1],
                              c.activation),
        }
        if c.has_y:
            specs["disc_y"] = NetSpec([k, *c.discriminator_hidden, 1], c.activation)
        return specs

    @property
    def discriminators(self) -> tuple[str, ...]:
        return ("disc_z", "disc_y") if self.config.has_y else ("disc_z",)

    def _phase_table(self) -> dict[str, Phase]:
        """The phase table of this variant, in training order (see the phase methods)."""
        c = self.config
        condition = ("labels",) if c.variant == "conditioned" else ()
        y_noise = ("y_noise",) if c.has_y else ()
        table = {
            "reconstruction": Phase(trains=("encoder", "decoder"),
                                    needs=("labels",) if c.variant == "supervised" else (), uses=("x_in",)),
            "discriminator": Phase(trains=self.discriminators,
                                   needs=("z_prior",) + (("y_prior",) if c.has_y else ()) + condition,
                                   uses=("x_in",) + y_noise),
            "generator": Phase(trains=("encoder",), needs=condition, uses=("x_in",) + y_noise),
        }
        if c.variant == "semi-supervised":
            table["supervised"] = Phase(trains=("encoder",), needs=("labels",), uses=("x_in",))
        if c.has_y:                  # trained only when the trainer's ``consistency`` is on
            table["consistency"] = Phase(trains=("encoder",), needs=("x_in", "y_target"),
                                         uses=("balance", "revive", "y_weight"))
            table["decoded_class"] = Phase(trains=("decoder",), needs=("z_style", "classes"))   # likewise
        return table

    def _no_phase(self, phase: str) -> str:
        if phase == "supervised":
            return f"the {self.config.variant} variant has no supervised phase (only semi-supervised has)"
        return super()._no_phase(phase)

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

    # -- training phases: one method per row of ``phases`` ------------------------------
    # ``x_in``: what the encoder sees instead of ``x`` (e.g. ``x`` plus noise: a denoising
    # encoder); the reconstruction target stays ``x``. Data, so no gradient flows into it.
    # ``y_noise`` (N, k): "instance noise" added to the encoder's y where D_y sees it (the
    # trainer adds the same kind of noise to ``y_prior``), so D_y cannot win on the last
    # decimals of a one-hot and y need not saturate its softmax; d(y + n)/dy = I.
    #
    # reconstruction  L_rec(x, dec([z, c]))                                  -> encoder, decoder
    # discriminator   BCE(D_z(z_prior), 1) + BCE(D_z(z), 0) [+ the same for D_y] -> disc_z [, disc_y]
    # generator       BCE(D_z(z), 1) [+ BCE(D_y(y), 1)]                      -> encoder
    # supervised      cross-entropy(y logits, labels)                        -> encoder
    # consistency     cross-entropy(y logits of x_in, y_target)              -> encoder
    # decoded_class   cross-entropy(y logits of dec([z_style, c]), c), encoder fixed -> decoder
    def _phase_reconstruction(self, x, x_in, labels=None) -> float:
        z, _, y = self._encoder_pass(x, x_in)
        s = self.config.style_dim
        if self.config.variant == "supervised":
            labels = self._check_labels("reconstruction", labels, len(x))
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

    def _phase_discriminator(self, x, z_prior, x_in, y_prior=None, labels=None, y_noise=None) -> float:
        c = self.config
        z, _, y = self._encoder_pass(x, x_in)
        z_prior = self._as_input(z_prior, c.style_dim, "z_prior")
        fake = np.ascontiguousarray(z)                             # a constant here: only D learns
        if c.variant == "conditioned":                             # both halves carry the batch's labels
            cond = self._condition(self._check_labels("discriminator", labels, len(x)))
            z_prior, fake = np.concatenate([z_prior, cond], 1), np.concatenate([fake, cond], 1)
        loss, acc = real_vs_fake(self.run["disc_z"], z_prior, fake)
        self.last_stats.update(d_loss=loss, d_accuracy=acc)
        if y is not None:
            loss_y, acc_y = real_vs_fake(self.run["disc_y"], self._as_input(y_prior, c.n_classes, "y_prior"),
                                         self._seen_by_disc_y(y, y_noise))
            self.last_stats.update(d_loss_y=loss_y, d_accuracy_y=acc_y)
            loss += loss_y
        return loss

    def _phase_generator(self, x, x_in, labels=None, y_noise=None) -> float:
        c = self.config
        z, _, y = self._encoder_pass(x, x_in)
        inp = np.ascontiguousarray(z)
        if c.variant == "conditioned":
            inp = np.concatenate([inp, self._condition(self._check_labels("generator", labels, len(x)))], axis=1)
        loss, d_inp = fool(self.run["disc_z"], inp)
        self.last_stats["g_loss"] = loss
        d_ylogits = None
        if y is not None:
            loss_y, dy = fool(self.run["disc_y"], self._seen_by_disc_y(y, y_noise))   # d(y + noise)/dy = I
            d_ylogits = softmax_backward(y, dy)
            self.last_stats["g_loss_y"] = loss_y
            loss += loss_y
        self._encoder_backward(d_inp[:, :c.style_dim], d_ylogits)   # the condition is data: dropped
        return loss

    def _phase_supervised(self, x, labels, x_in) -> float:
        labels = self._check_labels("supervised", labels, len(x))
        z, y_logits, _ = self._encoder_pass(x, x_in)
        loss, d_logits = softmax_cross_entropy(y_logits, labels)         # (softmax - onehot) / N
        self._encoder_backward(np.zeros_like(z), d_logits)
        self.last_stats["sup_loss"] = loss
        self.last_stats["sup_accuracy"] = float(np.mean(np.argmax(y_logits, axis=1) == labels))
        return loss

    def _phase_consistency(self, x, x_in, y_target, balance=None, revive=None, y_weight=None) -> float:
        """-1/N sum_i w_i sum_j t_ij log y_ij with y = q(y|x_in) (x_in: e.g. x shifted), t = y_target
        (e.g. q(y|x), held fixed) and row weights w = y_weight (default 1). As sum_j t_ij = 1,
        dL/d(y logits)_i = w_i (y_i - t_i) / N.

        ``balance = w > 0`` adds w * KL(pbar || uniform), pbar the batch mean of y: a cluster the
        batch leaves empty, or two digits merged into one cluster, costs (``marginal_kl_to_uniform``);
        ``revive = w > 0`` adds w * KL(uniform || pbar), whose pull on an empty cluster does not
        vanish (``uniform_kl_to_marginal``). Their dL/dy go through the softmax's backward like the
        generator's."""
        t = self._as_input(y_target, self.config.n_classes, "y_target")
        z, y_logits, y = self._encoder_pass(x, x_in)
        if len(t) != len(x):
            raise ValueError(f"y_target has {len(t)} rows but x has {len(x)}")
        loss, d_logits = soft_cross_entropy(y_logits, t, y_weight)       # w_i (y_i - t_i) / N
        for name, weight, term in (("balance", balance, marginal_kl_to_uniform),
                                   ("revive", revive, uniform_kl_to_marginal)):
            w = 0.0 if weight is None else float(weight)
            if w < 0:
                raise ValueError(f"{name} must be >= 0, got {w}")
            if w > 0:
                spread, dy = term(y)
                d_logits = d_logits + w * softmax_backward(y, dy)
                loss += w * spread
                self.last_stats[f"{name}_kl"] = spread
        self._encoder_backward(np.zeros_like(z), d_logits)
        self.last_stats["consistency_loss"] = loss
        return loss

    def _phase_decoded_class(self, x, z_style, classes) -> float:
        """The decoder draws the class it is given: x_g = sigmoid(dec([z, onehot(c)])) and
        L = cross-entropy(enc_y(x_g), c), the encoder a fixed judge in evaluation mode (its running
        statistics, no dropout). Back through it: d_out = [0, (softmax - onehot) / N], dL/dx_g =
        d_out W^T ... (only the input gradient: ``param_grads=False``), then the sigmoid's
        x_g (1 - x_g) into the decoder's logits, and the decoder's backward (its one-hot input is data)."""
        c, s = self.config, self.config.style_dim
        z = self._as_input(z_style, s, "z_style")
        classes = self._check_labels("decoded_class", classes, len(z))
        logits = self.run["decoder"].forward(np.concatenate([z, one_hot(classes, c.n_classes, self.dtype)], 1))
        x_g = sigmoid(logits)
        encoder = self.nets["encoder"]
        encoder.train(False)
        try:
            out = self.run["encoder"].forward(x_g)
            loss, d_ylogits = softmax_cross_entropy(out[:, s:], classes)
            d_xg = self.run["encoder"].backward(np.ascontiguousarray(
                np.concatenate([np.zeros_like(out[:, :s]), d_ylogits], 1)), param_grads=False)
        finally:
            encoder.train(True)
        self.run["decoder"].backward(np.ascontiguousarray(d_xg * x_g * (1 - x_g)), need_dx=False)
        self.last_stats["decoded_class_loss"] = loss
        self.last_stats["decoded_class_accuracy"] = float(np.mean(np.argmax(out[:, s:], axis=1) == classes))
        return loss

    # -- the pieces the phases share ------------------------------------------------------
    def _encoder_pass(self, x: np.ndarray, x_in: np.ndarray | None):
        """(z, y logits, y = softmax(y logits) or None) of the encoder on ``x_in`` (default ``x``)."""
        c = self.config
        x_enc = x if x_in is None else self._as_input(x_in, c.input_dim, "x_in")
        if len(x_enc) != len(x):
            raise ValueError(f"x_in has {len(x_enc)} rows but x has {len(x)}")
        out = self.run["encoder"].forward(x_enc)
        z, y_logits = out[:, :c.style_dim], out[:, c.style_dim:]
        return z, y_logits, softmax(y_logits) if c.has_y else None

    def _check_labels(self, phase: str, labels: np.ndarray, n: int) -> np.ndarray:
        c = self.config
        labels = np.asarray(labels)
        if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be {n} integers, got {labels.dtype} {labels.shape}")
        low = UNLABELLED if c.variant == "conditioned" else 0
        if n and (labels.min() < low or labels.max() >= c.n_classes):
            raise ValueError(f"the {phase} phase of the {c.variant} variant needs labels in "
                             f"[{low}, {c.n_classes}), got [{labels.min()}, {labels.max()}]")
        return labels

    def _encoder_backward(self, dz: np.ndarray, dy: np.ndarray | None) -> None:
        """Back through the encoder from dL/dz and dL/d(y logits): the output's columns are [z, logits]."""
        d_out = dz if dy is None else np.concatenate([dz, dy], axis=1)
        self.intermediates["d_encoder_out"] = d_out
        self.run["encoder"].backward(np.ascontiguousarray(d_out), need_dx=False)

    def _condition(self, labels: np.ndarray) -> np.ndarray:
        return one_hot(labels, self.config.n_classes, self.dtype, unlabelled_slot=True)

    def _seen_by_disc_y(self, y: np.ndarray, y_noise: np.ndarray | None) -> np.ndarray:
        if y_noise is None:
            return y
        return y + self._as_input(y_noise, self.config.n_classes, "y_noise")
