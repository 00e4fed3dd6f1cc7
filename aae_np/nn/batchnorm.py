"""Batch normalisation (Ioffe & Szegedy, 2015): the layer and its two pure functions.

Training mode, for a batch ``x (N, D)``, column by column::

    mu = 1/N sum_i x_i          var = 1/N sum_i (x_i - mu)^2     (biased: the batch's own)
    sigma = sqrt(var + eps)     x_hat = (x - mu) / sigma          y = gamma * x_hat + beta

Every row's y depends on every other row through mu and sigma, so the backward pass has
three paths into x (directly, through mu, through var). Summed (``docs/derivations.md``),
they give the compact form

    dx = gamma / (N sigma) * (N dy - sum_i dy_i - x_hat * sum_i (dy_i * x_hat_i))

with ``dgamma = sum_i dy_i * x_hat_i`` and ``dbeta = sum_i dy_i``. The naive
``dx = dy * gamma / sigma``, which treats mu and sigma as constants, is wrong in training
mode; it is the right answer only in evaluation mode, where mu and sigma are the running
averages and really are constants.

The running averages are *state*, not parameters: updated in training mode as
``running = momentum * running + (1 - momentum) * batch statistic``, saved with the model,
never touched by an optimizer.
"""

from __future__ import annotations

import numpy as np

from aae_np.nn.base import Layer

__all__ = ["BatchNorm", "batchnorm_forward", "batchnorm_backward", "batchnorm_eval_forward",
           "batchnorm_eval_backward", "update_running"]


def batchnorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
                      eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training-mode forward: ``(y, x_hat, mu, var, inv_sigma)``, all but y of what backward needs."""
    mu = x.mean(axis=0)                                   # (D,)
    centred = x - mu
    var = (centred * centred).mean(axis=0)                # biased batch variance, (D,)
    inv_sigma = 1 / np.sqrt(var + eps)
    x_hat = centred * inv_sigma                           # (N, D)
    return gamma * x_hat + beta, x_hat, mu, var, inv_sigma


def batchnorm_backward(dy: np.ndarray, x_hat: np.ndarray, gamma: np.ndarray,
                       inv_sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training-mode backward: ``(dx, dgamma, dbeta)`` from dy and what the forward kept."""
    n = dy.shape[0]
    dbeta = dy.sum(axis=0)                                # dbeta = 1^T dy
    dgamma = (dy * x_hat).sum(axis=0)                     # dgamma = 1^T (dy * x_hat)
    # dx = gamma / (N sigma) * (N dy - sum(dy) - x_hat * sum(dy * x_hat))
    dx = (gamma * inv_sigma / n) * (n * dy - dbeta - x_hat * dgamma)
    return dx, dgamma, dbeta


def batchnorm_eval_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, running_mean: np.ndarray,
                           running_var: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluation-mode forward with the running statistics: ``(y, x_hat, inv_sigma)``."""
    inv_sigma = 1 / np.sqrt(running_var + eps)
    x_hat = (x - running_mean) * inv_sigma
    return gamma * x_hat + beta, x_hat, inv_sigma


def batchnorm_eval_backward(dy: np.ndarray, x_hat: np.ndarray, gamma: np.ndarray,
                            inv_sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluation-mode backward, an affine map per column: ``(dx, dgamma, dbeta)``."""
    dx = dy * (gamma * inv_sigma)                         # dx = dy * gamma / sigma_running
    return dx, (dy * x_hat).sum(axis=0), dy.sum(axis=0)


def update_running(running: np.ndarray, batch_stat: np.ndarray, momentum: float) -> None:
    """``running = momentum * running + (1 - momentum) * batch_stat``, in place."""
    running[...] = momentum * running + (1 - momentum) * batch_stat


class BatchNorm(Layer):
    """``y = gamma * (x - mu) / sqrt(var + eps) + beta`` over the batch's columns.

    Shapes: ``x, y (N, dim)``; ``gamma``, ``beta`` (parameters) and ``running_mean``,
    ``running_var`` (state) ``(dim,)``. ``momentum``: the share of the old running value
    kept at each training-mode forward. Training mode needs at least two rows.
    """

    def __init__(self, dim: int, momentum: float = 0.9, eps: float = 1e-5,
                 dtype: np.dtype | type = np.float32) -> None:
        super().__init__()
        if not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ValueError(f"BatchNorm: dim must be a positive integer, got {dim!r}")
        if not 0 <= momentum < 1:
            raise ValueError(f"BatchNorm: momentum must be in [0, 1), got {momentum!r}")
        if not eps > 0:
            raise ValueError(f"BatchNorm: eps must be > 0, got {eps!r}")
        self.dim, self.momentum, self.eps = int(dim), float(momentum), float(eps)
        self.dtype = np.dtype(dtype)
        self.params = {"gamma": np.ones(self.dim, self.dtype), "beta": np.zeros(self.dim, self.dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.state = {"running_mean": np.zeros(self.dim, self.dtype), "running_var": np.ones(self.dim, self.dtype)}
        self.x_hat: np.ndarray | None = None

    def __repr__(self) -> str:
        return f"BatchNorm({self.dim}, momentum={self.momentum}, eps={self.eps}, dtype={self.dtype.name})"

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._check(x, "x", dim=self.dim, dtype=self.dtype)
        gamma, beta = self.params["gamma"], self.params["beta"]
        self.trained_forward = self.training
        if not self.training:                              # the running averages are constants here
            y, self.x_hat, self.inv_sigma = batchnorm_eval_forward(
                x, gamma, beta, self.state["running_mean"], self.state["running_var"], self.eps)
            return y
        if x.shape[0] < 2:
            raise ValueError(f"{self.name}.forward: training mode needs a batch of at least 2 rows (the "
                             f"variance of one row is 0), got {x.shape[0]}; use eval() for single examples")
        y, self.x_hat, mu, var, self.inv_sigma = batchnorm_forward(x, gamma, beta, self.eps)
        update_running(self.state["running_mean"], mu, self.momentum)
        update_running(self.state["running_var"], var, self.momentum)
        return y

    def backward(self, dout: np.ndarray, param_grads: bool = True) -> np.ndarray:
        x_hat = self._need_forward("x_hat")
        self._check(dout, "dout", dim=self.dim, rows=x_hat.shape[0], dtype=self.dtype)
        gamma, inv_sigma = self.params["gamma"], self.inv_sigma
        backward = batchnorm_backward if self.trained_forward else batchnorm_eval_backward
        dx, dgamma, dbeta = backward(dout, x_hat, gamma, inv_sigma)
        if param_grads:
            self.grads["gamma"] += dgamma
            self.grads["beta"] += dbeta
        return dx
