"""Figures of the latent space: codes coloured by label (in their first two principal
components when z has more than two dimensions) and the decoded 2-D manifold."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from aae_np.eval.plots import as_image_stack, grey_limits, save_figure, show_grid, tile_images

__all__ = ["PCA", "principal_components", "latent_scatter", "latent_manifold"]


class PCA(NamedTuple):
    """Result of ``principal_components``.

    ``scores`` (N, k): the centred data projected on the components;
    ``components`` (k, d): unit directions, largest variance first;
    ``explained_variance_ratio`` (k,): each component's share of the total variance;
    ``mean`` (d,): the mean that was subtracted.
    """

    scores: np.ndarray
    components: np.ndarray
    explained_variance_ratio: np.ndarray
    mean: np.ndarray


def principal_components(z: np.ndarray, k: int = 2) -> PCA:
    """The first ``k`` principal components of the rows of ``z`` (N, d), via the SVD.

    ``Z_c = Z - mean = U S V^T``; the components are the first k rows of ``V^T`` and the
    scores ``Z_c V_k = U_k S_k``; component j explains ``S_j^2 / sum S^2`` of the variance.
    Each component's sign is fixed so that its largest-magnitude entry is positive (an SVD
    may return either sign), which makes plots reproducible.
    """
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"principal_components: z must be (N, d), got shape {z.shape}")
    n, d = z.shape
    if not 1 <= k <= min(n, d):
        raise ValueError(f"principal_components: k must be between 1 and min(N, d) = {min(n, d)}, "
                         f"got {k}")
    if not np.isfinite(z).all():
        raise ValueError("principal_components: z contains NaN or inf")
    mean = z.mean(axis=0)
    zc = z - mean
    _, s, vt = np.linalg.svd(zc, full_matrices=False)
    comps = vt[:k]
    signs = np.sign(comps[np.arange(k), np.abs(comps).argmax(axis=1)])
    comps = comps * signs[:, None]
    total = float(np.sum(s * s))
    ratio = (s[:k] ** 2) / total if total > 0 else np.zeros(k)
    return PCA(zc @ comps.T, comps, ratio, mean)


def latent_scatter(z: np.ndarray, labels: np.ndarray | None, path: str | os.PathLike,
                   title: str | None = "Latent codes", marks: np.ndarray | None = None, axis: str = "z") -> Path:
    """Scatter of codes ``z`` (N, d) coloured by digit ``labels`` (N,) (or one colour if None).

    d == 2 is drawn directly (axes z1, z2, or ``axis``1, ``axis``2); d > 2 is drawn in its first
    two principal components (axes "PC1 (x% of variance)", "PC2 ..."). Equal axis scales, so a
    round N(0, I) looks round. The legend lists the labels present (0-9 for MNIST). ``marks``
    (M, d): points drawn on top as numbered black crosses (e.g. cluster heads), in the same axes.
    """
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] < 2:
        raise ValueError(f"latent_scatter: z must be (N, d) with d >= 2, got shape {z.shape}")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (len(z),):
            raise ValueError(f"latent_scatter: labels must have shape ({len(z)},), got {labels.shape}")
    if marks is not None and (np.ndim(marks) != 2 or np.shape(marks)[1] != z.shape[1]):
        raise ValueError(f"latent_scatter: marks must be (M, {z.shape[1]}), got shape {np.shape(marks)}")
    if z.shape[1] == 2:
        xy, xlabel, ylabel = z, f"{axis}1", f"{axis}2"
        marks_xy = None if marks is None else np.asarray(marks, np.float64)
    else:
        pca = principal_components(z, k=2)
        r = 100 * pca.explained_variance_ratio
        xy = pca.scores
        marks_xy = None if marks is None else (np.asarray(marks, np.float64) - pca.mean) @ pca.components.T
        xlabel, ylabel = f"PC1 ({r[0]:.1f}% of variance)", f"PC2 ({r[1]:.1f}% of variance)"
        title = f"{title} (first 2 principal components of {z.shape[1]}-d z)" if title else title
    fig = Figure(figsize=(6.5, 5.5))
    ax = fig.add_subplot()
    if labels is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=3, alpha=0.5, linewidths=0)
    else:
        tab10 = colormaps["tab10"]
        integer = np.issubdtype(labels.dtype, np.integer)
        for i, value in enumerate(np.unique(labels)):
            sel = labels == value
            colour = tab10(int(value) % 10 if integer else i % 10)   # digit d always gets colour d
            ax.scatter(xy[sel, 0], xy[sel, 1], s=3, alpha=0.6, linewidths=0, color=colour,
                       label=str(value))
        ax.legend(title="label", markerscale=4, fontsize="small", loc="center left",
                  bbox_to_anchor=(1.01, 0.5), frameon=False)
    if marks_xy is not None:
        ax.scatter(marks_xy[:, 0], marks_xy[:, 1], s=40, marker="x", color="black", linewidths=1.5)
        for i, (u, v) in enumerate(marks_xy):
            ax.annotate(str(i), (u, v), textcoords="offset points", xytext=(4, 4), fontsize="x-small")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_aspect("equal", adjustable="datalim")
    if title:
        ax.set_title(title, fontsize="medium")
    fig.tight_layout()
    return save_figure(fig, path)


def latent_manifold(decode_fn: Callable[[np.ndarray], np.ndarray], path: str | os.PathLike,
                    n: int = 20, span: float = 3.0, *, latent_dim: int | None = None,
                    title: str | None = "Decoded latent grid") -> Path:
    """Decode an ``n x n`` grid of 2-D codes and tile the images; only for a 2-D latent space.

    ``decode_fn``: (M, 2) -> (M, H*W), e.g. ``model.decode``. The grid is
    ``z1, z2 in linspace(-span, span, n)``, z1 growing to the right and z2 growing upwards (as
    in ``latent_scatter``), and the axes are in z units. With a prior N(0, I), span 3 covers
    +-3 standard deviations.

    ``latent_dim``: the dimension of z; if omitted it is read from ``decode_fn.__self__.config``
    when ``decode_fn`` is a bound ``AAE.decode``. Anything but 2 is a ValueError, and so is a
    ``decode_fn`` that refuses (M, 2) input.
    """
    if latent_dim is None:
        latent_dim = getattr(getattr(getattr(decode_fn, "__self__", None), "config", None),
                             "latent_dim", None)
    if latent_dim is not None and latent_dim != 2:
        raise ValueError(f"latent_manifold: the decoded grid exists only for a 2-D latent space, "
                         f"but z is {latent_dim}-D; use latent_scatter (PCA) or samples instead")
    if n < 2 or not span > 0:
        raise ValueError(f"latent_manifold: need n >= 2 and span > 0, got n={n}, span={span}")
    ticks = np.linspace(-span, span, n)
    z1, z2 = np.meshgrid(ticks, ticks[::-1])                 # row 0 is the top: largest z2
    grid_z = np.stack([z1.ravel(), z2.ravel()], axis=1)       # (n*n, 2), row by row
    try:
        decoded = np.asarray(decode_fn(grid_z))
    except ValueError as e:
        raise ValueError(f"latent_manifold: decode_fn rejected a grid of 2-D codes ({e}); the "
                         "manifold plot exists only for a 2-D latent space") from e
    if decoded.ndim < 2 or decoded.shape[0] != n * n:
        raise ValueError(f"latent_manifold: decode_fn returned shape {decoded.shape} for "
                         f"{n * n} codes; expected ({n * n}, H*W)")
    imgs = as_image_stack(decoded, "latent_manifold")
    grid = tile_images(imgs, nrow=n, pad=0)
    fig = Figure(figsize=(7.0, 7.4 if title else 7.0))
    ax = fig.add_subplot()
    half = span / (n - 1)                                     # half the spacing of the codes
    show_grid(ax, grid, grey_limits(imgs),
               extent=(-span - half, span + half, -span - half, span + half))
    ax.set_xlabel("z1")
    ax.set_ylabel("z2")
    if title:
        ax.set_title(title, fontsize="medium")
    fig.tight_layout()
    return save_figure(fig, path)
