"""The consistency phase (q(y|x) of a shifted image pulled towards q(y|x) of the image) and the
shifts that make its views: gradients against float64 finite differences on both backends, a
wrong gradient caught, and the trainer's use of it."""

import numpy as np
import pytest

from aae_np.fast.kernels import numba_available
from aae_np.models.variants import VariantAAE
from aae_np.nn.gradcheck import check_params
from aae_np.train.augment import random_shifts

BACKENDS = ["numpy"] + (["numba"] if numba_available() else [])
SMALL = dict(input_dim=6, n_classes=3, style_dim=2, encoder_hidden=(5,), decoder_hidden=(4,),
             discriminator_hidden=(5,), activation="tanh", dtype="float64", seed=2)


def batch(n=5, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.05, 0.95, (n, 6))
    return dict(x=x, x_in=x + 0.1 * rng.standard_normal(x.shape), y_target=rng.dirichlet(np.ones(3), n))


def check(model, kw, tol=1e-6):
    _, grads = model.phase_grads("consistency", **kw)
    analytic = {k: g.copy() for k, g in grads.items()}
    assert {k.split(".")[0] for k in analytic} == {"encoder"}
    return check_params(lambda: model.phase_grads("consistency", **kw)[0], {k: model.params[k] for k in analytic},
                        analytic, tol=tol, atol=1e-10)


def tiny_trainer(**config):
    """A trainer of a tiny 4-cluster model on 40 random 784-pixel rows, with ``config``; and the rows."""
    from aae_np.train.variant import VariantTrainConfig, VariantTrainer

    rng = np.random.default_rng(0)
    x, y = rng.random((40, 784), dtype=np.float32), rng.integers(0, 10, 40)
    tiny = dict(input_dim=784, n_classes=4, style_dim=2, encoder_hidden=(8,), decoder_hidden=(8,),
                discriminator_hidden=(8,), variant="clustering")
    config = VariantTrainConfig(epochs=1, batch_size=20, n_labels=0, consistency=0.01, **config)
    return VariantTrainer(VariantAAE(**tiny), config, x, y, progress=False), x


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant,extra", [("clustering", {}), ("semi-supervised", {}),
                                           ("clustering", dict(encoder_batchnorm=True))])
def test_consistency_phase_matches_finite_differences(variant, extra, backend):
    model = VariantAAE(**SMALL, variant=variant, backend=backend, **extra)
    report = check(model, batch())
    assert report.passed(), str(report)


def test_consistency_loss_is_the_cross_entropy_to_the_target():
    model = VariantAAE(**SMALL, variant="clustering")
    kw = batch()
    loss, _ = model.phase_grads("consistency", **kw)
    y = model.classify(kw["x_in"])
    assert loss == pytest.approx(-np.mean(np.sum(kw["y_target"] * np.log(y), axis=1)), rel=1e-12)


@pytest.mark.parametrize("wrong", [lambda y, t, n: (t - y) / n, lambda y, t, n: y - t])
def test_a_wrong_consistency_gradient_is_caught(monkeypatch, wrong):
    model = VariantAAE(**SMALL, variant="clustering")
    kw = batch()
    real = model._encoder_backward

    def spoiled(dz, dy):          # replace (y - t) / N by a wrong form
        y = model.classify(kw["x_in"])
        real(dz, wrong(y, kw["y_target"], len(y)))
    monkeypatch.setattr(model, "_encoder_backward", spoiled)
    report = check(model, kw)
    assert not report.passed() and report.max_rel_error > 1e-2


def test_the_phase_needs_its_target_and_view():
    model = VariantAAE(**SMALL, variant="clustering")
    kw = batch()
    with pytest.raises(ValueError, match="needs y_target"):
        model.phase_grads("consistency", x=kw["x"], x_in=kw["x_in"])
    with pytest.raises(ValueError, match="y_target has 2 rows"):
        model.phase_grads("consistency", **{**kw, "y_target": kw["y_target"][:2]})
    assert "consistency" not in VariantAAE(**SMALL, variant="unsupervised").phases


