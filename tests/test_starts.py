"""Several short starts of a clustering run, the one with the most I(x; y) kept (aae_np.train.starts)."""

from dataclasses import dataclass, field, replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from aae_np.train.starts import START_SEED_STEP, best_start, cluster_information


def test_information_of_known_assignments():
    one_hot = np.eye(4)[np.arange(40) % 4]
    assert cluster_information(one_hot) == pytest.approx(np.log(4))         # even, certain: log K
    assert cluster_information(np.eye(4)[np.zeros(40, int)]) == pytest.approx(0, abs=1e-9)   # one cluster
    assert cluster_information(np.full((40, 4), 0.25)) == pytest.approx(0, abs=1e-9)         # unsure
    halves = np.eye(4)[np.arange(40) % 2]                                    # two of four used
    assert cluster_information(halves) == pytest.approx(np.log(2))


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, (12, 5), elements=st.floats(-6, 6)))
def test_information_is_the_mean_divergence_from_the_marginal(logits):
    """I(x; y) = mean_x KL(q(y|x) || mean q): the same number by another formula."""
    q = np.exp(logits - logits.max(axis=1, keepdims=True))
    q /= q.sum(axis=1, keepdims=True)
    marginal = q.mean(axis=0)
    kl = (q * (np.log(np.clip(q, 1e-300, None)) - np.log(marginal))).sum(axis=1).mean()
    assert cluster_information(q) == pytest.approx(kl, abs=1e-9)
    assert -1e-12 <= cluster_information(q) <= np.log(5) + 1e-12


@pytest.mark.parametrize("bad", [np.ones((3, 2)), np.zeros((0, 3)), np.ones(4) / 4, np.array([[1.5, -0.5]])])
def test_information_refuses_what_is_not_probabilities(bad):
    with pytest.raises(ValueError, match="rows summing to 1"):
        cluster_information(bad)


@dataclass
class Cfg:
    seed: int = 0
    epochs: int = 5
    has_y: bool = True


@dataclass
class FakeTrainer:
    """Clusters ``x_train`` as its seed says: seed // START_SEED_STEP == 2 splits them evenly, others less."""
    model_cfg: Cfg
    train_cfg: Cfg
    fitted: list = field(default_factory=list)
    history: dict = field(default_factory=dict)

    def __post_init__(self):
        self.x_train = np.zeros((60, 1))
        self.model = self

    def fit(self, epochs):
        self.fitted.append(epochs)
        self.history["test_error"] = [0.1 * (self.train_cfg.seed // START_SEED_STEP)]

    def classify(self, x):
        used = {0: 1, 1: 2, 2: 3, 3: 2, 4: 3}[self.model_cfg.seed // START_SEED_STEP]
        return np.eye(3)[np.arange(len(x)) % used]


def test_the_start_with_the_most_information_is_kept_and_its_seeds_are_apart():
    lines = []
    trainer, scores = best_start(FakeTrainer, Cfg(seed=7), Cfg(seed=7, epochs=5), 4, 2, report=lines.append)
    assert scores == pytest.approx([0, np.log(2), np.log(3), np.log(2)], abs=1e-9)
    assert trainer.model_cfg.seed == trainer.train_cfg.seed == 7 + 2 * START_SEED_STEP
    assert trainer.fitted == [2]
    assert trainer.history["start_information"] == scores
    assert trainer.history["start_test_error"] == pytest.approx([0, 0.1, 0.2, 0.3])
    assert len(lines) == 4 and "start 3/4 (seed 2007)" in lines[2]
    tie, scores = best_start(FakeTrainer, Cfg(seed=2007), Cfg(seed=2007), 3, 1)    # starts 1 and 3 tie
    assert scores[0] == scores[2] > scores[1] and tie.model_cfg.seed == 2007           # the first is kept
    first, _ = best_start(FakeTrainer, Cfg(seed=7), Cfg(seed=7), 1, 5)      # one start: the run's own seeds
    assert first.model_cfg.seed == 7 and first.fitted == [5]


def test_best_start_refuses_bad_counts_before_training():
    for starts, epochs, cfg, match in [(0, 1, Cfg(), "starts >= 1"), (2, 6, Cfg(), "1 <= epochs"),
                                       (2, 1, Cfg(has_y=False), "a y head")]:
        with pytest.raises(ValueError, match=match):
            best_start(lambda *_: pytest.fail("trained"), cfg, Cfg(), starts, epochs)


def test_variant_config_checks_the_starts():
    from aae_np.train.variant import VariantTrainConfig

    with pytest.raises(ValueError, match="starts must be >= 1"):
        VariantTrainConfig(starts=0)
    with pytest.raises(ValueError, match=r"start_epochs \(9\) must lie in \[1, epochs = 4\]"):
        VariantTrainConfig(epochs=4, starts=2, start_epochs=9)


@pytest.mark.slow
def test_new_trainer_keeps_the_best_start_and_goes_on_from_it(tmp_path):
    """Two real one-epoch starts on 600 shared MNIST images: the kept one has the larger information,
    is the seed that gives it when trained alone, and trains on to the end with checkpoints."""
    from aae_np.data import MnistData, load_mnist
    from aae_np.train.presets import resolve
    from aae_np.train.run import new_trainer
    from tests.conftest import SHARED_MNIST

    if not (SHARED_MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("shared MNIST not found")
    full = load_mnist(SHARED_MNIST)
    data = MnistData(full.x_train[:600], full.y_train[:600], full.x_test[:200], full.y_test[:200])
    model_cfg, train_cfg = resolve(variant="clustering", epochs=2, seed=3)
    model_cfg = replace(model_cfg, encoder_hidden=(64, 64), decoder_hidden=(64, 64), discriminator_hidden=(32, 32))
    train_cfg = replace(train_cfg, validation_images=100, starts=2, start_epochs=1)
    trainer = new_trainer(model_cfg, train_cfg, data, out_dir=tmp_path, progress=False)
    scores = trainer.history["start_information"]
    assert (tmp_path / "checkpoint.npz").exists()          # the kept start is saved before training goes on
    kept = int(np.argmax(scores))
    assert trainer.epoch == 1 and trainer.config.seed == 3 + kept * START_SEED_STEP
    assert cluster_information(trainer.model.classify(trainer.x_train)) == pytest.approx(scores[kept])
    alone = new_trainer(replace(model_cfg, seed=3 + kept * START_SEED_STEP),
                        replace(train_cfg, seed=3 + kept * START_SEED_STEP, starts=1), data, progress=False)
    alone.fit(1)
    assert np.array_equal(alone.model.classify(data.x_test), trainer.model.classify(data.x_test))
    trainer.fit()
    assert trainer.epoch == 2 and (tmp_path / "checkpoint.npz").exists()
