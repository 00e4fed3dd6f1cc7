"""The held-out numbers a variant's trainer records after every epoch (``held_out_metrics``).

Apart from ``report.py`` (which re-exports them beside the figures) so that training imports no
plotting library: ``aae-np`` starts without matplotlib until a figure is drawn.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aae_np.eval import clustering, metrics
from aae_np.models.variants import VariantAAE

__all__ = ["held_out_metrics", "test_mse"]


def test_mse(model: VariantAAE, x_test: np.ndarray, y_test: np.ndarray | None) -> float:
    """Held-out reconstruction MSE of a variant (the supervised variant's decoder takes the label)."""
    return metrics.reconstruction_mse(x_test, model.reconstruct(x_test, y_test))


def held_out_metrics(model: VariantAAE, x_train: np.ndarray, y_train: np.ndarray | None,
                     x_test: np.ndarray, y_test: np.ndarray | None, x_val: np.ndarray | None = None,
                     y_val: np.ndarray | None = None) -> dict[str, Any]:
    """Held-out MSE and, for a y head with labels, the test error: classification for the
    semi-supervised variant; clustering otherwise (``clustering.protocols``): ``test_error``
    with each cluster mapped to its majority label over ``x_train`` (the images trained on),
    ``test_error_paper`` with each mapped by the validation example of highest q(y_i|x)
    (given ``x_val``, ``y_val``), ``clusters_used`` and ``cluster_sizes`` on the test set."""
    out: dict[str, Any] = {"test_mse": test_mse(model, x_test, y_test)}
    if model.config.has_y and y_test is not None:
        predicted = model.classify(x_test).argmax(1)
        if model.config.variant == "semi-supervised":
            out["test_error"] = metrics.classification_error(predicted, y_test)
            out["clusters_used"] = int(len(np.unique(predicted)))
        else:
            has_val = x_val is not None and y_val is not None
            out.update(clustering.protocols(model.classify(x_train).argmax(1), y_train, predicted, y_test,
                                            model.config.n_classes, model.classify(x_val) if has_val else None,
                                            y_val))
    return out
