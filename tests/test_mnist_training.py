"""Real MNIST (../shared/data/mnist): the phased schedule learns, the tutorial's joint step does not.

Short runs of the tutorial's own network sizes; the full-length numbers are in README.md.
"""

import numpy as np
import pytest

from aae_np.data import load_mnist
from aae_np.models.aae import AAE
from aae_np.train.presets import get_preset
from aae_np.train.trainer import Trainer
from conftest import SHARED_MNIST

pytestmark = pytest.mark.skipif(not (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").exists(),
                                reason="needs ../shared/data/mnist")


@pytest.fixture(scope="module")
def mnist():
    return load_mnist(SHARED_MNIST)


def mean_image_mse(data) -> float:
    return float(np.mean((data.x_test - data.x_train.mean(axis=0)) ** 2))


def run(data, schedule: str, epochs: int) -> dict[str, list[float]]:
    model_cfg, train_cfg = get_preset("tutorial")
    train_cfg.schedule, train_cfg.epochs = schedule, epochs
    return Trainer(AAE(model_cfg), train_cfg, data.x_train, data.x_test, progress=False).fit()


def test_phased_schedule_learns_far_better_than_the_mean_image(mnist):
    history = run(mnist, "phased", 3)
    assert mean_image_mse(mnist) == pytest.approx(0.0674, abs=5e-4)     # the baseline
    assert history["test_mse"][-1] < 0.6 * mean_image_mse(mnist)
    assert 0.05 < history["d_accuracy"][-1] < 0.9                        # a game, not a rout


def test_joint_schedule_reproduces_the_tutorials_failure(mnist):
    history = run(mnist, "joint", 8)
    assert max(history["d_accuracy"]) > 0.95                  # the discriminator wins...
    assert min(history["d_loss"]) < 0.2                       # (chance level: ln 2 = 0.69)
    assert history["test_mse"][-1] > 0.9 * mean_image_mse(mnist)   # ...and the decoder learns the mean
