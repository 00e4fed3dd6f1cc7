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

__all__ = ["Prior", "Gaussian", "MixtureOfGaussians", "SwissRoll", "Uniform", "Categorical", "make_prior"]


class Prior(ABC):
    """Interface: ``dim`` and ``sample(n, rng, dtype) -> (n, dim)``."""

    dim: int

    @abstractmethod
    def sample(self, n: int, rng: np.random.Generator, dtype: Any = np.float32) -> np.ndarray:
        """Draw ``n`` samples as an ``(n, dim)`` array of ``dtype``."""

    #: number of components whose labels ``sample_with_labels`` returns (0: none)
    n_components: int = 0

    def sample_with_labels(self, n: int, rng: np.random.Generator, dtype: Any = np.float32,
                           labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(z (n, dim), labels (n,))``: samples and the component each came from.

        With ``labels`` given, sample i is drawn from component ``labels[i]`` (label-conditioned
        regularisation, paper section 2.3); otherwise components are drawn uniformly.
        """
        raise ValueError(f"{type(self).__name__} has no components, so no labels")

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """``(mean (dim,), covariance (dim, dim))`` of p(z), for Fréchet(q(z), p(z)).

        This default estimates them from 200,000 seeded samples; priors with a closed form
        override it.
        """
        z = self.sample(200_000, np.random.default_rng(12345), np.float64)
        return z.mean(axis=0), np.cov(z, rowvar=False).reshape(self.dim, self.dim)

    def _labels(self, n: int, rng: np.random.Generator, labels: np.ndarray | None) -> np.ndarray:
        if labels is None:
            return rng.integers(0, self.n_components, n)
        labels = np.asarray(labels)
        if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"{type(self).__name__}: labels must be {n} integers, got {labels.dtype} {labels.shape}")
        if n and (labels.min() < 0 or labels.max() >= self.n_components):
            raise ValueError(f"{type(self).__name__}: labels must lie in [0, {self.n_components}), "
                             f"got [{labels.min()}, {labels.max()}]")
        return labels

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


    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(self.dim), self.std ** 2 * np.eye(self.dim)


def _positive(name: str, what: str, value: float) -> float:
    if not value > 0:
        raise ValueError(f"{name} prior: {what} must be > 0, got {value!r}")
    return float(value)


class MixtureOfGaussians(Prior):
    """``k`` 2-D Gaussians with means on a circle of ``radius`` (the paper's figure 4).

    Component i has mean ``radius * (cos a_i, sin a_i)`` with ``a_i = 2 pi i / k`` and a
    covariance elongated along the radius: std ``radial_std`` outwards, ``tangential_std``
    along the circle. Labels are the component indices 0..k-1.
    """

    dim = 2

    def __init__(self, k: int = 10, radius: float = 4.0, radial_std: float = 1.0,
                 tangential_std: float = 0.25) -> None:
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"MixtureOfGaussians prior: k must be a positive integer, got {k!r}")
        self.k = self.n_components = int(k)
        self.radius = _positive("MixtureOfGaussians", "radius", radius)
        self.radial_std = _positive("MixtureOfGaussians", "radial_std", radial_std)
        self.tangential_std = _positive("MixtureOfGaussians", "tangential_std", tangential_std)

    def __repr__(self) -> str:
        return f"MixtureOfGaussians(k={self.k}, radius={self.radius})"

    def config(self) -> dict[str, Any]:
        return {"name": "mixture", "k": self.k, "radius": self.radius, "radial_std": self.radial_std,
                "tangential_std": self.tangential_std}

    def component_means(self) -> np.ndarray:
        angles = 2 * np.pi * np.arange(self.k) / self.k
        return self.radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)

    def sample_with_labels(self, n, rng, dtype=np.float32, labels=None):
        labels = self._labels(n, rng, labels)
        angles = 2 * np.pi * labels / self.k
        radial = self.radius + self.radial_std * rng.standard_normal(n)
        tangential = self.tangential_std * rng.standard_normal(n)
        # rotate (radial, tangential) coordinates of each sample by its component's angle
        x = radial * np.cos(angles) - tangential * np.sin(angles)
        y = radial * np.sin(angles) + tangential * np.cos(angles)
        return np.stack([x, y], axis=1).astype(dtype), labels

    def sample(self, n, rng, dtype=np.float32):
        return self.sample_with_labels(n, rng, dtype)[0]


class SwissRoll(Prior):
    """A 2-D swiss roll: position u ~ U(0, 1) along the spiral, angle 3 pi u + pi, plus noise.

    ``z = scale * a (cos a, sin a) / (4 pi) + noise * N(0, I)`` with ``a = pi + 3 pi u``; the
    label is the segment ``floor(u * k)`` (k = 10 equal segments by default).
    """

    dim = 2

    def __init__(self, k: int = 10, scale: float = 3.0, noise: float = 0.05) -> None:
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"SwissRoll prior: k must be a positive integer, got {k!r}")
        self.k = self.n_components = int(k)
        self.scale = _positive("SwissRoll", "scale", scale)
        if not noise >= 0:
            raise ValueError(f"SwissRoll prior: noise must be >= 0, got {noise!r}")
        self.noise = float(noise)

    def __repr__(self) -> str:
        return f"SwissRoll(k={self.k}, scale={self.scale})"

    def config(self) -> dict[str, Any]:
        return {"name": "swiss_roll", "k": self.k, "scale": self.scale, "noise": self.noise}

    def sample_with_labels(self, n, rng, dtype=np.float32, labels=None):
        labels = self._labels(n, rng, labels)
        u = (labels + rng.random(n)) / self.k                  # uniform within the segment
        a = np.pi + 3 * np.pi * u
        z = self.scale * (a / (4 * np.pi))[:, None] * np.stack([np.cos(a), np.sin(a)], axis=1)
        z += self.noise * rng.standard_normal((n, 2))
        return z.astype(dtype), labels

    def sample(self, n, rng, dtype=np.float32):
        return self.sample_with_labels(n, rng, dtype)[0]


class Uniform(Prior):
    """Uniform on the cube ``[low, high]^dim``."""

    def __init__(self, dim: int, low: float = -1.0, high: float = 1.0) -> None:
        if not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ValueError(f"Uniform prior: dim must be a positive integer, got {dim!r}")
        if not high > low:
            raise ValueError(f"Uniform prior: need low < high, got [{low}, {high}]")
        self.dim, self.low, self.high = int(dim), float(low), float(high)

    def __repr__(self) -> str:
        return f"Uniform(dim={self.dim}, low={self.low}, high={self.high})"

    def sample(self, n, rng, dtype=np.float32):
        return rng.uniform(self.low, self.high, (n, self.dim)).astype(dtype)

    def moments(self):
        width = self.high - self.low
        return np.full(self.dim, (self.low + self.high) / 2), width ** 2 / 12 * np.eye(self.dim)


class Categorical(Prior):
    """One-hot vectors of ``k`` classes, each class with probability 1/k (paper sections 6-7)."""

    def __init__(self, k: int) -> None:
        if not isinstance(k, (int, np.integer)) or k < 2:
            raise ValueError(f"Categorical prior: k must be an integer >= 2, got {k!r}")
        self.k = self.dim = self.n_components = int(k)

    def __repr__(self) -> str:
        return f"Categorical(k={self.k})"

    def config(self) -> dict[str, Any]:
        return {"name": "categorical", "k": self.k}

    def sample_with_labels(self, n, rng, dtype=np.float32, labels=None):
        labels = self._labels(n, rng, labels)
        z = np.zeros((n, self.k), dtype)
        z[np.arange(n), labels] = 1
        return z, labels

    def sample(self, n, rng, dtype=np.float32):
        return self.sample_with_labels(n, rng, dtype)[0]

    def moments(self):
        p = np.full(self.k, 1 / self.k)
        return p, np.diag(p) - np.outer(p, p)


PRIORS = {"gaussian": Gaussian, "mixture": MixtureOfGaussians, "swiss_roll": SwissRoll,
          "uniform": Uniform, "categorical": Categorical}


def make_prior(config: dict[str, Any]) -> Prior:
    """Rebuild a prior from ``Prior.config()``."""
    config = dict(config)
    name = config.pop("name", None)
    if name not in PRIORS:
        raise ValueError(f"unknown prior {name!r}; known: {sorted(PRIORS)}")
    return PRIORS[name](**config)
