"""Splitting the clusters a clustering AAE merged into the clusters it left empty (not the paper's).

A 30-cluster model trained on 9,000 MNIST images leaves 8-10 clusters empty and merges some
digits: one cluster holds fours and nines, another fives and threes. Nothing in training splits
them afterwards: the consistency phase keeps a mixed cluster mixed, since a four's neighbours sit
in the same cluster as the nines. With ``VariantTrainConfig.split_at = E``, at epoch E:

1. each cluster holding at least ``least`` training images (by q(y|x)) is cut in two along the
   graph of its images' ``k`` nearest neighbours in the encoder's last hidden layer
   (``NetworkSet.hidden``): the second eigenvector of the normalised graph Laplacian
   I - D^-1/2 A D^-1/2, cut at its median (a spectral bisection, Shi & Malik 2000);
2. the cuts are ranked by how well the style z tells their two halves apart (``separability``:
   a logistic regression's 3-fold held-out accuracy). A cut the style explains is two ways of
   writing one digit; a cut it cannot explain is two contents, which is what y should hold. No
   label is read;
3. each empty cluster takes one half of one of the least explained cuts.

The new assignment then replaces q(y|x) as the consistency phase's target for the rest of the
run, one-hot, with the row's own view (no neighbour's: the cut runs through neighbourhoods), and the
adversarial phases rest: with D_y still training, q(y|x) hardly moved towards the new clusters
(``VariantTrainer``; docs/variants.md, "Issue 27, tenth session"). With no cluster empty nothing is
cut, and the targets become the clusters as they are. Measured offline first on saved models
(``benchmarks/split_clusters.py``).
"""

from __future__ import annotations

import numpy as np

from aae_np.train.neighbours import nearest_neighbours

__all__ = ["bisect", "cluster_cuts", "fit_logistic", "saved_clusters", "separability", "split_clusters",
           "split_model_clusters"]


def bisect(features: np.ndarray, k: int) -> tuple[float, np.ndarray]:
    """(lambda_2, 0/1 per row): the spectral bisection of the rows' symmetrised k-nearest-neighbour
    graph (cosine), cut at the median of the normalised Laplacian's second eigenvector; its
    eigenvalue lambda_2 is small when the graph falls clearly in two."""
    n = len(features)
    table = nearest_neighbours(features, k)
    a = np.zeros((n, n))
    a[np.repeat(np.arange(n), k), table.ravel()] = 1.0
    a = np.maximum(a, a.T)
    scale = 1 / np.sqrt(a.sum(axis=1))                 # every row has k >= 1 neighbours: degree > 0
    laplacian = np.eye(n) - scale[:, None] * a * scale[None, :]
    values, vectors = np.linalg.eigh(laplacian)        # eigenvalues ascending
    second = vectors[:, 1]
    return float(values[1]), (second > np.median(second)).astype(np.int64)


def fit_logistic(x: np.ndarray, t: np.ndarray, l2: float = 1.0, steps: int = 25) -> np.ndarray:
    """Weights w (the last one a bias) minimising sum_i log(1 + exp(-s_i x_i.w)) + l2 / 2 |w without
    the bias|^2, s_i = 2 t_i - 1, by Newton's method; ``x`` gets a column of ones appended."""
    x = np.hstack([np.asarray(x, np.float64), np.ones((len(x), 1))])
    t = np.asarray(t, np.float64)
    penalty = l2 * np.diag(np.r_[np.ones(x.shape[1] - 1), 0.0])
    w = np.zeros(x.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-np.clip(x @ w, -30, 30)))
        grad = x.T @ (p - t) + penalty @ w
        hess = (x * (p * (1 - p))[:, None]).T @ x + penalty + 1e-9 * np.eye(len(w))
        w -= np.linalg.solve(hess, grad)
    return w


def separability(z: np.ndarray, side: np.ndarray, folds: int = 3) -> float:
    """How well z predicts ``side`` (0/1): the held-out accuracy of ``fit_logistic`` over
    ``folds`` folds (row i in fold i mod folds)."""
    z, side = np.asarray(z, np.float64), np.asarray(side)
    hits = 0
    for fold in range(folds):
        test = np.arange(len(z)) % folds == fold
        w = fit_logistic(z[~test], side[~test])
        hits += int(((z[test] @ w[:-1] + w[-1] > 0) == (side[test] > 0.5)).sum())
    return hits / len(z)


def cluster_cuts(clusters: np.ndarray, hidden: np.ndarray, z: np.ndarray, k: int = 10,
                 least: int = 60) -> dict[int, dict]:
    """Per cluster holding at least ``least`` rows (and more than k): its ``rows``, the ``side`` of
    each (``bisect`` of their ``hidden`` features), the cut's ``lambda2`` and its ``separability`` by z."""
    cuts = {}
    for c in np.unique(clusters):
        rows = np.flatnonzero(clusters == c)
        if len(rows) >= max(least, k + 1):
            lam, side = bisect(hidden[rows], k)
            cuts[int(c)] = dict(rows=rows, side=side, lambda2=lam, separability=separability(z[rows], side))
    return cuts


def split_clusters(clusters: np.ndarray, hidden: np.ndarray, z: np.ndarray, n_clusters: int,
                   k: int = 10, least: int = 60) -> np.ndarray:
    """A new cluster per row: one half of each of the ``cluster_cuts`` ``separability`` rates lowest
    moves to an empty cluster, as many cuts as there are empty clusters (ties: the lower cluster first)."""
    clusters = np.asarray(clusters, np.int64)
    empty = [c for c in range(n_clusters) if not (clusters == c).any()]
    out = clusters.copy()
    if not empty:
        return out
    cuts = cluster_cuts(clusters, hidden, z, k, least)
    for c, free in zip(sorted(cuts, key=lambda c: (cuts[c]["separability"], c)), empty):
        out[cuts[c]["rows"][cuts[c]["side"] == 1]] = free
    return out


def split_model_clusters(model, x: np.ndarray, k: int = 10, least: int = 60) -> np.ndarray:
    """``split_clusters`` of a clustering model's assignment of ``x`` (by q(y|x)), read from its
    encoder in evaluation mode."""
    return split_clusters(model.classify(x).argmax(axis=1), model.hidden("encoder", x), model.encode(x),
                          model.config.n_classes, k, least)


def saved_clusters(values: object, n: int, n_clusters: int) -> np.ndarray:
    """A split's clusters from a checkpoint's trainer state: n of them, each in [0, n_clusters);
    ValueError if they are malformed."""
    out = np.asarray(values)
    if out.shape != (n,) or out.dtype.kind != "i" or not ((out >= 0) & (out < n_clusters)).all():
        raise ValueError("the trainer state's split clusters are malformed")
    return out.astype(np.int64)
