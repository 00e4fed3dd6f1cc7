"""The paper's variants: every phase and head against finite differences, the softmax's backward, API."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from aae_np.nn.gradcheck import check_params, numerical_gradient_array, rel_error
from aae_np.fast.kernels import numba_available
from aae_np.models import load_model
from aae_np.models.variants import VARIANTS, VariantAAE, VariantConfig, one_hot
from aae_np.nn.activations import softmax, softmax_backward

BACKENDS = ["numpy"] + (["numba"] if numba_available() else [])
K = 3
SMALL = dict(input_dim=6, n_classes=K, style_dim=2, encoder_hidden=(5,), decoder_hidden=(4,),
             discriminator_hidden=(5,), dtype="float64", seed=2)
PRIORS = {"conditioned": {"name": "mixture", "k": K, "radius": 2.0}}
PHASES_OF = {
    "unsupervised": ("reconstruction", "discriminator", "generator"),
    "conditioned": ("reconstruction", "discriminator", "generator"),
    "supervised": ("reconstruction", "discriminator", "generator"),
    "semi-supervised": ("reconstruction", "discriminator", "generator", "supervised"),
    "clustering": ("reconstruction", "discriminator", "generator"),
}
TRAINED = {"reconstruction": {"encoder", "decoder"}, "generator": {"encoder"}, "supervised": {"encoder"}}


def make(variant, **kw):
    return VariantAAE(**{**SMALL, "variant": variant, "prior": PRIORS.get(variant, {}), **kw})


def batch(model, seed=0, n=5):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.05, 0.95, (n, 6))
    labels = rng.integers(0, K, n)
    if model.config.variant == "conditioned":
        labels[0] = -1                                       # one unlabelled row: the extra slot
    z_prior = model.prior.sample(n, rng, np.float64)
    y_prior = one_hot(rng.integers(0, K, n), K, np.float64)
    return x, labels, z_prior, y_prior


CASES = [(v, p) for v in VARIANTS for p in PHASES_OF[v]]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant,phase", CASES)
def test_every_phase_of_every_variant_matches_finite_differences(variant, phase, backend):
    model = make(variant, backend=backend, activation="tanh")
    x, labels, z_prior, y_prior = batch(model)
    _, grads = model.phase_grads(phase, x, labels=labels, z_prior=z_prior, y_prior=y_prior)
    analytic = {k: g.copy() for k, g in grads.items()}
    expected = TRAINED.get(phase, set(model.discriminators))
    assert {k.split(".")[0] for k in analytic} == set(expected)
    assert set(analytic) == set(model.params_of(*expected))
    report = check_params(lambda: model.phase_grads(phase, x, labels=labels, z_prior=z_prior, y_prior=y_prior)[0],
                          {k: model.params[k] for k in analytic}, analytic, h=1e-5,
                          title=f"{variant}/{phase}/{backend}", tol=1e-6)
    assert report.passed(), str(report)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_semi_supervised_phases_with_relu_family(activation):
    model = make("semi-supervised", activation=activation)
    x, labels, z_prior, y_prior = batch(model, seed=3)
    for phase in PHASES_OF["semi-supervised"]:
        _, grads = model.phase_grads(phase, x, labels=labels, z_prior=z_prior, y_prior=y_prior)
        analytic = {k: g.copy() for k, g in grads.items()}
        report = check_params(lambda: model.phase_grads(phase, x, labels=labels, z_prior=z_prior, y_prior=y_prior)[0],
                              {k: model.params[k] for k in analytic}, analytic, tol=1e-6)
        assert report.passed(), str(report)


def test_gradcheck_catches_a_softmax_backward_without_the_centring_term(monkeypatch):
    import aae_np.models.variants as variants

    model = make("clustering", activation="tanh")
    x, labels, z_prior, y_prior = batch(model)
    monkeypatch.setattr(variants, "softmax_backward", lambda y, dy: y * dy)   # forgets - sum_j y_j dy_j
    _, grads = model.phase_grads("generator", x, labels=labels, z_prior=z_prior, y_prior=y_prior)
    analytic = {k: g.copy() for k, g in grads.items()}
    report = check_params(lambda: model.phase_grads("generator", x, labels=labels, z_prior=z_prior, y_prior=y_prior)[0],
                          {k: model.params[k] for k in analytic}, analytic, tol=1e-6)
    assert not report.passed() and report.max_rel_error > 1e-2


@given(st.integers(1, 6), st.integers(2, 7), st.integers(0, 2**31 - 1))
def test_softmax_backward_is_the_jacobian_vector_product(n, k, seed):
    rng = np.random.default_rng(seed)
    s, dy = rng.uniform(-4, 4, (n, k)), rng.standard_normal((n, k))
    numeric = numerical_gradient_array(softmax, s, dy, h=1e-5)
    # entries near 0 carry the finite difference's rounding noise (~eps / h): an absolute floor
    np.testing.assert_allclose(softmax_backward(softmax(s), dy), numeric, rtol=1e-6, atol=1e-9)
    assert rel_error(y_times(dy, s), numeric) > 1e-3 or np.allclose(numeric, 0, atol=1e-6)


def y_times(dy, s):
    """The wrong backward (no centring term) the test above must tell apart."""
    return softmax(s) * dy


def test_softmax_is_stable_and_normalised():
    y = softmax(np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]]))
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y.sum(axis=1), 1)
    np.testing.assert_allclose(y[1], 1 / 3)


def test_one_hot_and_the_unlabelled_slot():
    np.testing.assert_array_equal(one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    np.testing.assert_array_equal(one_hot(np.array([-1, 1]), 3, unlabelled_slot=True),
                                  [[0, 0, 0, 1], [0, 1, 0, 0]])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        one_hot(np.array([-1]), 3)
    with pytest.raises(ValueError, match="1-D integer"):
        one_hot(np.array([0.5]), 3)


@pytest.mark.parametrize("variant", VARIANTS)
def test_phases_change_no_parameter_and_shapes(variant):
    model = make(variant)
    before = {k: v.copy() for k, v in model.params.items()}
    x, labels, z_prior, y_prior = batch(model)
    for phase in PHASES_OF[variant]:
        model.phase_grads(phase, x, labels=labels, z_prior=z_prior, y_prior=y_prior)
    for k, v in model.params.items():
        np.testing.assert_array_equal(v, before[k])
    assert model.encode(x).shape == (5, 2)
    assert model.reconstruct(x, labels if variant == "supervised" else None).shape == x.shape
    samples = model.sample(7, np.random.default_rng(0))
    assert samples.shape == (7, 6) and ((samples > 0) & (samples < 1)).all()


def test_network_inputs_follow_the_variant():
    shapes = {v: {n: net.layers[0].params["W"].shape[0] for n, net in make(v).nets.items()} for v in VARIANTS}
    assert shapes["unsupervised"] == {"encoder": 6, "decoder": 2, "disc_z": 2}
    assert shapes["conditioned"]["disc_z"] == 2 + K + 1          # z, one-hot, unlabelled slot
    assert shapes["supervised"]["decoder"] == 2 + K
    assert shapes["semi-supervised"] == {"encoder": 6, "decoder": 2 + K, "disc_z": 2, "disc_y": K}
    assert make("clustering").nets["encoder"].layers[-1].params["W"].shape[1] == 2 + K


def test_classify_returns_probabilities_and_plain_variants_refuse():
    model = make("semi-supervised")
    p = model.classify(np.full((4, 6), 0.5))
    np.testing.assert_allclose(p.sum(axis=1), 1)
    with pytest.raises(ValueError, match="no y head"):
        make("supervised").classify(np.full((4, 6), 0.5))


@pytest.mark.parametrize("variant,phase,labels,message", [
    ("supervised", "reconstruction", None, "needs labels"),
    ("supervised", "reconstruction", np.array([0, 1, -1, 0, 1]), r"labels in \[0, 3\)"),
    ("conditioned", "generator", np.array([0, 1, 3, 0, 1]), r"labels in \[-1, 3\)"),
    ("semi-supervised", "supervised", np.array([0, 1]), "labels must be 5 integers"),
    ("unsupervised", "supervised", None, "no supervised phase"),
])
def test_clear_errors_for_missing_or_bad_labels(variant, phase, labels, message):
    model = make(variant)
    x, _, z_prior, y_prior = batch(model)
    with pytest.raises(ValueError, match=message):
        model.phase_grads(phase, x, labels=labels, z_prior=z_prior, y_prior=y_prior)


@pytest.mark.parametrize("bad,message", [
    (dict(variant="nope"), "variant must be one of"),
    (dict(variant="conditioned", prior={}), "needs a prior with n_classes = 3"),
    (dict(variant="unsupervised", prior={"name": "mixture", "k": 3}, style_dim=3), "prior is 2-D but style_dim is 3"),
    (dict(prior={"name": "wobbly"}), "unknown prior"),
])
def test_bad_config(bad, message):
    with pytest.raises(ValueError, match=message):
        VariantConfig(**{**SMALL, **bad})


def test_save_and_load_model_round_trip(tmp_path):
    model = make("semi-supervised")
    path = model.save(tmp_path / "m.npz")
    loaded, extra = load_model(path)
    assert isinstance(loaded, VariantAAE) and loaded.config == model.config and extra == {}
    x = np.random.default_rng(0).uniform(0, 1, (3, 6))
    np.testing.assert_array_equal(loaded.classify(x), model.classify(x))
    from aae_np.models.aae import AAE
    with pytest.raises(ValueError, match="holds a 'variant' model"):
        AAE.load(path)


@pytest.mark.parametrize("variant", ["semi-supervised", "conditioned"])
def test_backends_agree(variant):
    if not numba_available():
        pytest.skip("numba not installed")
    a, b = make(variant, backend="numpy"), make(variant, backend="numba")
    x, labels, z_prior, y_prior = batch(a)
    for phase in PHASES_OF[variant]:
        la, ga = a.phase_grads(phase, x, labels=labels, z_prior=z_prior, y_prior=y_prior)
        lb, gb = b.phase_grads(phase, x, labels=labels, z_prior=z_prior, y_prior=y_prior)
        assert la == pytest.approx(lb, rel=1e-12)
        for k in ga:
            np.testing.assert_allclose(ga[k], gb[k], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("phase", ["discriminator", "generator"])
def test_phases_with_instance_noise_on_y_match_finite_differences(phase):
    model = make("clustering", activation="tanh")
    x, labels, z_prior, y_prior = batch(model)
    noise = 0.2 * np.random.default_rng(7).standard_normal((5, K))
    _, grads = model.phase_grads(phase, x, labels=labels, z_prior=z_prior, y_prior=y_prior + noise, y_noise=noise)
    analytic = {k: g.copy() for k, g in grads.items()}
    f = lambda: model.phase_grads(phase, x, labels=labels, z_prior=z_prior, y_prior=y_prior + noise, y_noise=noise)[0]   # noqa: E731
    report = check_params(f, {k: model.params[k] for k in analytic}, analytic, tol=1e-6)
    assert report.passed(), str(report)
    plain, _ = model.phase_grads(phase, x, labels=labels, z_prior=z_prior, y_prior=y_prior + noise)
    assert plain != pytest.approx(f(), rel=1e-9)            # the noise does reach D_y


def test_model_kind_reads_the_kind_of_either_file(tmp_path):
    from aae_np.models import AAE, model_kind

    assert model_kind(make("clustering").save(tmp_path / "v.npz")) == "variant"
    assert model_kind(AAE(input_dim=6, latent_dim=2, encoder_hidden=(4,), decoder_hidden=(4,),
                          discriminator_hidden=(4,)).save(tmp_path / "a.npz")) == "aae"
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="not a readable aae_np model file"):
        model_kind(tmp_path / "junk.npz")
