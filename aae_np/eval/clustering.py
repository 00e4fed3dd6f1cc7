"""Clustering error under the two protocols, and the held-out validation split they need.

A clustering model assigns each image to one of ``k`` clusters; to score it as a classifier each
cluster must be given a digit label, and there are two ways to choose it:

* **majority vote** (``cluster_mapping``): each cluster takes the most common label among the
  training images it holds (the images the model was trained on);
* **the paper's protocol** (Makhzani et al. 2015, section 7; ``validation_mapping``): each cluster
  i takes the label of the one validation example x_n with the highest score for it,
  ``n* = argmax_n q(y_i | x_n)``. A handful of labelled examples names every cluster.

Either mapping then classifies the test set by its clusters (``mapped_error``). ``protocols``
returns both errors, how many clusters the test set uses and their sizes, as a JSON-able dict,
and the **Hungarian accuracy** the deep-clustering literature reports (DEC, ClusterGAN, N2D):
the share of test images right under the best one-to-one pairing of clusters with labels, found
on the test set itself (``hungarian_accuracy``; with more clusters than labels the unpaired
clusters count as wrong).
The same functions score k-means (``baselines.py``), whose score for cluster i is minus the
squared distance to its centroid.

Shapes: ``clusters``/``labels`` are (N,) integers, ``scores`` is (N_val, k). The validation split
is the last ``n`` training images (``split_validation``), so a saved run can rebuild it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aae_np.eval.metrics import as_labels, as_rows, classification_error

__all__ = ["split_validation", "cluster_mapping", "validation_mapping", "mapped_error", "clustering_error",
           "cluster_sizes", "confusion", "hungarian_accuracy", "protocols"]


def split_validation(x: np.ndarray, y: np.ndarray | None, n: int
                     ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """``(x_fit, y_fit, x_val, y_val)``: the last ``n`` rows held out (``n = 0``: none, and
    ``x_val = y_val = None``). Deterministic, so a run's split is rebuilt from its ``n`` alone."""
    if not 0 <= n < len(x):
        raise ValueError(f"validation_images must lie in [0, {len(x)}) for {len(x):,} training images, got {n}")
    if n == 0:
        return x, y, None, None
    return x[:-n], None if y is None else y[:-n], x[-n:], None if y is None else y[-n:]


def _check_clusters(clusters: np.ndarray, k: int, name: str, where: str, n: int | None = None) -> np.ndarray:
    clusters = as_labels(clusters, name, where, n)
    if len(clusters) and (clusters.min() < 0 or clusters.max() >= k):
        raise ValueError(f"{where}: {name} must lie in [0, {k})")
    return clusters


