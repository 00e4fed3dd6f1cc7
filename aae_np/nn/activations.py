"""Elementwise activations as layers (no parameters), and the row-wise softmax.

Each activation is two functions, ``activate(name, x)`` and ``derivative(name, y)``,
the derivative written with the *output* y: s' = s(1 - s), tanh' = 1 - tanh^2, and
for ReLU/LeakyReLU the sign of y is the sign of x. So every layer keeps exactly one
array, its output, and the fused kernels of ``aae_np.fast`` (which see only y) have
these two functions as their reference.

At the kink x = 0, ReLU and LeakyReLU use the left derivative (0 for ReLU,
alpha for LeakyReLU): ``x > 0`` decides.
A central finite difference there returns the average of both sides, so
gradient checks must keep inputs away from 0 (see ``tests/test_layers.py``).
"""

from __future__ import annotations

import numpy as np

from aae_np.nn.base import Layer

__all__ = ["sigmoid", "softmax", "softmax_backward", "activate", "derivative", "ACTIVATIONS",
           "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Identity"]


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function 1 / (1 + e^-x), computed without overflow.

    ``exp`` is only ever taken of ``-|x|`` (<= 0), so it cannot overflow for
    any finite input; the two branches are algebraically identical.
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``(N, K)`` logits, shifted by the row maximum so exp cannot overflow."""
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def softmax_backward(y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """dL/ds from dL/dy for y = softmax(s): the Jacobian diag(y) - y y^T applied row by row."""
    return y * (dy - np.sum(dy * y, axis=1, keepdims=True))     # ds = y * (dy - <dy, y>)


def activate(name: str, x: np.ndarray, alpha: float = 0.2) -> np.ndarray:
    """The named activation applied to ``x`` (``alpha``: LeakyReLU's slope), as its layer's forward."""
    if name == "relu":
        return np.where(x > 0, x, 0).astype(x.dtype, copy=False)
    if name == "leaky_relu":
        return x * derivative(name, x, alpha)     # the slope read off x equals the one read off y
    if name == "sigmoid":
        return sigmoid(x)
    if name == "tanh":
        return np.tanh(x)
    return x


def derivative(name: str, y: np.ndarray, alpha: float = 0.2) -> np.ndarray:
    """act'(x) written with the output ``y = act(x)``: all a backward pass needs to keep.

    ReLU and LeakyReLU: y > 0 exactly when x > 0; sigmoid: s(1 - s); tanh: 1 - tanh^2."""
    if name == "relu":
        return (y > 0).astype(y.dtype)
    if name == "leaky_relu":
        return np.where(y > 0, 1, alpha).astype(y.dtype)
    if name == "sigmoid":
        return y * (1 - y)
    if name == "tanh":
        return 1 - y * y
    return np.ones_like(y)


class _Elementwise(Layer):
    """An activation layer: ``activate``/``derivative`` of its ``kind``; it keeps its output y."""

    kind = "identity"
    alpha = 0.0                         # LeakyReLU's slope; unused by the others

    def __init__(self) -> None:
        super().__init__()
        self.shape: tuple[int, int] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._check(x, "x")
        self.shape = x.shape
        self.y = activate(self.kind, x, self.alpha)
        return self.y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        shape = self._need_forward("shape")
        self._check(dout, "dout", dim=shape[1], rows=shape[0])
        return dout * derivative(self.kind, self.y, self.alpha)   # dx = delta * act'(x), read off y


class ReLU(_Elementwise):
    """``y = max(0, x)``; backward ``dx = delta * 1[x > 0]``."""

    kind = "relu"


class LeakyReLU(_Elementwise):
    """``y = x`` for x > 0, ``alpha * x`` otherwise (default alpha = 0.2);
    backward ``dx = delta * (1 if x > 0 else alpha)``."""

    kind = "leaky_relu"

    def __init__(self, alpha: float = 0.2) -> None:
        super().__init__()
        if not 0 <= alpha < 1:
            raise ValueError(f"LeakyReLU: alpha must be in [0, 1), got {alpha!r}")
        self.alpha = float(alpha)

    def __repr__(self) -> str:
        return f"LeakyReLU(alpha={self.alpha})"


class Sigmoid(_Elementwise):
    """``y = 1 / (1 + e^-x)``; backward ``dx = delta * s(x)(1 - s(x)) = delta * y (1 - y)``."""

    kind = "sigmoid"


class Tanh(_Elementwise):
    """``y = tanh(x)``; backward ``dx = delta * (1 - tanh(x)^2) = delta * (1 - y^2)``."""

    kind = "tanh"


class Identity(_Elementwise):
    """``y = x`` (a linear output, e.g. the encoder's z or the discriminator's logit); ``dx = delta``."""

    kind = "identity"


ACTIVATIONS: dict[str, type[Layer]] = {cls.kind: cls for cls in (ReLU, LeakyReLU, Sigmoid, Tanh, Identity)}
