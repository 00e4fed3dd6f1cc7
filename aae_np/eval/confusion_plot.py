"""Confusion-matrix figures: a clustering's clusters, or a classifier's predictions, against the
true labels of the test set. Written like ``plots.py`` (Agg, no pyplot, atomic PNG).

Each cell shows its count; its colour is the count's share of its row, so a pure cluster
(or a sure prediction) is one dark cell in a pale row whatever the row's size.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from aae_np.eval.clustering import confusion
from aae_np.eval.plots import save_figure

__all__ = ["confusion_figure", "cluster_confusion", "class_confusion"]


def confusion_figure(counts: np.ndarray, row_names: Sequence[str], path: str | os.PathLike, title: str,
                     row_axis: str, col_axis: str = "true label") -> Path:
    """``counts`` (R, C) as a grid of numbers on row-normalised colour; rows named ``row_names``,
    columns 0..C-1. Empty cells stay blank so the counts that matter stand out."""
    counts = np.asarray(counts)
    if counts.ndim != 2 or len(row_names) != len(counts):
        raise ValueError(f"confusion_figure: counts must be (R, C) with one name per row, got {counts.shape} "
                         f"and {len(row_names)} names")
    n_rows, n_cols = counts.shape
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    left, right, bottom, top = 1.3, 0.6, 0.55, 0.5 + 0.2 * title.count("\n")   # margins, inches
    fig = Figure(figsize=(left + right + 0.6 * n_cols, bottom + top + 0.3 * n_rows))
    width, height = fig.get_figwidth(), fig.get_figheight()
    ax = fig.add_axes((left / width, bottom / height, 1 - (left + right) / width, 1 - (bottom + top) / height))
    ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
    for (r, c), n in np.ndenumerate(counts):
        if n:
            ax.text(c, r, str(n), ha="center", va="center", fontsize=7,
                    color="white" if share[r, c] > 0.55 else "black")
    totals = counts.sum(axis=1)
    for r, n in enumerate(totals):                         # each row's size, right of the grid
        ax.text(n_cols - 0.35, r, f"{n}", ha="left", va="center", fontsize=7, color="0.35")
    ax.text(n_cols - 0.35, -0.75, "size", ha="left", va="center", fontsize=7, color="0.35")
    ax.set_xticks(range(n_cols), [str(c) for c in range(n_cols)], fontsize=8)
    ax.set_yticks(range(n_rows), list(row_names), fontsize=7 if n_rows > 12 else 8)
    ax.set_xlabel(col_axis)
    ax.set_ylabel(row_axis)
    ax.tick_params(length=0)
    fig.suptitle(title, fontsize=9, y=1 - 0.1 / height, va="top")
    return save_figure(fig, path)


def cluster_confusion(test_clusters: np.ndarray, test_labels: np.ndarray, mapping: np.ndarray,
                      path: str | os.PathLike, title: str, n_labels: int = 10) -> Path:
    """Clusters x true labels on the test set, rows ordered by ``mapping`` (k,), each cluster's
    label (-1: none, put last), so a good clustering reads as a staircase of dark cells.
    Row names read ``cluster 3 -> 7``."""
    mapping = np.asarray(mapping)
    counts = confusion(test_clusters, test_labels, len(mapping), n_labels)
    order = np.lexsort((np.arange(len(mapping)), np.where(mapping < 0, n_labels, mapping)))
    names = [f"cluster {i} \u2192 {mapping[i] if mapping[i] >= 0 else '?'}" for i in order]
    return confusion_figure(counts[order], names, path, title, row_axis="cluster \u2192 its label")


def class_confusion(predicted: np.ndarray, labels: np.ndarray, path: str | os.PathLike, title: str,
                    n_classes: int = 10) -> Path:
    """Predicted class x true label on the test set (a classifier's n_classes x n_classes matrix)."""
    counts = confusion(predicted, labels, n_classes, n_classes)
    return confusion_figure(counts, [str(c) for c in range(n_classes)], path, title, row_axis="predicted")
