"""Losses. Each returns ``(value, grad)`` where ``grad`` is dL/d(first argument).

The averaging is part of the definition and is stated in each docstring: a
gradient is only right for the value it belongs to (the tutorial's "2/n"
question, see ``docs/derivations.md``).

Sigmoid + binary cross-entropy appears twice on purpose:

* ``bce(prob, target)`` works on probabilities, as the tutorial's
  ``nn.BCELoss`` after a ``sigmoid`` does. Probabilities must be clipped away
  from 0 and 1 and, once clipped, the gradient is exactly zero: a saturated
  unit stops learning.
* ``bce_with_logits(logits, target)`` fuses the sigmoid into the loss. Its
  gradient simplifies to ``sigmoid(s) - t`` (the 1/p and 1/(1-p) factors
  cancel against the sigmoid's derivative), which never vanishes when the
  answer is wrong and is finite for any finite logit. This is the form the
  model uses.
"""

from __future__ import annotations

import numpy as np

from aae_np.nn.activations import sigmoid

__all__ = ["mse", "bce", "bce_with_logits", "sigmoid_mse", "softmax_cross_entropy", "soft_cross_entropy",
           "log_softmax", "marginal_kl_to_uniform", "uniform_kl_to_marginal"]


def _same_shape(name: str, a: np.ndarray, b: np.ndarray, an: str, bn: str) -> None:
    if np.shape(a) != np.shape(b):
        raise ValueError(f"{name}: {an} has shape {np.shape(a)} but {bn} has shape {np.shape(b)}; "
                         "they must match element for element")