def test_random_shifts_move_each_image_by_its_own_offset():
    x = np.zeros((50, 784), np.float32)
    x[:, 14 * 28 + 14] = 1                                        # one lit pixel in the middle
    out = random_shifts(x, 2, np.random.default_rng(0)).reshape(50, 28, 28)
    where = np.array([np.argwhere(img)[0] for img in out]) - 14   # (dy, dx) of each row
    assert np.abs(where).max() == 2 and len({tuple(w) for w in where}) > 10
    assert out.sum() == 50                                        # nothing lost, nothing added
    edge = np.zeros((1, 784), np.float32)
    edge[0, 0] = 1                                                # the corner pixel may fall off
    assert random_shifts(edge, 1, np.random.default_rng(1)).sum() <= 1
    np.testing.assert_array_equal(random_shifts(x, 0, np.random.default_rng(0)), x)
    with pytest.raises(ValueError, match="max_shift"):
        random_shifts(x, 28, np.random.default_rng(0))
    with pytest.raises(ValueError, match="images of 28 x 28"):
        random_shifts(x[:, :100], 1, np.random.default_rng(0))


def test_the_trainer_runs_the_phase_only_when_asked_and_feeds_it_a_shifted_view():
    from aae_np.train.variant import VariantTrainConfig, VariantTrainer

    rng = np.random.default_rng(0)
    x = np.zeros((40, 28, 28), np.float32)
    x[:, 6:22, 6:22] = rng.random((40, 16, 16), dtype=np.float32)   # ink away from the border
    x = x.reshape(40, 784)
    y = rng.integers(0, 10, 40)
    tiny = dict(input_dim=784, n_classes=4, style_dim=2, encoder_hidden=(8,), decoder_hidden=(8,),
                discriminator_hidden=(8,), variant="clustering")
    off = VariantTrainer(VariantAAE(**tiny), VariantTrainConfig(epochs=1, batch_size=20, n_labels=0), x, y,
                         progress=False)
    assert "consistency" not in off.optimizers
    on = VariantTrainer(VariantAAE(**tiny), VariantTrainConfig(epochs=1, batch_size=20, n_labels=0,
                                                               consistency=0.01, shift=2, rotate=0, scale=0,
                                                               sharpen=1),
                        x, y, progress=False)
    assert on.optimizers["consistency"].rule.lr == 0.01
    xb, inputs = on.phase_inputs("consistency", x[:20], None)
    np.testing.assert_array_equal(inputs["y_target"], on.model.classify(x[:20]))
    moved = ~np.all(inputs["x_in"] == x[:20], axis=1)
    assert moved.sum() > 10                                        # most rows shifted
    np.testing.assert_allclose(inputs["x_in"].sum(axis=1), x[:20].sum(axis=1), rtol=1e-5)   # same ink
    stats = on.step(x[:20])
    assert stats["consistency_loss"] > 0
    on.fit()
    assert np.isfinite(on.history["consistency_loss"]).all()


def test_random_affine_is_the_identity_at_zero_and_moves_ink_otherwise():
    from aae_np.train.augment import random_affine

    rng = np.random.default_rng(0)
    x = np.zeros((30, 28, 28), np.float32)
    x[:, 9:19, 12:16] = 1                                         # an upright bar in the middle
    x = x.reshape(30, 784)
    np.testing.assert_allclose(random_affine(x, rng, 0, 0, 0), x, atol=1e-6)
    shifted = random_affine(x[:1], np.random.default_rng(1), max_shift=3, max_degrees=0, max_scale=0)
    assert not np.allclose(shifted, x[:1])
    turned = random_affine(x, rng, max_shift=0, max_degrees=30, max_scale=0).reshape(30, 28, 28)
    # the ink's centre stays put (turned about the centre) while its columns spread (the bar leans)
    rows, cols = np.mgrid[0:28, 0:28]
    mass = turned.sum(axis=(1, 2))
    centre_col = (turned * cols).sum(axis=(1, 2)) / mass
    assert np.allclose(centre_col, 13.5, atol=0.3)
    width = np.array([np.ptp(np.nonzero(t.sum(axis=0) > 0.05)[0]) for t in turned])
    assert width.max() > 5 and width.min() >= 3
    np.testing.assert_allclose(mass, 40, rtol=0.05)                 # turning keeps the ink (no scaling)
    with pytest.raises(ValueError, match="images of 28 x 28"):
        random_affine(x[:, :100], rng)


