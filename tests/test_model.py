"""The AAE: every phase's hand-written gradient against finite differences, API and persistence."""

import numpy as np
import pytest

from aae_np.nn.gradcheck import check_params
from aae_np.fast.kernels import numba_available
from aae_np.models.aae import AAE, AAEConfig, IMAGE_PHASES, PHASES

SMALL = dict(input_dim=6, latent_dim=3, encoder_hidden=(5,), decoder_hidden=(4,),
             discriminator_hidden=(5,), dtype="float64", seed=1)


def batch(seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.05, 0.95, (4, 6)), rng.standard_normal((4, 3))


BACKENDS = ["numpy"] + (["numba"] if numba_available() else [])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("activation", ["tanh", "leaky_relu", "relu"])
@pytest.mark.parametrize("recon_loss", ["bce", "mse"])
@pytest.mark.parametrize("phase", list(PHASES))
def test_phase_gradients_match_finite_differences(phase, recon_loss, activation, backend):
    model = AAE(**SMALL, recon_loss=recon_loss, activation=activation, backend=backend)
    x, z_prior = batch()
    loss, grads = model.phase_grads(phase, x, z_prior=z_prior)
    analytic = {k: g.copy() for k, g in grads.items()}
    expected_nets = {"reconstruction": {"encoder", "decoder"}, "discriminator": {"discriminator"},
                     "generator": {"encoder"}, "joint": {"encoder", "decoder"}}[phase]
    assert {k.split(".")[0] for k in analytic} == expected_nets
    assert set(analytic) == set(model.params_of(*expected_nets))
    report = check_params(lambda: model.phase_grads(phase, x, z_prior=z_prior)[0],
                          {k: model.params[k] for k in analytic}, analytic, h=1e-5,
                          title=f"{phase}/{recon_loss}/{activation}", tol=1e-6)
    assert report.passed(), str(report)


def test_phase_gradcheck_catches_a_wrong_phase_gradient():
    model = AAE(**SMALL)
    x, z_prior = batch()
    _, grads = model.phase_grads("generator", x, z_prior=z_prior)
    wrong = {k: -g for k, g in grads.items()}          # ascend instead of descend
    report = check_params(lambda: model.phase_grads("generator", x, z_prior=z_prior)[0],
                          {k: model.params[k] for k in wrong}, wrong, tol=1e-6)
    assert not report.passed() and report.max_rel_error == pytest.approx(1.0)


def test_phases_change_no_parameter():
    model = AAE(**SMALL)
    before = {k: v.copy() for k, v in model.params.items()}
    x, z_prior = batch()
    for phase in PHASES:
        model.phase_grads(phase, x, z_prior=z_prior)
    for k, v in model.params.items():
        np.testing.assert_array_equal(v, before[k])


def test_discriminator_phase_treats_encoded_z_as_constant_and_needs_prior():
    model = AAE(**SMALL)
    x, z_prior = batch()
    model.phase_grads("discriminator", x, z_prior=z_prior)
    assert not any(model.grads[k].any() for k in model.params_of("encoder", "decoder"))
    assert 0 <= model.last_stats["d_accuracy"] <= 1
    with pytest.raises(ValueError, match="needs z_prior"):
        model.phase_grads("discriminator", x)


def test_generator_phase_leaves_no_discriminator_gradient():
    model = AAE(**SMALL)
    x, z_prior = batch()
    model.phase_grads("generator", x, z_prior=z_prior)
    assert not any(model.grads[k].any() for k in model.params_of("discriminator"))


def test_joint_is_reconstruction_plus_weighted_generator():
    model = AAE(**SMALL, adv_weight=0.3)
    x, z_prior = batch()
    rec, g_rec = model.phase_grads("reconstruction", x)
    g_rec = {k: v.copy() for k, v in g_rec.items()}
    gen, g_gen = model.phase_grads("generator", x)
    g_gen = {k: v.copy() for k, v in g_gen.items()}
    joint, g_joint = model.phase_grads("joint", x)
    assert joint == pytest.approx(rec + 0.3 * gen)
    for k, g in g_joint.items():
        np.testing.assert_allclose(g, g_rec[k] + 0.3 * g_gen.get(k, 0), rtol=1e-10, atol=1e-14)


