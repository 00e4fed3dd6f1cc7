"""The decoded_class phase (not the paper's): the decoder is trained so that the encoder, a fixed
judge in evaluation mode, reads dec([z, onehot(c)]) as class c. Gradients against float64 central
differences on both backends, wrong gradients caught, the encoder left untouched, and the trainer's use."""

import numpy as np
import pytest

from aae_np.fast.kernels import numba_available
from aae_np.models.variants import VariantAAE
from aae_np.nn.gradcheck import check_params

BACKENDS = ["numpy"] + (["numba"] if numba_available() else [])
SMALL = dict(input_dim=6, n_classes=3, style_dim=2, encoder_hidden=(5,), decoder_hidden=(4,),
             discriminator_hidden=(5,), activation="tanh", dtype="float64", seed=4)


def inputs(n=5, seed=0):
    rng = np.random.default_rng(seed)
    return dict(x=rng.uniform(0.05, 0.95, (n, 6)), z_style=rng.standard_normal((n, 2)),
                classes=np.array([0, 1, 2, 1, 0])[:n])


def check(model, kw, tol=1e-6):
    _, grads = model.phase_grads("decoded_class", **kw)
    analytic = {k: g.copy() for k, g in grads.items()}
    assert {k.split(".")[0] for k in analytic} == {"decoder"}
    return check_params(lambda: model.phase_grads("decoded_class", **kw)[0],
                        {k: model.params[k] for k in analytic}, analytic, tol=tol, atol=1e-10)


def with_running_statistics(model, seed=1):
    """Give the encoder's BatchNorm running statistics other than (0, 1), as after training."""
    rng = np.random.default_rng(seed)
    for layer in model.nets["encoder"].layers:
        if hasattr(layer, "state") and "running_var" in getattr(layer, "state", {}):
            layer.state["running_mean"][...] = rng.normal(0, 0.5, layer.state["running_mean"].shape)
            layer.state["running_var"][...] = rng.uniform(0.5, 2, layer.state["running_var"].shape)
    return model


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant,extra", [("semi-supervised", {}), ("clustering", {}),
                                           ("semi-supervised", dict(encoder_batchnorm=True)),
                                           ("clustering", dict(encoder_batchnorm=True, input_dropout=0.3))])
def test_decoded_class_phase_matches_finite_differences(variant, extra, backend):
    model = with_running_statistics(VariantAAE(**SMALL, variant=variant, backend=backend, **extra))
    report = check(model, inputs())
    assert report.passed(), str(report)


def test_the_loss_is_the_encoders_cross_entropy_on_the_decoded_images():
    model = with_running_statistics(VariantAAE(**SMALL, variant="semi-supervised", encoder_batchnorm=True))
    kw = inputs()
    loss, _ = model.phase_grads("decoded_class", **kw)
    images = model.decode(kw["z_style"], kw["classes"])
    q = model.classify(images)                      # evaluation mode: the running statistics
    assert loss == pytest.approx(-np.mean(np.log(q[np.arange(5), kw["classes"]])), rel=1e-10)


def test_a_gradient_without_the_sigmoids_derivative_is_caught(monkeypatch):
    model = with_running_statistics(VariantAAE(**SMALL, variant="semi-supervised", encoder_batchnorm=True))
    decoder = model.run["decoder"]
    real_forward, real_backward, x_g = decoder.forward, decoder.backward, {}

    def forward(h):
        out = real_forward(h)
        x_g["v"] = 1 / (1 + np.exp(-out))
        return out

    def backward(d, **kw):                  # undo the x_g (1 - x_g) factor
        return real_backward(d / (x_g["v"] * (1 - x_g["v"])), **kw)
    monkeypatch.setattr(decoder, "forward", forward)
    monkeypatch.setattr(decoder, "backward", backward)
    report = check(model, inputs())
    assert not report.passed() and report.max_rel_error > 1e-2


def test_the_encoder_is_left_as_it_was():
    model = with_running_statistics(VariantAAE(**SMALL, variant="clustering", encoder_batchnorm=True,
                                               input_dropout=0.3))
    stats = [layer.state["running_mean"].copy() for layer in model.nets["encoder"].layers
             if "running_mean" in getattr(layer, "state", {})]
    model.phase_grads("decoded_class", **inputs())
    after = [layer.state["running_mean"] for layer in model.nets["encoder"].layers
             if "running_mean" in getattr(layer, "state", {})]
    assert stats and all(np.array_equal(a, b) for a, b in zip(stats, after))     # no running-statistics update
    assert all(layer.training for layer in model.nets["encoder"].layers)          # training mode restored


def test_bad_inputs_are_named():
    model = VariantAAE(**SMALL, variant="semi-supervised")
    kw = inputs()
    with pytest.raises(ValueError, match="needs classes"):
        model.phase_grads("decoded_class", x=kw["x"], z_style=kw["z_style"])
    with pytest.raises(ValueError, match=r"labels in \[0, 3\)"):
        model.phase_grads("decoded_class", **{**kw, "classes": np.array([0, 1, 2, 3, 0])})
    assert "decoded_class" not in VariantAAE(**SMALL, variant="supervised").phases
    from aae_np.models.reduction import ReductionAAE, ReductionConfig   # its decoder reads c W_c + b + z

    reduction = ReductionAAE(ReductionConfig(input_dim=6, n_classes=3, style_dim=2, encoder_hidden=(5,),
                                             decoder_hidden=(4,), discriminator_hidden=(5,)))
    assert "decoded_class" not in reduction.phases and "consistency" in reduction.phases


def test_the_trainer_runs_the_phase_only_when_asked():
    from aae_np.train.variant import VariantTrainConfig, VariantTrainer

    rng = np.random.default_rng(0)
    x, y = rng.random((40, 784), dtype=np.float32), np.repeat(np.arange(10), 4)
    tiny = dict(input_dim=784, n_classes=10, style_dim=2, encoder_hidden=(8,), decoder_hidden=(8,),
                discriminator_hidden=(8,), variant="semi-supervised")
    off = VariantTrainer(VariantAAE(**tiny), VariantTrainConfig(epochs=1, batch_size=20, n_labels=10), x, y,
                         progress=False)
    assert "decoded_class" not in off.optimizers
    on = VariantTrainer(VariantAAE(**tiny), VariantTrainConfig(epochs=1, batch_size=20, n_labels=10,
                                                               decoded_class=0.02), x, y, progress=False)
    assert on.optimizers["decoded_class"].rule.lr == 0.02
    _, kw = on.phase_inputs("decoded_class", x[:20], None)
    assert kw["z_style"].shape == (20, 2) and kw["classes"].min() >= 0 and kw["classes"].max() < 10
    decoder = on.model.params["decoder.0.W"].copy() if "decoder.0.W" in on.model.params else None
    stats = on.step(x[:20])
    assert np.isfinite(stats["decoded_class_loss"])
    assert decoder is None or not np.array_equal(decoder, on.model.params["decoder.0.W"])
    with pytest.raises(ValueError, match="decoded_class must be >= 0"):
        VariantTrainConfig(n_labels=10, decoded_class=-1)
