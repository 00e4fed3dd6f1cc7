"""The update rules of ``aae_np.nn.optim`` over one contiguous buffer, by a fused kernel.

A model keeps every parameter (and gradient) in one flat buffer, network after network
(``NetworkSet.flat_slice``). A phase trains whole networks that sit side by side there, so
its optimizer can update them all in one loop over a slice: one kernel call per step
instead of one small update per tensor. Results match ``nn.optim.Optimizer`` with the same
rule to float rounding (``tests/test_optim.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from types import SimpleNamespace

import numpy as np

from aae_np.nn.optim import SGD, Adam, Momentum, State

__all__ = ["FlatOptimizer"]


class FlatOptimizer:
    """One rule over the flat views ``params``/``grads`` (1-D, the same size).

    ``names``: the qualified names of the tensors those views cover. When given, ``step``
    checks that the gradients a phase hands it are exactly those tensors, so the slice
    and the phase cannot silently disagree.
    """

    def __init__(self, params: np.ndarray, grads: np.ndarray, rule: SGD | Momentum | Adam,
                 kernels: SimpleNamespace, names: Iterable[str] | None = None) -> None:
        if params.ndim != 1 or params.shape != grads.shape:
            raise ValueError("FlatOptimizer: params and grads must be 1-D views of the same size")
        self.params, self.grads, self.rule, self.kernels = params, grads, rule, kernels
        self.names = None if names is None else frozenset(names)
        self.state: State = rule.init_state(params)

    def __repr__(self) -> str:
        return f"FlatOptimizer({self.rule}, {self.params.size} values)"

    def set_lr(self, lr: float) -> None:
        self.rule = dataclasses.replace(self.rule, lr=lr)

    def step(self, grads: Mapping[str, np.ndarray] | None = None) -> None:
        """One update of the whole slice from the flat gradient buffer, whose views ``grads``
        (the dict a phase returns) must name exactly this optimizer's tensors."""
        if grads is not None and self.names is not None and grads.keys() != self.names:
            raise ValueError(f"FlatOptimizer.step: given gradients for {sorted(grads)[:3]}..., but this "
                             f"optimizer owns {sorted(self.names)[:3]}...; build one optimizer per phase")
        rule, p, g = self.rule, self.params, self.grads
        if isinstance(rule, Adam):
            b1, b2 = rule.betas
            self.state["t"] += 1
            t = self.state["t"]
            self.kernels.adam_flat(p, g, self.state["m"], self.state["v"], rule.lr / (1 - b1 ** t),
                                   b1, b2, rule.eps, 1 / np.sqrt(1 - b2 ** t))
        elif isinstance(rule, Momentum):
            self.kernels.momentum_flat(p, g, self.state["v"], rule.lr, rule.momentum, rule.nesterov)
        else:
            p -= rule.lr * g

    def state_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}/flat/{key}": np.asarray(value) for key, value in self.state.items()}

    def load_state_arrays(self, arrays: Mapping[str, np.ndarray], prefix: str) -> None:
        for key in list(self.state):
            stored = arrays[f"{prefix}/flat/{key}"]
            self.state[key] = int(stored) if key == "t" else np.array(stored, dtype=self.params.dtype)
