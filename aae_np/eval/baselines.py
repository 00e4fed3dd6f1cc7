"""What a clustering AAE must beat: k-means on raw pixels, at the same number of clusters, on the
same split, scored by the same two protocols (``clustering.py``).

scikit-learn is an optional dependency (the ``baselines`` extra), imported only when a baseline
runs; without it ``kmeans_baseline`` raises ``BaselineUnavailable``, whose message says what to
install.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aae_np.eval.clustering import protocols
from aae_np.eval.metrics import as_rows, sq_distances

__all__ = ["BaselineUnavailable", "INSTALL_HINT", "kmeans_baseline"]

INSTALL_HINT = "pip install 'aae_np[baselines]'"


class BaselineUnavailable(ImportError):
    """The library a baseline needs is not installed."""


def _kmeans_class():
    try:
        from sklearn.cluster import KMeans
    except ImportError:
        raise BaselineUnavailable("the k-means baseline needs scikit-learn, which is not installed; "
                                  f"install it with: {INSTALL_HINT}") from None
    return KMeans


def kmeans_baseline(x_fit: np.ndarray, y_fit: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, k: int,
                    x_val: np.ndarray | None = None, y_val: np.ndarray | None = None, seed: int = 0,
                    n_init: int = 10) -> dict[str, Any]:
    """k-means (scikit-learn, ``k`` clusters, ``n_init`` restarts, ``random_state=seed``) fitted on
    the raw pixels ``x_fit`` (N, D), scored like the AAE: ``kmeans_error`` (each cluster takes its
    majority label over ``x_fit``), and with a validation split ``kmeans_error_paper``, the
    paper's protocol's analogue: each cluster takes the label of the validation example
    **nearest its centroid** (the highest score, -||x_n - c_i||^2); also ``kmeans_clusters_used``
    and ``kmeans_cluster_sizes`` on the test set. Raises ``BaselineUnavailable`` without
    scikit-learn.
    """
    x_fit = as_rows(x_fit, "x_fit", "kmeans_baseline")
    if not 1 <= k <= len(x_fit):
        raise ValueError(f"kmeans_baseline: k must lie in [1, {len(x_fit)}] (one image per cluster at least), got {k}")
    km = _kmeans_class()(n_clusters=k, n_init=n_init, random_state=seed).fit(x_fit)
    test_clusters = km.predict(as_rows(x_test, "x_test", "kmeans_baseline")).astype(np.int64)
    val_scores = None if x_val is None else -sq_distances(as_rows(x_val, "x_val", "kmeans_baseline"),
                                                          km.cluster_centers_)
    numbers = protocols(km.labels_.astype(np.int64), y_fit, test_clusters, y_test, k, val_scores, y_val)
    return {f"kmeans_{name.removeprefix('test_')}": value for name, value in numbers.items()}
