"""Dimensionality reduction with cluster heads (section 8): every phase against finite differences on
both backends, the head cost and its kinks, wrong gradients caught, the representation, files,
training and resume, and the CLI's --variant reduction."""

import json

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import aae_np.models.reduction as reduction
from aae_np.cli import main
from aae_np.fast.kernels import numba_available
from aae_np.models import load_model
from aae_np.models.reduction import ReductionAAE, ReductionConfig, head_cost
from aae_np.models.variants import VariantAAE, one_hot
from aae_np.nn.activations import softmax
from aae_np.nn.gradcheck import check_params, numerical_gradient
from aae_np.train.reduction import ReductionTrainer
from aae_np.train.variant import VariantTrainConfig
from test_cli import synthetic_mnist
from test_variant_train import data, small_presets  # noqa: F401  (fixtures: 96 rows of 20; tiny presets)

BACKENDS = ["numpy"] + (["numba"] if numba_available() else [])
M = 4
# with seed 2 the heads' pairwise distances are 1.25-4.68; eta = 1.5 puts two pairs inside the
# threshold and four outside, none within 0.15 of it (asserted below), so both branches are checked
SMALL = dict(input_dim=6, n_classes=M, style_dim=2, encoder_hidden=(5,), decoder_hidden=(4,),
             discriminator_hidden=(5,), dtype="float64", seed=2, head_threshold=1.5, head_weight=0.7,
             activation="tanh")
PHASES = {"clustering": ("reconstruction", "discriminator", "generator"),
          "semi-supervised": ("reconstruction", "discriminator", "generator", "supervised")}
TRAINS = {"reconstruction": {"encoder", "heads", "decoder"}, "discriminator": {"disc_z", "disc_y"},
          "generator": {"encoder"}, "supervised": {"encoder"}}


def make(variant="clustering", **kw):
    return ReductionAAE(**{**SMALL, "variant": variant, **kw})


def batch(model, seed=0, n=5):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.05, 0.95, (n, 6))
    return dict(x=x, labels=rng.integers(0, M, n), z_prior=model.prior.sample(n, rng, np.float64),
                y_prior=one_hot(rng.integers(0, M, n), M, np.float64))


def pair_distances(w):
    return np.array([np.linalg.norm(w[i] - w[j]) for i in range(len(w)) for j in range(i + 1, len(w))])


def check(model, phase, inputs, tol=1e-6):
    """Central differences over every parameter the phase trains; ``atol`` forgives the ~1e-11
    rounding noise of f / h on entries near zero (e.g. -1.41005e-06 vs -1.41006e-06)."""
    _, grads = model.phase_grads(phase, **inputs)
    analytic = {k: g.copy() for k, g in grads.items()}
    return analytic, check_params(lambda: model.phase_grads(phase, **inputs)[0],
                                  {k: model.params[k] for k in analytic}, analytic, h=1e-5, tol=tol, atol=1e-10,
                                  title=f"reduction/{model.config.variant}/{phase}/{model.backend}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant,phase", [(v, p) for v, phases in PHASES.items() for p in phases])
def test_every_phase_matches_finite_differences(variant, phase, backend):
    model = make(variant, backend=backend)
    d = pair_distances(model.params["heads.0.W"])
    assert (d < 1.5).sum() == 2 and (d > 1.5).sum() == 4 and np.abs(d - 1.5).min() > 0.15
    analytic, report = check(model, phase, batch(model))
    assert {k.split(".")[0] for k in analytic} == TRAINS[phase]
    assert report.passed(), str(report)


def test_the_head_cost_reaches_the_heads_gradient():
    """The reconstruction's heads gradient is y^T dL/dr plus lambda dC/dW_c: both terms are there."""
    model = make()
    inputs = batch(model)
    _, grads = model.phase_grads("reconstruction", **inputs)
    with_cost = grads["heads.0.W"].copy()
    _, grads = make(head_weight=0.0).phase_grads("reconstruction", **inputs)
    _, d_w = head_cost(model.params["heads.0.W"], 1.5)
    np.testing.assert_allclose(with_cost - grads["heads.0.W"], 0.7 * d_w, rtol=1e-12, atol=1e-14)
    assert np.abs(d_w).max() > 0.1 and np.abs(grads["heads.0.W"]).max() > 1e-4


