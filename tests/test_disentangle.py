"""class_agreement: the share of decoded (style, class) images read as the class asked for."""

from types import SimpleNamespace

import numpy as np
import pytest

from aae_np.eval.disentangle import class_agreement


class Decoder:
    """A stand-in model: a style is a number; the image is one-hot of the class (follows y) or of
    the style's own digit (ignores y)."""

    def __init__(self, follows_label: bool) -> None:
        self.config = SimpleNamespace(decoder_gets_label=True, n_classes=10, variant="semi-supervised")
        self.follows = follows_label

    def encode(self, x):
        return x[:, :1]

    def decode(self, z, labels):
        digit = labels if self.follows else z[:, 0].astype(int)
        return np.eye(10)[digit]


class Reader:
    def predict_proba(self, images):
        return images


def test_a_decoder_that_follows_the_label_agrees_fully_and_one_that_ignores_it_one_in_k():
    styles = np.arange(10, dtype=float)[:, None]
    full, read = class_agreement(Decoder(True), styles, Reader())
    assert full == 1.0 and (read == np.arange(10)).all()
    ignored, read = class_agreement(Decoder(False), styles, Reader())
    assert ignored == pytest.approx(0.1) and (read == np.arange(10)[:, None]).all()


def test_a_model_whose_decoder_takes_no_class_is_refused():
    model = SimpleNamespace(config=SimpleNamespace(decoder_gets_label=False, variant="clustering"))
    with pytest.raises(ValueError, match="does not take a class"):
        class_agreement(model, np.zeros((2, 3)), Reader())
