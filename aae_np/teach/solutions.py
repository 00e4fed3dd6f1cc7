"""Reference solutions of the gradient exercises (``notebooks/02_gradient_check_exercises.ipynb``).

Try each exercise before reading its solution here. Every function has the signature the
notebook's stub asks for; ``aae_np.teach.exercises.check(name, fn)`` passes for each of them
(``tests/test_exercises.py`` proves it). Notation as in ``docs/derivations.md``: a batch is rows,
``W`` is ``(D_in, D_out)``, ``y = x W + b``, and ``delta`` is dL/d(pre-activation).
"""

from __future__ import annotations

import numpy as np

from aae_np.nn.activations import sigmoid
from aae_np.nn.optim import Optimizer

__all__ = ["numerical_gradient", "rel_error", "dense_backward", "sigmoid_backward", "relu_backward", "mse_grad",
           "bce_with_logits", "discriminator_grad", "generator_grad", "dropout_backward", "batchnorm_backward",
           "softmax_cross_entropy", "adam_update", "train_phased"]


def dense_backward(x: np.ndarray, W: np.ndarray, dout: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """y = x W + b.  x (N, D_in), W (D_in, D_out), dout = dL/dy (N, D_out) -> dx, dW, db."""
    dx = dout @ W.T                  # dx = delta W^T      (N,out)(out,in) -> (N,in)
    dW = x.T @ dout                  # dW = x^T delta      (in,N)(N,out)   -> (in,out)
    db = dout.sum(axis=0)            # db = 1^T delta      sum over the batch -> (out,)
    return dx, dW, db


def sigmoid_backward(x: np.ndarray, dout: np.ndarray) -> np.ndarray:
    """y = sigmoid(x), elementwise.  x, dout (N, D) -> dx (N, D)."""
    s = sigmoid(x)
    return dout * s * (1 - s)        # dx = delta * s(1 - s), s the OUTPUT of the sigmoid


def relu_backward(x: np.ndarray, dout: np.ndarray) -> np.ndarray:
    """y = max(0, x), elementwise.  x, dout (N, D) -> dx (N, D); the slope at x = 0 is 0."""
    return dout * (x > 0)            # dx = delta * 1[x > 0]


def mse_grad(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """L = 1/n sum (pred - target)^2, n = pred.size = N*D.  -> dL/dpred (N, D)."""
    return 2.0 / pred.size * (pred - target)        # dL/dpred = 2/n (pred - target)


def bce_with_logits(logits: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """L = mean over all n elements of BCE(sigmoid(s), t), computed stably.  -> (L, dL/ds (N, D))."""
    s, t, n = logits, target, logits.size
    # -[t log p + (1-t) log(1-p)] = max(s, 0) - s t + log(1 + e^{-|s|}): exp of a number <= 0 only
    loss = np.sum(np.maximum(s, 0) - s * t + np.log1p(np.exp(-np.abs(s)))) / n
    return float(loss), (sigmoid(s) - t) / n          # dL/ds = (sigmoid(s) - t) / n


def discriminator_grad(z_prior: np.ndarray, z_fake: np.ndarray, W: np.ndarray,
                       b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """a = z W + b, D = sigmoid(a);  L_D = 1/2 [BCE(D(z_prior), 1) + BCE(D(z_fake), 0)]
    = 1/2 [-1/N sum log D(z_prior) - 1/N sum log(1 - D(z_fake))], the mean BCE over all 2N rows
    (as ``models/adversarial.py: real_vs_fake``).

    z_prior, z_fake (N, D_z), W (D_z, 1), b (1,) -> dW (D_z, 1), db (1,).
    """
    n = len(z_prior)
    d_real = sigmoid(z_prior @ W + b)                 # D at the prior samples (N, 1)
    d_fake = sigmoid(z_fake @ W + b)                  # D at the encoded samples (N, 1)
    delta_real = (d_real - 1) / (2 * n)               # dL/da_real = (D - 1)/2N   (target 1)
    delta_fake = d_fake / (2 * n)                     # dL/da_fake = D/2N         (target 0)
    dW = z_prior.T @ delta_real + z_fake.T @ delta_fake          # two batches, summed
    db = delta_real.sum(axis=0) + delta_fake.sum(axis=0)
    return dW, db


def generator_grad(x: np.ndarray, W1: np.ndarray, b1: np.ndarray, W2: np.ndarray, b2: np.ndarray,
                   W_D: np.ndarray, b_D: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """h = relu(x W1 + b1), z = h W2 + b2, a = z W_D + b_D;  L_G = -1/N sum log sigmoid(a).

    x (N, D_x), W1 (D_x, H), b1 (H,), W2 (H, D_z), b2 (D_z,), W_D (D_z, 1), b_D (1,)
    -> dW1 (D_x, H), db1 (H,): the gradient of L_G into the encoder's first layer.
    """
    n = len(x)
    u = x @ W1 + b1                                   # (N, H) pre-activation of the hidden layer
    h = np.maximum(u, 0)
    z = h @ W2 + b2                                   # (N, D_z), linear code
    a = z @ W_D + b_D                                 # (N, 1) discriminator logit
    delta_a = (sigmoid(a) - 1) / n                    # dL_G/da = (D - 1)/N  (fused, target 1)
    dz = delta_a @ W_D.T                              # (N,1)(1,D_z) -> (N, D_z)
    dh = dz @ W2.T                                    # (N,D_z)(D_z,H) -> (N, H); z is linear
    delta_u = dh * (u > 0)                            # through the ReLU: 1[u > 0]
    return x.T @ delta_u, delta_u.sum(axis=0)         # dW1 = x^T delta_u, db1 = 1^T delta_u


def dropout_backward(mask: np.ndarray, keep: float, dout: np.ndarray) -> np.ndarray:
    """y = x * mask / keep (inverted dropout, training mode).  mask, dout (N, D) -> dx (N, D).

    ``mask`` is the 0/1 draw the forward pass used (1: the unit was kept), ``keep = 1 - p``.
    """
    return dout * mask / keep        # dx = dy * m / keep: the forward's slope, elementwise


def batchnorm_backward(x: np.ndarray, gamma: np.ndarray, dout: np.ndarray,
                       eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """y = gamma * x_hat + beta, x_hat = (x - mu) / sqrt(var + eps), batch statistics (training mode).

    x, dout = dL/dy (N, D), gamma (D,) -> dx (N, D), dgamma (D,), dbeta (D,).
    """
    n = x.shape[0]
    mu = x.mean(axis=0)                               # (D,) column means
    var = ((x - mu) ** 2).mean(axis=0)                # (D,) biased: divides by N, as the forward does
    sigma = np.sqrt(var + eps)                        # (D,)
    x_hat = (x - mu) / sigma                          # (N, D)
    dbeta = dout.sum(axis=0)                          # dbeta = 1^T dy                     (D,)
    dgamma = (dout * x_hat).sum(axis=0)               # dgamma = 1^T (dy * x_hat)          (D,)
    # three paths into x (direct, via mu, via var), summed (docs/derivations.md, section 6):
    # dx = gamma / (N sigma) * (N dy - 1^T dy - x_hat * 1^T (dy * x_hat))      (N, D)
    dx = gamma / (n * sigma) * (n * dout - dbeta - x_hat * dgamma)
    return dx, dgamma, dbeta


def numerical_gradient(f, x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central differences of the scalar f at x (any shape): (f(x + h e_i) - f(x - h e_i)) / 2h.

    ``x`` is nudged in place, one element at a time, and each element is put back exactly.
    """
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        f_plus = f(x)
        x[i] = old - h
        f_minus = f(x)
        x[i] = old                                    # restore before the next element
        grad[i] = (f_plus - f_minus) / (2 * h)        # error O(h^2), not O(h) as one-sided
    return grad


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """max_i |a_i - b_i| / max(1e-8, |a_i| + |b_i|): 0 when equal, about 1 when unrelated."""
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """L = -1/N sum_n log softmax(logits)[n, labels[n]].  logits (N, C), labels (N,) ints -> (L, dL/dlogits)."""
    n = len(logits)
    shifted = logits - logits.max(axis=1, keepdims=True)      # softmax is unchanged; exp cannot overflow
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_p[np.arange(n), labels].mean()
    dlogits = np.exp(log_p)                                   # p, each row sums to 1
    dlogits[np.arange(n), labels] -= 1                        # p - onehot(y)
    return float(loss), dlogits / n                           # dL/ds = (p - y) / N


def adam_update(param: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray, t: int, lr: float,
                beta1: float, beta2: float, eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One Adam step (Kingma & Ba, 2015), t counted from 1.  Returns (new param, new m, new v)."""
    m = beta1 * m + (1 - beta1) * grad                        # running mean of the gradient
    v = beta2 * v + (1 - beta2) * grad * grad                 # running mean of its square
    m_hat = m / (1 - beta1 ** t)                              # bias correction: m, v start at 0
    v_hat = v / (1 - beta2 ** t)
    return param - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def train_phased(model, batches, rules) -> None:
    """The phased loop (Exercise 12): per batch (x, z_prior), reconstruction, then discriminator, then
    generator, each after zero_grad and followed by the step of its own optimizer, which owns the
    parameters of the networks that phase trains.  rules: phase -> update rule (Adam)."""
    opt = {"reconstruction": Optimizer(model.params_of("encoder", "decoder"), rules["reconstruction"]),
           "discriminator": Optimizer(model.params_of("discriminator"), rules["discriminator"]),
           "generator": Optimizer(model.params_of("encoder"), rules["generator"])}
    for x, z_prior in batches:
        model.zero_grad()
        model.reconstruction(x)
        opt["reconstruction"].step(model.grads)
        model.zero_grad()
        model.discriminator(x, z_prior)
        opt["discriminator"].step(model.grads)
        model.zero_grad()
        model.generator(x)                        # also leaves dL_G/dW_D in model.grads: not D's to use
        opt["generator"].step(model.grads)
