"""The one backend seam: how a model computes, chosen once when the model is built.

``numpy``  the ``aae_np.nn`` layers themselves run each network (the code a student reads);
``numba``  ``FusedMLP`` runs each network through fused kernels over the same arrays.

Everything that differs between the two is made here: the runner of a network (both have
``forward``, ``backward(dout, need_dx, param_grads)`` and ``zero_grad``), the optimizer of
a phase, and the kernel set (whose reconstruction losses the models call on both
backends: the NumPy twins are the ``nn.losses`` functions). Model code has no backend
branches.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from aae_np.fast import pool
from aae_np.fast.flat_optim import FlatOptimizer
from aae_np.fast.kernels import NUMBA, NUMPY
from aae_np.fast.runner import FusedMLP
from aae_np.nn.layers import Sequential
from aae_np.nn.optim import SGD, Adam, Momentum, Optimizer

__all__ = ["BACKENDS", "Backend", "default_backend", "get_kernels"]

BACKENDS = ("numpy", "numba")
ENV_VAR = "AAE_NP_BACKEND"


def default_backend() -> str:
    """``$AAE_NP_BACKEND`` if set, else "numba" when it is installed (it is faster:
    docs/performance.md), else "numpy"."""
    chosen = os.environ.get(ENV_VAR, "").strip()
    if chosen:
        if chosen not in BACKENDS:
            raise ValueError(f"{ENV_VAR} must be 'numpy' or 'numba', got {chosen!r}")
        return chosen
    return "numba" if NUMBA is not None else "numpy"


def get_kernels(backend: str):
    """The kernel set of ``backend`` ("numpy" or "numba")."""
    if backend == "numpy":
        return NUMPY
    if backend == "numba":
        if NUMBA is None:
            raise ValueError("backend 'numba' needs the numba package; "
                             "pip install numba, or use backend='numpy'")
        return NUMBA
    raise ValueError(f"backend must be 'numpy' or 'numba', got {backend!r}")


class Backend:
    """``Backend(None)`` takes ``default_backend()``; otherwise "numpy" or "numba"."""

    def __init__(self, name: str | None = None) -> None:
        self.name = default_backend() if name is None else name
        self.kernels = get_kernels(self.name)

    def __repr__(self) -> str:
        return f"Backend({self.name!r})"

    def runner(self, net: Sequential) -> Sequential | FusedMLP:
        """What runs ``net``'s forward and backward passes."""
        return net if self.name == "numpy" else FusedMLP(net, pool.POOLED)

    def optimizer(self, model: Any, nets: tuple[str, ...], rule: SGD | Momentum | Adam) -> Optimizer | FlatOptimizer:
        """The optimizer of a phase that trains ``nets`` of ``model``: one pure update per tensor
        (numpy), or one fused loop over the networks' adjacent slice of the flat buffer (numba;
        inside ``pool.running()`` that loop is split over the pool's threads)."""
        named = model.params_of(*nets)
        if self.name == "numpy":
            return Optimizer(named, rule)
        return FlatOptimizer(*model.flat_slice(*nets), rule, pool.POOLED, named=named)

    def recon_loss(self, kind: str) -> Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]]:
        """``(logits, x) -> (loss, dL/dlogits)``: "bce" on logits or "mse" of their sigmoid."""
        fused = self.kernels.bce_logits if kind == "bce" else self.kernels.sigmoid_mse

        def loss(logits: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray]:
            d_logits = np.empty_like(logits)
            return float(fused(logits, x, d_logits)), d_logits
        return loss