def test_sharpened_targets():
    from aae_np.train.variant import VariantTrainConfig, VariantTrainer

    rng = np.random.default_rng(0)
    x, y = rng.random((40, 784), dtype=np.float32), rng.integers(0, 10, 40)
    tiny = dict(input_dim=784, n_classes=4, style_dim=2, encoder_hidden=(8,), decoder_hidden=(8,),
                discriminator_hidden=(8,), variant="clustering")
    trainer = VariantTrainer(VariantAAE(**tiny), VariantTrainConfig(epochs=1, batch_size=20, n_labels=0,
                                                                    consistency=0.01, sharpen=0.5), x, y,
                             progress=False)
    q = trainer.model.classify(x[:20])
    t = trainer._target(x[:20])
    np.testing.assert_allclose(t, q ** 2 / (q ** 2).sum(axis=1, keepdims=True), rtol=1e-5)
    assert (t.max(axis=1) >= q.max(axis=1) - 1e-7).all()
    with pytest.raises(ValueError, match="sharpen must lie"):
        VariantTrainConfig(sharpen=0)


# -- the balance term: w * KL(batch mean of y || uniform), added to the consistency phase ----------

def assert_gradient_on_y(term, k: int = 4) -> None:
    """``term(y) -> (loss, dL/dy)`` against float64 central differences on y itself (5 random rows)."""
    y = np.random.default_rng(3).dirichlet(np.ones(k), 5)
    _, dy = term(y)
    numeric = np.zeros_like(y)
    for idx in np.ndindex(*y.shape):
        up, down = y.copy(), y.copy()
        up[idx] += 1e-6
        down[idx] -= 1e-6
        numeric[idx] = (term(up)[0] - term(down)[0]) / 2e-6
    np.testing.assert_allclose(dy, numeric, rtol=1e-6, atol=1e-9)


def test_marginal_kl_is_zero_when_even_log_k_when_one_class_takes_all_and_its_gradient_is_right():
    from aae_np.nn.losses import marginal_kl_to_uniform

    k = 4
    assert marginal_kl_to_uniform(np.full((6, k), 1 / k))[0] == pytest.approx(0, abs=1e-15)
    assert marginal_kl_to_uniform(np.eye(k)[[0, 1, 2, 3]])[0] == pytest.approx(0, abs=1e-15)
    assert marginal_kl_to_uniform(np.eye(k)[[2, 2, 2]])[0] == pytest.approx(np.log(k))
    assert_gradient_on_y(marginal_kl_to_uniform)


def test_uniform_kl_is_zero_when_even_grows_as_a_class_empties_and_its_gradient_is_right():
    from aae_np.nn.losses import uniform_kl_to_marginal

    k = 4
    assert uniform_kl_to_marginal(np.full((6, k), 1 / k))[0] == pytest.approx(0, abs=1e-15)
    assert uniform_kl_to_marginal(np.eye(k)[[0, 1, 2, 3]])[0] == pytest.approx(0, abs=1e-15)
    emptier = [uniform_kl_to_marginal(np.array([[e, 0.5 - e, 0.25, 0.25]] * 2))[0] for e in (0.1, 1e-3, 1e-6)]
    assert emptier[0] < emptier[1] < emptier[2]
    assert_gradient_on_y(uniform_kl_to_marginal)


def test_revive_keeps_a_pull_on_an_empty_cluster_where_balance_loses_it():
    """Class 0 nearly empty (y_i0 ~ 1e-6): summed over the batch, revive's dL/d(logit_0) is about
    -1/K, balance's about 0 (it goes with y_i0), as derived in docs/variants.md."""
    from aae_np.nn.activations import softmax_backward
    from aae_np.nn.losses import marginal_kl_to_uniform, uniform_kl_to_marginal

    rng = np.random.default_rng(0)
    logits = rng.standard_normal((50, 4))
    logits[:, 0] -= 14.0
    y = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert y[:, 0].max() < 1e-4
    pull = {term.__name__: softmax_backward(y, term(y)[1])[:, 0].sum()
            for term in (marginal_kl_to_uniform, uniform_kl_to_marginal)}
    assert pull["uniform_kl_to_marginal"] == pytest.approx(-1 / 4, rel=1e-3)
    assert abs(pull["marginal_kl_to_uniform"]) < 1e-3