def test_gradcheck_catches_a_head_cost_with_the_wrong_sign(monkeypatch):
    model = make()
    real = reduction.head_cost
    monkeypatch.setattr(reduction, "head_cost", lambda w, eta: (real(w, eta)[0], -real(w, eta)[1]))
    _, report = check(model, "reconstruction", batch(model))
    assert not report.passed() and report.max_rel_error > 1e-2
    assert not report["heads.0.W"].passed() and report["encoder.0.W"].passed()


def test_gradcheck_catches_a_missing_y_transpose_dr_term():
    """Drop the reconstruction's own term of dL/dW_c (y^T dL/dr): only the head cost is left."""
    model = make(backend="numpy")
    runner = model.run["heads"]
    real = runner.backward
    runner.backward = lambda dout, need_dx=True, param_grads=True: real(dout, need_dx, param_grads=False)
    _, report = check(model, "reconstruction", batch(model))
    assert not report["heads.0.W"].passed() and not report["heads.0.b"].passed()
    assert report["decoder.0.W"].passed()


def test_gradcheck_report_names_the_heads():
    report = check(make(), "reconstruction", batch(make()))[1]
    assert "heads.0.W" in str(report)


@given(st.integers(2, 6), st.integers(1, 3), st.floats(0.3, 3.0), st.integers(0, 2 ** 31 - 1))
def test_head_cost_matches_its_definition_and_finite_differences(m, n, eta, seed):
    w = np.random.default_rng(seed).normal(0, 1, (m, n))
    d = pair_distances(w)
    assume(np.abs(d - eta).min() > 1e-3 and d.min() > 1e-3)       # away from the two kinks
    cost, grad = head_cost(w, eta)
    assert cost == pytest.approx(np.maximum(0, eta - d).sum(), rel=1e-12, abs=1e-12)
    numeric = numerical_gradient(lambda v: head_cost(v, eta)[0], w.copy())
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(grad.sum(axis=0), 0, atol=1e-12)    # a common shift (the bias) changes nothing


def test_head_cost_at_its_kinks_and_beyond_the_threshold():
    cost, grad = head_cost(np.array([[0.0, 0.0], [0.0, 0.0], [5.0, 0.0]]), 1.0)
    assert cost == 1.0 and not grad.any()                 # coincident: eta counted, no direction to push
    cost, grad = head_cost(np.array([[0.0, 0.0], [1.0, 0.0]]), 1.0)
    assert cost == 0.0 and not grad.any()                 # exactly at eta: the max's flat side
    cost, grad = head_cost(np.array([[0.0, 0.0], [0.5, 0.0]]), 1.0)
    assert cost == 0.5
    np.testing.assert_array_equal(grad, [[1.0, 0.0], [-1.0, 0.0]])      # unit pushes, apart
    cost, grad = head_cost(np.array([[0.0, 0.0], [3.0, 4.0]]), 4.9)
    assert cost == 0.0 and not grad.any()


def test_the_representation_the_heads_and_the_decoder_agree():
    model = make()
    x = batch(model)["x"]
    w, b = model.params["heads.0.W"], model.params["heads.0.b"]
    b[...] = [0.3, -0.2]
    np.testing.assert_allclose(model.heads(), w + b)
    out = model.run["encoder"].forward(x)
    z, y = out[:, :2], softmax(out[:, 2:])
    np.testing.assert_allclose(model.represent(x), y @ w + b + z, rtol=1e-12)
    np.testing.assert_allclose(model.reconstruct(x), model.decode(z, y), rtol=1e-12)
    np.testing.assert_allclose(model.decode(z, np.array([0, 1, 2, 3, 0])), model.decode(z, np.eye(M)[[0, 1, 2, 3, 0]]))
    before = model.represent(x)
    w += b                                                 # the bias is the heads' common offset
    b[...] = 0
    np.testing.assert_allclose(model.represent(x), before, rtol=1e-12)
    assert model.sample(3, np.random.default_rng(0)).shape == (3, 6)
    with pytest.raises(ValueError, match="z has 2 rows but the labels have 3"):
        model.decode(z[:2], np.array([0, 1, 2]))


