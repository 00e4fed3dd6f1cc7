"""Self-training for the semi-supervised variant (``VariantTrainConfig.pseudo_labels``; not the paper's).

From epoch ``pseudo_at`` on, the supervised phase also draws the ``pseudo_labels`` unlabelled
training images q(y|x) was surest of in each predicted class, labelled with that class. They are
chosen once, by the model alone (no true label is read), and kept in the checkpoint so that a
resumed run draws from the same rows.
"""

from __future__ import annotations

import numpy as np

from aae_np.models.variants import UNLABELLED

__all__ = ["saved_pseudo", "surest"]


def surest(model, x: np.ndarray, labels: np.ndarray, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, classes): the ``per_class`` rows of ``x`` whose ``labels`` are UNLABELLED that q(y|x)
    is surest of in each predicted class, with that class (fewer where a class has fewer)."""
    q = model.classify(x)
    pred, sure = q.argmax(axis=1), q.max(axis=1)
    free = labels == UNLABELLED
    rows = [np.flatnonzero(free & (pred == k)) for k in range(q.shape[1])]
    rows = np.concatenate([r[np.argsort(-sure[r])[:per_class]] for r in rows])
    return rows, pred[rows]


def saved_pseudo(state: dict, labels: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, classes) from a checkpoint's trainer state (``pseudo_rows``, ``pseudo_classes``):
    ValueError unless they are integers of one shape, the rows index unlabelled ``labels`` and
    the classes lie in [0, n_classes)."""
    rows, classes = np.asarray(state["pseudo_rows"]), np.asarray(state.get("pseudo_classes", []))
    if (rows.ndim != 1 or rows.shape != classes.shape or rows.dtype.kind != "i" or classes.dtype.kind != "i"
            or not ((rows >= 0) & (rows < len(labels))).all() or not ((classes >= 0) & (classes < n_classes)).all()
            or (labels[rows] != UNLABELLED).any()):
        raise ValueError("the trainer state's pseudo-labels are malformed")
    return rows.astype(np.int64), classes.astype(np.int64)
