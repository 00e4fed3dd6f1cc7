"""Reference solutions of the gradient exercises (``notebooks/02_gradient_check_exercises.ipynb``).

Try each exercise before reading its solution here. Every function has the signature the
notebook's stub asks for; ``aae_np.teach.exercises.check(name, fn)`` passes for each of them
(``tests/test_exercises.py`` proves it). Notation as in ``docs/derivations.md``: a batch is rows,
``W`` is ``(D_in, D_out)``, ``y = x W + b``, and ``delta`` is dL/d(pre-activation).
"""

from __future__ import annotations

import numpy as np

from aae_np.nn.activations import sigmoid

__all__ = ["dense_backward", "sigmoid_backward", "relu_backward", "mse_grad", "bce_with_logits",
           "discriminator_grad", "generator_grad", "dropout_backward", "batchnorm_backward"]


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
    """a = z W + b, D = sigmoid(a);  L_D = -1/N sum log D(z_prior) - 1/N sum log(1 - D(z_fake)).

    z_prior, z_fake (N, D_z), W (D_z, 1), b (1,) -> dW (D_z, 1), db (1,).
    """
    n = len(z_prior)
    d_real = sigmoid(z_prior @ W + b)                 # D at the prior samples (N, 1)
    d_fake = sigmoid(z_fake @ W + b)                  # D at the encoded samples (N, 1)
    delta_real = (d_real - 1) / n                     # dL/da_real = (D - 1)/N   (target 1)
    delta_fake = d_fake / n                           # dL/da_fake = D/N         (target 0)
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
