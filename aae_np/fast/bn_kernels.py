"""BatchNorm + activation kernels for the fused runner: a plain NumPy twin and a Numba kernel for each.

Read the NumPy twins first: in training mode they call ``aae_np.nn.batchnorm``'s pure
functions (``batchnorm_forward``, ``batchnorm_backward``), and the activations'
``activate``/``derivative``; in evaluation mode ``batchnorm_eval_forward``/``_backward`` (an
affine map per column). The Numba kernels compute the same with the same
signature, in a few passes over the batch, reusing ``kernels.py``'s activation loops.

A Dense -> BatchNorm -> activation block of ``FusedMLP`` runs forward as
``kernels.dense_forward`` with the identity activation (BLAS GEMM, then the bias), then
``bn_forward``; backward as ``bn_backward``, then ``kernels.dense_backward`` (identity).

``bn_forward(u, gamma, beta, running_mean, running_var, momentum, eps, training, act, alpha, x_hat, inv_sigma, out)``
    ``training``: mu, var = the column mean and biased variance of ``u``, and the running
    statistics are updated in place, ``running = momentum * running + (1 - momentum) * stat``;
    evaluation: mu, var = the running statistics (left as they are). Then
    inv_sigma = 1 / sqrt(var + eps);  x_hat = (u - mu) * inv_sigma;  out = act(gamma * x_hat + beta).
    ``x_hat`` may be ``u`` itself (normalised in place).
``bn_backward(y, dout, act, alpha, x_hat, gamma, inv_sigma, training, dx, dgamma, dbeta, grads)``
    dy = dout * act'(y);  dgamma = 1^T (dy * x_hat);  dbeta = 1^T dy, with ``grads`` SKIP, SET
    or ADD as for ``dense_backward``'s dW and db;
    training:   dx = gamma * inv_sigma / N * (N dy - 1^T dy - x_hat * 1^T (dy * x_hat));
    evaluation: dx = dy * gamma * inv_sigma  (mu and sigma are constants there).

Shapes: ``u, x_hat, out, y, dout, dx (N, D)``; ``gamma, beta, running_*, inv_sigma, dgamma,
dbeta (D,)``. Activation codes as in ``kernels.py``. All kernels write into caller-provided
(C-contiguous) arrays and work for float32 and float64.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from aae_np.fast import jit_cache
from aae_np.fast.kernels import ACT_NAMES, ADD, NUMBA, SET
from aae_np.nn.activations import activate, derivative
from aae_np.nn.batchnorm import (batchnorm_backward, batchnorm_eval_backward, batchnorm_eval_forward,
                                  batchnorm_forward, update_running)
from aae_np.nn.subnormal import floor, flush

jit_cache.drop_if_stale(__file__, "kernels.py")     # act_grad_mul and act_inplace compile in

# ----------------------------------------------------------------------------------------
# NumPy twins: the nn references, with the kernels' signatures
# ----------------------------------------------------------------------------------------
def bn_forward_np(u, gamma, beta, running_mean, running_var, momentum, eps, training, act, alpha,
                  x_hat, inv_sigma, out):
    if training:
        y, x_hat[...], mu, var, inv_sigma[...] = batchnorm_forward(u, gamma, beta, eps)
        update_running(running_mean, mu, momentum)
        update_running(running_var, var, momentum)
    else:                                  # evaluation mode: the running statistics are constants
        y, x_hat[...], inv_sigma[...] = batchnorm_eval_forward(u, gamma, beta, running_mean, running_var, eps)
    out[...] = activate(ACT_NAMES[act], y, alpha)            # out = act(gamma * x_hat + beta)
    return flush(out)                                        # no subnormal: nn/subnormal.py


def bn_backward_np(y, dout, act, alpha, x_hat, gamma, inv_sigma, training, dx, dgamma, dbeta, grads=ADD):
    dy = flush(dout * derivative(ACT_NAMES[act], y, alpha))  # dy = dout * act'(.)
    backward = batchnorm_backward if training else batchnorm_eval_backward
    dx[...], dg, db = backward(dy, x_hat, gamma, inv_sigma)
    if grads == ADD:
        dgamma += dg                                         # dgamma = 1^T (dy * x_hat)
        dbeta += db                                          # dbeta = 1^T dy
    elif grads == SET:
        dgamma[...], dbeta[...] = dg, db
    return dx


BN_NUMPY = SimpleNamespace(name="numpy", bn_forward=bn_forward_np, bn_backward=bn_backward_np)


# ----------------------------------------------------------------------------------------
# Numba kernels (compiled on first call for each dtype, cached on disk)
# ----------------------------------------------------------------------------------------
if NUMBA is None:  # pragma: no cover - the numpy backend still works
    BN_NUMBA = None
else:
    from numba import njit

    from aae_np.fast.kernels import act_grad_mul, act_inplace

    jit = njit(cache=jit_cache.cache_ok(), error_model="numpy", nogil=True)

    @jit
    def _bn_forward(u, gamma, beta, running_mean, running_var, momentum, eps, training, act, alpha,
                    x_hat, inv_sigma, out, floor):
        n, d = u.shape
        dt = u.dtype.type
        mu, var = np.zeros(d, u.dtype), np.zeros(d, u.dtype)
        if training:
            for i in range(n):                           # mu = 1/N sum_i u_i (row by row: cache-friendly)
                for j in range(d):
                    mu[j] += u[i, j]
            for j in range(d):
                mu[j] /= dt(n)
            for i in range(n):                           # var = 1/N sum_i (u_i - mu)^2 (biased)
                for j in range(d):
                    c = u[i, j] - mu[j]
                    var[j] += c * c
            keep, take = dt(momentum), dt(1 - momentum)
            for j in range(d):
                var[j] /= dt(n)
                running_mean[j] = keep * running_mean[j] + take * mu[j]
                running_var[j] = keep * running_var[j] + take * var[j]
        else:
            mu[:] = running_mean
            var[:] = running_var
        for j in range(d):
            inv_sigma[j] = dt(1) / np.sqrt(var[j] + dt(eps))   # np.sqrt keeps float32
        for i in range(n):                               # u is read before x_hat (maybe u) is written
            for j in range(d):
                xh = (u[i, j] - mu[j]) * inv_sigma[j]
                x_hat[i, j] = xh
                out[i, j] = gamma[j] * xh + beta[j]
        act_inplace(out, act, alpha, floor)
        return out

    @jit
    def _bn_backward(y, dout, act, alpha, x_hat, gamma, inv_sigma, training, dx, dgamma, dbeta, grads, floor):
        act_grad_mul(y, dout, act, alpha, dx, floor)     # dx holds dy = dout * act'(.) for now
        n, d = dx.shape
        dt = dx.dtype.type
        sum_dy, sum_dy_xhat = np.zeros(d, dx.dtype), np.zeros(d, dx.dtype)
        for i in range(n):
            for j in range(d):
                sum_dy[j] += dx[i, j]
                sum_dy_xhat[j] += dx[i, j] * x_hat[i, j]
        if training:
            n_ = dt(n)
            scale = gamma * inv_sigma / n_
            for i in range(n):    # dx = gamma / (N sigma) * (N dy - sum(dy) - x_hat * sum(dy * x_hat))
                for j in range(d):
                    dx[i, j] = scale[j] * (n_ * dx[i, j] - sum_dy[j] - x_hat[i, j] * sum_dy_xhat[j])
        else:
            scale = gamma * inv_sigma
            for i in range(n):                           # dx = dy * gamma / sigma_running
                for j in range(d):
                    dx[i, j] *= scale[j]
        if grads == ADD:
            dgamma += sum_dy_xhat
            dbeta += sum_dy
        elif grads == SET:
            dgamma[:] = sum_dy_xhat
            dbeta[:] = sum_dy
        return dx

    def bn_forward(u, gamma, beta, running_mean, running_var, momentum, eps, training, act, alpha,
                   x_hat, inv_sigma, out):
        return _bn_forward(u, gamma, beta, running_mean, running_var, momentum, eps, training, act, alpha,
                           x_hat, inv_sigma, out, floor(out.dtype))

    def bn_backward(y, dout, act, alpha, x_hat, gamma, inv_sigma, training, dx, dgamma, dbeta, grads=ADD):
        return _bn_backward(y, dout, act, alpha, x_hat, gamma, inv_sigma, training, dx, dgamma, dbeta, grads,
                            floor(dx.dtype))

    BN_NUMBA = SimpleNamespace(name="numba", bn_forward=bn_forward, bn_backward=bn_backward)

BN_KERNELS = {"numpy": BN_NUMPY, "numba": BN_NUMBA}     # by the name of the kernel set they go with
