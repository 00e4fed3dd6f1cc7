"""Random shifts, turns, bends and mirror images: the augmented views of the consistency phase.

An image shifted by a pixel or two is still the same digit, so its cluster (or class) should
not change: ``VariantTrainConfig.consistency`` trains q(y|x) of a shifted view towards q(y|x)
of the image itself (``aae_np.models.variants``, the ``consistency`` phase). The shift is data
fed to the encoder, like the input noise, so no gradient flows through it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["elastic_field", "mix_pairs", "random_affine", "random_flips", "random_shifts"]


def random_shifts(x: np.ndarray, max_shift: int, rng: np.random.Generator, side: int = 28) -> np.ndarray:
    """Each row of ``x`` (N, side * side), as a side x side image, moved by its own random whole
    number of pixels in [-max_shift, max_shift] along each axis; pixels moved in are 0."""
    x = np.asarray(x)
    _check_images(x, side, "random_shifts")
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


def random_affine(x: np.ndarray, rng: np.random.Generator, max_shift: float = 2.0, max_degrees: float = 15.0,
                  max_scale: float = 0.1, side: int = 28, elastic: float = 0.0, sigma: float = 4.0) -> np.ndarray:
    """Each row of ``x`` (N, side * side) turned by its own angle in [-max_degrees, max_degrees],
    scaled by a factor in [1 - max_scale, 1 + max_scale] about the centre and moved by up to
    ``max_shift`` pixels along each axis; read back by bilinear interpolation, 0 outside.

    ``elastic`` > 0 also bends each image (Simard et al., 2003): every pixel reads from a place
    moved further by ``elastic`` times a field of uniform [-1, 1] noise smoothed by a Gaussian of
    ``sigma`` pixels (``elastic_field``), so nearby pixels move together."""
    x = np.asarray(x)
    _check_images(x, side, "random_affine")
    n, c = len(x), (side - 1) / 2
    angle = np.deg2rad(rng.uniform(-max_degrees, max_degrees, n))
    scale = rng.uniform(1 - max_scale, 1 + max_scale, n)
    shift = rng.uniform(-max_shift, max_shift, (n, 2))
    v, u = np.mgrid[0:side, 0:side].reshape(2, -1) - c                # output pixel, centred (row, col)
    # where each output pixel comes from: the inverse map, (rotate by -angle) / scale after un-shifting
    cos, sin = (np.cos(angle) / scale)[:, None], (np.sin(angle) / scale)[:, None]
    du, dv = u - shift[:, 1:], v - shift[:, :1]
    src_u, src_v = cos * du + sin * dv + c, -sin * du + cos * dv + c   # (N, side * side)
    if elastic > 0:
        src_u = src_u + elastic_field(n, side, sigma, rng) * elastic
        src_v = src_v + elastic_field(n, side, sigma, rng) * elastic
    u0, v0 = np.floor(src_u).astype(np.int64), np.floor(src_v).astype(np.int64)
    fu, fv = src_u - u0, src_v - v0
    padded = np.zeros((n, side + 2, side + 2), x.dtype)                # a ring of 0s: reads outside are 0
    padded[:, 1:-1, 1:-1] = x.reshape(n, side, side)
    rows = np.arange(n)[:, None]
    out = np.zeros(src_u.shape, np.float64)
    for dv_, wv in ((0, 1 - fv), (1, fv)):
        for du_, wu in ((0, 1 - fu), (1, fu)):
            r = np.clip(v0 + dv_ + 1, 0, side + 1)
            q = np.clip(u0 + du_ + 1, 0, side + 1)
            out += wv * wu * padded[rows, r, q]
    return out.astype(x.dtype)


def random_flips(x: np.ndarray, p: float, rng: np.random.Generator, side: int = 28) -> np.ndarray:
    """Each row of ``x`` (N, side * side), as a side x side image, mirrored left to right with
    probability ``p`` (a shirt mirrored is still a shirt; a mirrored 3 is no digit)."""
    x = np.asarray(x)
    _check_images(x, side, "random_flips")
    if not 0 <= p <= 1:
        raise ValueError(f"random_flips: p must lie in [0, 1], got {p}")
    flip = rng.random(len(x)) < p
    out = x.copy()
    out[flip] = x[flip].reshape(-1, side, side)[:, :, ::-1].reshape(-1, side * side)
    return out


def mix_pairs(view: np.ndarray, targets: dict[str, np.ndarray], a: float, rng: np.random.Generator) -> np.ndarray:
    """Interpolation consistency (Verma et al., 2019): row i of the views becomes
    lam_i view_i + (1 - lam_i) view_p(i) for a random pairing p and lam_i ~ Beta(a, a); each of
    ``targets``' ``y_target`` (N, K) and ``y_weight`` (N,), where present, is replaced in place by
    the same mixture of the two rows'."""
    n = len(view)
    lam = rng.beta(a, a, n).astype(view.dtype)[:, None]
    pair = rng.permutation(n)
    for key in ("y_target", "y_weight"):
        if key in targets:
            value, weight = targets[key], lam if targets[key].ndim == 2 else lam[:, 0]
            targets[key] = (weight * value + (1 - weight) * value[pair]).astype(value.dtype)
    return lam * view + (1 - lam) * view[pair]


def _check_images(x: np.ndarray, side: int, who: str) -> None:
    if x.ndim != 2 or x.shape[1] != side * side:
        raise ValueError(f"{who}: x must be (N, {side * side}) images of {side} x {side}, got {x.shape}")


def elastic_field(n: int, side: int, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """(n, side * side): uniform [-1, 1] noise on each side x side grid smoothed by a Gaussian of
    ``sigma`` pixels (0 beyond the border), one grid per row: ``G @ noise @ G.T`` with G the
    side x side matrix of the Gaussian's weights."""
    if sigma <= 0:
        raise ValueError(f"elastic_field: sigma must be > 0, got {sigma}")
    offsets = np.arange(side)[:, None] - np.arange(side)[None, :]
    g = np.exp(-0.5 * (offsets / sigma) ** 2) / (np.sqrt(2 * np.pi) * sigma)
    noise = rng.uniform(-1, 1, (n, side, side))
    return (g @ noise @ g.T).reshape(n, side * side)
