"""Kernels for the training step's hot loop: a plain NumPy twin and a Numba kernel for each.

Read the NumPy twins first: each one calls the ``aae_np.nn`` reference (the activations'
``activate``/``derivative``, the losses, the pure update rules), so a formula is written once
in NumPy and once here in Numba. The Numba kernels compute the same thing with the same
signature, fused so that each array is walked once:

``dense_forward(x, W, b, act, alpha, out)``
    out = act(x W + b): the GEMM (NumPy's BLAS), then bias and activation in one
    jitted pass over ``out`` (the "epilogue"), subnormals flushed to 0 (``nn/subnormal.py``).
``dense_backward(x, W, y, dout, act, alpha, delta, dW, db, dx, need_dx, grads)``
    delta = dout * act'(y)  (the derivative written in terms of the output y; subnormals flushed);
    dW += x^T delta;  db += 1^T delta;  dx = delta W^T if ``need_dx``.
    ``grads``: ADD (2) accumulates as above, SET (1) overwrites dW and db (one pass
    less when the caller knows they are zero), SKIP (0) leaves them (a phase that
    only needs dx, e.g. the generator's pass through the discriminator).
``bce_logits(s, t, grad) -> loss``
    ``nn.losses.bce_with_logits``: the fused sigmoid + binary cross-entropy.
``sigmoid_mse(s, x, grad) -> loss``
    ``nn.losses.sigmoid_mse``: MSE of sigmoid(s) against x, gradient w.r.t. the logits s.
``adam_flat(p, g, m, v, step_size, b1, b2, eps, v_scale)``
    one Adam step over flat buffers, in place (``step_size = lr / (1 - b1^t)``,
    ``v_scale = 1 / sqrt(1 - b2^t)``). The Numba kernel stores moments below 16x the smallest
    normal float (1.9e-37 in float32) as 0; the twin keeps them (a difference the update never shows).
``momentum_flat(p, g, vel, lr, mu, nesterov)``
    one heavy-ball step, in place.
``flushed(a)``, ``flush(a)``
    ``nn.subnormal``'s: ``a`` or a flushed copy; flush in place (what enters and leaves a network).
``matmul(a, b, out)``
    a GEMM; the Numba one is a readable blocked loop kept for teaching (BLAS is the
    default everywhere else; ``tests/test_kernels.py`` holds it to NumPy's).

Activation codes: 0 identity, 1 ReLU, 2 LeakyReLU(alpha), 3 sigmoid, 4 tanh. All
kernels write into caller-provided arrays and work for float32 and float64. BatchNorm's
kernels (``bn_forward``, ``bn_backward``) are in ``bn_kernels.py``, built on these.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

from aae_np.fast import jit_cache
from aae_np.nn.activations import activate, derivative
from aae_np.nn.losses import bce_with_logits, sigmoid_mse as sigmoid_mse_ref
from aae_np.nn.optim import adam_update, momentum_update
from aae_np.nn.subnormal import floor, flush, flushed

ACT_NAMES = ("identity", "relu", "leaky_relu", "sigmoid", "tanh")
ACT_CODES = {name: code for code, name in enumerate(ACT_NAMES)}
SKIP, SET, ADD = 0, 1, 2          # what dense_backward does with dW and db


# ----------------------------------------------------------------------------------------
# NumPy twins: the nn references, with the kernels' signatures
# ----------------------------------------------------------------------------------------
def dense_forward_np(x, W, b, act, alpha, out):
    out[...] = activate(ACT_NAMES[act], x @ W + b, alpha)     # y = act(x W + b)
    return flush(out)                                          # no subnormal: nn/subnormal.py


def dense_backward_np(x, W, y, dout, act, alpha, delta, dW, db, dx, need_dx, grads=ADD):
    delta[...] = dout * derivative(ACT_NAMES[act], y, alpha)  # delta = dout * act'(u)
    flush(delta)
    if grads == ADD:
        dW += x.T @ delta                                # dW = x^T delta
        db += delta.sum(axis=0)                          # db = 1^T delta
    elif grads == SET:
        np.dot(x.T, delta, out=dW)
        np.sum(delta, axis=0, out=db)
    if need_dx:
        dx[...] = delta @ W.T                            # dx = delta W^T
    return delta


def activation_forward_np(u, act, alpha, out):
    out[...] = activate(ACT_NAMES[act], u, alpha)
    return flush(out)


def activation_backward_np(y, dout, act, alpha, out):
    out[...] = dout * derivative(ACT_NAMES[act], y, alpha)
    return flush(out)


def bce_logits_np(s, t, grad):
    loss, grad[...] = bce_with_logits(s, t)
    return loss


def sigmoid_mse_np(s, x, grad):
    loss, grad[...] = sigmoid_mse_ref(s, x)
    return loss


def adam_flat_np(p, g, m, v, step_size, b1, b2, eps, v_scale):
    p[...], m[...], v[...] = adam_update(p, g, m, v, step_size, b1, b2, eps, v_scale)


def momentum_flat_np(p, g, vel, lr, mu, nesterov):
    p[...], vel[...] = momentum_update(p, g, vel, lr, mu, nesterov)


def matmul_np(a, b, out):
    np.dot(a, b, out=out)
    return out


NUMPY = SimpleNamespace(name="numpy", dense_forward=dense_forward_np, dense_backward=dense_backward_np,
                        activation_forward=activation_forward_np,
                        activation_backward=activation_backward_np, bce_logits=bce_logits_np,
                        flushed=flushed, flush=flush,
                        sigmoid_mse=sigmoid_mse_np,
                        adam_flat=adam_flat_np, momentum_flat=momentum_flat_np, matmul=matmul_np)


def numba_available() -> bool:
    return NUMBA is not None


# ----------------------------------------------------------------------------------------
# Numba kernels: module level so that cache=True can store them on disk; compiled
# on first call for each dtype
# ----------------------------------------------------------------------------------------
try:
    from numba import njit
except ImportError:  # pragma: no cover - the numpy backend still works
    NUMBA = dense_kernels = None
else:
    jit = njit(cache=jit_cache.cache_ok(), error_model="numpy", nogil=True)

    @jit
    def sigmoid_scalar(s, e, one):
        """sigmoid(s) from e = exp(-|s|) (never overflows); ``one`` carries the dtype. One division
        after a select (1/(1+e) or e/(1+e)), so that loops calling it can be vectorised."""
        return (one if s >= 0 else e) / (one + e)

    @jit
    def act_inplace(a, act, alpha, floor):
        """a = act(a), then every |a| < floor set to 0 (``nn.subnormal``: floor is the smallest
        normal number, or 0 for no flush). One loop per activation: a branch inside the loop
        would stop vectorisation; the flush is a select, which does not."""
        flat = a.reshape(-1)
        zero, one = flat.dtype.type(0), flat.dtype.type(1)
        al, fl = flat.dtype.type(alpha), flat.dtype.type(floor)
        if act == 1:   # written so that NaN propagates, as np.maximum does
            for i in range(flat.size):
                flat[i] = zero if flat[i] < fl else flat[i]
        elif act == 2:
            for i in range(flat.size):
                v = al * flat[i] if flat[i] < zero else flat[i]
                flat[i] = zero if abs(v) < fl else v
        elif act == 3:
            for i in range(flat.size):
                v = sigmoid_scalar(flat[i], math.exp(-abs(flat[i])), one)
                flat[i] = zero if v < fl else v
        elif act == 4:
            for i in range(flat.size):
                v = math.tanh(flat[i])
                flat[i] = zero if abs(v) < fl else v
        else:
            for i in range(flat.size):
                flat[i] = zero if abs(flat[i]) < fl else flat[i]

    @jit
    def bias_act(out, b, act, alpha, floor):
        """The GEMM's epilogue, in one pass: out = act(out + b), flushed below ``floor``."""
        n, m = out.shape
        for i in range(n):
            for j in range(m):
                out[i, j] += b[j]
        act_inplace(out, act, alpha, floor)

    @jit
    def act_grad_mul(y, dout, act, alpha, delta, floor):
        """delta = dout * act'(y), every |delta| < floor set to 0."""
        fy, fd, fo = y.reshape(-1), dout.reshape(-1), delta.reshape(-1)
        zero, one = fy.dtype.type(0), fy.dtype.type(1)
        al, fl = fy.dtype.type(alpha), fy.dtype.type(floor)
        if act == 1:
            for i in range(fy.size):
                v = fd[i] if fy[i] > zero else zero
                fo[i] = zero if abs(v) < fl else v
        elif act == 2:
            for i in range(fy.size):
                v = fd[i] if fy[i] > zero else al * fd[i]
                fo[i] = zero if abs(v) < fl else v
        elif act == 3:
            for i in range(fy.size):
                v = fd[i] * fy[i] * (one - fy[i])
                fo[i] = zero if abs(v) < fl else v
        elif act == 4:
            for i in range(fy.size):
                v = fd[i] * (one - fy[i] * fy[i])
                fo[i] = zero if abs(v) < fl else v
        else:
            for i in range(fy.size):
                fo[i] = zero if abs(fd[i]) < fl else fd[i]

    @jit
    def _any_below(a, floor):
        """Does ``a`` hold a nonzero entry with magnitude below ``floor`` (a subnormal)?"""
        flat, zero, fl, found = a.reshape(-1), a.dtype.type(0), a.dtype.type(floor), False
        for i in range(flat.size):
            found |= (abs(flat[i]) < fl) & (flat[i] != zero)
        return found

    def flushed_fast(a):
        """``nn.subnormal.flushed``: ``a`` itself, or a flushed copy if it holds a subnormal."""
        if isinstance(a, np.ndarray) and a.dtype.kind == "f" and _any_below(np.ascontiguousarray(a), floor(a.dtype)):
            return flush(a.copy())
        return a

    @jit
    def col_sum(delta, db, add):
        if not add:
            db[:] = 0
        n, m = delta.shape
        for i in range(n):
            for j in range(m):
                db[j] += delta[i, j]

    def dense_kernels(dot):
        """``dense_forward`` and ``dense_backward`` with ``dot(a, b, out)`` as their GEMM.

        The GEMMs run in NumPy's BLAS, outside the jitted code: np.dot inside @njit would call
        SciPy's separate OpenBLAS, and two BLAS thread pools spinning in one process slow each
        other down many times over. ``pool.POOLED`` passes the pool's ``gemm`` instead.
        """
        def dense_forward(x, W, b, act, alpha, out):
            dot(x, W, out)
            bias_act(out, b, act, alpha, floor(out.dtype))       # out = act(x W + b), fused
            return out

        def dense_backward(x, W, y, dout, act, alpha, delta, dW, db, dx, need_dx, grads=ADD):
            act_grad_mul(y, dout, act, alpha, delta, floor(delta.dtype))     # delta = dout * act'(u)
            if grads == ADD:
                dW += dot(x.T, delta, np.empty_like(dW))  # dW = x^T delta
            elif grads == SET:
                dot(x.T, delta, dW)
            if grads != SKIP:
                col_sum(delta, db, grads == ADD)         # db = 1^T delta
            if need_dx:
                dot(delta, W.T, dx)                      # dx = delta W^T
            return delta
        return dense_forward, dense_backward

    dense_forward, dense_backward = dense_kernels(lambda a, b, out: np.dot(a, b, out=out))

    def activation_forward(u, act, alpha, out):
        out[...] = u
        act_inplace(out, act, alpha, floor(out.dtype))
        return out

    def activation_backward(y, dout, act, alpha, out):
        act_grad_mul(y, dout, act, alpha, out, floor(out.dtype))
        return out

    @jit
    def _logit_loss_grads(s, e, t, grad, terms, mse):
        """Two vectorisable loops: the gradient w.r.t. the logits, and each element's loss term
        but BCE's log(1 + e) (the caller adds NumPy's SIMD log1p; a scalar log1p here cost 8x
        this loop). No branch inside a loop and no running sum, so LLVM can vectorise both.

        ``e = exp(-|s|)`` comes from NumPy (its exp is SIMD; Numba's is a scalar call here).
        """
        fs, fe, ft, fg, fl = s.reshape(-1), e.reshape(-1), t.reshape(-1), grad.reshape(-1), terms.reshape(-1)
        n = fs.size
        one, zero = fs.dtype.type(1), fs.dtype.type(0)
        inv_n, two_n = one / fs.dtype.type(n), fs.dtype.type(2.0 / n)
        if mse:
            for i in range(n):
                p = sigmoid_scalar(fs[i], fe[i], one)
                d = p - ft[i]
                fg[i] = two_n * d * p * (one - p)        # 2/n (x_hat - x) x_hat (1 - x_hat)
                fl[i] = d * d
        else:
            for i in range(n):
                p = sigmoid_scalar(fs[i], fe[i], one)
                fg[i] = (p - ft[i]) * inv_n              # (sigmoid(s) - t) / n
                fl[i] = max(fs[i], zero) - fs[i] * ft[i]  # + log(1 + e), added by the caller

    def _logit_loss(s, t, grad, mse):
        e = np.abs(s)                                    # e = exp(-|s|), in one buffer
        np.negative(e, out=e)
        np.exp(e, out=e)
        terms = np.empty_like(s)
        _logit_loss_grads(s, e, np.ascontiguousarray(t), grad, terms, mse)
        total = float(np.sum(terms))                     # NumPy's pairwise sum, as nn/losses.py
        if not mse:                                      # BCE = max(s, 0) - s t + log(1 + exp(-|s|))
            total += float(np.sum(np.log1p(e, out=e)))
        return total / s.size

    def bce_logits(s, t, grad):
        return _logit_loss(s, t, grad, False)

    def sigmoid_mse(s, x, grad):
        return _logit_loss(s, x, grad, True)

    @jit
    def adam_flat(p, g, m, v, step_size, b1, b2, eps, v_scale):
        dt = p.dtype.type
        b1_, b2_, c1, c2 = dt(b1), dt(b2), dt(1 - b1), dt(1 - b2)
        ss, ep, vs = dt(step_size), dt(eps), dt(v_scale)
        small, zero = dt(16 * np.finfo(p.dtype).tiny), dt(0)   # see below
        for i in range(p.size):
            gi = g[i]
            mi = b1_ * m[i] + c1 * gi
            vi = b2_ * v[i] + c2 * gi * gi
            # moments within 16x of the smallest normal float are stored as 0: a parameter whose
            # gradient stays 0 would otherwise decay into the subnormals (b1 * m underflows at the
            # next step for any b1 >= 1/16), and x86 computes those by slow microcode
            # (docs/performance.md: 1.6x this loop on a real training state)
            m[i] = mi if abs(mi) >= small else zero
            v[i] = vi if vi >= small else zero
            p[i] -= mi / (np.sqrt(vi) * vs + ep) * ss       # np.sqrt keeps float32 (math.sqrt: float64)

    @jit
    def momentum_flat(p, g, vel, lr, mu, nesterov):
        dt = p.dtype.type
        lr_, mu_ = dt(lr), dt(mu)
        for i in range(p.size):
            vi = mu_ * vel[i] + g[i]
            vel[i] = vi
            p[i] -= lr_ * (g[i] + mu_ * vi) if nesterov else lr_ * vi

    @jit
    def matmul(a, b, out):
        # A blocked GEMM: tiles small enough to stay in cache are reused. Readable; slower than BLAS.
        (n, k), m = a.shape, b.shape[1]
        out[...] = 0
        bs = 64
        for i0 in range(0, n, bs):
            for p0 in range(0, k, bs):
                for j0 in range(0, m, bs):
                    for i in range(i0, min(i0 + bs, n)):
                        for p in range(p0, min(p0 + bs, k)):
                            aip = a[i, p]
                            for j in range(j0, min(j0 + bs, m)):
                                out[i, j] += aip * b[p, j]
        return out

    NUMBA = SimpleNamespace(name="numba", dense_forward=dense_forward, dense_backward=dense_backward,
                           activation_forward=activation_forward, activation_backward=activation_backward,
                           flushed=flushed_fast, flush=flush,
                           bce_logits=bce_logits, sigmoid_mse=sigmoid_mse, adam_flat=adam_flat, momentum_flat=momentum_flat,
                           matmul=matmul)

