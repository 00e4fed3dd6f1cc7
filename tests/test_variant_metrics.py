"""Metrics of the paper's variants on cases with known answers."""

import numpy as np
import pytest

from aae_np.eval import clustering, metrics, parzen


def test_classification_error_counts_mismatches():
    assert metrics.classification_error(np.array([0, 1, 2, 3]), np.array([0, 1, 0, 0])) == 0.5
    with pytest.raises(ValueError, match="has 2 entries, expected 4"):
        metrics.classification_error(np.array([0, 1]), np.array([0, 1, 0, 0]))
    with pytest.raises(ValueError, match="1-D integer"):
        metrics.classification_error(np.array([0.0]), np.array([0]))


def test_cluster_mapping_takes_the_majority_and_marks_empty_clusters():
    clusters = np.array([0, 0, 0, 1, 1, 3])
    labels = np.array([7, 7, 2, 4, 4, 5])
    np.testing.assert_array_equal(clustering.cluster_mapping(clusters, labels, k=4), [7, 4, -1, 5])


def test_clustering_error_of_a_permuted_perfect_clustering_is_zero():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 500)
    perm = rng.permutation(16)[:10]                       # classes land on 10 of 16 clusters
    assert clustering.clustering_error(perm[labels], labels, perm[labels], labels, k=16) == 0.0


def test_clustering_error_known_value_and_unseen_cluster_counts_as_wrong():
    train_c, train_y = np.array([0, 0, 1, 1]), np.array([3, 3, 5, 5])
    test_c, test_y = np.array([0, 1, 1, 2]), np.array([3, 5, 3, 2])
    # cluster 0 -> 3 (right), 1 -> 5 (right, wrong), cluster 2 never seen in training (wrong)
    assert clustering.clustering_error(train_c, train_y, test_c, test_y, k=3) == 0.5


def test_one_cluster_for_everything_scores_the_majority_class_rate():
    labels = np.array([1] * 30 + [2] * 70)
    zeros = np.zeros(100, np.int64)
    assert clustering.clustering_error(zeros, labels, zeros, labels, k=16) == pytest.approx(0.3)


def test_nearest_component_fraction():
    means = np.array([[4.0, 0.0], [-4.0, 0.0]])
    z = np.array([[3.0, 1.0], [-5.0, 0.0], [1.0, 0.0], [-0.5, 2.0]])
    labels = np.array([0, 1, 1, 1])
    assert metrics.nearest_component_fraction(z, labels, means) == 0.75
    with pytest.raises(ValueError, match="z is 3-D but the means are 2-D"):
        metrics.nearest_component_fraction(np.zeros((1, 3)), np.array([0]), means)


def test_parzen_one_sample_is_a_gaussian_density():
    x = np.array([[0.0, 0.0], [1.0, 2.0]])
    ll = parzen.parzen_log_likelihoods(np.zeros((1, 2)), x, [1.0, 0.5])
    for i, s in enumerate([1.0, 0.5]):
        expected = -np.log(2 * np.pi * s * s) - (x ** 2).sum(1) / (2 * s * s)
        np.testing.assert_allclose(ll[i], expected, rtol=1e-12)


def test_parzen_matches_a_brute_force_mixture_and_batches_agree():
    rng = np.random.default_rng(1)
    samples, x = rng.standard_normal((7, 3)), rng.standard_normal((5, 3))
    sigma = 0.7
    dens = np.exp(-((x[:, None] - samples[None]) ** 2).sum(-1) / (2 * sigma ** 2)) / (2 * np.pi * sigma ** 2) ** 1.5
    expected = np.log(dens.mean(axis=1))
    np.testing.assert_allclose(parzen.parzen_log_likelihoods(samples, x, [sigma])[0], expected, rtol=1e-10)
    np.testing.assert_allclose(parzen.parzen_log_likelihoods(samples, x, [sigma], batch_size=2)[0], expected,
                               rtol=1e-10)


def test_parzen_is_stable_for_far_points_and_tiny_sigma():
    ll = parzen.parzen_log_likelihoods(np.zeros((3, 784)), np.ones((2, 784)), [0.05])
    assert np.isfinite(ll).all() and (ll < -1e5).all()


def test_parzen_sigma_selection_finds_the_true_scale():
    rng = np.random.default_rng(2)
    true_sigma = 0.3
    centres = rng.uniform(-5, 5, (2000, 2))
    samples = centres + true_sigma * rng.standard_normal((2000, 2))       # density = the kernel's
    x_val = centres[:500] + true_sigma * rng.standard_normal((500, 2))
    # a kernel density on M points drawn from a smooth density: the best sigma is near the truth
    sigma, means = parzen.parzen_select_sigma(samples, x_val, np.geomspace(0.05, 3, 30))
    assert 0.1 < sigma < 0.6
    assert means.shape == (30,) and np.argmax(means) not in (0, 29)


def test_parzen_evaluation_reports_sigma_mean_and_standard_error():
    rng = np.random.default_rng(3)
    out = parzen.parzen_evaluation(rng.standard_normal((300, 2)), rng.standard_normal((100, 2)),
                                    rng.standard_normal((200, 2)))
    assert set(out) == {"parzen_sigma", "parzen_ll", "parzen_ll_sem"}
    # a standard 2-D normal has E log p = -log(2 pi) - 1 = -2.84; a KDE on 300 points is close
    assert -3.3 < out["parzen_ll"] < -2.6 and 0 < out["parzen_ll_sem"] < 0.2


def test_parzen_rejects_bad_sigmas_and_shapes():
    with pytest.raises(ValueError, match="sigmas must be positive"):
        parzen.parzen_log_likelihoods(np.zeros((2, 2)), np.zeros((2, 2)), [0.0])
    with pytest.raises(ValueError, match="samples are 2-D but x is 3-D"):
        parzen.parzen_log_likelihoods(np.zeros((2, 2)), np.zeros((2, 3)), [1.0])
