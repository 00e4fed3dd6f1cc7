"""Run a ``Sequential`` of (Dense, activation) pairs with fused kernels.

This is the runner of the ``numba`` backend. It has the interface of ``Sequential``
(``forward(x)``, ``backward(dout, need_dx=True, param_grads=True)``, ``zero_grad()``),
so a model's phase code is the same on both backends, and it reads and writes the very
same parameter and gradient arrays as the layers (so names, checkpoints and gradient
checks do not change with the backend); only the arithmetic is fused: one kernel per
Dense + activation pair forward, one per pair backward. ``tests/test_model.py`` checks
both backends' phase gradients by finite differences.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from aae_np.fast.kernels import ACT_CODES, ADD, SET, SKIP
from aae_np.nn.layers import Dense, Sequential


class FusedMLP:
    """Forward/backward of ``net`` through ``kernels.dense_forward``/``dense_backward``."""

    def __init__(self, net: Sequential, kernels: SimpleNamespace) -> None:
        self.net, self.kernels = net, kernels
        self.pairs: list[tuple[Dense, int, float]] = []
        layers = list(net.layers)
        i = 0
        while i < len(layers):
            dense = layers[i]
            if not isinstance(dense, Dense):
                raise ValueError(f"FusedMLP: {net.name} layer {i} is {dense!r}, expected Dense")
            act, alpha = ACT_CODES["identity"], 0.0
            if i + 1 < len(layers) and not isinstance(layers[i + 1], Dense):
                act_layer = layers[i + 1]
                act, alpha = ACT_CODES[act_layer.kind], getattr(act_layer, "alpha", 0.0)
                i += 1
            self.pairs.append((dense, act, alpha))
            i += 1
        self.inputs: list[np.ndarray] = []
        self.outputs: list[np.ndarray] = []
        self.grads_are_zero = False       # set by zero_grad: the next backward may overwrite

    def zero_grad(self) -> None:
        """Zero the gradients, lazily: the next backward overwrites them instead of adding to
        zeros (the same result, without a pass over the buffers)."""
        self.grads_are_zero = True

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.inputs, self.outputs = [], []
        for dense, act, alpha in self.pairs:
            out = np.empty((x.shape[0], dense.out_dim), dense.dtype)
            self.kernels.dense_forward(x, dense.params["W"], dense.params["b"], act, alpha, out)
            self.inputs.append(x)
            self.outputs.append(out)
            x = out
        return x

    def backward(self, dout: np.ndarray, need_dx: bool = True,
                 param_grads: bool = True) -> np.ndarray | None:
        """Like ``Sequential.backward``; ``param_grads=False`` computes only dL/dx (the
        parameter gradients are left untouched). The first backward after ``zero_grad``
        overwrites the gradients instead of adding to zeros: the same result, one pass less."""
        mode = SKIP if not param_grads else (SET if self.grads_are_zero else ADD)
        if param_grads:
            self.grads_are_zero = False
        empty = np.empty((0, 0), dout.dtype)
        for k in range(len(self.pairs) - 1, -1, -1):
            dense, act, alpha = self.pairs[k]
            x, y = self.inputs[k], self.outputs[k]
            want_dx = need_dx or k > 0
            dx = np.empty_like(x) if want_dx else empty
            self.kernels.dense_backward(x, dense.params["W"], y, np.ascontiguousarray(dout), act, alpha,
                                        np.empty_like(y), dense.grads["W"], dense.grads["b"], dx, want_dx, mode)
            dout = dx
        return dout if need_dx else None
