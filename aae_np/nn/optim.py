"""Optimizers: update rules as pure functions, and a thin loop over named parameters.

An update rule is an object holding its hyper-parameters with two methods:

``init_state(param) -> state``
    the rule's per-parameter memory (a dict of arrays and counters).
``update(param, grad, state) -> (new_param, new_state)``
    one step; **pure**: it reads its inputs and returns new arrays.

``Optimizer`` owns the per-name state and writes each new parameter back
into the model's array in place, so the model keeps its references. All
conventions follow PyTorch's ``torch.optim`` so runs can be compared step
for step.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np

__all__ = ["SGD", "Momentum", "Adam", "Optimizer", "StateFile", "momentum_update", "adam_update"]

State = dict[str, Any]


@dataclass(frozen=True)
class SGD:
    """``p <- p - lr * g``."""

    lr: float = 1e-2

    def init_state(self, param: np.ndarray) -> State:
        return {}

    def update(self, param: np.ndarray, grad: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        return param - self.lr * grad, state


@dataclass(frozen=True)
class Momentum:
    """Heavy-ball momentum (PyTorch form): ``v <- mu v + g``; ``p <- p - lr v``.

    Nesterov: ``p <- p - lr (g + mu v)`` with the updated ``v``.
    """

    lr: float = 1e-2
    momentum: float = 0.9
    nesterov: bool = False

    def init_state(self, param: np.ndarray) -> State:
        return {"v": np.zeros_like(param)}

    def update(self, param: np.ndarray, grad: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        new, v = momentum_update(param, grad, state["v"], self.lr, self.momentum, self.nesterov)
        return new, {"v": v}


@dataclass(frozen=True)
class Adam:
    """Adam (Kingma & Ba, 2015) with bias correction, as ``torch.optim.Adam``.

    ``m <- b1 m + (1 - b1) g``;  ``v <- b2 v + (1 - b2) g^2``;
    ``p <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)``.
    """

    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8

    def init_state(self, param: np.ndarray) -> State:
        return {"t": 0, "m": np.zeros_like(param), "v": np.zeros_like(param)}

    def update(self, param: np.ndarray, grad: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        b1, b2 = self.betas
        t = state["t"] + 1
        new, m, v = adam_update(param, grad, state["m"], state["v"], self.lr / (1 - b1 ** t), b1, b2,
                                self.eps, 1 / np.sqrt(1 - b2 ** t))
        return new, {"t": t, "m": m, "v": v}


def momentum_update(param: np.ndarray, grad: np.ndarray, vel: np.ndarray, lr: float, mu: float,
                    nesterov: bool) -> tuple[np.ndarray, np.ndarray]:
    """One heavy-ball step, pure: returns ``(new_param, new_vel)``."""
    v = mu * vel + grad                                # v = mu v + g
    step = grad + mu * v if nesterov else v
    return param - lr * step, v                        # p = p - lr v   (Nesterov: lr (g + mu v))


def adam_update(param: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray, step_size: float,
                b1: float, b2: float, eps: float, v_scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One Adam step, pure: returns ``(new_param, new_m, new_v)``.

    The bias corrections come in as two numbers: ``step_size = lr / (1 - b1^t)`` and
    ``v_scale = 1 / sqrt(1 - b2^t)`` (the fused kernel ``aae_np.fast.kernels.adam_flat``
    takes the same arguments)."""
    # Each line allocates one new array and then works in place on it: the inputs are
    # never written (the rule stays pure) and no chain of temporaries is built.
    m_new = m * b1
    m_new += (1 - b1) * grad                           # m = b1 m + (1 - b1) g
    v_new = grad * grad
    v_new *= 1 - b2
    v_new += b2 * v                                    # v = b2 v + (1 - b2) g^2
    denom = np.sqrt(v_new)
    denom *= v_scale                                   # sqrt(v_hat) = sqrt(v / (1 - b2^t))
    denom += eps
    step = np.divide(m_new, denom)
    step *= step_size                                  # lr * m_hat / (sqrt(v_hat) + eps)
    return param - step, m_new, v_new