TERMS = [("balance", "marginal_kl_to_uniform"), ("revive", "uniform_kl_to_marginal")]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant,extra", [("clustering", {}), ("semi-supervised", {}),
                                           ("clustering", dict(encoder_batchnorm=True))])
@pytest.mark.parametrize("terms", [{"balance": 0.7}, {"revive": 0.4}, {"balance": 0.7, "revive": 0.4}])
def test_consistency_with_balance_or_revive_matches_finite_differences(variant, extra, backend, terms):
    model = VariantAAE(**SMALL, variant=variant, backend=backend, **extra)
    report = check(model, {**batch(), **terms})
    assert report.passed(), str(report)


@pytest.mark.parametrize("name,function", TERMS)
def test_balance_and_revive_add_w_times_their_kl_of_the_batch_mean(name, function):
    import aae_np.nn.losses as losses

    model = VariantAAE(**SMALL, variant="clustering")
    kw = batch()
    plain, _ = model.phase_grads("consistency", **kw)
    both, _ = model.phase_grads("consistency", **kw, **{name: 0.7})
    pbar = model.classify(kw["x_in"]).mean(axis=0)
    kl = {"balance": np.sum(pbar * np.log(3 * pbar)), "revive": np.sum(np.log(1 / (3 * pbar))) / 3}[name]
    assert kl > 0 and kl == pytest.approx(getattr(losses, function)(model.classify(kw["x_in"]))[0], rel=1e-10)
    assert both - plain == pytest.approx(0.7 * kl, rel=1e-10)
    assert model.last_stats[f"{name}_kl"] == pytest.approx(kl, rel=1e-10)
    with pytest.raises(ValueError, match=f"{name} must be >= 0"):
        model.phase_grads("consistency", **kw, **{name: -1.0})


@pytest.mark.parametrize("name,function", TERMS)
@pytest.mark.parametrize("wrong", [lambda dy, n: -dy, lambda dy, n: dy * n])
def test_a_wrong_balance_or_revive_gradient_is_caught(monkeypatch, wrong, name, function):
    import aae_np.models.variants as variants

    right = getattr(variants, function)

    def spoiled(y):               # the right loss with a wrong gradient: sign flipped, or no 1/N
        loss, dy = right(y)
        return loss, wrong(dy, len(y))
    monkeypatch.setattr(variants, function, spoiled)
    model = VariantAAE(**SMALL, variant="clustering")
    report = check(model, {**batch(), name: 0.7})
    assert not report.passed() and report.max_rel_error > 1e-2


@pytest.mark.parametrize("name", ["balance", "revive"])
def test_the_trainer_passes_balance_and_revive_only_when_asked(name):
    from aae_np.train.variant import VariantTrainConfig

    for weight in (0.0, 0.5):
        trainer, x = tiny_trainer(**{name: weight})
        _, inputs = trainer.phase_inputs("consistency", x[:20], None)
        assert inputs.get(name) == (weight or None)
        stats = trainer.step(x[:20])
        assert (f"{name}_kl" in stats) == (weight > 0)
    with pytest.raises(ValueError, match=f"{name} must be >= 0"):
        VariantTrainConfig(n_labels=0, **{name: -0.1})


# -- row weights: the consistency phase on confident rows only (``VariantTrainConfig.threshold``) ----

WEIGHTS = np.array([1.0, 0.0, 1.0, 0.5, 0.0])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("extra", [{}, dict(encoder_batchnorm=True)])
def test_weighted_consistency_matches_finite_differences(extra, backend):
    model = VariantAAE(**SMALL, variant="semi-supervised", backend=backend, **extra)
    report = check(model, {**batch(), "y_weight": WEIGHTS, "balance": 0.3})
    assert report.passed(), str(report)