def test_names_shapes_and_api():
    model = AAE(latent_dim=2, encoder_hidden=(16,), decoder_hidden=(16,), discriminator_hidden=(8,))
    names = [n for n, _ in model.named_params()]
    assert names[:2] == ["encoder.0.W", "encoder.0.b"] and "discriminator.2.b" in names
    x = np.random.default_rng(0).random((5, 784), dtype=np.float32)
    z = model.encode(x)
    assert z.shape == (5, 2) and z.dtype == np.float32
    x_hat = model.decode(z)
    assert x_hat.shape == (5, 784) and (x_hat > 0).all() and (x_hat < 1).all()
    assert model.prior.sample(7, np.random.default_rng(0)).shape == (7, 2)
    assert model.discriminate(z).shape == (5, 1)
    with pytest.raises(ValueError, match=r"z must have shape \(N, 2\)"):
        model.decode(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="phase must be one of"):
        model.phase_grads("adversarial", x)


@pytest.mark.parametrize("bad, message", [
    (dict(activation="gelu"), "activation must be one of"),
    (dict(recon_loss="l1"), "recon_loss must be"),
    (dict(dtype="float16"), "dtype must be"),
    (dict(latent_dim=0), "latent_dim must be >= 1"),
])
def test_bad_config(bad, message):
    with pytest.raises(ValueError, match=message):
        AAEConfig(**bad)


def test_save_load_round_trip_and_atomicity(tmp_path, monkeypatch):
    model = AAE(latent_dim=3, encoder_hidden=(8,), decoder_hidden=(8,), discriminator_hidden=(8,), seed=4)
    path = model.save(tmp_path / "model.npz")
    loaded = AAE.load(path)
    assert loaded.config == model.config
    for k, v in model.params.items():
        np.testing.assert_array_equal(loaded.params[k], v)
        assert loaded.params[k].dtype == v.dtype

    # a crash while writing leaves the previous file intact and no temp file behind
    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    other = AAE(latent_dim=3, encoder_hidden=(8,), decoder_hidden=(8,), discriminator_hidden=(8,), seed=5)
    with pytest.raises(OSError, match="disk full"):
        other.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]
    np.testing.assert_array_equal(AAE.load(path).params["encoder.0.W"], model.params["encoder.0.W"])


