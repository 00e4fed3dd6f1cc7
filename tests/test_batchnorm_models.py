"""BatchNorm and input Dropout inside the models: every phase against float64 finite differences
on both backends, train/eval modes, running statistics in model files, bit-identical resume."""

import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

import aae_np.nn.batchnorm as batchnorm_module
from aae_np.fast.kernels import numba_available
from aae_np.models import AAE, VariantAAE, load_model
from aae_np.models.variants import one_hot
from aae_np.nn import BatchNorm, Dropout
from aae_np.nn.gradcheck import check_layer, check_params
from aae_np.train.trainer import TrainConfig, Trainer
from aae_np.train.variant import VariantTrainConfig, VariantTrainer

BACKENDS = ["numpy"] + (["numba"] if numba_available() else [])
NORM = dict(encoder_batchnorm=True, input_dropout=0.25)
SMALL = dict(input_dim=6, latent_dim=3, encoder_hidden=(5,), decoder_hidden=(4,), discriminator_hidden=(5,),
             image_discriminator_hidden=(5,), activation="tanh", dtype="float64", seed=1, **NORM)


def inputs(n=5, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return dict(x=rng.uniform(0.05, 0.95, (n, d)), z_prior=rng.standard_normal((n, k)),
                dropout_mask=(rng.random((n, d)) >= 0.25).astype(float))


def check_phase(model, phase, kw, title):
    _, grads = model.phase_grads(phase, **kw)
    analytic = {k: g.copy() for k, g in grads.items()}
    return check_params(lambda: model.phase_grads(phase, **kw)[0], {k: model.params[k] for k in analytic},
                        analytic, title=title, tol=1e-6, atol=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("phase", ["reconstruction", "discriminator", "generator", "joint",
                                   "image_discriminator", "image_generator"])
def test_every_aae_phase_with_batchnorm_and_dropout_matches_finite_differences(phase, backend):
    model = AAE(**SMALL, backend=backend)
    report = check_phase(model, phase, inputs(), f"{phase}/{backend}")
    assert report.passed(), str(report)
    if "encoder" in model.phases[phase].trains:      # BatchNorm's parameters are trained with the encoder
        assert {"encoder.2.gamma", "encoder.5.beta"} <= set(report)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", ["semi-supervised", "clustering", "supervised"])
def test_every_variant_phase_with_batchnorm_and_dropout_matches_finite_differences(variant, backend):
    model = VariantAAE(variant=variant, input_dim=6, n_classes=3, style_dim=2, encoder_hidden=(5,),
                       decoder_hidden=(4,), discriminator_hidden=(5,), activation="tanh", dtype="float64",
                       seed=2, backend=backend, **NORM)
    rng = np.random.default_rng(3)
    kw = inputs(k=2)
    kw.update(labels=rng.integers(0, 3, 5), y_prior=one_hot(rng.integers(0, 3, 5), 3, np.float64))
    for phase in model.phases:
        extra = dict(x_in=kw["x"] + 0.1 * rng.standard_normal(kw["x"].shape),
                     y_target=rng.dirichlet(np.ones(3), 5)) if phase == "consistency" else {}
        if phase == "decoded_class":
            extra = dict(z_style=rng.standard_normal((5, 2)), classes=rng.integers(0, 3, 5))
        report = check_phase(model, phase, {**kw, **extra}, f"{variant}/{phase}/{backend}")
        assert report.passed(), str(report)


def test_a_naive_batchnorm_backward_inside_a_phase_is_caught(monkeypatch):
    """dx = dy * gamma / sigma ignores the paths through the batch mean and variance."""
    def naive(dy, x_hat, gamma, inv_sigma):
        return dy * gamma * inv_sigma, (dy * x_hat).sum(axis=0), dy.sum(axis=0)

    monkeypatch.setattr(batchnorm_module, "batchnorm_backward", naive)
    model = AAE(**SMALL, backend="numpy")
    report = check_phase(model, "reconstruction", inputs(), "naive")
    assert not report.passed() and report.max_rel_error > 1e-2


def check_batchnorm(layer, x, seed=0):
    """The whole batch is one function: L = sum(BN(x) * dout), checked in x, gamma and beta.

    ``atol``: dx can cancel to ~1e-8 in single entries, where the finite difference's rounding
    noise (~1e-11) is all that differs."""
    dout = np.random.default_rng(seed).standard_normal(x.shape)
    layer.zero_grad()
    layer.forward(x)
    analytic = {"x": layer.backward(dout), **{k: g.copy() for k, g in layer.grads.items()}}
    return check_params(lambda: float(np.sum(layer.forward(x) * dout)), {"x": x, **layer.params}, analytic,
                        title=repr(layer), tol=1e-7, atol=1e-9)


def test_a_naive_batchnorm_backward_fails_the_layer_check():
    class Naive(BatchNorm):
        def backward(self, dout, param_grads=True):
            return dout * self.params["gamma"] * self.inv_sigma        # mu and sigma taken as constants

    x = np.random.default_rng(0).normal(2, 3, (6, 4))
    assert check_batchnorm(BatchNorm(4, dtype=np.float64), x.copy()).passed()
    report = check_batchnorm(Naive(4, dtype=np.float64), x.copy())
    assert not report.passed() and report["x"].max_rel_error > 1e-2


@settings(max_examples=25)
@given(n=st.integers(2, 9), d=st.integers(1, 7), seed=st.integers(0, 10_000), train=st.booleans())
def test_batchnorm_layer_matches_finite_differences_on_any_shape(n, d, seed, train):
    rng = np.random.default_rng(seed)
    layer = BatchNorm(d, dtype=np.float64).train(train)
    layer.params["gamma"][:] = rng.normal(1, 0.5, d)
    layer.params["beta"][:] = rng.normal(0, 1, d)
    layer.state["running_var"][:] = rng.uniform(0.5, 2, d)
    x = rng.normal(rng.normal(0, 2, d), rng.uniform(0.5, 3, d), (n, d))
    # a column whose rows nearly agree (n = 2: std 0.0056 was drawn) makes BN curved on the scale
    # of h = 1e-5, and the central difference's truncation error alone exceeds the tolerance
    assume(x.std(axis=0).min() > 0.05)
    report = check_batchnorm(layer, x, seed)
    assert report.passed(), str(report)


@settings(max_examples=25)
@given(n=st.integers(1, 9), d=st.integers(1, 9), p=st.floats(0.0, 0.9), seed=st.integers(0, 10_000))
def test_dropout_layer_with_a_fixed_mask_matches_finite_differences(n, d, p, seed):
    rng = np.random.default_rng(seed)
    layer = Dropout(p)
    layer.set_mask(rng.random((n, d)) >= p)
    assert check_layer(layer, rng.normal(size=(n, d)), h=1e-3, rng=seed).passed()


def test_running_statistics_by_hand():
    layer = BatchNorm(2, momentum=0.75, dtype=np.float64)
    x = np.array([[1.0, -2.0], [3.0, 2.0], [5.0, 6.0]])      # means 3, 2; biased variances 8/3, 32/3
    y = layer.forward(x)
    np.testing.assert_allclose(layer.state["running_mean"], [0.25 * 3, 0.25 * 2])
    np.testing.assert_allclose(layer.state["running_var"], [0.75 + 0.25 * 8 / 3, 0.75 + 0.25 * 32 / 3])
    np.testing.assert_allclose(y[:, 0], (x[:, 0] - 3) / np.sqrt(8 / 3 + 1e-5))
    before = {k: v.copy() for k, v in layer.state.items()}
    out = layer.eval().forward(np.array([[3.0, 2.0]]))        # one row is fine in evaluation mode
    np.testing.assert_allclose(out[0], (np.array([3.0, 2.0]) - before["running_mean"])
                               / np.sqrt(before["running_var"] + 1e-5))
    assert all(np.array_equal(layer.state[k], before[k]) for k in before)   # evaluation never updates
    with pytest.raises(ValueError, match="at least 2 rows"):
        layer.train().forward(np.ones((1, 2)))
    with pytest.raises(ValueError, match=r"expected \(N, 2\)"):
        layer.forward(np.ones((3, 5)))


def test_dropout_scales_by_one_over_keep_and_is_the_identity_in_eval_mode():
    x = np.ones((4000, 5))
    layer = Dropout(0.2, rng=0)
    y = layer.forward(x)
    assert set(np.unique(y)) == {0.0, 1.25} and abs(y.mean() - 1) < 0.02
    assert np.array_equal(layer.eval().forward(x), x)
    with pytest.raises(ValueError, match=r"must be in \[0, 1\)"):
        Dropout(1.0)


@pytest.mark.parametrize("bad, message", [(dict(input_dropout=1.0), "input_dropout"),
                                          (dict(input_dropout=-0.1), "input_dropout"),
                                          (dict(encoder_batchnorm="yes"), "encoder_batchnorm")])
def test_bad_options_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        AAE(**{**SMALL, **bad})


def test_phases_need_the_dropout_mask_and_inference_uses_evaluation_mode():
    model = AAE(**SMALL, backend="numpy")
    kw = inputs()
    with pytest.raises(ValueError, match="needs dropout_mask"):
        model.phase_grads("reconstruction", kw["x"])
    model.phase_grads("reconstruction", **kw)
    stats = {k: v.copy() for k, v in model.state.items()}
    assert not np.array_equal(stats["encoder.2.running_mean"], 0)       # the phase updated them
    z1 = model.encode(kw["x"])
    z2 = model.encode(kw["x"][:1])                                     # one row: evaluation mode
    np.testing.assert_allclose(z1[:1], z2)
    assert all(np.array_equal(model.state[k], v) for k, v in stats.items())


@pytest.mark.parametrize("backend", BACKENDS)
def test_model_files_hold_the_running_statistics(tmp_path, backend):
    model = AAE(**SMALL, backend=backend)
    model.phase_grads("reconstruction", **inputs())
    model.save(tmp_path / "m.npz")
    again, _ = load_model(tmp_path / "m.npz", backend=backend)
    x = inputs(seed=4)["x"]
    np.testing.assert_array_equal(again.encode(x), model.encode(x))
    # a fresh process encodes the test rows to the same bits
    code = ("import sys, numpy as np; from aae_np.models import load_model; "
            f"m, _ = load_model(sys.argv[1], backend={backend!r}); np.save(sys.argv[2], m.encode(np.load(sys.argv[3])))")
    np.save(tmp_path / "x.npy", x)
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "m.npz"), str(tmp_path / "z.npy"),
                    str(tmp_path / "x.npy")], check=True, timeout=120)
    np.testing.assert_array_equal(np.load(tmp_path / "z.npy"), model.encode(x))
    arrays = dict(np.load(tmp_path / "m.npz"))
    del arrays["state/encoder.2.running_var"]
    np.savez(tmp_path / "broken.npz", **arrays)
    with pytest.raises(ValueError, match="state/encoder.2.running_var is missing"):
        load_model(tmp_path / "broken.npz", backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_training_with_batchnorm_and_dropout_resumes_bit_identically(tmp_path, backend):
    rng = np.random.default_rng(0)
    x, x_test = rng.uniform(0, 1, (64, 6)), rng.uniform(0, 1, (16, 6))
    cfg = dict(epochs=3, batch_size=16)
    straight = Trainer(AAE(**SMALL, backend=backend), TrainConfig(**cfg), x, x_test, out_dir=tmp_path / "a",
                       progress=False)
    straight.fit()
    first = Trainer(AAE(**SMALL, backend=backend), TrainConfig(**cfg), x, x_test, out_dir=tmp_path / "b",
                    progress=False)
    first.fit(epochs=1)
    resumed = Trainer.resume(tmp_path / "b" / "checkpoint.npz", x, x_test, progress=False, backend=backend)
    resumed.fit()
    for name, value in {**straight.model.params, **straight.model.state}.items():
        np.testing.assert_array_equal({**resumed.model.params, **resumed.model.state}[name], value, err_msg=name)
    assert json.loads((tmp_path / "b" / "history.json").read_text())["test_mse"] == straight.history["test_mse"]


def test_variant_training_draws_a_mask_for_every_encoding_phase():
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0, 1, (60, 6)), np.repeat(np.arange(3), 20)
    model = VariantAAE(variant="semi-supervised", input_dim=6, n_classes=3, style_dim=2, encoder_hidden=(5,),
                       decoder_hidden=(4,), discriminator_hidden=(5,), **NORM)
    config = VariantTrainConfig(epochs=1, batch_size=20, n_labels=30, sup_batch_size=10)
    trainer = VariantTrainer(model, config, x, y, x[:10], y[:10], progress=False)
    seen = []
    original = model.phase_grads
    model.phase_grads = lambda phase, xb, **kw: (seen.append((phase, kw["dropout_mask"].shape)),
                                                 original(phase, xb, **kw))[1]
    trainer.fit()
    assert {p for p, _ in seen} == {"reconstruction", "discriminator", "generator", "supervised"}
    assert ("supervised", (10, 6)) in seen and ("reconstruction", (20, 6)) in seen
