"""``NetworkSet``: the plumbing every model of the family shares.

Named ``Sequential`` networks whose parameters share one flat buffer (qualified names
such as ``encoder.0.W``), the backend chosen once (``aae_np.fast.backend``), the phase
table and the one ``phase_grads`` that runs it, input checks, batched inference, and
save/load. A model subclass declares its networks and its ``phases`` table, and writes
one ``_phase_<name>(x, **inputs)`` method per phase: the hand-written gradient.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, replace
from typing import Any, Iterator

import numpy as np

from aae_np.fast.backend import Backend
from aae_np.models.checkpoint import NOT_A_MODEL, read_model_arrays, write_model_file
from aae_np.models.config import spec_shapes
from aae_np.nn.base import NonFiniteError
from aae_np.nn.dropout import Dropout
from aae_np.nn.layers import Sequential
from aae_np.nn.optim import SGD, Adam, Momentum

__all__ = ["Phase", "NetworkSet", "MAX_MODEL_BYTES"]

MAX_MODEL_BYTES = 4 * 2 ** 30       # parameters and state of one model; the paper's largest is ~0.3 GiB


@dataclass(frozen=True)
class Phase:
    """One training phase: the networks whose gradients it produces (and whose optimizer it
    has), the inputs it must be given besides ``x``, and those it uses when given."""

    trains: tuple[str, ...]
    needs: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()


class NetworkSet:
    """Base class of ``AAE`` and ``VariantAAE``. Subclasses set ``config_class``, ``kind`` and
    ``INPUTS`` (every input name a phase may take -> what it is) and call
    ``_setup(nets, backend, phases, encoding)`` from ``__init__``."""

    config_class: type = None            # a dataclass with to_dict/from_dict
    kind = "aae"                         # stored in the file, so a loader knows what to rebuild
    INPUTS: dict[str, str] = {}

    def _setup(self, nets: dict[str, Sequential], backend: str | None, phases: dict[str, Phase],
               encoding: tuple[str, ...]) -> None:
        """``phases``: the model's phase table; ``encoding``: the phases that run the encoder on x,
        which need a ``dropout_mask`` when the encoder starts with a Dropout."""
        self.nets = nets
        for name, net in self.nets.items():
            net._set_name(name)
        first = nets["encoder"].layers[0]
        self._input_dropout = first if isinstance(first, Dropout) else None
        if self._input_dropout is not None:
            phases = {name: replace(spec, needs=spec.needs + ("dropout_mask",)) if name in encoding else spec
                      for name, spec in phases.items()}
        self._phases = phases
        self._flatten()
        self.set_backend(backend)
        self._training: bool | None = None
        self._reuse, self._encoded, self._encoded_for = False, None, None
        self._encoded_mask = self._phase_mask = None
        self.last_stats: dict[str, float] = {}
        self.intermediates: dict[str, np.ndarray] = {}

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(dtype={self.dtype.name},\n"
                + "\n".join(f"  {n}={net!r}" for n, net in self.nets.items()) + ")")

    @property
    def phases(self) -> dict[str, Phase]:
        """The phase table: name -> ``Phase``, in the order a training step runs them."""
        return self._phases

    def _flatten(self) -> None:
        """Move every parameter (and gradient) into one flat buffer, network after network.

        Each layer keeps a view of its slice, so ``encoder.0.W`` is still an
        ``(in, out)`` array; optimizers of the fast path update a network's whole
        contiguous slice in one loop.
        """
        sizes = [p.size for _, p in self.named_params()]
        self.flat_params = np.empty(sum(sizes), self.dtype)
        self.flat_grads = np.zeros(sum(sizes), self.dtype)
        self._offsets: dict[str, tuple[int, int]] = {}
        offset = 0
        for name, net in self.nets.items():
            start = offset
            for layer in net.layers:
                for key, value in list(layer.params.items()):
                    view = self.flat_params[offset:offset + value.size].reshape(value.shape)
                    view[...] = value
                    layer.params[key] = view
                    layer.grads[key] = self.flat_grads[offset:offset + value.size].reshape(value.shape)
                    offset += value.size
            net._collect()
            self._offsets[name] = (start, offset)
        self.params = dict(self.named_params())
        self.grads = {f"{n}.{k}": g for n, net in self.nets.items() for k, g in net.grads.items()}
        # arrays no optimizer trains but a model file holds (BatchNorm's running statistics)
        self.state = {f"{n}.{k}": s for n, net in self.nets.items() for k, s in net.state.items()}
        self._dirty: set[str] = set()        # networks whose gradients may be non-zero
        self._grads_of: dict[tuple[str, ...], dict[str, np.ndarray]] = {}

    def flat_slice(self, *nets: str) -> tuple[np.ndarray, np.ndarray]:
        """(params, grads) views covering the named networks, which must be adjacent."""
        spans = sorted(self._offsets[n] for n in nets)
        if any(a[1] != b[0] for a, b in zip(spans, spans[1:])):
            raise ValueError(f"flat_slice: {nets} are not adjacent in the parameter buffer")
        start, stop = spans[0][0], spans[-1][1]
        return self.flat_params[start:stop], self.flat_grads[start:stop]

    def set_backend(self, backend: str | None) -> None:
        """Choose how the phases compute: "numpy" (the layers), "numba" (fused kernels), or
        None for ``aae_np.fast.backend.default_backend()``."""
        self._backend = Backend(backend)
        self.backend = self._backend.name
        self.run = {name: self._backend.runner(net) for name, net in self.nets.items()}
        self._recon_loss = self._backend.recon_loss(self.config.recon_loss)

    def optimizer(self, phase: str, rule: SGD | Momentum | Adam):
        """The optimizer of ``phase``: ``rule`` over the parameters of the networks it trains."""
        return self._backend.optimizer(self, self.phases[phase].trains, rule)

    # -- parameters ----------------------------------------------------------
    def named_params(self) -> Iterator[tuple[str, np.ndarray]]:
        """``("encoder.0.W", array)``, ... for every network."""
        for name, net in self.nets.items():
            yield from net.named_params(prefix=f"{name}.")

    def params_of(self, *nets: str) -> dict[str, np.ndarray]:
        """The parameters of the named networks, e.g. ``params_of("encoder", "decoder")``."""
        return {k: v for k, v in self.params.items() if k.split(".", 1)[0] in nets}

    def grads_of(self, *nets: str) -> dict[str, np.ndarray]:
        """The gradient buffers of the named networks (views, valid until the next phase).

        The views never change after ``_flatten``, so each selection is made once (a phase
        asks for it at every call)."""
        if nets not in self._grads_of:
            self._grads_of[nets] = {k: g for k, g in self.grads.items() if k.split(".", 1)[0] in nets}
        return dict(self._grads_of[nets])

    def num_params(self) -> int:
        return sum(p.size for p in self.params.values())

    # -- phases ------------------------------------------------------------------------
    def phase_grads(self, phase: str, x: np.ndarray, reuse_encoder: bool = False, zero_others: bool = True,
                    **inputs: Any) -> tuple[float, dict[str, np.ndarray]]:
        """Loss and gradients of one training phase; changes no parameter.

        Returns ``(loss, grads)``: ``grads`` maps the qualified names of the parameters the
        phase trains (``phases[phase].trains``) to the model's gradient buffers (valid until
        the next call); every other gradient buffer is zero. ``inputs`` are keyword arrays
        named in ``INPUTS``; those the phase does not use are ignored. Extra numbers
        (D accuracy...) land in ``self.last_stats``, intermediate gradients in
        ``self.intermediates``.

        ``reuse_encoder``: the caller's promise that the encoder's weights have not changed since
        the previous phase ran it on this same ``x`` (a phased step's generator right after its
        discriminator: only D was updated in between). The phase then takes that forward pass's
        codes and activations instead of computing them again: the same numbers, one encoder
        forward less. It is ignored unless the encoder is a pure function of x and its dropout
        mask (``encoder_is_pure``: no BatchNorm or posterior noise, whose batch statistics or noise
        differ per phase) and x and the mask are the very arrays of that forward; without it a
        phase always recomputes.

        ``zero_others=False``: the caller reads only the returned gradients, so the buffers of the
        networks this phase does not train may keep an earlier phase's values (the trainer: ~1.4 M
        fewer writes per default step; the next call with ``zero_others=True`` zeroes them).
        """
        spec = self.phases.get(phase)
        if spec is None:
            raise ValueError(self._no_phase(phase))
        unknown = sorted(set(inputs) - set(self.INPUTS))
        if unknown:
            raise ValueError(f"{type(self).__name__}.phase_grads: unknown inputs {unknown}; "
                             f"its phases take {sorted(self.INPUTS)}")
        for name in spec.needs:
            if inputs.get(name) is None:
                raise ValueError(f"the {phase} phase needs {name}: {self.INPUTS[name]}")
        x = self._as_input(x, self.config.input_dim, "x")
        self._set_training(True)                     # batch statistics, dropout
        mask = inputs["dropout_mask"] if "dropout_mask" in spec.needs else None
        if mask is not None:
            self._input_dropout.set_mask(self._as_input(mask, self.config.input_dim, "dropout_mask"))
        self._begin_phase(spec.trains, zero_others)
        self.last_stats, self.intermediates = {}, {}
        self._reuse = (reuse_encoder and self.encoder_is_pure() and self._encoded_for is x
                       and self._encoded_mask is mask)
        self._phase_mask = mask
        own = [k for k in spec.needs + spec.uses if k != "dropout_mask"]     # the mask was set above
        loss = getattr(self, f"_phase_{phase}")(x, **{k: inputs.get(k) for k in own})
        return loss, self.grads_of(*spec.trains)

    def encoder_is_pure(self) -> bool:
        """Is enc(x) in a training phase the same function of x and its input dropout mask in every
        phase (no batch statistics, no noise of its own)? Then two phases given the same x and the
        same mask may share one forward pass (``phase_grads(reuse_encoder=True)``), and the trainer
        draws one mask per step for all its phases."""
        return False                        # a model that can reuse the encoder's forward says so

    def _run_encoder(self, x: np.ndarray) -> np.ndarray:
        """enc(x) in a training phase, or the previous phase's, when ``phase_grads`` may reuse it."""
        if not self._reuse:
            self._encoded, self._encoded_for = self.run["encoder"].forward(x), x
            self._encoded_mask = self._phase_mask
        return self._encoded

    def _set_training(self, training: bool) -> None:
        """Training mode in the phases, evaluation mode (running statistics, no dropout) in inference."""
        if self._training is not training:
            for net in self.nets.values():
                net.train(training)
            self._training = training

    def _no_phase(self, phase: str) -> str:
        return f"phase must be one of {tuple(self.phases)}, got {phase!r}"

    def _begin_phase(self, trains: tuple[str, ...], zero_others: bool = True) -> None:
        """Zero the gradients: those of the trained networks through their runners (the fused
        runner's first backward then overwrites instead of adding), the others only if an
        earlier phase wrote them, so no phase ever reports a stale gradient."""
        for name, runner in self.run.items():
            if name in trains:
                runner.zero_grad()
                self._dirty.add(name)
            elif zero_others and name in self._dirty:
                self.nets[name].zero_grad()
                self._dirty.discard(name)

    # -- inference -------------------------------------------------------------
    def _as_input(self, x: np.ndarray, dim: int, what: str) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != dim:
            raise ValueError(f"{type(self).__name__}: {what} must have shape (N, {dim}), got {x.shape}")
        if not np.issubdtype(x.dtype, np.number):
            raise ValueError(f"{type(self).__name__}: {what} must be numeric, got dtype {x.dtype}")
        x = x.astype(self.dtype, copy=False)
        if not np.isfinite(x).all():          # the fused path has no per-layer checks: check here
            raise NonFiniteError(f"{type(self).__name__}: {what} of shape {x.shape} contains NaN or inf")
        return x

    def _batched(self, name: str, x: np.ndarray, batch_size: int) -> np.ndarray:
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self._set_training(False)
        net = self.run[name]
        return np.concatenate([net.forward(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
                              or [np.zeros((0, self._out_dim(name)), self.dtype)])

    def hidden(self, name: str, x: np.ndarray, batch_size: int = 2048) -> np.ndarray:
        """What network ``name``'s last Dense layer reads (its last hidden layer), in evaluation mode."""
        self._set_training(False)
        layers = self.nets[name].layers
        last = max(i for i, layer in enumerate(layers) if hasattr(layer, "out_dim"))
        x = self._as_input(x, next(layer.in_dim for layer in layers if hasattr(layer, "in_dim")), "x")
        out = []
        for i in range(0, len(x), batch_size):
            h = x[i:i + batch_size]
            for layer in layers[:last]:
                h = layer.forward(h)
            out.append(h)
        return np.concatenate(out)

    def _out_dim(self, name: str) -> int:
        """The width of network ``name``'s output: that of its last layer that changes the width
        (a BatchNorm or an activation at the end keeps the one before it)."""
        return next(layer.out_dim for layer in reversed(self.nets[name].layers) if hasattr(layer, "out_dim"))

    def sample(self, n: int, rng: np.random.Generator | int | None = None, labels: Any = None) -> np.ndarray:
        """``n`` images decoded from prior samples, (n, input_dim) in (0, 1); ``rng``: a Generator,
        or a seed (int or None) for a new one, as ``np.random.default_rng`` takes."""
        return self.decode(self.prior.sample(n, np.random.default_rng(rng), self.dtype), labels)

    # -- persistence -------------------------------------------------------------
    def save(self, path: str | os.PathLike, extra: dict[str, np.ndarray] | None = None):
        """Write config (JSON) and parameters to one ``.npz``, atomically (temp file + rename)."""
        return write_model_file(path, self.kind, self.config.to_dict(), self.params, self.state, extra)

    @classmethod
    def load(cls, path: str | os.PathLike, backend: str | None = None) -> "NetworkSet":
        """Rebuild a model saved by ``save`` (no pickle is ever loaded)."""
        model, _ = cls.load_with_extras(path, backend)
        return model

    @classmethod
    def load_with_extras(cls, path: str | os.PathLike,
                         backend: str | None = None) -> tuple["NetworkSet", dict[str, np.ndarray]]:
        arrays = read_model_arrays(path)
        kind = str(arrays.pop("__kind__", "aae"))
        if kind != cls.kind:
            raise ValueError(f"{path} holds a {kind!r} model, not {cls.kind!r}; load it with aae_np.load_model")
        return cls.from_arrays(path, arrays, backend)

    @classmethod
    def from_arrays(cls, path, arrays: dict[str, np.ndarray],
                    backend: str | None = None) -> tuple["NetworkSet", dict[str, np.ndarray]]:
        """The model in ``arrays`` (read from ``path``) and the arrays that are not its own."""
        try:
            config = cls.config_class.from_dict(json.loads(str(arrays.pop("__config__"))))
        except (ValueError, KeyError, TypeError, json.JSONDecodeError) as err:
            raise ValueError(f"{path} is not a readable aae_np model file ({err}); {NOT_A_MODEL}") from err
        expected = cls.expected_arrays(config, path)          # checked before anything is allocated
        for key, shape in expected.items():
            stored = arrays.get(key)
            if stored is None or stored.shape != shape or not np.issubdtype(stored.dtype, np.floating):
                what = "missing" if stored is None else f"{stored.dtype} of shape {stored.shape}"
                raise ValueError(f"{path}: {key} is {what}, but its config implies floats of shape {shape}; "
                                 f"the file is damaged or was edited ({NOT_A_MODEL})")
        model = cls(config, backend=backend)
        for key in expected:
            {**model.params, **model.state}[key.split("/", 1)[1]][...] = arrays.pop(key)
        return model, arrays

    @classmethod
    def expected_arrays(cls, config: Any, path: Any = "the config") -> dict[str, tuple[int, ...]]:
        """``{"param/NAME": shape, "state/NAME": shape}`` of the model ``config`` describes, computed
        without building it; a ValueError if it would exceed ``MAX_MODEL_BYTES``."""
        out: dict[str, tuple[int, ...]] = {}
        for name, spec in cls.network_specs(config).items():
            params, state = spec_shapes(spec)
            out.update({f"param/{name}.{k}": s for k, s in params.items()})
            out.update({f"state/{name}.{k}": s for k, s in state.items()})
        size = sum(math.prod(s) for s in out.values()) * np.dtype(config.dtype).itemsize
        if size > MAX_MODEL_BYTES:
            raise ValueError(f"{path}: its config describes networks of {size / 2 ** 30:.1f} GiB, more than the "
                             f"{MAX_MODEL_BYTES / 2 ** 30:.0f} GiB this library builds; check the *_hidden sizes")
        return out
