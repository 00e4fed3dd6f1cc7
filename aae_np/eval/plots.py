"""Figures of a trained AAE, written as PNG files without a display.

Every function takes arrays and an output ``path``, writes one PNG (atomically, creating the
folder), and returns the path as a ``Path``. Figures are built with ``matplotlib.figure.Figure``
and drawn by the Agg canvas directly: pyplot is never imported, so no backend is selected
globally, no window can open, and no figure stays registered anywhere once the function returns
(there is nothing to ``plt.close``; the figure is garbage once it goes out of scope).

Images are rows of pixels, ``(N, H*W)`` with a square ``H = W`` (MNIST: ``(N, 784)``), or
``(N, H, W)``; values in [0, 1] are shown on a fixed grey scale (0 black, 1 white), any other
range is stretched to its own min and max. The latent-space figures are in ``latent_plots.py``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from aae_np.files import atomic_write

__all__ = ["as_image_stack", "tile_images", "image_grid", "reconstructions", "samples", "style_grid",
           "cluster_grid", "loss_curves", "HISTORY_KEYS", "save_figure", "grey_limits", "show_grid"]

DPI = 100
GRID_PAD = 2                      # pixels between tiled images
# Panels of loss_curves, in this order; other keys of a history follow in their own order.
HISTORY_KEYS = ("recon_loss", "test_mse", "d_loss", "g_loss", "d_accuracy")
_TITLES = {"recon_loss": "reconstruction loss (train)", "test_mse": "reconstruction MSE (test)",
           "d_loss": "discriminator loss", "g_loss": "generator loss",
           "d_accuracy": "discriminator accuracy"}


# ----------------------------------------------------------------------------- helpers

def save_figure(fig: Figure, path: str | os.PathLike) -> Path:
    """Render ``fig`` with Agg and write it to ``path`` as PNG, atomically."""
    FigureCanvasAgg(fig)                      # attaches the Agg canvas to the figure
    return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=DPI))


def as_image_stack(images: np.ndarray, where: str = "as_image_stack") -> np.ndarray:
    """``(N, H*W)`` with a square number of pixels, or ``(N, H, W)`` -> ``(N, H, W)`` float64."""
    a = np.asarray(images, dtype=np.float64)
    if a.ndim == 2:
        side = math.isqrt(a.shape[1])
        if side * side != a.shape[1]:
            raise ValueError(f"{where}: images of shape {a.shape} are rows of {a.shape[1]} pixels, "
                             "which is not a square number; pass (N, H, W) instead")
        a = a.reshape(len(a), side, side)
    if a.ndim != 3:
        raise ValueError(f"{where}: images must be (N, H*W) or (N, H, W), got shape {a.shape}")
    if len(a) == 0:
        raise ValueError(f"{where}: no images to draw")
    if not np.isfinite(a).all():
        raise ValueError(f"{where}: images contain NaN or inf")
    return a


def tile_images(images: np.ndarray, nrow: int = 10, pad: int = GRID_PAD,
                pad_value: float = 1.0) -> np.ndarray:
    """Tile ``images`` (N, H, W) into one (R*(H+pad)+pad, C*(W+pad)+pad) array, row by row.

    ``nrow`` is the number of images per grid row (as torchvision's ``make_grid``), so
    ``C = min(nrow, N)`` columns and ``R = ceil(N / nrow)`` rows; unused cells and the ``pad``
    pixels between images are ``pad_value``.
    """
    imgs = as_image_stack(images, "tile_images")
    if nrow < 1 or pad < 0:
        raise ValueError(f"tile_images: nrow must be >= 1 and pad >= 0, got {nrow}, {pad}")
    n, h, w = imgs.shape
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad), pad_value, dtype=np.float64)
    for i, img in enumerate(imgs):
        r, c = divmod(i, cols)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        out[top:top + h, left:left + w] = img
    return out


def grey_limits(a: np.ndarray) -> tuple[float, float]:
    """Fixed [0, 1] for pixel intensities; otherwise the data's own range."""
    lo, hi = float(a.min()), float(a.max())
    if lo >= 0.0 and hi <= 1.0:
        return 0.0, 1.0
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


def _grid_figure(grid: np.ndarray, image_side: int, title: str | None) -> tuple[Figure, float]:
    """A figure sized so one image pixel is about 2 screen pixels (at least 3 inches wide).

    Returns the figure and the height (inches) reserved at the top for the title.
    """
    px = max(2, 56 // max(image_side, 1))                  # screen pixels per image pixel
    title_h = 0.45 if title else 0.0
    width = max(grid.shape[1] * px / DPI, 3.0)
    height = grid.shape[0] * px / DPI + title_h
    fig = Figure(figsize=(width, height))
    if title:
        fig.suptitle(title, y=1.0 - 0.08 / height, va="top")
    return fig, title_h


def show_grid(ax: Axes, grid: np.ndarray, limits: tuple[float, float], **kwargs) -> None:
    ax.imshow(grid, cmap="gray", vmin=limits[0], vmax=limits[1], interpolation="nearest", **kwargs)


# ----------------------------------------------------------------------------- image figures

def image_grid(images: np.ndarray, path: str | os.PathLike, nrow: int = 10,
               title: str | None = None) -> Path:
    """A grid of ``images`` (N, H*W) or (N, H, W), ``nrow`` images per row, with an optional title."""
    imgs = as_image_stack(images, "image_grid")
    grid = tile_images(imgs, nrow=nrow)
    fig, title_h = _grid_figure(grid, imgs.shape[1], title)
    height = fig.get_figheight()
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0 - title_h / height))
    show_grid(ax, grid, grey_limits(imgs))
    ax.set_axis_off()
    return save_figure(fig, path)


