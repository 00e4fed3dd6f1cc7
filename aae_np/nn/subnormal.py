"""Subnormal numbers, flushed to zero where arrays pass between layers.

A float below the smallest normal number (``np.finfo(dtype).tiny``: 1.2e-38 in float32,
2.2e-308 in float64) but not zero is *subnormal*. Many x86 CPUs (Intel's in particular) compute
with subnormal operands through slow microcode: a 128x784 @ 784x256 float32 product measured
0.41 ms with normal inputs and 60 ms with subnormal ones on an Intel Xeon. A training run makes
them when a network saturates: a discriminator that is sure of itself returns loss gradients
``sigmoid(s) - t`` of about ``exp(-|s|)``, and every product of the backward pass through it then
reads subnormals. No loss can see a value of 1e-38, so we set such values to 0.

Where: every array that enters a network, leaves a layer (forward) or leaves a layer's backward
is flushed, so no product ``x W``, ``x^T delta``, ``delta W^T`` reads a subnormal
(``Sequential`` here; the fused kernels of ``aae_np.fast`` flush at the same places and give the
same numbers). The flush needs no CPU flag, so it works on every CPU and in every BLAS thread.
Weights are not flushed: an optimizer step lands a weight in the subnormal range only by a
chance of about 1e-38 / lr. Gradients dW are products' outputs, read by the optimizer only.

Turn it off with ``set_flush(False)`` (or ``AAE_NP_FLUSH_SUBNORMALS=0`` in the environment) to
see IEEE arithmetic; ``flushing(False)`` does it for a ``with`` block.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import numpy as np

__all__ = ["flush_enabled", "set_flush", "flushing", "floor", "flush", "flushed", "count_subnormal"]

ENV_VAR = "AAE_NP_FLUSH_SUBNORMALS"
_enabled = os.environ.get(ENV_VAR, "1").strip() not in ("0", "false", "no", "off")


def flush_enabled() -> bool:
    """Are subnormals flushed to zero between layers?"""
    return _enabled


def set_flush(enabled: bool) -> bool:
    """Switch the flush on or off; returns the previous setting."""
    global _enabled
    previous, _enabled = _enabled, bool(enabled)
    return previous


@contextmanager
def flushing(enabled: bool) -> Iterator[None]:
    """``with flushing(False): ...`` runs the block with the flush switched as asked."""
    previous = set_flush(enabled)
    try:
        yield
    finally:
        set_flush(previous)


def floor(dtype: np.dtype | type) -> float:
    """Magnitudes below this become 0: the smallest normal number of ``dtype``, or 0 (no flush)."""
    return float(np.finfo(dtype).tiny) if _enabled else 0.0


def flush(a: np.ndarray) -> np.ndarray:
    """Set the subnormal entries of ``a`` to 0, in place; returns ``a``. NaN and inf stay."""
    if _enabled and isinstance(a, np.ndarray) and a.dtype.kind == "f":
        a[np.abs(a) < np.finfo(a.dtype).tiny] = 0
    return a


def flushed(a: np.ndarray) -> np.ndarray:
    """``a`` itself if it holds no subnormal (or is no float array: the layer's own check
    speaks to that), else a flushed copy (``a`` is never changed)."""
    if _enabled and isinstance(a, np.ndarray) and a.dtype.kind == "f" and count_subnormal(a):
        return flush(a.copy())
    return a


def count_subnormal(a: np.ndarray) -> int:
    """How many entries of ``a`` are subnormal (nonzero and below the smallest normal)."""
    if a.dtype.kind != "f":
        return 0
    small = np.abs(a) < np.finfo(a.dtype).tiny
    return int(np.count_nonzero(small & (a != 0)))
