"""What every model config shares: its checks, its JSON round trip, and the MLP it builds."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, NamedTuple

import numpy as np

from aae_np.nn.activations import ACTIVATIONS
from aae_np.nn.batchnorm import BatchNorm
from aae_np.nn.dropout import Dropout
from aae_np.nn.layers import Dense, Sequential

__all__ = ["ModelConfig", "NetSpec", "network_problems", "config_to_dict", "config_from_dict", "mlp", "spec_shapes"]


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


class NetSpec(NamedTuple):
    """One network of a model: layer sizes ``[in, hidden..., out]`` and its options."""

    sizes: list[int]
    activation: str
    batchnorm: bool = False
    input_dropout: float = 0.0


def _plan(spec: NetSpec) -> list[tuple[str, int, int]]:
    """The layers of ``mlp(spec)`` in order, as (kind, in, out)."""
    layers = [("dropout", 0, 0)] if spec.input_dropout > 0 else []
    pairs = list(zip(spec.sizes[:-1], spec.sizes[1:]))
    for i, (d_in, d_out) in enumerate(pairs):
        layers.append(("dense", d_in, d_out))
        if spec.batchnorm:
            layers.append(("batchnorm", d_out, d_out))
        if i < len(pairs) - 1:
            layers.append(("activation", d_out, d_out))
    return layers


def mlp(spec: NetSpec, rng: np.random.Generator, dtype: np.dtype) -> Sequential:
    """Dense -> act -> ... -> Dense (linear output). He init before ReLU-family, Glorot otherwise.

    ``batchnorm``: a BatchNorm after every Dense, the output layer's included (the paper's
    encoders normalise their linear z and the logits of q(y|x) too). ``input_dropout``: a
    Dropout of the input first, dropping each element with that probability."""
    hidden_init = "he" if spec.activation in ("relu", "leaky_relu") else "glorot"
    last = len(spec.sizes) - 2
    layers: list = []
    for kind, d_in, d_out in _plan(spec):
        if kind == "dropout":
            layers.append(Dropout(spec.input_dropout, rng=0))
        elif kind == "dense":
            n_dense = sum(isinstance(layer, Dense) for layer in layers)
            layers.append(Dense(d_in, d_out, rng=rng, dtype=dtype, init="glorot" if n_dense == last else hidden_init))
        elif kind == "batchnorm":
            layers.append(BatchNorm(d_out, dtype=dtype))
        else:
            layers.append(ACTIVATIONS[spec.activation]())
    return Sequential(*layers)


def spec_shapes(spec: NetSpec) -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]]:
    """(parameter shapes, state shapes) of ``mlp(spec)``, keyed as its ``params``/``state``
    (``"0.W"``...), computed without building it."""
    params, state = {}, {}
    for i, (kind, d_in, d_out) in enumerate(_plan(spec)):
        if kind == "dense":
            params.update({f"{i}.W": (d_in, d_out), f"{i}.b": (d_out,)})
        elif kind == "batchnorm":
            params.update({f"{i}.gamma": (d_out,), f"{i}.beta": (d_out,)})
            state.update({f"{i}.running_mean": (d_out,), f"{i}.running_var": (d_out,)})
    return params, state
