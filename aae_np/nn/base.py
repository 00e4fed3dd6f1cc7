"""The ``Layer`` base class: the contract every layer in ``aae_np`` follows.

``forward(x)``
    takes ``(N, D_in)``, keeps in named attributes exactly what ``backward``
    needs, returns ``(N, D_out)``.
``backward(dout)``
    takes dL/dy ``(N, D_out)``, returns dL/dx ``(N, D_in)`` and **adds**
    parameter gradients into ``self.grads`` (so gradients from several
    backward passes accumulate until ``zero_grad()``).
``params`` / ``grads``
    dicts with identical keys (``"W"``, ``"b"`` for Dense, empty for
    activations).
``state``
    arrays a layer keeps that no optimizer trains but a model file must hold
    (BatchNorm's running mean and variance); empty for most layers.
``training``
    ``train()`` / ``eval()`` switch it: BatchNorm normalises with the batch's
    statistics in training mode and with its running ones in evaluation mode;
    Dropout drops only in training mode.
"""

from __future__ import annotations

import copy
from typing import Iterator

import numpy as np

__all__ = ["Layer", "NonFiniteError"]


class NonFiniteError(ValueError):
    """An array that must be finite holds NaN or inf (bad data, or training diverged)."""


class Layer:
    """Base class: holds ``params``/``grads`` and the shared bookkeeping."""

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.state: dict[str, np.ndarray] = {}
        self.training = True
        self.name: str = type(self).__name__

    # -- the contract -----------------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def zero_grad(self) -> None:
        """Set every accumulated gradient to zero (in place)."""
        for g in self.grads.values():
            g.fill(0)

    def named_params(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        """Yield ``(qualified_name, array)`` for every parameter."""
        for key, value in self.params.items():
            yield prefix + key, value

    def named_state(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        """Yield ``(qualified_name, array)`` for every state array (see ``state``)."""
        for key, value in self.state.items():
            yield prefix + key, value

    def train(self, mode: bool = True) -> "Layer":
        """Training mode (``mode=True``) or evaluation mode; returns the layer."""
        self.training = bool(mode)
        return self

    def eval(self) -> "Layer":
        return self.train(False)

    def named_grads(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        """Yield ``(qualified_name, gradient)`` in the same order as ``named_params``."""
        for key, value in self.grads.items():
            yield prefix + key, value

    def astype(self, dtype: np.dtype | type) -> "Layer":
        """Return a copy whose parameters (and zeroed gradients) have ``dtype``."""
        new = copy.deepcopy(self)
        new._cast(np.dtype(dtype))
        return new

    def _cast(self, dtype: np.dtype) -> None:
        for key in self.params:
            self.params[key] = self.params[key].astype(dtype)
            self.grads[key] = np.zeros_like(self.params[key])
        for key in self.state:
            self.state[key] = self.state[key].astype(dtype)
        if hasattr(self, "dtype"):
            self.dtype = dtype

    def _set_name(self, name: str) -> None:
        self.name = name

    # -- input validation shared by every layer ---------------------------
    def _check(self, x: np.ndarray, what: str, dim: int | None = None,
               rows: int | None = None, dtype: np.dtype | None = None) -> None:
        """Raise a ValueError that names this layer and the shapes involved."""
        where = f"{self.name}.{'forward' if what == 'x' else 'backward'}"
        if not isinstance(x, np.ndarray):
            raise ValueError(f"{where}: {what} must be a numpy array, got {type(x).__name__}")
        if x.ndim != 2:
            raise ValueError(
                f"{where}: {what} must be 2-D (N, D) with one example per row, got shape {x.shape}")
        if dim is not None and x.shape[1] != dim:
            raise ValueError(
                f"{where}: {what} has shape {x.shape}, expected (N, {dim}) "
                f"(the layer is {self!r})")
        if rows is not None and x.shape[0] != rows:
            raise ValueError(
                f"{where}: {what} has {x.shape[0]} rows but the last forward had {rows}")
        if not np.issubdtype(x.dtype, np.floating):
            raise ValueError(f"{where}: {what} must be floating point, got dtype {x.dtype}")
        if dtype is not None and x.dtype != dtype:
            raise ValueError(
                f"{where}: {what} has dtype {x.dtype} but the layer's parameters are {dtype}; "
                f"cast the input with .astype(np.{dtype}) or build the layer with dtype=np.{x.dtype}")
        if not np.isfinite(x).all():
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0])
            raise NonFiniteError(
                f"{where}: {what} of shape {x.shape} contains NaN or inf (first at {bad})")

    def _need_forward(self, attr: str) -> np.ndarray:
        value = getattr(self, attr, None)
        if value is None:
            raise ValueError(f"{self.name}.backward called before forward")
        return value
