"""Run a ``Sequential`` of the form ``[Dropout] (Dense [BatchNorm] [activation])*`` with fused kernels.

This is the runner of the ``numba`` backend. It has the interface of ``Sequential``
(``forward(x)``, ``backward(dout, need_dx=True, param_grads=True)``, ``zero_grad()``),
so a model's phase code is the same on both backends, and it reads and writes the very
same parameter, gradient and state arrays as the layers (so names, checkpoints and gradient
checks do not change with the backend); only the arithmetic is fused. The layers are
grouped into blocks, each a Dense and what follows it:

* Dense [activation]: one ``kernels.dense_forward`` forward, one ``dense_backward`` backward;
* Dense BatchNorm [activation]: ``dense_forward`` with the identity activation (the GEMM and
  the bias), then ``bn_kernels.bn_forward`` (the normalisation, gamma, beta, the activation and,
  in training mode, the running statistics); backward ``bn_backward``, then ``dense_backward``.
  The BatchNorm layer's ``training`` flag, read at each forward, chooses the batch's or the
  running statistics, as ``BatchNorm.forward`` does.

A leading Dropout (input dropout) runs as the layer itself: an elementwise product.
``tests/test_fused_batchnorm.py`` holds it to ``Sequential``; ``tests/test_model.py`` checks
both backends' phase gradients by finite differences.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from aae_np.fast.bn_kernels import BN_KERNELS
from aae_np.fast.kernels import ACT_CODES, ADD, SET, SKIP
from aae_np.nn.base import Layer
from aae_np.nn.batchnorm import BatchNorm
from aae_np.nn.dropout import Dropout
from aae_np.nn.layers import Dense, Sequential

IDENTITY = ACT_CODES["identity"]
FORM = "[Dropout] (Dense [BatchNorm] [activation])*"


@dataclass(frozen=True)
class Block:
    """A Dense, an optional BatchNorm, and the activation after them (identity if none)."""

    dense: Dense
    bn: BatchNorm | None
    act: int                 # activation code, see kernels.py
    alpha: float             # LeakyReLU's slope


@dataclass(frozen=True)
class BNSaved:
    """What a BatchNorm block's forward keeps for its backward."""

    x_hat: np.ndarray        # (N, D) the normalised x W + b
    inv_sigma: np.ndarray    # (D,) 1 / sqrt(var + eps), of the batch or the running variance
    training: bool           # which statistics the forward used


def _blocks(net: Sequential, layers: list[Layer], first: int) -> list[Block]:
    """Group ``layers`` (``net``'s from index ``first`` on) as (Dense [BatchNorm] [activation])*."""
    blocks, i = [], 0
    while i < len(layers):
        dense = layers[i]
        if not isinstance(dense, Dense):
            raise ValueError(f"FusedMLP: {net.name} layer {first + i} is {dense!r}, expected Dense "
                             f"(FusedMLP runs networks of the form {FORM})")
        i += 1
        bn = None
        if i < len(layers) and isinstance(layers[i], BatchNorm):
            bn = layers[i]
            if bn.dim != dense.out_dim or bn.dtype != dense.dtype:
                raise ValueError(f"FusedMLP: {net.name} layer {first + i} is {bn!r} after {dense!r}; "
                                 f"it must have the Dense's out_dim and dtype")
            i += 1
        act, alpha = IDENTITY, 0.0
        if i < len(layers) and getattr(layers[i], "kind", None) in ACT_CODES:
            act, alpha = ACT_CODES[layers[i].kind], getattr(layers[i], "alpha", 0.0)
            i += 1
        blocks.append(Block(dense, bn, act, alpha))
    return blocks


