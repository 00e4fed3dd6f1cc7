"""Splitting merged clusters into empty ones (``aae_np.train.split``, ``VariantTrainConfig.split_at``):
the spectral bisection, the style's logistic regression against scikit-learn's, the choice of which
clusters to split on a stand-in whose answer is known, and the trainer switching its targets."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aae_np.train.split import bisect, fit_logistic, saved_clusters, separability, split_clusters, split_model_clusters
from test_neighbours import assert_resumes_bit_for_bit


def blobs(rng, n, centre, spread=0.3, dim=12):
    return centre + spread * rng.standard_normal((n, dim))


@settings(max_examples=15, deadline=None)
@given(n=st.integers(25, 60), seed=st.integers(0, 10_000))
def test_the_bisection_separates_two_groups_of_directions_into_halves(n, seed):
    rng = np.random.default_rng(seed)
    a, b = np.eye(12)[0] * 3, np.eye(12)[1] * 3
    x = np.vstack([blobs(rng, n, a), blobs(rng, n, b)])
    lam, side = bisect(x, 6)
    assert side.sum() == n and -1e-9 < lam < 0.1                                       # cut at the median
    truth = np.r_[np.zeros(n), np.ones(n)]
    assert (side == truth).all() or (side == 1 - truth).all()


def test_the_logistic_fit_is_scikit_learns_and_the_separability_reads_held_out_rows():
    linear_model = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(0)
    z = rng.standard_normal((300, 4))
    t = (z @ np.array([1.5, -2.0, 0.0, 0.5]) + 0.7 * rng.standard_normal(300) > 0.3).astype(int)
    ref = linear_model.LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(z, t)
    w = fit_logistic(z, t)
    np.testing.assert_allclose(w[:-1], ref.coef_[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(w[-1], ref.intercept_[0], rtol=1e-5, atol=1e-6)
    assert separability(z, t) > 0.85
    assert 0.35 < separability(rng.standard_normal((300, 4)), t) < 0.65      # noise tells nothing
    memorised = np.eye(300)[:, :299]           # one column per row: fits the training folds, not the held-out one
    assert separability(memorised, t) < 0.7


def stand_in(rng, n=120):
    """Cluster 0: two contents (far apart in the hidden layer) written in the same styles; cluster 1:
    one content in two styles (the hidden layer splits them, and so does z); clusters 2, 3: empty."""
    half = n // 2
    hidden = np.vstack([blobs(rng, half, np.eye(12)[0] * 3), blobs(rng, half, np.eye(12)[1] * 3),
                        blobs(rng, half, np.eye(12)[2] * 3), blobs(rng, half, np.eye(12)[3] * 3)])
    z = rng.standard_normal((2 * n, 3))
    z[n:n + half, 0] += 4                                       # cluster 1's halves are two styles
    clusters = np.r_[np.zeros(n, int), np.ones(n, int)]
    return clusters, hidden, z


def test_the_cut_the_style_cannot_explain_is_split_first_and_only_into_empty_clusters():
    clusters, hidden, z = stand_in(np.random.default_rng(3))
    one = split_clusters(clusters, hidden, z, n_clusters=3, k=8)     # one empty cluster: cluster 0 is split
    assert (one[120:] == 1).all()
    assert sorted(np.bincount(one[:120], minlength=3)[[0, 2]]) == [60, 60]
    moved = one[:120] == 2
    assert moved[:60].all() != moved[60:].all() and (moved[:60] == moved[0]).all()   # along the contents
    two = split_clusters(clusters, hidden, z, n_clusters=4, k=8)     # two: both are split
    assert np.array_equal(np.bincount(two, minlength=4), [60, 60, 60, 60])
    np.testing.assert_array_equal(split_clusters(clusters, hidden, z, n_clusters=2, k=8), clusters)   # none empty
    np.testing.assert_array_equal(split_clusters(clusters, hidden, z, n_clusters=3, k=8, least=121), clusters)


N_CLUSTERS = 20


def split_trainer(out_dir=None, **config):
    from aae_np.models.variants import VariantAAE
    from aae_np.train.variant import VariantTrainConfig, VariantTrainer

    rng = np.random.default_rng(0)
    x, y = rng.random((480, 784), dtype=np.float32), rng.integers(0, 10, 480)
    tiny = dict(input_dim=784, n_classes=N_CLUSTERS, style_dim=2, encoder_hidden=(8, 6), decoder_hidden=(8,),
                discriminator_hidden=(8,), variant="clustering", encoder_batchnorm=True)
    config = VariantTrainConfig(**{"epochs": 3, "batch_size": 80, "n_labels": 0, "consistency": 0.01,
                                   "split_at": 1, **config})
    return VariantTrainer(VariantAAE(**tiny), config, x, y, out_dir=out_dir, progress=False), x, y


def test_the_trainer_splits_at_its_epoch_then_trains_towards_the_split_of_the_row_without_the_adversaries(tmp_path):
    views = dict(neighbours=3, shift=0, rotate=0, scale=0)     # a view is the image itself or a neighbour
    trainer, x, y = split_trainer(out_dir=tmp_path / "a", **views)
    assert "generator" in trainer._phase_order(0.0)
    trainer.fit(1)
    assert trainer.split is None
    expected = split_model_clusters(trainer.model, x)
    assert not np.array_equal(expected, trainer.model.classify(x).argmax(axis=1))   # the stand-in has a cut
    trainer.fit(2)
    np.testing.assert_array_equal(trainer.split, expected)
    assert not {"discriminator", "generator"} & set(trainer._phase_order(0.5))
    rows = np.arange(10, 50)
    trainer.batch_rows = rows
    _, inputs = trainer.phase_inputs("consistency", x[rows], None)
    np.testing.assert_array_equal(inputs["y_target"], np.eye(N_CLUSTERS)[expected[rows]])
    np.testing.assert_array_equal(inputs["x_in"], x[rows])          # the row's own, no longer a neighbour
    straight, *_ = split_trainer(out_dir=tmp_path / "b", **views)
    assert_resumes_bit_for_bit(tmp_path / "a" / "checkpoint.npz", straight, x, y,
                               lambda resumed: np.testing.assert_array_equal(resumed.split, expected))
    for bad in ([0] * 479, [N_CLUSTERS] * 480, [0.5] * 480):
        with pytest.raises(ValueError, match="split clusters are malformed"):
            saved_clusters(bad, 480, N_CLUSTERS)
    fresh, *_ = split_trainer()
    with pytest.raises(ValueError, match="split clusters are malformed"):
        fresh.load_extra_state({"split_clusters": [N_CLUSTERS] * 480})


def test_split_at_is_refused_out_of_range_without_consistency_or_outside_clustering():
    from aae_np.models.variants import VariantAAE
    from aae_np.train.variant import VariantTrainConfig, VariantTrainer

    for bad in (dict(split_at=4), dict(split_at=-1), dict(split_at=1, consistency=0.0)):
        with pytest.raises(ValueError, match="split_at .* must lie in"):
            VariantTrainConfig(**{"epochs": 3, "consistency": 0.01, **bad})
    semi = VariantAAE(input_dim=784, n_classes=10, style_dim=2, encoder_hidden=(8,), decoder_hidden=(8,),
                      discriminator_hidden=(8,), variant="semi-supervised")
    x, y = np.random.default_rng(0).random((40, 784), dtype=np.float32), np.arange(40) % 10
    with pytest.raises(ValueError, match="split_at applies to the clustering variant"):
        VariantTrainer(semi, VariantTrainConfig(epochs=3, consistency=0.01, split_at=1, n_labels=10), x, y,
                       progress=False)
