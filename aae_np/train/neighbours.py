"""Each training image's nearest neighbours: more views for the consistency phase.

The consistency phase pulls q(y|x) of an augmented view towards q(y|x) of the image itself. A turn
or a shift only teaches what the augmentation can reach; two different fours written alike are
not one shift apart. Their pixels are close, though: on the 9,000 MNIST training images of the
clustering preset, the nearest other image by cosine similarity shows the same digit 95.8 % of the
time and the five nearest 93.4 % (docs/variants.md). With ``VariantTrainConfig.neighbours = k``
the view of a row is drawn from the row itself and its k nearest neighbours, so a cluster is pulled
to hold an image's neighbours too, as SCAN's neighbour loss does (Van Gansbeke et al., 2020).
With ``neighbours_at = E`` they are found again at epoch E, in the encoder's last hidden layer
(``NetworkSet.hidden``), which a trained encoder makes closer to the digit than the pixels are
(the five nearest: 95.6 % against 93.4 % with the 30-cluster preset's seed 0 model).
"""

from __future__ import annotations

import numpy as np

__all__ = ["nearest_neighbours", "neighbour_rows", "saved_table"]


def nearest_neighbours(x: np.ndarray, k: int, chunk: int = 1024) -> np.ndarray:
    """(N, k) indices of each row's k most cosine-similar other rows of ``x`` (N, D), nearest first.

    Computed ``chunk`` rows at a time (a chunk x N block of similarities), so 60,000 images fit.
    """
    x = np.asarray(x)
    if x.ndim != 2 or not 1 <= k < len(x):
        raise ValueError(f"nearest_neighbours: x must be (N, D) with N > k >= 1; got shape {x.shape} and k = {k}")
    f = x.astype(np.float32)
    norm = np.linalg.norm(f, axis=1, keepdims=True)
    f /= np.where(norm > 0, norm, 1)
    out = np.empty((len(f), k), np.int64)
    for start in range(0, len(f), chunk):
        sim = f[start:start + chunk] @ f.T
        rows = np.arange(len(sim))
        sim[rows, start + rows] = -np.inf                  # not its own neighbour
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sim, top, axis=1), axis=1, kind="stable")
        out[start:start + chunk] = np.take_along_axis(top, order, axis=1)
    return out


def neighbour_rows(rows: np.ndarray, table: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each of ``rows``, itself or one of its ``table`` neighbours, each with probability 1 / (k + 1)."""
    pick = rng.integers(0, table.shape[1] + 1, len(rows))
    return np.where(pick == 0, rows, table[rows, np.maximum(pick - 1, 0)])


def saved_table(rows: object, like: np.ndarray | None) -> np.ndarray:
    """A neighbour table from a checkpoint's trainer state, checked against the trainer's own
    (``like``: its shape, rows in range); ValueError if it is malformed."""
    table = np.asarray(rows)
    if (like is None or table.shape != like.shape or table.dtype.kind != "i"
            or not ((table >= 0) & (table < len(like))).all()):
        raise ValueError("the trainer state's neighbours are malformed")
    return table.astype(np.int64)
