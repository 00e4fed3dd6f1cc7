"""Style and content apart: does a label-taking decoder draw the class it is asked for?

The paper's semi-supervised and supervised models (§5-6) split a digit into a class y and a style
z; its figure decodes a few styles with every class. ``class_agreement`` makes that figure a
number: the styles of ``R`` real test images (their codes z), each decoded with each of the ``k``
classes, and the fraction of the ``R x k`` images that an independent classifier (the project's
fixed MNIST classifier, ``mnist_score``) reads as the class asked for. A decoder that ignores y
(z carries the digit) draws the style's own digit in every column: about 1/k.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["class_agreement"]


def class_agreement(model: Any, x_styles: np.ndarray, classifier: Any) -> tuple[float, np.ndarray]:
    """(fraction read as asked, the classifier's labels (R, k)) for the styles of ``x_styles``
    (R, D) decoded with classes 0..k-1; ``model`` a variant whose decoder takes the label."""
    if not getattr(model.config, "decoder_gets_label", False):
        raise ValueError(f"the {model.config.variant} variant's decoder does not take a class")
    k, z = model.config.n_classes, model.encode(x_styles)
    images = model.decode(np.repeat(z, k, axis=0), np.tile(np.arange(k), len(z)))
    read = classifier.predict_proba(images).argmax(axis=1).reshape(len(z), k)
    return float(np.mean(read == np.arange(k))), read
