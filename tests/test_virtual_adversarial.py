"""Virtual adversarial views (``vat``, not the paper's): the encoder's input gradient of the class
cross-entropy against float64 central differences on both backends, a wrong one caught, the views'
distance and direction, and the trainer's use of them."""

import numpy as np
import pytest

import aae_np.models.virtual_adversarial as vat_module
from aae_np.fast.kernels import numba_available
from aae_np.models.variants import VariantAAE
from aae_np.models.virtual_adversarial import class_input_gradient, virtual_adversarial_view
from aae_np.nn.gradcheck import numerical_gradient, rel_error
from tests.conftest import with_running_statistics

BACKENDS = ["numpy"] + (["numba"] if numba_available() else [])
SMALL = dict(input_dim=6, n_classes=3, style_dim=2, encoder_hidden=(5,), decoder_hidden=(4,),
             discriminator_hidden=(5,), activation="tanh", dtype="float64", seed=3)


def rows(n=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.05, 0.95, (n, 6)), rng.dirichlet(np.ones(3), n)


def input_gradient_error(model, x, t):
    loss, grad = class_input_gradient(model, x, t)
    numeric = numerical_gradient(lambda _: class_input_gradient(model, x, t)[0], x)
    assert loss == pytest.approx(-np.mean(np.sum(t * np.log(model.classify(x)), axis=1)), rel=1e-12)
    return rel_error(grad, numeric)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant,extra", [("semi-supervised", {}), ("clustering", {}),
                                           ("semi-supervised", dict(encoder_batchnorm=True)),
                                           ("clustering", dict(encoder_batchnorm=True, input_dropout=0.3))])
def test_the_input_gradient_matches_finite_differences(variant, extra, backend):
    model = with_running_statistics(VariantAAE(**SMALL, variant=variant, backend=backend, **extra))
    before = {k: v.copy() for k, v in model.grads.items()}
    assert input_gradient_error(model, *rows()) < 1e-6
    assert all(np.array_equal(before[k], model.grads[k]) for k in before)      # no weight gradient


@pytest.mark.parametrize("wrong", [lambda q, t, n: (t - q) / n, lambda q, t, n: q / n])
def test_a_wrong_input_gradient_is_caught(monkeypatch, wrong):
    model = VariantAAE(**SMALL, variant="semi-supervised")
    real = vat_module.soft_cross_entropy

    def spoiled(logits, target):
        loss, _ = real(logits, target)
        q = np.exp(logits - logits.max(1, keepdims=True))
        return loss, wrong(q / q.sum(1, keepdims=True), target, len(q))
    monkeypatch.setattr(vat_module, "soft_cross_entropy", spoiled)
    assert input_gradient_error(model, *rows()) > 1e-2


def test_views_move_each_row_by_eps_and_further_from_q_than_random_moves():
    model = with_running_statistics(VariantAAE(**SMALL, variant="semi-supervised", encoder_batchnorm=True))
    x, _ = rows(200, seed=4)
    view = virtual_adversarial_view(model, x, 0.3, np.random.default_rng(0))
    np.testing.assert_allclose(np.linalg.norm(view - x, axis=1), 0.3, rtol=1e-9)
    rng = np.random.default_rng(1)
    noise = rng.standard_normal(x.shape)
    random = x + 0.3 * noise / np.linalg.norm(noise, axis=1, keepdims=True)

    def kl(moved):
        p, q = model.classify(x), model.classify(moved)
        return np.sum(p * np.log(p / q), axis=1)
    assert np.median(kl(view)) > 3 * np.median(kl(random))


def test_views_need_a_y_head_and_positive_distances():
    x, t = rows()
    with pytest.raises(ValueError, match="no y head"):
        class_input_gradient(VariantAAE(**SMALL, variant="unsupervised"), x, t)
    model = VariantAAE(**SMALL, variant="clustering")
    with pytest.raises(ValueError, match="eps and xi must be > 0"):
        virtual_adversarial_view(model, x, 0.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="target has 4 rows but x has 5"):
        class_input_gradient(model, x, t[:4])


def test_the_trainer_moves_the_consistency_views_only_when_asked():
    from aae_np.train.variant import VariantTrainConfig, VariantTrainer

    rng = np.random.default_rng(0)
    x = rng.random((40, 784), dtype=np.float32)
    tiny = dict(input_dim=784, n_classes=4, style_dim=2, encoder_hidden=(8,), decoder_hidden=(8,),
                discriminator_hidden=(8,), variant="clustering")

    def views(**extra):
        config = VariantTrainConfig(epochs=1, batch_size=20, n_labels=0, consistency=0.01, rotate=0, scale=0,
                                    shift=0, seed=5, **extra)
        trainer = VariantTrainer(VariantAAE(**tiny), config, x, None, progress=False)
        return trainer, trainer.phase_inputs("consistency", x[:20], None)[1]["x_in"]
    _, plain = views()
    np.testing.assert_array_equal(plain, x[:20])                  # no shift, no turn: the batch itself
    trainer, moved = views(vat=2.0)
    np.testing.assert_allclose(np.linalg.norm(moved - x[:20], axis=1), 2.0, rtol=1e-4)
    assert np.isfinite(trainer.step(x[:20])["consistency_loss"])
    with pytest.raises(ValueError, match="vat must be >= 0"):
        VariantTrainConfig(n_labels=0, vat=-1)
