"""What every model config shares: its checks, its JSON round trip, and the MLP it builds."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

import numpy as np

from aae_np.nn.activations import ACTIVATIONS
from aae_np.nn.batchnorm import BatchNorm
from aae_np.nn.dropout import Dropout
from aae_np.nn.layers import Dense, Sequential

__all__ = ["ModelConfig", "network_problems", "config_to_dict", "config_from_dict", "mlp"]


class ModelConfig:
    """Mixin of the model config dataclasses: the JSON round trip stored in model files."""

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Any:
        return config_from_dict(cls, d)


def network_problems(config: Any, sizes: tuple[str, ...]) -> list[str]:
    """What is wrong with the fields every model config shares (every ``*_hidden`` field of
    layer sizes becomes a tuple)."""
    hidden = [f.name for f in fields(config) if f.name.endswith("_hidden")]
    for name in hidden:
        setattr(config, name, tuple(int(h) for h in getattr(config, name)))
    problems = []
    if config.activation not in ACTIVATIONS:
        problems.append(f"activation must be one of {sorted(ACTIVATIONS)}, got {config.activation!r}")
    if config.recon_loss not in ("bce", "mse"):
        problems.append(f"recon_loss must be 'bce' or 'mse', got {config.recon_loss!r}")
    if config.dtype not in ("float32", "float64"):
        problems.append(f"dtype must be 'float32' or 'float64', got {config.dtype!r}")
    for name in sizes:
        if int(getattr(config, name)) < 1:
            problems.append(f"{name} must be >= 1, got {getattr(config, name)}")
    for name in hidden:
        if any(h < 1 for h in getattr(config, name)):
            problems.append(f"{name}: hidden layer sizes must be >= 1")
    if not isinstance(config.encoder_batchnorm, bool):
        problems.append(f"encoder_batchnorm must be True or False, got {config.encoder_batchnorm!r}")
    if not (isinstance(config.input_dropout, (int, float)) and 0 <= config.input_dropout < 1):
        problems.append(f"input_dropout (the probability of dropping an input pixel) must be in [0, 1), "
                        f"got {config.input_dropout!r}")
    return problems


def config_to_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as JSON-able values (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}


def config_from_dict(cls: type, d: dict[str, Any]) -> Any:
    unknown = set(d) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown keys {sorted(unknown)}")
    return cls(**d)


def mlp(sizes: list[int], activation: str, rng: np.random.Generator, dtype: np.dtype,
        batchnorm: bool = False, input_dropout: float = 0.0) -> Sequential:
    """Dense -> act -> ... -> Dense (linear output). He init before ReLU-family, Glorot otherwise.

    ``batchnorm``: a BatchNorm after every Dense, the output layer's included (the paper's
    encoders normalise their linear z and the logits of q(y|x) too). ``input_dropout``: a
    Dropout of the input first, dropping each element with that probability."""
    layers: list = [Dropout(input_dropout, rng=0)] if input_dropout > 0 else []
    hidden_init = "he" if activation in ("relu", "leaky_relu") else "glorot"
    for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == len(sizes) - 2
        layers.append(Dense(d_in, d_out, rng=rng, dtype=dtype, init="glorot" if last else hidden_init))
        if batchnorm:
            layers.append(BatchNorm(d_out, dtype=dtype))
        if not last:
            layers.append(ACTIVATIONS[activation]())
    return Sequential(*layers)
