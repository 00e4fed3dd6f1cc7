"""Priors: shapes, seeding, labels, and moments checked against samples."""

import numpy as np
import pytest

from aae_np.models.priors import Categorical, Gaussian, MixtureOfGaussians, SwissRoll, Uniform, make_prior

ALL = [Gaussian(3, std=2.0), MixtureOfGaussians(), SwissRoll(), Uniform(4, -2.0, 1.0), Categorical(5)]
LABELLED = [p for p in ALL if p.n_components]


@pytest.mark.parametrize("prior", ALL, ids=repr)
def test_shapes_dtypes_seeding_and_config(prior):
    a = prior.sample(64, np.random.default_rng(3))
    b = prior.sample(64, np.random.default_rng(3))
    assert a.shape == (64, prior.dim) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert prior.sample(8, np.random.default_rng(3), np.float64).dtype == np.float64
    rebuilt = make_prior(prior.config())
    np.testing.assert_array_equal(rebuilt.sample(16, np.random.default_rng(1)), prior.sample(16, np.random.default_rng(1)))


@pytest.mark.parametrize("prior", ALL, ids=repr)
def test_moments_match_samples(prior):
    mean, cov = prior.moments()
    z = prior.sample(200_000, np.random.default_rng(7), np.float64)
    np.testing.assert_allclose(z.mean(axis=0), mean, atol=0.03 * max(1.0, np.abs(mean).max()))
    np.testing.assert_allclose(np.cov(z, rowvar=False).reshape(cov.shape), cov, atol=0.03 * max(1.0, np.abs(cov).max()))


@pytest.mark.parametrize("prior", LABELLED, ids=repr)
def test_labels_are_components_and_can_be_chosen(prior):
    rng = np.random.default_rng(0)
    z, labels = prior.sample_with_labels(2000, rng)
    assert labels.shape == (2000,) and set(np.unique(labels)) == set(range(prior.n_components))
    wanted = np.full(500, 3)
    z3, labels3 = prior.sample_with_labels(500, rng, labels=wanted)
    np.testing.assert_array_equal(labels3, wanted)
    with pytest.raises(ValueError, match="labels must lie in"):
        prior.sample_with_labels(2, rng, labels=np.array([0, prior.n_components]))


def test_mixture_samples_sit_nearest_their_own_component():
    prior = MixtureOfGaussians(k=10)
    z, labels = prior.sample_with_labels(5000, np.random.default_rng(1), np.float64)
    nearest = np.argmin(((z[:, None, :] - prior.component_means()[None]) ** 2).sum(-1), axis=1)
    assert np.mean(nearest == labels) > 0.9


def test_swiss_roll_segments_follow_the_spiral_outwards():
    prior = SwissRoll(noise=0.0)
    radii = [np.linalg.norm(prior.sample_with_labels(200, np.random.default_rng(2), np.float64,
                                                     labels=np.full(200, s))[0], axis=1).mean()
             for s in range(prior.k)]
    assert np.all(np.diff(radii) > 0)


def test_categorical_is_one_hot():
    z = Categorical(4).sample(100, np.random.default_rng(0))
    assert set(np.unique(z)) == {0.0, 1.0} and (z.sum(axis=1) == 1).all()


@pytest.mark.parametrize("make, message", [
    (lambda: Gaussian(0), "dim must be a positive integer"),
    (lambda: MixtureOfGaussians(k=0), "k must be a positive integer"),
    (lambda: MixtureOfGaussians(radius=-1), "radius must be > 0"),
    (lambda: SwissRoll(noise=-0.1), "noise must be >= 0"),
    (lambda: Uniform(2, 1.0, 1.0), "need low < high"),
    (lambda: Categorical(1), "k must be an integer >= 2"),
    (lambda: make_prior({"name": "laplace"}), "unknown prior 'laplace'"),
    (lambda: Gaussian(2).sample_with_labels(3, np.random.default_rng(0)), "has no components"),
])
def test_bad_prior_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()