def cluster_mapping(clusters: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Majority vote: (k,) the most common label of each of ``k`` clusters over the
    (``clusters``, ``labels``) pairs, typically the training images.

    A cluster that no example falls into maps to -1 (every example later put there counts
    as an error). Ties go to the smallest label.
    """
    labels = as_labels(labels, "labels", "cluster_mapping")
    clusters = _check_clusters(clusters, k, "clusters", "cluster_mapping", len(labels))
    if len(labels) and labels.min() < 0:
        raise ValueError("cluster_mapping: labels must be >= 0")
    counts = np.zeros((k, int(labels.max(initial=0)) + 1), np.int64)
    np.add.at(counts, (clusters, labels), 1)
    return np.where(counts.sum(axis=1) > 0, counts.argmax(axis=1), -1)


def validation_mapping(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The paper's protocol: (k,) for each cluster i the label of ``argmax_n scores[n, i]``.

    ``scores`` (N_val, k): how strongly each validation example belongs to each cluster,
    q(y_i | x_n) for the AAE (minus the squared distance to centroid i for k-means, so the
    nearest validation example names the cluster); ``labels`` (N_val,) their true labels.
    Every cluster gets a label, also one that no validation example has as its own (argmax)
    cluster: the example that scores it highest names it, as the paper's rule says.
    Ties go to the first example.
    """
    scores = as_rows(scores, "scores", "validation_mapping")
    labels = as_labels(labels, "labels", "validation_mapping", len(scores))
    return labels[np.argmax(scores, axis=0)]


def mapped_error(mapping: np.ndarray, test_clusters: np.ndarray, test_labels: np.ndarray) -> float:
    """Error of the classifier "label = mapping[cluster]" on the test set."""
    test_clusters = _check_clusters(test_clusters, len(mapping), "test_clusters", "mapped_error")
    return classification_error(np.asarray(mapping)[test_clusters], test_labels)


def clustering_error(train_clusters: np.ndarray, train_labels: np.ndarray, test_clusters: np.ndarray,
                     test_labels: np.ndarray, k: int) -> float:
    """Majority-vote clustering error: each cluster mapped to its majority training label,
    then the test set classified by its clusters."""
    return mapped_error(cluster_mapping(train_clusters, train_labels, k), test_clusters, test_labels)


def cluster_sizes(clusters: np.ndarray, k: int) -> np.ndarray:
    """(k,) how many examples fall into each cluster (0 for an unused one)."""
    return np.bincount(_check_clusters(clusters, k, "clusters", "cluster_sizes"), minlength=k)


def confusion(rows: np.ndarray, labels: np.ndarray, n_rows: int, n_labels: int) -> np.ndarray:
    """(n_rows, n_labels) counts: entry [r, c] is how many examples have row index ``rows`` = r
    (their cluster, or predicted class) and true label c."""
    labels = as_labels(labels, "labels", "confusion")
    rows = _check_clusters(rows, n_rows, "rows", "confusion", len(labels))
    if len(labels) and (labels.min() < 0 or labels.max() >= n_labels):
        raise ValueError(f"confusion: labels must lie in [0, {n_labels})")
    counts = np.zeros((n_rows, n_labels), np.int64)
    np.add.at(counts, (rows, labels), 1)
    return counts


def hungarian_accuracy(clusters: np.ndarray, labels: np.ndarray, k: int, n_labels: int | None = None) -> float:
    """The share of examples whose cluster is paired with their label, under the one-to-one pairing
    of clusters with labels that gets the most right (the Hungarian algorithm: scipy's
    ``linear_sum_assignment`` on the confusion counts). ``n_labels`` defaults to max(labels) + 1."""
    from scipy.optimize import linear_sum_assignment

    labels = as_labels(labels, "labels", "hungarian_accuracy")
    counts = confusion(clusters, labels, k, int(labels.max()) + 1 if n_labels is None else n_labels)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / max(len(labels), 1))


def protocols(train_clusters: np.ndarray, train_labels: np.ndarray, test_clusters: np.ndarray,
              test_labels: np.ndarray, k: int, val_scores: np.ndarray | None = None,
              val_labels: np.ndarray | None = None) -> dict[str, Any]:
    """Both protocols' numbers, JSON-able: ``test_error`` (majority vote on the training
    clusters), ``test_error_paper`` (only with a validation split: ``val_scores`` (N_val, k)
    and ``val_labels``), ``clusters_used`` (non-empty clusters on the test set) and
    ``cluster_sizes`` (the test set's count per cluster, a list of k ints)."""
    sizes = cluster_sizes(test_clusters, k)
    out: dict[str, Any] = {"test_error": clustering_error(train_clusters, train_labels, test_clusters,
                                                          test_labels, k)}
    if val_scores is not None and val_labels is not None:
        scores = as_rows(val_scores, "val_scores", "protocols")
        if scores.shape[1] != k:
            raise ValueError(f"protocols: val_scores has {scores.shape[1]} columns, expected one per cluster ({k})")
        out["test_error_paper"] = mapped_error(validation_mapping(scores, val_labels), test_clusters, test_labels)
    try:
        out["hungarian_accuracy"] = hungarian_accuracy(test_clusters, test_labels, k)
    except ImportError:                        # scipy comes with the baselines extra (scikit-learn)
        pass
    out.update(clusters_used=int((sizes > 0).sum()), cluster_sizes=[int(s) for s in sizes])
    return out