def reconstructions(x: np.ndarray, x_hat: np.ndarray, path: str | os.PathLike, n: int = 10,
                    title: str | None = "Reconstructions") -> Path:
    """The first ``n`` inputs ``x`` in the top row and their reconstructions ``x_hat`` below.

    ``x``, ``x_hat``: (N, H*W) or (N, H, W) with the same shape; rows correspond.
    """
    a, b = as_image_stack(x, "reconstructions"), as_image_stack(x_hat, "reconstructions")
    if a.shape != b.shape:
        raise ValueError(f"reconstructions: x has shape {np.shape(x)} but x_hat has shape "
                         f"{np.shape(x_hat)}; row i of x_hat must be the reconstruction of row i of x")
    if n < 1:
        raise ValueError(f"reconstructions: n must be >= 1, got {n}")
    k = min(n, len(a))
    grid = tile_images(np.concatenate([a[:k], b[:k]]), nrow=k)
    label_w = 1.1                                            # inches for the row labels
    fig, title_h = _grid_figure(grid, a.shape[1], title)
    width, height = fig.get_figwidth() + label_w, fig.get_figheight()
    fig.set_figwidth(width)
    ax = fig.add_axes((label_w / width, 0.0, 1.0 - label_w / width, 1.0 - title_h / height))
    show_grid(ax, grid, grey_limits(np.concatenate([a[:k], b[:k]])))
    centre = GRID_PAD + a.shape[1] / 2                       # of the first row, in grid pixels
    ax.set_yticks([centre, centre + a.shape[1] + GRID_PAD], ["input", "output"])
    ax.set_xticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.tick_params(length=0)
    return save_figure(fig, path)


def samples(images: np.ndarray, path: str | os.PathLike, nrow: int = 10,
            title: str | None = "Decoded prior samples") -> Path:
    """A grid of decoded prior samples ``images`` (N, H*W), e.g. ``model.decode(model.prior.sample(100))``."""
    return image_grid(images, path, nrow=nrow, title=title)


