"""The update rules of ``aae_np.nn.optim`` over one contiguous buffer, by a fused kernel.

A model keeps every parameter (and gradient) in one flat buffer, network after network
(``NetworkSet.flat_slice``). A phase trains whole networks that sit side by side there, so
its optimizer can update them all in one loop over a slice: one kernel call per step
instead of one small update per tensor. Results match ``nn.optim.Optimizer`` with the same
rule to float rounding (``tests/test_optim.py``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from types import SimpleNamespace

import numpy as np

from aae_np.fast.openblas import tensor_layout
from aae_np.nn.optim import SGD, Adam, Momentum, State, StateFile

__all__ = ["FlatOptimizer"]


class FlatOptimizer(StateFile):
    """One rule over the flat views ``params``/``grads`` (1-D, the same size).

    ``named``: the tensors those views cover, name -> array, in buffer order (a model's
    ``params_of(...)``). When given, ``step`` checks that the gradients a phase hands it are
    exactly those tensors, so the slice and the phase cannot silently disagree, and checkpoints
    store the state per tensor (``nn.optim.StateFile``), the format the per-tensor optimizer
    reads too. Without it the buffer is one tensor named "flat".
    """

    def __init__(self, params: np.ndarray, grads: np.ndarray, rule: SGD | Momentum | Adam,
                 kernels: SimpleNamespace, named: Mapping[str, np.ndarray] | None = None) -> None:
        if params.ndim != 1 or params.shape != grads.shape:
            raise ValueError("FlatOptimizer: params and grads must be 1-D views of the same size")
        self.params, self.grads, self.rule, self.kernels = params, grads, rule, kernels
        self.names = None if named is None else frozenset(named)
        self.shapes = {"flat": params.shape} if named is None else {n: a.shape for n, a in named.items()}
        if sum(math.prod(s) for s in self.shapes.values()) != params.size:
            raise ValueError("FlatOptimizer: the named tensors do not cover the flat buffer")
        self.state: State = rule.init_state(params)
        # where each tensor lies, for a kernel set that splits an update by tensor (the pool's)
        self.tensors = tensor_layout(self.shapes.values()) if named is not None else None
        self.by_tensor = self.tensors is not None and getattr(kernels, "by_tensor", False)

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
                                   b1, b2, rule.eps, 1 / np.sqrt(1 - b2 ** t), *self._tensors())
        elif isinstance(rule, Momentum):
            self.kernels.momentum_flat(p, g, self.state["v"], rule.lr, rule.momentum, rule.nesterov,
                                       *self._tensors())
        else:
            p -= rule.lr * g

    def _tensors(self) -> tuple:
        return (self.tensors,) if self.by_tensor else ()

    # -- checkpointing (the format is StateFile's) ----------------------------
    def views(self, key: str) -> dict[str, np.ndarray]:
        out, start = {}, 0
        for name, shape in self.shapes.items():
            size = math.prod(shape)
            out[name] = self.state[key][start:start + size].reshape(shape)
            start += size
        return out

    @property
    def step_count(self) -> int:
        return self.state.get("t", 0)

    @step_count.setter
    def step_count(self, t: int) -> None:
        self.state["t"] = t