class FusedMLP:
    """Forward/backward of ``net`` through ``kernels`` (``dense_forward``/``dense_backward``) and,
    for BatchNorm, ``bn_kernels`` (by default the BatchNorm kernel set named like ``kernels``)."""

    def __init__(self, net: Sequential, kernels: SimpleNamespace,
                 bn_kernels: SimpleNamespace | None = None) -> None:
        self.net, self.kernels = net, kernels
        self.bn_kernels = BN_KERNELS.get(kernels.name) if bn_kernels is None else bn_kernels
        layers = list(net.layers)
        self.dropout = layers.pop(0) if layers and isinstance(layers[0], Dropout) else None
        self.blocks = _blocks(net, layers, first=int(self.dropout is not None))
        if self.bn_kernels is None and any(block.bn for block in self.blocks):
            raise ValueError(f"FusedMLP: {net.name} has BatchNorm but the kernel set {kernels.name!r} "
                             f"has no BatchNorm kernels; pass bn_kernels")
        self.inputs: list[np.ndarray] = []
        self.outputs: list[np.ndarray] = []
        self.bn_saved: list[BNSaved | None] = []
        self.grads_are_zero = False       # set by zero_grad: the next backward may overwrite

    def zero_grad(self) -> None:
        """Zero the gradients, lazily: the next backward overwrites them instead of adding to
        zeros (the same result, without a pass over the buffers)."""
        self.grads_are_zero = True

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self.kernels.flushed(x)      # no subnormal enters a product (nn/subnormal.py)
        if self.dropout is not None:
            x = self.dropout.forward(x)
        self.inputs, self.outputs, self.bn_saved = [], [], []
        for block in self.blocks:
            dense = block.dense
            out = np.empty((x.shape[0], dense.out_dim), dense.dtype)
            if block.bn is None:
                self.kernels.dense_forward(x, dense.params["W"], dense.params["b"], block.act, block.alpha, out)
                self.bn_saved.append(None)
            else:
                self.bn_saved.append(self._bn_forward(block, x, out))
            self.inputs.append(x)
            self.outputs.append(out)
            x = out
        return x

    def _bn_forward(self, block: Block, x: np.ndarray, out: np.ndarray) -> BNSaved:
        """out = act(BN(x W + b)); returns what the backward needs."""
        dense, bn = block.dense, block.bn
        training = bool(bn.training)
        if training and x.shape[0] < 2:
            raise ValueError(f"{bn.name}.forward: training mode needs a batch of at least 2 rows (the "
                             f"variance of one row is 0), got {x.shape[0]}; use eval() for single examples")
        u = np.empty_like(out)            # u = x W + b, then normalised in place: x_hat
        self.kernels.dense_forward(x, dense.params["W"], dense.params["b"], IDENTITY, 0.0, u)
        inv_sigma = np.empty(bn.dim, bn.dtype)
        self.bn_kernels.bn_forward(u, bn.params["gamma"], bn.params["beta"], bn.state["running_mean"],
                                   bn.state["running_var"], bn.momentum, bn.eps, training,
                                   block.act, block.alpha, u, inv_sigma, out)
        return BNSaved(u, inv_sigma, training)

    def backward(self, dout: np.ndarray, need_dx: bool = True,
                 param_grads: bool = True) -> np.ndarray | None:
        """Like ``Sequential.backward``; ``param_grads=False`` computes only dL/dx (the
        parameter gradients are left untouched). The first backward after ``zero_grad``
        overwrites the gradients instead of adding to zeros: the same result, one pass less."""
        mode = SKIP if not param_grads else (SET if self.grads_are_zero else ADD)
        if param_grads:
            self.grads_are_zero = False
        empty = np.empty((0, 0), dout.dtype)
        for k in range(len(self.blocks) - 1, -1, -1):
            block, saved = self.blocks[k], self.bn_saved[k]
            dense, act, alpha = block.dense, block.act, block.alpha
            x, y = self.inputs[k], self.outputs[k]
            want_dx = need_dx or k > 0
            dx = np.empty_like(x) if want_dx else empty
            W, dW, db = dense.params["W"], dense.grads["W"], dense.grads["b"]
            if saved is None:
                self.kernels.dense_backward(x, W, y, np.ascontiguousarray(dout), act, alpha,
                                            np.empty_like(y), dW, db, dx, want_dx, mode)
            else:
                bn, du = block.bn, np.empty_like(y)      # du = dL/d(x W + b)
                self.bn_kernels.bn_backward(y, np.ascontiguousarray(dout), act, alpha, saved.x_hat,
                                            bn.params["gamma"], saved.inv_sigma, saved.training, du,
                                            bn.grads["gamma"], bn.grads["beta"], mode)
                # du is the Dense's delta already: identity activation (so its y is not read)
                self.kernels.dense_backward(x, W, du, du, IDENTITY, 0.0, du, dW, db, dx, want_dx, mode)
            dout = dx
        if self.dropout is not None and need_dx:
            dout = self.dropout.backward(dout)           # dx = dy * m / keep
        # the kernels flushed every delta; the input's gradient, as Sequential returns it
        return self.kernels.flush(dout) if need_dx else None
