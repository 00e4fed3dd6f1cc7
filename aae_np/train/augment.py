"""Random translations of images: the augmented views of the consistency phase.

An image shifted by a pixel or two is still the same digit, so its cluster (or class) should
not change: ``VariantTrainConfig.consistency`` trains q(y|x) of a shifted view towards q(y|x)
of the image itself (``aae_np.models.variants``, the ``consistency`` phase). The shift is data
fed to the encoder, like the input noise, so no gradient flows through it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["random_shifts"]


def random_shifts(x: np.ndarray, max_shift: int, rng: np.random.Generator, side: int = 28) -> np.ndarray:
    """Each row of ``x`` (N, side * side), as a side x side image, moved by its own random whole
    number of pixels in [-max_shift, max_shift] along each axis; pixels moved in are 0."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != side * side:
        raise ValueError(f"random_shifts: x must be (N, {side * side}) images of {side} x {side}, got {x.shape}")
    if not 0 <= max_shift < side:
        raise ValueError(f"random_shifts: max_shift must lie in [0, {side}), got {max_shift}")
    n, m = len(x), max_shift
    shifts = rng.integers(-m, m + 1, size=(n, 2))
    padded = np.zeros((n, side + 2 * m, side + 2 * m), x.dtype)
    padded[:, m:m + side, m:m + side] = x.reshape(n, side, side)
    # the window of row i starts at (m - dy, m - dx): its content moves down by dy and right by dx
    rows = (m - shifts[:, :1]) + np.arange(side)                      # (N, side)
    cols = (m - shifts[:, 1:]) + np.arange(side)
    out = padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
    return out.reshape(n, side * side)