class StateFile:
    """One on-disk format for an optimizer's state, whatever holds it in memory.

    ``{prefix}/t``: the step count (Adam); ``{prefix}/{name}/{key}``: each parameter's moment
    (``m``, ``v``), shaped like the parameter. The per-tensor ``Optimizer`` and the flat
    ``aae_np.fast.FlatOptimizer`` both read and write it, so a checkpoint resumes on either
    backend. Older files (one ``t`` per tensor, or one flat ``{prefix}/flat/{key}`` buffer in
    the order of ``shapes``) still load. Every stored array is checked against the parameter
    it belongs to before it is used. Subclasses provide ``rule``, ``shapes`` (name -> shape, in
    flat-buffer order), ``views(key)`` (name -> writable array) and ``step_count``.
    """

    rule: Any
    shapes: dict[str, tuple[int, ...]]
    step_count: int

    def views(self, key: str) -> dict[str, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _keys(self) -> tuple[str, ...]:
        return ("m", "v") if isinstance(self.rule, Adam) else ("v",) if isinstance(self.rule, Momentum) else ()

    def state_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """``{prefix/t, prefix/name/key: array}`` for saving in an .npz."""
        out = {f"{prefix}/t": np.asarray(self.step_count)} if isinstance(self.rule, Adam) else {}
        for key in self._keys():
            out.update({f"{prefix}/{name}/{key}": np.array(view) for name, view in self.views(key).items()})
        return out

    def load_state_arrays(self, arrays: Mapping[str, np.ndarray], prefix: str) -> None:
        """Check every stored array against its parameter, then load them (ValueError if any is off)."""
        loaded = {key: {name: self._stored(arrays, prefix, key, name) for name in self.shapes} for key in self._keys()}
        if isinstance(self.rule, Adam):
            first = next(iter(self.shapes))
            t = next((arrays[k] for k in (f"{prefix}/t", f"{prefix}/flat/t", f"{prefix}/{first}/t") if k in arrays), None)
            if t is None or np.ndim(t) != 0 or not np.issubdtype(np.asarray(t).dtype, np.integer) or int(t) < 0:
                raise ValueError(f"optimizer state {prefix}/t must be a step count (an integer >= 0), got {t!r}")
            self.step_count = int(t)
        for key, per_name in loaded.items():
            for name, view in self.views(key).items():
                view[...] = per_name[name]

    def _stored(self, arrays: Mapping[str, np.ndarray], prefix: str, key: str, name: str) -> np.ndarray:
        shape = self.shapes[name]
        stored = arrays.get(f"{prefix}/{name}/{key}")
        if stored is None and f"{prefix}/flat/{key}" in arrays:       # the older flat format
            sizes = {n: math.prod(s) for n, s in self.shapes.items()}
            flat, total = np.asarray(arrays[f"{prefix}/flat/{key}"]), sum(sizes.values())
            if flat.shape != (total,):
                raise ValueError(f"optimizer state {prefix}/flat/{key} has shape {flat.shape}, expected ({total},)")
            names = list(sizes)
            start = sum(sizes[n] for n in names[:names.index(name)])
            stored = flat[start:start + sizes[name]].reshape(shape)
        if stored is None:
            raise ValueError(f"optimizer state {prefix}/{name}/{key} is missing")
        stored = np.asarray(stored)
        if stored.shape != shape or not np.issubdtype(stored.dtype, np.floating):
            raise ValueError(f"optimizer state {prefix}/{name}/{key} is {stored.dtype} of shape {stored.shape}; "
                             f"expected floats of shape {shape}, the shape of {name}")
        return stored


class Optimizer(StateFile):
    """Apply one update rule to a set of named parameters.

    ``named_params``: a mapping or iterable of ``(name, array)``, e.g.
    ``model.named_params()`` filtered to the parameters this optimizer owns.
    ``step(grads)`` reads ``grads[name]`` for every owned name.
    """

    def __init__(self, named_params: Mapping[str, np.ndarray] | Iterable[tuple[str, np.ndarray]],
                 rule: SGD | Momentum | Adam) -> None:
        items = named_params.items() if isinstance(named_params, Mapping) else named_params
        self.params: dict[str, np.ndarray] = dict(items)
        if not self.params:
            raise ValueError("Optimizer: no parameters given")
        self.rule = rule
        self.state: dict[str, State] = {name: rule.init_state(p) for name, p in self.params.items()}

    def __repr__(self) -> str:
        return f"Optimizer({self.rule}, {len(self.params)} tensors)"

    def set_lr(self, lr: float) -> None:
        """Change the rule's learning rate (keeps every per-name state, e.g. Adam's moments)."""
        self.rule = dataclasses.replace(self.rule, lr=lr)

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        missing = [name for name in self.params if name not in grads]
        if missing:
            raise ValueError(f"Optimizer.step: no gradient for {missing[:3]}; "
                             f"got gradients for {list(grads)[:3]}...")
        for name, param in self.params.items():
            new, self.state[name] = self.rule.update(param, grads[name], self.state[name])
            param[...] = new               # in place: the model's array is the same object

    # -- checkpointing (the format is StateFile's) ----------------------------
    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: p.shape for name, p in self.params.items()}

    def views(self, key: str) -> dict[str, np.ndarray]:
        return {name: state[key] for name, state in self.state.items()}

    @property
    def step_count(self) -> int:
        return next(iter(self.state.values())).get("t", 0)

    @step_count.setter
    def step_count(self, t: int) -> None:
        for state in self.state.values():
            state["t"] = t
