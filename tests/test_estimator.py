"""AAEEstimator keeps scikit-learn's conventions: its own check_estimator, a Pipeline, sample's
random_state, the variants' predict; and the package namespace lists only the public API."""

import pickle
import subprocess
import sys

import numpy as np
import pytest

import aae_np
from aae_np import AAEEstimator

sklearn = pytest.importorskip("sklearn")          # the dev extra; the estimator itself never imports it
SMALL = dict(hidden=(16,), epochs=1, batch_size=16)
# check_estimator's checks that do not run here, and why (none fails):
SKIPPED = {"check_array_api_input": "scikit-learn skips it unless SCIPY_ARRAY_API=1 (array-API namespaces)"}


def test_check_estimator_passes_every_check():
    from sklearn.utils.estimator_checks import check_estimator

    results = check_estimator(AAEEstimator(**SMALL, scale="minmax"), on_fail=None, on_skip=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
    skipped = {r["check_name"] for r in results if r["status"] == "skipped"}
    assert not failed
    assert skipped == set(SKIPPED) and len(results) > 40


def test_in_a_pipeline_after_min_max_scaling_on_data_that_is_not_mnist():
    from sklearn.datasets import make_blobs
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler

    x, _ = make_blobs(300, n_features=12, centers=3, random_state=0)      # any range, 12 features
    pipe = Pipeline([("scale", MinMaxScaler()), ("aae", AAEEstimator(**SMALL, latent_dim=3))])
    z = pipe.fit_transform(x)
    assert z.shape == (300, 3) and np.isfinite(z).all()
    back = pipe.inverse_transform(z)                        # decoded, then unscaled by MinMaxScaler
    assert back.shape == x.shape and back.min() >= x.min() - 1e-6 and back.max() <= x.max() + 1e-6
    assert pipe.score(x) < 0 and pipe["aae"].n_features_in_ == 12


def test_unscaled_data_is_refused_with_the_ways_to_scale_it():
    with pytest.raises(ValueError, match=r"X holds values in .*MinMaxScaler"):
        AAEEstimator(**SMALL).fit(np.arange(40.0).reshape(20, 2))


def test_sample_takes_a_seed_or_a_generator_and_a_model_sample_takes_an_int():
    est = AAEEstimator(**SMALL).fit(np.random.default_rng(0).random((64, 6)))
    assert np.array_equal(est.sample(5, random_state=0), est.sample(5, random_state=np.random.default_rng(0)))
    assert not np.array_equal(est.sample(5, random_state=0), est.sample(5, random_state=1))
    assert est.model_.sample(5, rng=0).shape == (5, 6)             # was: 'int' has no 'standard_normal'
    again = pickle.loads(pickle.dumps(est))
    assert np.array_equal(again.transform(np.ones((2, 6))), est.transform(np.ones((2, 6))))


def test_the_clustering_and_semi_supervised_variants_predict():
    from sklearn.datasets import load_digits

    digits = load_digits()
    x, y = digits.data[:400] / 16, digits.target[:400]
    clusters = AAEEstimator(variant="clustering", n_clusters=4, latent_dim=2, **SMALL).fit(x)
    proba = clusters.predict_proba(x)
    assert proba.shape == (400, 4) and np.allclose(proba.sum(1), 1, atol=1e-5)
    assert set(clusters.predict(x)) <= set(range(4))
    semi = AAEEstimator(variant="semi-supervised", n_labels=100, **SMALL).fit(x, y)
    assert semi.predict(x).shape == (400,) and semi.predict_proba(x).shape == (400, 10)
    assert not hasattr(AAEEstimator(), "predict")                  # the plain AAE has no y head
    with pytest.raises(ValueError, match="needs y"):
        AAEEstimator(variant="semi-supervised", **SMALL).fit(x)


def test_get_and_set_params_round_trip_and_refuse_unknown_names():
    est = AAEEstimator(latent_dim=5)
    assert est.get_params()["latent_dim"] == 5
    assert est.set_params(epochs=3) is est and est.epochs == 3
    with pytest.raises(ValueError, match="no parameter 'depth'"):
        est.set_params(depth=3)


def test_the_estimator_does_not_import_scikit_learn():
    code = ("import sys, numpy as np; from aae_np import AAEEstimator; "
            "AAEEstimator(hidden=(4,), epochs=1).fit(np.random.default_rng(0).random((20, 3))).transform(np.ones((1, 3))); "
            "assert 'sklearn' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_namespace_shows_the_public_api_only():
    names = set(dir(aae_np))
    assert {"AAEEstimator", "AAE", "Trainer", "__version__"} <= names
    assert not names & {"Any", "annotations", "importlib"}
    assert set(aae_np.__all__) <= names and all(getattr(aae_np, n) is not None for n in aae_np.__all__)
