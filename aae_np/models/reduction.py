"""Dimensionality reduction with cluster heads (Makhzani et al., 2015, section 8).

The clustering AAE (or, with labels, the semi-supervised one) with one change: the decoder
does not read [z, y] but an n-D point built from both,

    r = y W_c + b + z        y (N, m) = softmax over m clusters, z (N, n) the style,
                             W_c (m, n): row i is cluster i's head, b (n,)

so an image sits at its cluster's head plus a small style offset, and r is the n-D
representation a figure shows (n = 2). D_y matches y to Cat(m) and D_z matches z to
N(0, style_std^2 I), with a small style_std so the points of a cluster stay near its head.
An extra cost pushes apart every two heads closer than a threshold eta:

    C(W_c) = sum_{i<j} max(0, eta - d_ij),      d_ij = ||w_i - w_j||

The bias b is the heads' common offset: every row of y sums to 1, so y W_c + b = y (W_c + 1 b^T)
and head i sits at w_i + b (``heads()``). C reads only differences of rows, so b changes
nothing in it and dC/db = 0. It is an ordinary Dense layer (``heads`` network, m -> n, linear),
so both backends run it and its parameters live in the flat buffer like every other network's.

Phases (the clustering or semi-supervised variant's, with the reconstruction replaced):

reconstruction  L_rec(x, dec(y W_c + b + z)) + head_weight * C(W_c)  -> encoder, heads, decoder
discriminator   D_z, D_y on prior samples vs. codes                  -> disc_z, disc_y
generator       the encoder fools D_z and D_y                        -> encoder
supervised      (semi-supervised only) cross-entropy of the y logits -> encoder

The gradients are derived in docs/variants.md ("Dimensionality reduction with cluster heads")
and checked by finite differences in tests/test_reduction.py.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from aae_np.models.config import NetSpec
from aae_np.models.network_set import Phase
from aae_np.models.priors import Gaussian, Prior, make_prior
from aae_np.models.variants import VariantAAE, VariantConfig
from aae_np.nn.activations import sigmoid, softmax, softmax_backward

__all__ = ["REDUCTION", "ReductionConfig", "ReductionAAE", "head_cost"]

REDUCTION = "reduction"                       # its name on the command line (aae-np train --variant reduction)
BASES = ("clustering", "semi-supervised")     # the variants it builds on


def head_cost(w: np.ndarray, eta: float) -> tuple[float, np.ndarray]:
    """``C = sum_{i<j} max(0, eta - ||w_i - w_j||)`` over the rows of ``w`` (m, n), and dC/dw (m, n).

    For a pair closer than eta, d(eta - d_ij)/dw_i = -(w_i - w_j) / d_ij and the opposite for
    w_j, so  dC/dw_i = -sum_{j close to i} (w_i - w_j) / d_ij : a unit push away from every
    close head. The two points where C is not differentiable take the zero branch: a pair at
    exactly d_ij = eta counts as not close (the max's flat side), and coincident heads
    (d_ij = 0, where the direction is undefined) get no push from each other (0 lies in the
    generalised gradient there); their eta still counts in C.
    """
    diff = w[:, None, :] - w[None, :, :]                          # (m, m, n)  w_i - w_j
    dist = np.sqrt(np.einsum("ijn,ijn->ij", diff, diff))          # (m, m)     d_ij
    close = dist < eta
    np.fill_diagonal(close, False)
    cost = float(np.sum(eta - dist[close])) / 2                   # each pair appears as (i, j) and (j, i)
    coef = np.divide(1.0, dist, out=np.zeros_like(dist), where=close & (dist > 0))
    grad = -np.einsum("ij,ijn->in", coef, diff)                   # dC/dw_i = -sum_j (w_i - w_j) / d_ij
    return cost, grad.astype(w.dtype, copy=False)


@dataclass
class ReductionConfig(VariantConfig):
    """A ``VariantConfig`` whose ``variant`` is the model it builds on ("clustering": no labels, m
    clusters; "semi-supervised": m classes, some labelled), with the representation's settings."""

    variant: str = "clustering"
    n_classes: int = 20                  # m: clusters (classes when semi-supervised), one head each
    style_dim: int = 2                   # n: the dimension of z, of the heads and of r
    style_std: float = 0.1               # z's prior is N(0, style_std^2 I) (unless ``prior`` says otherwise)
    head_threshold: float = 0.6          # eta: two heads closer than this are pushed apart
    head_weight: float = 1.0             # lambda: weight of the head cost in the reconstruction phase

    def __post_init__(self) -> None:
        problems = []
        if self.variant not in BASES:
            problems.append(f"variant must be one of {BASES} (the model the reduction builds on), "
                            f"got {self.variant!r}")
        for name, value, low in (("style_std", self.style_std, "> 0"), ("head_threshold", self.head_threshold, "> 0"),
                                 ("head_weight", self.head_weight, ">= 0")):
            if not isinstance(value, (int, float)) or not (value > 0 if low == "> 0" else value >= 0):
                problems.append(f"{name} must be {low}, got {value!r}")
        if problems:
            raise ValueError("ReductionConfig: " + "; ".join(problems))
        super().__post_init__()

    def make_prior(self) -> Prior:
        return make_prior(self.prior) if self.prior else Gaussian(self.style_dim, self.style_std)


class ReductionAAE(VariantAAE):
    """The clustering (or semi-supervised) AAE whose decoder reads r = y W_c + b + z."""

    config_class = ReductionConfig
    kind = REDUCTION

    def __init__(self, config: ReductionConfig | None = None, *, backend: str | None = None, **overrides) -> None:
        super().__init__(config, backend=backend, **overrides)
        # the heads start spread like N(0, eta^2 I) (their Glorot draw, rescaled), so most pairs
        # begin near the threshold: Adam moves a head by about lr a step, and from Glorot's
        # N(0, 2 / (m + n)) twenty heads took over 50 epochs to move apart
        c = self.config
        self.params["heads.0.W"][...] *= c.head_threshold / np.sqrt(2.0 / (c.n_classes + c.style_dim))

    @staticmethod
    def network_specs(c: ReductionConfig) -> dict[str, NetSpec]:
        """The base variant's networks, the decoder reading r (n-D), and the heads (m -> n, linear)
        between the encoder and the decoder (the reconstruction phase trains the three together,
        so they must be adjacent in the flat buffer)."""
        specs = VariantAAE.network_specs(c)
        specs["decoder"] = NetSpec([c.style_dim, *c.decoder_hidden, c.input_dim], c.activation)
        return {"encoder": specs.pop("encoder"), "heads": NetSpec([c.n_classes, c.style_dim], c.activation),
                **specs}

    def _phase_table(self) -> dict[str, Phase]:
        table = super()._phase_table()
        table["reconstruction"] = replace(table["reconstruction"], trains=("encoder", "heads", "decoder"))
        del table["decoded_class"]          # it decodes [z, c]; this decoder reads c W_c + b + z
        return table

    # -- inference ------------------------------------------------------------------
    def heads(self) -> np.ndarray:
        """Where each cluster's head sits in r-space: w_i + b, (m, n) (the heads of one-hot y rows)."""
        return self._batched("heads", np.eye(self.config.n_classes, dtype=self.dtype), self.config.n_classes)

    def represent(self, x: np.ndarray, batch_size: int = 2048) -> np.ndarray:
        """The n-D representation r = y W_c + b + z of ``x`` (N, input_dim) -> (N, n)."""
        out = self._encoder_out(x, batch_size)
        s = self.config.style_dim
        return self._batched("heads", softmax(out[:, s:]), batch_size) + out[:, :s]

    def decode(self, z: np.ndarray, labels=None, batch_size: int = 2048) -> np.ndarray:
        """x_hat = sigmoid(dec(c W_c + b + z)); ``labels`` (N,) ints (c one-hot) or (N, m) rows (c = y)."""
        z = self._as_input(z, self.config.style_dim, "z")
        c = self._label_input(labels, len(z))
        if len(c) != len(z):
            raise ValueError(f"z has {len(z)} rows but the labels have {len(c)}")
        r = self._batched("heads", c, batch_size) + z
        return sigmoid(self._batched("decoder", r, batch_size))

    # -- the reconstruction phase (the others are the base variant's) -----------------
    def _phase_reconstruction(self, x, x_in, labels=None) -> float:
        z, _, y = self._encoder_pass(x, x_in)
        heads, decoder = self.run["heads"], self.run["decoder"]
        r = heads.forward(y) + z                                   # r = y W_c + b + z        (N, n)
        logits = decoder.forward(r)
        loss, d_logits = self._recon_loss(logits, x)
        dr = decoder.backward(d_logits)                            # dL/dr                    (N, n)
        dy = heads.backward(dr)                                    # dL/dy = dr W_c^T; dW_c += y^T dr, db += sum_N dr
        self._encoder_backward(dr, softmax_backward(y, dy))        # dL/dz = dL/dr
        w = self.params["heads.0.W"]
        cost, d_w = head_cost(w, self.config.head_threshold)
        self.grads["heads.0.W"] += self.config.head_weight * d_w   # + lambda dC/dW_c  (dC/db = 0)
        self.intermediates.update(d_r=dr, d_heads_cost=d_w)
        self.last_stats.update(recon_loss=loss, head_cost=cost, min_head_distance=min_distance(w))
        return loss + self.config.head_weight * cost


def min_distance(w: np.ndarray) -> float:
    """The smallest distance between two rows of ``w`` (m, n); inf for a single row."""
    if len(w) < 2:
        return float("inf")
    d = np.sqrt(((w[:, None, :] - w[None, :, :]) ** 2).sum(-1))
    return float(d[np.triu_indices(len(w), 1)].min())