def mse(pred: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean squared error over **all** elements (as ``nn.MSELoss()``).

    ``L = 1/n * sum (pred - target)^2`` with ``n = pred.size`` (for a batch,
    N * D). ``dL/dpred = 2/n * (pred - target)``.
    """
    _same_shape("mse", pred, target, "pred", "target")
    diff = pred - target
    n = diff.size
    return float(np.sum(diff * diff) / n), (2.0 / n) * diff   # dL/dpred = 2/n (x_hat - x)


def bce(prob: np.ndarray, target: np.ndarray, eps: float = 1e-7) -> tuple[float, np.ndarray]:
    """Binary cross-entropy on probabilities, mean over all elements.

    ``L = -1/n * sum [t log p + (1 - t) log(1 - p)]`` with ``p`` clipped to
    ``[eps, 1 - eps]``. ``dL/dp = 1/n * (p - t) / (p (1 - p))`` inside the
    clip range and 0 outside it (the clipped function is flat there).
    """
    _same_shape("bce", prob, target, "prob", "target")
    n = np.size(prob)
    p = np.clip(prob, eps, 1 - eps)
    value = -np.sum(target * np.log(p) + (1 - target) * np.log1p(-p)) / n
    inside = (prob > eps) & (prob < 1 - eps)
    grad = np.where(inside, (p - target) / (p * (1 - p)), 0) / n   # dL/dp = (p - t) / (p(1-p)) / n
    return float(value), grad.astype(np.result_type(prob), copy=False)


def bce_with_logits(logits: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """Binary cross-entropy of ``sigmoid(logits)``, fused, mean over all elements.

    ``L = 1/n * sum [max(s, 0) - s t + log(1 + e^-|s|)]``, which equals
    ``-[t log s(s) + (1 - t) log(1 - s(s))]`` but never exponentiates a
    positive number, so it is finite and exact for any finite logit
    (|s| = 1e4 gives ``L = |s|`` for the wrong label, 0 for the right one).
    ``dL/ds = 1/n * (sigmoid(s) - t)``.
    """
    _same_shape("bce_with_logits", logits, target, "logits", "target")
    s = logits
    n = np.size(s)
    value = np.sum(np.maximum(s, 0) - s * target + np.log1p(np.exp(-np.abs(s)))) / n
    return float(value), (sigmoid(s) - target) / n                # dL/ds = (sigmoid(s) - t) / n


def sigmoid_mse(logits: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """MSE of ``sigmoid(logits)`` against ``target`` (the tutorial's sigmoid decoder + ``nn.MSELoss``),
    with the gradient taken w.r.t. the logits.

    ``L = mse(x_hat, x)`` with ``x_hat = sigmoid(s)``;
    ``dL/ds = 2/n (x_hat - x) * x_hat (1 - x_hat)``.
    """
    x_hat = sigmoid(logits)
    loss, d_xhat = mse(x_hat, target)                              # dL/dx_hat = 2/n (x_hat - x)
    return loss, d_xhat * x_hat * (1 - x_hat)                      # delta = dL/dx_hat * s'(s)


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Softmax cross-entropy with integer labels, mean over the N rows.

    ``logits (N, K)``, ``labels (N,)`` integers in ``[0, K)``.
    ``L = 1/N * sum_i [logsumexp(s_i) - s_{i, y_i}]``;
    ``dL/ds = 1/N * (softmax(s) - onehot(y))``.
    """
    if logits.ndim != 2:
        raise ValueError(f"softmax_cross_entropy: logits must be (N, K), got shape {logits.shape}")
    labels = np.asarray(labels)
    if labels.shape != (logits.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"softmax_cross_entropy: labels must be integers of shape ({logits.shape[0]},), "
                         f"got {labels.dtype} {labels.shape}")
    k = logits.shape[1]
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"softmax_cross_entropy: labels must lie in [0, {k}), "
                         f"got range [{labels.min()}, {labels.max()}]")
    n = logits.shape[0]
    log_p = log_softmax(logits)
    rows = np.arange(n)
    value = -log_p[rows, labels].sum() / n
    grad = np.exp(log_p)
    grad[rows, labels] -= 1
    return float(value), grad / n                                 # dL/ds = (softmax(s) - onehot(y)) / N


def soft_cross_entropy(logits: np.ndarray, target: np.ndarray,
                       weights: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Softmax cross-entropy to probability rows ``target (N, K)`` (each summing to 1), mean over rows.

    ``L = -1/N * sum_i w_i sum_j t_ij log softmax(s_i)_j`` with row weights ``weights (N,) >= 0``
    (default 1); as ``sum_j t_ij = 1``, ``dL/ds_i = w_i / N * (softmax(s_i) - t_i)`` (integer labels
    are the one-hot case).
    """
    if logits.ndim != 2 or target.shape != logits.shape:
        raise ValueError(f"soft_cross_entropy: logits and target must both be (N, K), got {logits.shape} "
                         f"and {target.shape}")
    n = logits.shape[0]
    log_p = log_softmax(logits)
    grad = (np.exp(log_p) - target) / n
    if weights is None:
        return float(-np.sum(target * log_p) / n), grad
    weights = np.asarray(weights, dtype=logits.dtype)
    if weights.shape != (n,) or not np.all(weights >= 0):
        raise ValueError(f"soft_cross_entropy: weights must be {n} numbers >= 0, got shape {weights.shape}")
    return float(-np.sum(weights * np.sum(target * log_p, axis=1)) / n), grad * weights[:, None]


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise ``s - logsumexp(s)``, shifted by the row maximum so nothing overflows."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def marginal_kl_to_uniform(y: np.ndarray) -> tuple[float, np.ndarray]:
    """How unevenly a batch uses the K classes: ``KL(pbar || uniform) = sum_j pbar_j log(K pbar_j)``
    with ``pbar = mean_i y_i`` for probability rows ``y (N, K)``; 0 when every class gets the same
    mass, log K when one class gets it all.

    ``dL/dy_ij = (log(K pbar_j) + 1) / N``: the +1 is the same in every column, so it vanishes in
    the softmax's backward, but it belongs to the gradient with respect to y.
    """
    if y.ndim != 2:
        raise ValueError(f"marginal_kl_to_uniform: y must be (N, K), got {y.shape}")
    n, k = y.shape
    pbar = y.mean(axis=0)
    log_kp = np.log(np.maximum(k * pbar, 1e-30))
    loss = float(np.sum(pbar * log_kp))
    return loss, np.broadcast_to((log_kp + 1) / n, y.shape).astype(y.dtype)


def uniform_kl_to_marginal(y: np.ndarray) -> tuple[float, np.ndarray]:
    """The other direction: ``KL(uniform || pbar) = -log K - (1/K) sum_j log pbar_j`` with
    ``pbar = mean_i y_i`` for probability rows ``y (N, K)``; 0 when every class gets the same mass,
    without bound as one class's mass goes to 0.

    ``dL/dy_ij = -1 / (K N pbar_j)``. Through the softmax, row i's push on class j's logit is about
    ``-y_ij / (K N pbar_j)``, and these sum over the batch to about -1/K however small pbar_j is: an
    empty class keeps a pull, where ``marginal_kl_to_uniform``'s (``y_ij (log(K pbar_j) + 1) / N``)
    vanishes with its y_ij.
    """
    if y.ndim != 2:
        raise ValueError(f"uniform_kl_to_marginal: y must be (N, K), got {y.shape}")
    n, k = y.shape
    pbar = np.maximum(y.mean(axis=0), 1e-30)
    loss = float(-np.log(k) - np.mean(np.log(pbar)))
    return loss, np.broadcast_to(-1.0 / (k * n * pbar), y.shape).astype(y.dtype)
