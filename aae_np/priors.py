"""Priors p(z): the distributions the adversarial game pushes q(z) towards.

A prior has a ``dim`` and ``sample(n, rng)`` returning ``(n, dim)`` samples.
Priors whose samples belong to a component (a mixture's mode, a segment of a
swiss roll) may also implement ``sample_with_labels`` for label-conditioned
regularisation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

__all__ = ["Prior", "Gaussian", "make_prior"]


class Prior(ABC):
    """Interface: ``dim`` and ``sample(n, rng, dtype) -> (n, dim)``."""

    dim: int

    @abstractmethod
    def sample(self, n: int, rng: np.random.Generator, dtype: Any = np.float32) -> np.ndarray:
        """Draw ``n`` samples as an ``(n, dim)`` array of ``dtype``."""

    def sample_with_labels(self, n: int, rng: np.random.Generator,
                           dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError(f"{type(self).__name__} has no component labels")

    def config(self) -> dict[str, Any]:
        """JSON-able description, enough for ``make_prior`` to rebuild it."""
        return {"name": type(self).__name__.lower(), **vars(self)}


class Gaussian(Prior):
    """Isotropic Gaussian ``N(0, std^2 I)`` in ``dim`` dimensions."""

    def __init__(self, dim: int, std: float = 1.0) -> None:
        if not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ValueError(f"Gaussian prior: dim must be a positive integer, got {dim!r}")
        if not std > 0:
            raise ValueError(f"Gaussian prior: std must be > 0, got {std!r}")
        self.dim = int(dim)
        self.std = float(std)

    def __repr__(self) -> str:
        return f"Gaussian(dim={self.dim}, std={self.std})"

    def sample(self, n: int, rng: np.random.Generator, dtype: Any = np.float32) -> np.ndarray:
        # drawn directly in float32 or float64 (no float64 draw + cast: the training step's
        # prior sample is on the hot path); the two dtypes give different streams
        dtype = np.dtype(dtype)
        draw_dtype = dtype if dtype in (np.float32, np.float64) else np.float64
        z = rng.standard_normal((n, self.dim), dtype=draw_dtype)
        if self.std != 1.0:
            z *= self.std
        return z.astype(dtype, copy=False)


PRIORS = {"gaussian": Gaussian}


def make_prior(config: dict[str, Any]) -> Prior:
    """Rebuild a prior from ``Prior.config()``."""
    config = dict(config)
    name = config.pop("name", None)
    if name not in PRIORS:
        raise ValueError(f"unknown prior {name!r}; known: {sorted(PRIORS)}")
    return PRIORS[name](**config)