def test_load_gives_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        AAE.load(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not a readable aae_np model file"):
        AAE.load(junk)
    np.savez(tmp_path / "plain.npz", a=np.zeros(2))
    with pytest.raises(ValueError, match="not a readable aae_np model file"):
        AAE.load(tmp_path / "plain.npz")


@pytest.mark.parametrize("phase", list(PHASES))
def test_phase_gradients_with_a_gaussian_posterior(phase):
    model = AAE(**SMALL, posterior_std=0.3, activation="tanh")
    x, z_prior = batch()
    eps = np.random.default_rng(5).standard_normal((4, 3))
    _, grads = model.phase_grads(phase, x, z_prior=z_prior, eps=eps)
    analytic = {k: g.copy() for k, g in grads.items()}
    # atol: decoder.2.W[0, 4] is 1.9e-6, so the finite difference's rounding noise (~4e-12) alone
    # makes a relative error of 1e-6 to 2e-6 there, depending on how the loss is summed
    report = check_params(lambda: model.phase_grads(phase, x, z_prior=z_prior, eps=eps)[0],
                          {k: model.params[k] for k in analytic}, analytic, tol=1e-6, atol=1e-10)
    assert report.passed(), str(report)
    # the noise really enters: a different eps gives a different loss
    assert model.phase_grads(phase, x, z_prior=z_prior, eps=-eps)[0] != model.phase_grads(phase, x, z_prior=z_prior, eps=eps)[0]


@pytest.mark.skipif(not numba_available(), reason="numba not installed")
@pytest.mark.parametrize("phase", [*PHASES, *IMAGE_PHASES])
def test_backends_agree_on_every_phase(phase):
    x, z_prior = batch()
    results = {}
    for backend in ("numpy", "numba"):
        model = AAE(**SMALL, image_discriminator_hidden=(5,), backend=backend)
        loss, grads = model.phase_grads(phase, x, z_prior=z_prior)
        results[backend] = loss, {k: g.copy() for k, g in grads.items()}
    assert results["numba"][0] == pytest.approx(results["numpy"][0], rel=1e-12)
    for k, g in results["numpy"][1].items():
        np.testing.assert_allclose(results["numba"][1][k], g, rtol=1e-10, atol=1e-14, err_msg=k)


def test_parameters_live_in_one_flat_buffer():
    model = AAE(**SMALL)
    w = model.params["decoder.0.W"]
    assert np.shares_memory(w, model.flat_params) and np.shares_memory(model.grads["decoder.0.W"], model.flat_grads)
    p, g = model.flat_slice("encoder", "decoder")
    assert p.size == sum(model.params[k].size for k in model.params_of("encoder", "decoder"))
    with pytest.raises(ValueError, match="not adjacent"):
        model.flat_slice("encoder", "discriminator")


def test_backend_choice(monkeypatch):
    monkeypatch.setenv("AAE_NP_BACKEND", "numpy")
    assert AAE(**SMALL).backend == "numpy"
    monkeypatch.setenv("AAE_NP_BACKEND", "cuda")
    with pytest.raises(ValueError, match="AAE_NP_BACKEND must be"):
        AAE(**SMALL)
    with pytest.raises(ValueError, match="backend must be"):
        AAE(**SMALL, backend="tpu")


@pytest.mark.parametrize("backend", BACKENDS)
def test_nan_input_is_refused_by_both_backends(backend):
    model = AAE(**SMALL, backend=backend)
    x, z_prior = batch()
    x[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"x of shape \(4, 6\) contains NaN"):
        model.phase_grads("reconstruction", x)
    with pytest.raises(ValueError, match="contains NaN"):
        model.encode(x)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients_a_phase_does_not_produce_are_zero_never_stale(backend):
    """Every phase after every other: the networks it does not train report zero gradients
    (the numba runner zeroes lazily, so a stale buffer would show here), the others non-zero."""
    model = AAE(**SMALL, image_discriminator_hidden=(5,), backend=backend)
    x, z_prior = batch()
    phases = list(model.phases)
    for first in phases:
        for second in phases:
            model.phase_grads(first, x, z_prior=z_prior)
            _, grads = model.phase_grads(second, x, z_prior=z_prior)
            trained = set(model.phases[second].trains)
            assert set(grads) == set(model.params_of(*trained))
            for name, g in model.grads.items():
                if name.split(".")[0] in trained:
                    continue
                assert not g.any(), f"{backend}: {name} holds a stale gradient after {first} -> {second}"
            assert all(np.abs(grads[k]).sum() > 0 for k in grads if k.endswith(".W")), (first, second)


def test_phase_grads_names_unknown_inputs_and_ignores_unused_ones():
    model = AAE(**SMALL)
    x, z_prior = batch()
    with pytest.raises(ValueError, match=r"unknown inputs \['labels'\]"):
        model.phase_grads("reconstruction", x, labels=np.zeros(4, int))
    # z_prior is not an input of the reconstruction phase: the same result with or without it
    a, _ = model.phase_grads("reconstruction", x)
    b, _ = model.phase_grads("reconstruction", x, z_prior=z_prior)
    assert a == b


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_reconstruction_mse_is_the_mse_of_reconstruct(backend):
    from aae_np.eval.metrics import reconstruction_mse

    if backend == "numba" and not numba_available():
        pytest.skip("numba not installed")
    rng = np.random.default_rng(3)
    model = AAE(**{**SMALL, "dtype": "float32"}, backend=backend)
    x = rng.uniform(0, 1, (23, SMALL["input_dim"])).astype(np.float32)
    expected = reconstruction_mse(x, model.reconstruct(x))
    for batch_size in (4, 7, 2048):                  # batches of unequal size weigh by their pixels
        assert model.reconstruction_mse(x, batch_size) == pytest.approx(expected, rel=1e-6)
    assert model.reconstruction_mse(x[:1]) == pytest.approx(reconstruction_mse(x[:1], model.reconstruct(x[:1])), rel=1e-6)
