"""Inverted dropout (Srivastava et al., 2014): in training mode each input survives with
probability ``keep = 1 - p`` and is scaled by ``1 / keep``, so evaluation mode is the identity.

    y = x * m / keep         dx = dy * m / keep          (m: a 0/1 mask of x's shape)

The mask is data, not a random draw hidden in ``forward``: a caller that needs the layer to be
a pure function (a finite-difference check; a model phase, whose trainer draws the mask from
its own generator) sets it with ``set_mask`` and it is used until it is set again. Without a
set mask, each training-mode forward draws a new one from the layer's generator ``rng``.
"""

from __future__ import annotations

import numpy as np

from aae_np.nn.base import Layer

__all__ = ["Dropout"]


class Dropout(Layer):
    """Drop each element with probability ``p`` in [0, 1) in training mode."""

    def __init__(self, p: float, rng: np.random.Generator | int | None = None) -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p (the probability of dropping) must be in [0, 1), got {p!r}")
        self.p, self.keep = float(p), 1.0 - float(p)
        self.rng = np.random.default_rng(rng)
        self.fixed_mask: np.ndarray | None = None
        self.scale: np.ndarray | None = None

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"

    def set_mask(self, mask: np.ndarray | None) -> None:
        """Use ``mask`` (0/1 or bool, the input's shape) from now on; ``None``: draw again."""
        self.fixed_mask = None if mask is None else np.asarray(mask)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._check(x, "x")
        if not self.training or self.p == 0:
            self.scale = None
            return x
        mask = self.fixed_mask if self.fixed_mask is not None else self.rng.random(x.shape) >= self.p
        if mask.shape != x.shape:
            raise ValueError(f"{self.name}.forward: the mask has shape {mask.shape} but x has {x.shape}")
        self.scale = mask.astype(x.dtype) * x.dtype.type(1 / self.keep)     # m / keep
        return x * self.scale

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self._check(dout, "dout")
        if self.scale is None:                             # evaluation mode (or p = 0): the identity
            return dout
        if dout.shape != self.scale.shape:
            raise ValueError(f"{self.name}.backward: dout has shape {dout.shape}, the last forward {self.scale.shape}")
        return dout * self.scale                           # dx = dy * m / keep