def test_weighted_consistency_loss_and_a_gradient_that_ignores_the_weights_is_caught(monkeypatch):
    model = VariantAAE(**SMALL, variant="clustering")
    kw = batch()
    loss, _ = model.phase_grads("consistency", **kw, y_weight=WEIGHTS)
    y = model.classify(kw["x_in"])
    assert loss == pytest.approx(-np.sum(WEIGHTS * np.sum(kw["y_target"] * np.log(y), axis=1)) / 5, rel=1e-12)
    with pytest.raises(ValueError, match="weights must be 5 numbers >= 0"):
        model.phase_grads("consistency", **kw, y_weight=WEIGHTS[:3])
    real = model._encoder_backward

    def unweighted(dz, dy):       # the gradient of the unweighted loss, (y - t) / N on every row
        real(dz, (model.classify(kw["x_in"]) - kw["y_target"]) / 5)
    monkeypatch.setattr(model, "_encoder_backward", unweighted)
    report = check(model, {**kw, "y_weight": WEIGHTS})
    assert not report.passed() and report.max_rel_error > 1e-2


def test_the_trainer_weighs_only_confident_rows():
    from aae_np.train.variant import VariantTrainConfig

    trainer, x = tiny_trainer(threshold=0.3)
    _, inputs = trainer.phase_inputs("consistency", x[:20], None)
    np.testing.assert_array_equal(inputs["y_weight"], inputs["y_target"].max(axis=1) >= 0.3)
    assert np.isfinite(trainer.step(x[:20])["consistency_loss"])
    _, off = tiny_trainer()[0].phase_inputs("consistency", x[:20], None)
    assert "y_weight" not in off
    with pytest.raises(ValueError, match="threshold must lie"):
        VariantTrainConfig(n_labels=0, threshold=1.0)


def test_random_flips_mirror_about_half_the_rows_and_the_trainer_uses_them_only_when_asked():
    from aae_np.train.augment import random_flips
    from aae_np.train.variant import VariantTrainConfig, VariantTrainer

    rng = np.random.default_rng(0)
    x = rng.random((400, 784), dtype=np.float32)
    out = random_flips(x, 0.5, np.random.default_rng(1))
    mirrored = x.reshape(-1, 28, 28)[:, :, ::-1].reshape(-1, 784)
    flipped = np.all(out == mirrored, axis=1)
    assert np.all(flipped | np.all(out == x, axis=1))              # each row: itself or its mirror image
    assert 150 < flipped.sum() < 250
    np.testing.assert_array_equal(random_flips(x, 0.0, rng), x)
    np.testing.assert_array_equal(random_flips(x, 1.0, rng), mirrored)
    with pytest.raises(ValueError, match=r"p must lie in \[0, 1\]"):
        random_flips(x, 1.5, rng)
    with pytest.raises(ValueError, match=r"flip must lie in \[0, 1\]"):
        VariantTrainConfig(flip=-0.1)
    tiny = dict(input_dim=784, n_classes=4, style_dim=2, encoder_hidden=(8,), decoder_hidden=(8,),
                discriminator_hidden=(8,), variant="clustering")
    views = {}
    for p in (0.0, 1.0):
        trainer = VariantTrainer(VariantAAE(**tiny), VariantTrainConfig(epochs=1, batch_size=20, n_labels=0,
                                                                        consistency=0.01, shift=0, rotate=0,
                                                                        scale=0, flip=p), x[:40], progress=False)
        views[p] = trainer.phase_inputs("consistency", x[:20], None)[1]["x_in"]
    np.testing.assert_array_equal(views[0.0], x[:20])
    np.testing.assert_array_equal(views[1.0], mirrored[:20])


