"""Layers with hand-written backward passes.

Conventions for the whole package (see ``docs/derivations.md``):

* A batch is a matrix of rows: ``x`` has shape ``(N, D)``, one example per row.
* ``Dense`` stores ``W`` as ``(D_in, D_out)`` and ``b`` as ``(D_out,)`` so that
  ``y = x W + b``.  (The tutorial writes ``W x + b`` for one column vector ``x``;
  transposing both sides gives our row form.)
* ``delta`` (also called ``dout``) is dL/dy, the gradient of the scalar loss with
  respect to a layer's output, with the output's shape.

Every layer follows the contract written in ``aae_np/nn/base.py`` (``forward`` keeps what
``backward`` needs; ``backward(dout)`` returns dx and *adds* into ``grads``).

Nothing here changes a weight: only an optimizer does that.
"""

from __future__ import annotations

import numpy as np

from aae_np.nn.activations import Identity, LeakyReLU, ReLU, Sigmoid, Tanh
from aae_np.nn.base import Layer
from aae_np.nn.subnormal import flush, flushed

__all__ = [
    "Layer",
    "Dense",
    "Sequential",
    "ReLU",
    "LeakyReLU",
    "Sigmoid",
    "Tanh",
    "Identity",
]


class Dense(Layer):
    """Affine layer ``y = x W + b``.

    Shapes: ``x (N, in_dim)``, ``W (in_dim, out_dim)``, ``b (out_dim,)``,
    ``y (N, out_dim)``.

    Initialisation (``init``):

    * ``"he"`` (default): ``W ~ N(0, 2 / in_dim)``, right for ReLU-family
      activations that zero half their inputs (He et al., 2015).
    * ``"glorot"``: ``W ~ N(0, 2 / (in_dim + out_dim))`` (Glorot & Bengio, 2010),
      for sigmoid/tanh/linear outputs.

    ``b`` starts at zero. ``rng`` is a ``np.random.Generator`` or a seed;
    the same seed always gives the same weights.
    """

    def __init__(self, in_dim: int, out_dim: int, *, rng: np.random.Generator | int | None = None,
                 dtype: np.dtype | type = np.float32, init: str = "he") -> None:
        super().__init__()
        for arg, value in (("in_dim", in_dim), ("out_dim", out_dim)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"Dense: {arg} must be a positive integer, got {value!r}")
        if init not in ("he", "glorot"):
            raise ValueError(f"Dense: init must be 'he' or 'glorot', got {init!r}")
        self.in_dim, self.out_dim = int(in_dim), int(out_dim)
        self.dtype = np.dtype(dtype)
        if not np.issubdtype(self.dtype, np.floating):
            raise ValueError(f"Dense: dtype must be a floating type, got {self.dtype}")
        rng = np.random.default_rng(rng)
        fan = self.in_dim if init == "he" else self.in_dim + self.out_dim
        std = np.sqrt(2.0 / fan)
        self.params["W"] = (rng.standard_normal((self.in_dim, self.out_dim)) * std).astype(self.dtype)
        self.params["b"] = np.zeros(self.out_dim, dtype=self.dtype)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.x: np.ndarray | None = None

    def __repr__(self) -> str:
        return f"Dense({self.in_dim}, {self.out_dim}, dtype={self.dtype.name})"

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._check(x, "x", dim=self.in_dim, dtype=self.dtype)
        self.x = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, dout: np.ndarray, need_dx: bool = True, param_grads: bool = True) -> np.ndarray | None:
        """Add dW, db into ``grads``; return dx.

        ``need_dx=False`` returns ``None`` (saves a GEMM for a network's first layer, whose
        input is data); ``param_grads=False`` leaves ``grads`` alone (a phase that passes a
        gradient through a network it does not train, e.g. the generator through D)."""
        x = self._need_forward("x")
        self._check(dout, "dout", dim=self.out_dim, rows=x.shape[0], dtype=self.dtype)
        if param_grads:
            self.grads["W"] += x.T @ dout      # dW = x^T delta        (N,in)^T (N,out) -> (in,out)
            self.grads["b"] += dout.sum(axis=0)  # db = 1^T delta      sum over the batch -> (out,)
        if not need_dx:
            return None
        return dout @ self.params["W"].T       # dx = delta W^T        (N,out) (out,in) -> (N,in)


class Sequential(Layer):
    """Layers applied in order; backward runs them in reverse.

    ``params``/``grads`` hold the children's arrays (the same objects, not
    copies) under qualified names ``"<index>.<key>"`` such as ``"0.W"``.
    """

    def __init__(self, *layers: Layer) -> None:
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise ValueError(f"Sequential: item {i} is {type(layer).__name__}, not a Layer")
        self.layers: list[Layer] = list(layers)
        self._set_name("Sequential")

    def _set_name(self, name: str) -> None:
        self.name = name
        for i, layer in enumerate(self.layers):
            layer._set_name(f"{name}.{i}" if name != "Sequential" else f"{i}")
        self._collect()

    def _collect(self) -> None:
        self.params, self.grads, self.state = {}, {}, {}
        for i, layer in enumerate(self.layers):
            for key, value in layer.params.items():
                self.params[f"{i}.{key}"] = value
                self.grads[f"{i}.{key}"] = layer.grads[key]
            for key, value in layer.state.items():
                self.state[f"{i}.{key}"] = value

    def train(self, mode: bool = True) -> "Sequential":
        self.training = bool(mode)
        for layer in self.layers:
            layer.train(mode)
        return self

    def _cast(self, dtype: np.dtype) -> None:
        for layer in self.layers:
            layer._cast(dtype)
        self._collect()

    def __repr__(self) -> str:
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"Sequential({inner})"

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int) -> Layer:
        return self.layers[i]

    def forward(self, x: np.ndarray) -> np.ndarray:
        # subnormals are flushed to 0 between layers, so no product reads one (nn/subnormal.py);
        # in place on each layer's new output, which the layer may keep for its backward
        x = flushed(x)
        for layer in self.layers:
            x = flush(layer.forward(x))
        return x

    def backward(self, dout: np.ndarray, need_dx: bool = True, param_grads: bool = True) -> np.ndarray | None:
        """Backward through every layer; ``need_dx=False`` skips dx of a first Dense layer,
        ``param_grads=False`` computes only dL/dx (see ``Dense.backward``)."""
        # chain rule, last layer first: delta_{l-1} = backward_l(delta_l); flushed as in forward
        dout = flushed(dout)
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            if isinstance(layer, Dense):
                dout = layer.backward(dout, need_dx=need_dx or i > 0, param_grads=param_grads)
            elif layer.params:
                dout = layer.backward(dout, param_grads=param_grads)
            else:
                dout = layer.backward(dout)
            if dout is not None:
                flush(dout)
        return dout

    def zero_grad(self) -> None:
        for layer in self.layers:
            layer.zero_grad()
