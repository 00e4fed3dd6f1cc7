"""Virtual adversarial views (Miyato et al., 2018; not the AAE paper's): each row of a batch moved a
fixed distance in the direction in which the encoder's class probabilities q(y|x) change fastest.

For one row, with p = q(y|x) held fixed,

    D(r) = KL(p || q(y|x + r)) = -sum_j p_j log q_j(x + r) - H(p)

is 0 with gradient 0 at r = 0, so near 0, D(r) ~ r^T H r / 2 and its gradient at a small r = xi d
is ~ xi H d: one step of the power iteration towards the top eigenvector of H, the direction of
the largest change. With d random, g = dD/dr at xi d / |d| and the view is x + eps g / |g|. The
-H(p) term does not depend on r, so g is the gradient of the cross-entropy to p; for the batch
mean, dL/d(y logits) = (q - p) / N (``nn.losses.soft_cross_entropy``), carried back through the
encoder to its input (``backward(..., param_grads=False)``: no weight gradient). Every pass runs
in evaluation mode (running statistics, no dropout), so rows do not see each other and the
1 / N scale is removed by the normalisation.
"""

from __future__ import annotations

import numpy as np

from aae_np.nn.losses import soft_cross_entropy

__all__ = ["class_input_gradient", "virtual_adversarial_view", "XI"]

#: |r| of the power iteration's probe: small against an image's norm (~9 for an MNIST digit), large
#: enough that q(y|x + r) - p stands clear of float32 rounding.
XI = 0.1


def class_input_gradient(model, x: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """(L, dL/dx) for L = -1/N sum_i sum_j target_ij log q(y_j|x_i), the encoder of ``model`` (a model
    with a y head) in evaluation mode. No weight gradient is accumulated."""
    c = model.config
    if not c.has_y:
        raise ValueError(f"the {c.variant} variant has no y head: no class probabilities to move")
    x = model._as_input(x, c.input_dim, "x")
    target = model._as_input(target, c.n_classes, "target")
    if len(target) != len(x):
        raise ValueError(f"target has {len(target)} rows but x has {len(x)}")
    model._set_training(False)
    out = model.run["encoder"].forward(x)
    loss, d_logits = soft_cross_entropy(out[:, c.style_dim:], target)            # (q - t) / N
    d_out = np.concatenate([np.zeros_like(out[:, :c.style_dim]), d_logits], axis=1)
    return loss, model.run["encoder"].backward(np.ascontiguousarray(d_out), param_grads=False)


def _unit_rows(a: np.ndarray) -> np.ndarray:
    """Each row divided by its Euclidean norm (a row of zeros stays zero)."""
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    return a / np.maximum(norms, np.finfo(a.dtype).tiny)


def virtual_adversarial_view(model, x: np.ndarray, eps: float, rng: np.random.Generator,
                             xi: float = XI) -> np.ndarray:
    """``x`` with each row moved by ``eps`` (Euclidean) along its virtual adversarial direction."""
    if eps <= 0 or xi <= 0:
        raise ValueError(f"eps and xi must be > 0, got eps={eps}, xi={xi}")
    x = model._as_input(x, model.config.input_dim, "x")
    p = model.classify(x)
    probe = x + (xi * _unit_rows(rng.standard_normal(x.shape))).astype(x.dtype)
    _, g = class_input_gradient(model, probe, p)
    return x + (eps * _unit_rows(g)).astype(x.dtype)