def test_mixed_views_and_targets_are_the_same_mixture_of_two_rows():
    from aae_np.train.variant import VariantTrainConfig, VariantTrainer

    rng = np.random.default_rng(0)
    x = rng.random((40, 784), dtype=np.float32)
    tiny = dict(input_dim=784, n_classes=4, style_dim=2, encoder_hidden=(8,), decoder_hidden=(8,),
                discriminator_hidden=(8,), variant="clustering")
    run = dict(epochs=1, batch_size=20, n_labels=0, consistency=0.01, shift=0, rotate=0, scale=0, sharpen=1,
               threshold=0.3)
    plain = VariantTrainer(VariantAAE(**tiny), VariantTrainConfig(**run), x, progress=False)
    mixed = VariantTrainer(VariantAAE(**tiny), VariantTrainConfig(**run, mix=0.5), x, progress=False)
    _, inputs = mixed.phase_inputs("consistency", x[:20], None)
    target, weight = plain._target(x[:20]), (plain._target(x[:20]).max(1) >= 0.3).astype(np.float32)
    # recover each row's pair and weight from the view: row i = lam x_i + (1 - lam) x_p(i)
    # (a row with lam near 1 fits any pair, and then every pair's mixture of targets is its own)
    for i in range(20):
        fits = []
        for j in range(20):
            d = x[i] - x[j]
            lam = 1.0 if i == j else float(np.dot(inputs["x_in"][i] - x[j], d) / np.dot(d, d))
            fits.append((np.abs(inputs["x_in"][i] - lam * x[i] - (1 - lam) * x[j]).max(), j, lam))
        residual, j, lam = min(fits)
        assert residual < 1e-5 and -1e-6 <= lam <= 1 + 1e-6
        np.testing.assert_allclose(inputs["y_target"][i], lam * target[i] + (1 - lam) * target[j], atol=1e-5)
        np.testing.assert_allclose(inputs["y_weight"][i], lam * weight[i] + (1 - lam) * weight[j], atol=1e-5)
    assert not np.allclose(inputs["x_in"], x[:20])
    _, unmixed = plain.phase_inputs("consistency", x[:20], None)
    np.testing.assert_array_equal(unmixed["x_in"], x[:20])
    mixed.fit()
    assert np.isfinite(mixed.history["consistency_loss"]).all()
    with pytest.raises(ValueError, match="mix must be >= 0"):
        VariantTrainConfig(mix=-1)


def test_elastic_views_bend_smoothly_and_leave_the_affine_stream_alone_when_off():
    from aae_np.train.augment import elastic_field, random_affine

    field = elastic_field(500, 28, 4.0, np.random.default_rng(0)).reshape(500, 28, 28)
    assert abs(field.mean()) < 0.01 and 0.02 < field.std() < 0.06
    near = np.corrcoef(field[:, 14, 14], field[:, 14, 15])[0, 1]
    far = np.corrcoef(field[:, 14, 14], field[:, 14, 26])[0, 1]
    assert near > 0.9 and far < 0.5                                # neighbours move together
    with pytest.raises(ValueError, match="sigma must be > 0"):
        elastic_field(1, 28, 0.0, np.random.default_rng(0))
    rng = np.random.default_rng(0)
    x = np.zeros((50, 28, 28), np.float32)
    x[:, 8:20, 12:16] = 1
    x = x.reshape(50, 784)
    np.testing.assert_array_equal(random_affine(x, np.random.default_rng(3), 2, 15, 0.1),
                                  random_affine(x, np.random.default_rng(3), 2, 15, 0.1, elastic=0.0))
    bent = random_affine(x, rng, 0, 0, 0, elastic=30)
    moved = np.abs(bent - x).sum(axis=1)
    assert (moved > 1).mean() > 0.9                                 # nearly every image changed
    ink = bent.sum(axis=1) / x.sum(axis=1)          # a bend stretches or squeezes a stroke, on average neither
    assert abs(ink.mean() - 1) < 0.1 and ink.min() > 0.3


@pytest.mark.parametrize("view", ["random_shifts", "random_affine", "random_flips"])
def test_each_view_refuses_rows_that_are_not_side_by_side_images_and_names_itself(view):
    from aae_np.train import augment

    rng = np.random.default_rng(0)
    call = {"random_shifts": lambda x: augment.random_shifts(x, 2, rng),
            "random_affine": lambda x: augment.random_affine(x, rng),
            "random_flips": lambda x: augment.random_flips(x, 0.5, rng)}[view]
    assert call(np.zeros((3, 784))).shape == (3, 784)
    for bad in (np.zeros((3, 783)), np.zeros(784), np.zeros((3, 28, 28))):
        with pytest.raises(ValueError, match=rf"{view}: x must be \(N, 784\) images of 28 x 28"):
            call(bad)
