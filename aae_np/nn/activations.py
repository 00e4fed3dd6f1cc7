"""Elementwise activations as layers (no parameters).

Each keeps the one array its derivative needs: ReLU/LeakyReLU the sign mask
of the input, Sigmoid/Tanh their output (their derivatives are cheapest in
terms of the output: s' = s(1 - s), tanh' = 1 - tanh^2).

At the kink x = 0, ReLU and LeakyReLU use the left derivative (0 for ReLU,
alpha for LeakyReLU): ``x > 0`` decides.
A central finite difference there returns the average of both sides, so
gradient checks must keep inputs away from 0 (see ``tests/test_layers.py``).
"""

from __future__ import annotations

import numpy as np

from aae_np.nn.base import Layer

__all__ = ["sigmoid", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Identity"]


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


class _Elementwise(Layer):
    def __init__(self) -> None:
        super().__init__()
        self.shape: tuple[int, int] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def _start_forward(self, x: np.ndarray) -> None:
        self._check(x, "x")
        self.shape = x.shape

    def _start_backward(self, dout: np.ndarray) -> None:
        shape = self._need_forward("shape")
        self._check(dout, "dout", dim=shape[1], rows=shape[0])


class ReLU(_Elementwise):
    """``y = max(0, x)``."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._start_forward(x)
        self.mask = x > 0
        return np.where(self.mask, x, 0).astype(x.dtype, copy=False)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self._start_backward(dout)
        return dout * self.mask                    # dx = delta * 1[x > 0]


class LeakyReLU(_Elementwise):
    """``y = x`` for x > 0, ``alpha * x`` otherwise (default alpha = 0.2)."""

    def __init__(self, alpha: float = 0.2) -> None:
        super().__init__()
        if not 0 <= alpha < 1:
            raise ValueError(f"LeakyReLU: alpha must be in [0, 1), got {alpha!r}")
        self.alpha = float(alpha)

    def __repr__(self) -> str:
        return f"LeakyReLU(alpha={self.alpha})"

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._start_forward(x)
        self.slope = np.where(x > 0, 1, self.alpha).astype(x.dtype)
        return x * self.slope

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self._start_backward(dout)
        return dout * self.slope                   # dx = delta * (1 if x > 0 else alpha)


class Sigmoid(_Elementwise):
    """``y = 1 / (1 + e^-x)``."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._start_forward(x)
        self.y = sigmoid(x)
        return self.y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self._start_backward(dout)
        return dout * self.y * (1 - self.y)        # dx = delta * s(x)(1 - s(x))


class Tanh(_Elementwise):
    """``y = tanh(x)``."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._start_forward(x)
        self.y = np.tanh(x)
        return self.y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self._start_backward(dout)
        return dout * (1 - self.y * self.y)        # dx = delta * (1 - tanh(x)^2)


class Identity(_Elementwise):
    """``y = x`` (a linear output, e.g. the encoder's z or the discriminator's logit)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._start_forward(x)
        return x

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self._start_backward(dout)
        return dout                                # dx = delta
