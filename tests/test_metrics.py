"""Metrics against answers known in closed form, and the MNIST-score classifier on real MNIST."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aae_np.eval import metrics
from aae_np.eval import mnist_score
from aae_np.eval.metrics import (frechet_to_prior, gaussian_frechet, inception_style_score, mmd_rbf,
                            mean_image_mse, reconstruction_mse, sqrtm_psd)

SHARED_MNIST = Path(__file__).resolve().parents[1].parent / "shared/data/mnist"


def random_spd(d: int, rng: np.random.Generator) -> np.ndarray:
    """A well-conditioned random symmetric positive-definite (d, d) matrix."""
    a = rng.standard_normal((d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


# ----------------------------------------------------------------------------- reconstruction_mse

def test_reconstruction_mse_known_value():
    x = np.array([[0.0, 1.0], [2.0, 3.0]])
    # (0 + 1 + 4 + 9) / 4 elements
    assert reconstruction_mse(x, np.zeros_like(x)) == pytest.approx(3.5)
    assert reconstruction_mse(x, x) == 0.0


def test_reconstruction_mse_is_float64_whatever_the_input():
    x = np.full((3, 4), 0.1, dtype=np.float32)
    assert reconstruction_mse(x, np.zeros_like(x)) == pytest.approx(0.01, rel=1e-6)


def test_reconstruction_mse_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="x_hat has shape"):
        reconstruction_mse(np.zeros((2, 3)), np.zeros((3, 2)))


@pytest.mark.parametrize("n_test, rows", [(10, 3), (2500, 1000), (7, 1000)])
def test_mean_image_mse_is_the_mse_of_the_broadcast_mean_image(n_test, rows):
    rng = np.random.default_rng(4)
    x_train, x_test = rng.random((300, 20), dtype=np.float32), rng.random((n_test, 20), dtype=np.float32)
    whole = reconstruction_mse(x_test, np.broadcast_to(x_train.astype(np.float64).mean(axis=0), x_test.shape))
    assert mean_image_mse(x_train, x_test, rows=rows) == pytest.approx(whole, rel=1e-12)


def test_sanity_warnings_name_a_model_no_better_than_the_mean_image():
    from types import SimpleNamespace as NS

    from aae_np.eval import report

    rng = np.random.default_rng(5)
    data = NS(x_train=rng.random((200, 30), dtype=np.float32), x_test=rng.random((50, 30), dtype=np.float32))
    model, floor = NS(config=NS(latent_dim=2)), mean_image_mse(data.x_train, data.x_test)
    assert report.sanity_warnings({"test_mse": 0.9 * floor, "frechet": 0.1}, model, data) == []
    warned = report.sanity_warnings({"test_mse": 1.01 * floor, "frechet": 0.1}, model, data)
    assert len(warned) == 1 and "mean training image" in warned[0] and f"{floor:.4f}" in warned[0]


# ----------------------------------------------------------------------------- Frechet

def test_sqrtm_psd_squares_back():
    c = random_spd(6, np.random.default_rng(0))
    s = sqrtm_psd(c)
    np.testing.assert_allclose(s @ s, c, atol=1e-12)
    np.testing.assert_allclose(s, s.T, atol=1e-14)


def test_frechet_of_identical_gaussians_is_zero():
    rng = np.random.default_rng(1)
    mu, cov = rng.standard_normal(7), random_spd(7, rng)
    assert gaussian_frechet(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-9)


def test_frechet_mean_shift_with_identity_covariances_is_squared_distance():
    m = np.array([1.0, -2.0, 0.5])
    assert gaussian_frechet(m, np.eye(3), np.zeros(3), np.eye(3)) == pytest.approx(m @ m)


def test_frechet_diagonal_covariances_closed_form():
    # For diagonal covariances the matrices commute: F = |dmu|^2 + sum_k (s1_k - s2_k)^2.
    rng = np.random.default_rng(2)
    s1, s2 = rng.uniform(0.2, 3.0, 5), rng.uniform(0.2, 3.0, 5)
    mu1, mu2 = rng.standard_normal(5), rng.standard_normal(5)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((s1 - s2) ** 2)
    got = gaussian_frechet(mu1, np.diag(s1 ** 2), mu2, np.diag(s2 ** 2))
    assert got == pytest.approx(expected, rel=1e-10)


def test_frechet_one_dimensional():
    assert gaussian_frechet([1.0], [[4.0]], [-1.0], [[9.0]]) == pytest.approx(4.0 + 1.0)


def test_frechet_is_symmetric_and_matches_the_fid_form():
    # Non-commuting full covariances. Independent route: tr((C1 C2)^{1/2}) is the sum of the
    # square roots of the eigenvalues of C1 C2 (real and >= 0, as C1 C2 is similar to a PSD matrix).
    rng = np.random.default_rng(3)
    mu1, mu2 = rng.standard_normal(6), rng.standard_normal(6)
    c1, c2 = random_spd(6, rng), random_spd(6, rng)
    eig = np.linalg.eigvals(c1 @ c2).real
    reference = np.sum((mu1 - mu2) ** 2) + np.trace(c1 + c2) - 2 * np.sum(np.sqrt(eig))
    forward = gaussian_frechet(mu1, c1, mu2, c2)
    backward = gaussian_frechet(mu2, c2, mu1, c1)
    assert forward == pytest.approx(reference, rel=1e-9)
    assert backward == pytest.approx(forward, rel=1e-9)
    assert forward > 0.1


def test_frechet_survives_singular_covariances():
    # A covariance of 3 points in 6-D has rank 2; its eigenvalues include round-off negatives.
    rng = np.random.default_rng(4)
    _, c1 = metrics.fit_gaussian(rng.standard_normal((3, 6)))
    assert np.linalg.eigvalsh(c1).min() < 1e-12
    value = gaussian_frechet(np.zeros(6), c1, np.zeros(6), np.eye(6))
    assert np.isfinite(value) and value >= 0
    assert gaussian_frechet(np.zeros(6), c1, np.zeros(6), c1) == pytest.approx(0.0, abs=1e-9)


def test_frechet_rejects_mismatched_dimensions_and_asymmetric_covariances():
    with pytest.raises(ValueError, match="different dimensions"):
        gaussian_frechet(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="not symmetric"):
        gaussian_frechet(np.zeros(2), np.array([[1.0, 0.5], [0.0, 1.0]]), np.zeros(2), np.eye(2))


def test_frechet_to_prior_of_prior_samples_is_near_zero():
    z = np.random.default_rng(5).standard_normal((20000, 8))
    assert frechet_to_prior(z) < 0.01


def test_frechet_to_prior_of_shifted_samples_is_the_squared_shift():
    rng = np.random.default_rng(6)
    shift = np.array([0.5, -0.5, 1.0, 0.0, 0.0, 0.25, 0.0, -1.0])
    z = rng.standard_normal((20000, 8)) + shift
    assert frechet_to_prior(z) == pytest.approx(shift @ shift, abs=0.03)


def test_frechet_to_prior_with_a_wider_prior():
    z = 2.0 * np.random.default_rng(7).standard_normal((20000, 4))
    assert frechet_to_prior(z) == pytest.approx(4 * (2.0 - 1.0) ** 2, abs=0.05)   # sum (s1 - s2)^2
    assert frechet_to_prior(z, prior_cov=4.0 * np.eye(4)) < 0.01


# ----------------------------------------------------------------------------- MMD

def test_mmd_hand_computed_value_with_one_bandwidth():
    # a = b = {0, 1} in 1-D, sigma = 1, k(0, 1) = e^{-1/2}:
    # within-sample terms (i != j only): e^{-1/2} each; cross term: (2 + 2 e^{-1/2}) / 4.
    # MMD^2_u = 2 e^{-1/2} - (1 + e^{-1/2}) = e^{-1/2} - 1: the unbiased estimate can be negative.
    a = np.array([[0.0], [1.0]])
    assert mmd_rbf(a, a.copy(), bandwidths=[1.0]) == pytest.approx(np.exp(-0.5) - 1.0, rel=1e-12)


def test_mmd_of_the_same_distribution_is_near_zero():
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal((500, 8)), rng.standard_normal((500, 8))
    assert abs(mmd_rbf(a, b)) < 0.01       # null std at this size is about 0.0013


def test_mmd_of_shifted_distributions_is_clearly_positive():
    rng = np.random.default_rng(9)
    a, b = rng.standard_normal((500, 8)), rng.standard_normal((500, 8)) + 1.0
    assert mmd_rbf(a, b) > 0.1


def test_mmd_subsampling_is_seeded_and_capped():
    rng = np.random.default_rng(10)
    a, b = rng.standard_normal((600, 3)), rng.standard_normal((700, 3)) + 0.5
    first = mmd_rbf(a, b, max_rows=200, seed=3)
    assert mmd_rbf(a, b, max_rows=200, seed=3) == first
    assert mmd_rbf(a, b, max_rows=200, seed=4) != first
    assert mmd_rbf(a, b, max_rows=200, seed=4) == pytest.approx(first, abs=0.05)


def test_mmd_rejects_mismatched_columns():
    with pytest.raises(ValueError, match="columns"):
        mmd_rbf(np.zeros((5, 2)), np.zeros((5, 3)))


# ----------------------------------------------------------------------------- inception-style score

def test_score_of_confident_balanced_predictions_is_k():
    k = 10
    probs = np.eye(k)[np.arange(100) % k]          # one-hot, each class 10 times
    assert inception_style_score(probs) == pytest.approx(k)


def test_score_of_confident_predictions_on_two_classes_is_two():
    probs = np.eye(10)[np.arange(100) % 2]
    assert inception_style_score(probs) == pytest.approx(2.0)


def test_score_of_identical_predictions_is_one():
    row = np.random.default_rng(11).dirichlet(np.ones(10))
    assert inception_style_score(np.tile(row, (50, 1))) == pytest.approx(1.0)
    assert inception_style_score(np.full((50, 10), 0.1)) == pytest.approx(1.0)


def test_score_rejects_logits_and_unnormalised_rows():
    with pytest.raises(ValueError, match="negative"):
        inception_style_score(np.array([[2.0, -1.0]]))
    with pytest.raises(ValueError, match="sum to 1"):
        inception_style_score(np.array([[0.5, 0.6]]))


# ----------------------------------------------------------------------------- MNIST score: the cache

def test_cache_path_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv(mnist_score.CACHE_ENV_VAR, raising=False)
    assert mnist_score.default_cache_path() == Path.home() / ".cache/aae_np/mnist_classifier.npz"
    monkeypatch.setenv(mnist_score.CACHE_ENV_VAR, str(tmp_path))
    assert mnist_score.default_cache_path() == tmp_path / "mnist_classifier.npz"
    monkeypatch.setenv(mnist_score.CACHE_ENV_VAR, str(tmp_path / "mine.npz"))
    assert mnist_score.default_cache_path() == tmp_path / "mine.npz"


def test_classifier_rejects_byte_valued_images():
    clf = mnist_score.Classifier(mnist_score.build_network(0), {})
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        clf.predict_proba(np.full((2, 784), 255.0))


def test_random_shift_moves_a_pixel_by_at_most_max_shift():
    x = np.zeros((200, 784), np.float32)
    x[:, 14 * 28 + 14] = 1.0                          # one lit pixel at (14, 14)
    moved = mnist_score.random_shift(x, 1, np.random.default_rng(0))
    rows, cols = np.divmod(moved.argmax(axis=1), 28)
    assert moved.sum(axis=1).tolist() == [1.0] * 200
    assert set(rows.tolist()) == {13, 14, 15} and set(cols.tolist()) == {13, 14, 15}


# ----------------------------------------------------------------------------- MNIST score: real data

needs_mnist = pytest.mark.skipif(not (SHARED_MNIST / "train-images-idx3-ubyte.gz").is_file(),
                                 reason=f"no MNIST copy at {SHARED_MNIST}")


@pytest.fixture(scope="module")
def mnist():
    from aae_np.data import load_mnist
    return load_mnist(SHARED_MNIST)


@pytest.fixture(scope="module")
def trained(mnist, tmp_path_factory):
    """The seed-0 classifier, trained from scratch into a temporary cache (about 6 s)."""
    cache = tmp_path_factory.mktemp("cache") / "clf.npz"
    return mnist_score.load_or_train_classifier(mnist.x_train, mnist.y_train, cache=cache), cache


@needs_mnist
@pytest.mark.slow
def test_classifier_accuracy_and_scores(mnist, trained):
    clf, _ = trained
    assert clf.accuracy(mnist.x_test, mnist.y_test) >= 0.95          # measured 0.9768
    assert mnist_score.mnist_score(clf, mnist.x_test) > 8.5          # measured 9.36
    mean = np.repeat(mnist.x_train.mean(axis=0, keepdims=True), 1000, axis=0)
    assert mnist_score.mnist_score(clf, mean) < 1.5                  # measured 1.00
    noise = np.random.default_rng(0).random((1000, 784), dtype=np.float32)
    assert mnist_score.mnist_score(clf, noise) < 2.5                 # measured 1.66
    probs = clf.predict_proba(mnist.x_test[:50])
    assert probs.shape == (50, 10) and probs.dtype == np.float64
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)


@needs_mnist
@pytest.mark.slow
def test_cached_classifier_is_loaded_not_retrained(mnist, trained, monkeypatch):
    clf, cache = trained

    def no_training(*args, **kwargs):
        raise AssertionError("the classifier was retrained although the cache matched")

    monkeypatch.setattr(mnist_score, "train_classifier", no_training)
    again = mnist_score.load_or_train_classifier(mnist.x_train, mnist.y_train, cache=cache)
    np.testing.assert_array_equal(again.logits(mnist.x_test[:100]), clf.logits(mnist.x_test[:100]))


@needs_mnist
@pytest.mark.slow
def test_mismatched_or_broken_cache_is_retrained(mnist, trained, monkeypatch, tmp_path):
    clf, cache = trained
    calls = []

    def fake_training(x, y, seed=0):
        calls.append(seed)
        return mnist_score.Classifier(clf.net, mnist_score._recipe(x, y, seed))

    monkeypatch.setattr(mnist_score, "train_classifier", fake_training)
    other = tmp_path / "other.npz"
    other.write_bytes(cache.read_bytes())
    with pytest.warns(UserWarning, match="different seed"):
        mnist_score.load_or_train_classifier(mnist.x_train, mnist.y_train, cache=other, seed=1)
    with pytest.warns(UserWarning, match="different data_sha256, n_train"):
        mnist_score.load_or_train_classifier(mnist.x_train[:5000], mnist.y_train[:5000], cache=other,
                                             seed=1)
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not an npz file")
    with pytest.warns(UserWarning, match="not a readable classifier file"):
        mnist_score.load_or_train_classifier(mnist.x_train, mnist.y_train, cache=broken)
    assert calls == [1, 1, 0]
    assert mnist_score.Classifier.load(broken).info["seed"] == 0      # the retrained one was saved