def style_grid(decode_fn: Callable[[np.ndarray, np.ndarray], np.ndarray], styles: np.ndarray, k: int,
               path: str | os.PathLike, title: str | None = "Rows: one style z; columns: class 0..k-1") -> Path:
    """The paper's style/content figure: row r decodes style ``styles[r]`` with each of the ``k``
    classes, ``decode_fn(z (N, s), labels (N,)) -> images``."""
    styles = np.asarray(styles)
    if styles.ndim != 2 or k < 1:
        raise ValueError(f"style_grid: styles must be (R, s) and k >= 1, got {styles.shape}, k={k}")
    images = decode_fn(np.repeat(styles, k, axis=0), np.tile(np.arange(k), len(styles)))
    return image_grid(images, path, nrow=k, title=title)


def cluster_grid(heads: np.ndarray, members: Sequence[np.ndarray], path: str | os.PathLike,
                 per_cluster: int = 10,
                 title: str | None = "Each row: the cluster's head, then test images assigned to it") -> Path:
    """The paper's clustering figure: row c is ``heads[c]`` (the decoded cluster) followed by up
    to ``per_cluster`` images of ``members[c]``; missing members stay blank."""
    heads = as_image_stack(heads, "cluster_grid")
    if len(members) != len(heads):
        raise ValueError(f"cluster_grid: {len(heads)} heads but {len(members)} member lists")
    rows = []
    for head, imgs in zip(heads, members):
        row = np.ones((per_cluster + 1, *head.shape))
        row[0] = head
        imgs = np.asarray(imgs, dtype=np.float64).reshape(-1, *head.shape)[:per_cluster]
        row[1:1 + len(imgs)] = imgs
        rows.append(row)
    return image_grid(np.concatenate(rows), path, nrow=per_cluster + 1, title=title)


# ----------------------------------------------------------------------------- training history

def _numeric_series(values: object) -> np.ndarray | None:
    """A history entry as a float array (None -> NaN), or None if it is not a list of numbers."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        return None
    try:
        arr = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return arr if arr.ndim == 1 and arr.size and np.isfinite(arr).any() else None


def loss_curves(history: Mapping[str, Sequence[float]], path: str | os.PathLike,
                title: str | None = "Training history") -> Path:
    """One panel per numeric series of ``history`` against the epoch (1, 2, ...).

    ``history`` maps names to per-epoch lists, e.g. ``{"recon_loss": [...], "d_loss": [...],
    "g_loss": [...], "d_accuracy": [...], "test_mse": [...]}``. Panels follow ``HISTORY_KEYS``,
    then any other key with numbers; empty or non-numeric entries are skipped and ``None``
    values leave a gap. ``d_accuracy`` is drawn on [0, 1] with a dashed line at 0.5, where the
    discriminator can no longer tell codes from prior samples. ValueError if nothing is numeric.
    """
    if not isinstance(history, Mapping):
        raise ValueError(f"loss_curves: history must be a dict of per-epoch lists, "
                         f"got {type(history).__name__}")
    order = [k for k in HISTORY_KEYS if k in history] + [k for k in history if k not in HISTORY_KEYS]
    series = {k: s for k in order if (s := _numeric_series(history[k])) is not None}
    if not series:
        raise ValueError(f"loss_curves: nothing to plot; history has keys {sorted(map(str, history))} "
                         "but none holds a non-empty list of numbers")
    cols = min(3, len(series))
    rows = math.ceil(len(series) / cols)
    fig = Figure(figsize=(4.2 * cols, 3.0 * rows + (0.4 if title else 0.0)))
    for i, (key, values) in enumerate(series.items()):
        ax = fig.add_subplot(rows, cols, i + 1)
        epochs = np.arange(1, len(values) + 1)
        ax.plot(epochs, values, marker="o" if len(values) <= 30 else None, markersize=3)
        if key == "d_accuracy":
            ax.axhline(0.5, linestyle="--", color="grey", linewidth=1)
            ax.set_ylim(-0.02, 1.02)
        ax.set_title(_TITLES.get(key, str(key)), fontsize="medium")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)