def test_the_heads_start_spread_like_the_threshold():
    w = ReductionAAE(n_classes=20, style_dim=2, head_threshold=1.5, encoder_hidden=(8,), decoder_hidden=(8,),
                     discriminator_hidden=(8,)).params["heads.0.W"]
    assert 1.0 < w.std() < 2.2


def test_save_and_load_model_round_trip(tmp_path):
    model = make("semi-supervised")
    path = model.save(tmp_path / "m.npz")
    loaded, extra = load_model(path)
    assert isinstance(loaded, ReductionAAE) and loaded.config == model.config and extra == {}
    x = batch(model)["x"]
    np.testing.assert_array_equal(loaded.represent(x), model.represent(x))
    with pytest.raises(ValueError, match="holds a 'reduction' model"):
        VariantAAE.load(path)


@pytest.mark.parametrize("bad,message", [
    (dict(variant="unsupervised"), "variant must be one of"),
    (dict(head_threshold=0.0), "head_threshold must be > 0"),
    (dict(head_weight=-1.0), "head_weight must be >= 0"),
    (dict(style_std=0.0), "style_std must be > 0"),
])
def test_bad_config(bad, message):
    with pytest.raises(ValueError, match=message):
        ReductionConfig(**{**SMALL, **bad})


def test_the_prior_of_z_has_the_style_std():
    assert make(style_std=0.1).prior.std == 0.1


def tiny():
    return ReductionAAE(input_dim=20, n_classes=4, style_dim=2, encoder_hidden=(16,), decoder_hidden=(16,),
                        discriminator_hidden=(8,), seed=3)


def test_training_records_the_heads_and_resumes_bit_for_bit(data, tmp_path):
    x, y, xt, yt = data
    config = VariantTrainConfig(epochs=3, batch_size=16, n_labels=0, y_instance_noise=0.1, warmup_epochs=1)
    runs = {}
    for name, first_leg in (("straight", 3), ("stopped after one epoch", 1)):
        trainer = ReductionTrainer(tiny(), config, x, y, xt, yt, out_dir=tmp_path / name, progress=False)
        trainer.fit(epochs=first_leg)
        if trainer.epoch < 3:
            trainer = ReductionTrainer.resume(tmp_path / name / "checkpoint.npz", x, y, xt, yt, progress=False)
            assert isinstance(trainer.model, ReductionAAE) and trainer.epoch == 1
            trainer.fit()
        runs[name] = trainer
    straight, resumed = runs.values()
    assert np.isfinite(straight.history["head_cost"]).all() and np.isfinite(straight.history["test_error"]).all()
    assert np.isnan(straight.history["d_loss"][0]) and np.isfinite(straight.history["d_loss"][2])
    np.testing.assert_array_equal(resumed.model.flat_params, straight.model.flat_params)
    assert resumed.history["head_cost"] == straight.history["head_cost"]


def test_cli_trains_resumes_and_evaluates_the_reduction(small_presets, tmp_path, monkeypatch, capsys):
    mnist_dir = synthetic_mnist(tmp_path, monkeypatch, n_train=200)
    out = tmp_path / "run"
    common = ["--data-dir", str(mnist_dir)]
    assert main(["-q", "train", *common, "--variant", "reduction", "--clusters", "6", "--out", str(out)]) == 0
    for name in ["model.npz", "metrics.json", "history.json", "reduction.png", "clusters.png", "latent.png"]:
        assert (out / name).is_file(), name
    assert (out / "reduction.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = json.loads((out / "metrics.json").read_text())
    assert np.isfinite(result["test_mse"]) and "test_error" in result
    model, _ = load_model(out / "model.npz")
    assert isinstance(model, ReductionAAE) and model.config.n_classes == 6 and model.heads().shape == (6, 2)
    assert main(["-q", "train", *common, "--out", str(out), "--resume", "--epochs", "2"]) == 0
    assert len(json.loads((out / "history.json").read_text())["head_cost"]) == 2
    assert main(["-q", "train", *common, "--out", str(out), "--resume", "--variant", "reduction",
                 "--epochs", "2"]) == 0                      # naming the variant again is allowed
    capsys.readouterr()
    assert main(["evaluate", "--model", str(out / "model.npz"), *common]) == 0
    assert "frechet" in capsys.readouterr().out
