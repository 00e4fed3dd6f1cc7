"""The optional image discriminator: its two phases' gradients against finite differences,
the mistake a hand derivation makes most easily (the decoder's output sigmoid) caught, and
training with it (schedule, history, bit-identical resume, save/load). The two backends'
agreement on these phases is tested with the others in test_model.py."""

import numpy as np
import pytest

from aae_np.nn.gradcheck import check_params
from aae_np.fast.kernels import numba_available
from aae_np.models.adversarial import fool
from aae_np.models.aae import AAE, IMAGE_PHASES, PHASES
from aae_np.train.trainer import IMAGE_HISTORY_KEYS, TrainConfig, Trainer

SMALL = dict(input_dim=6, latent_dim=3, encoder_hidden=(5,), decoder_hidden=(4,), discriminator_hidden=(5,),
             image_discriminator_hidden=(5,), image_adv_weight=2.5, dtype="float64", seed=1)
BACKENDS = ["numpy"] + (["numba"] if numba_available() else [])
TRAINS = {"image_discriminator": {"image_discriminator"}, "image_generator": {"decoder"}}


def batch(seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.05, 0.95, (4, 6)), rng.standard_normal((4, 3))


def check(model, phase, x, z_prior, grads):
    return check_params(lambda: model.phase_grads(phase, x, z_prior=z_prior)[0],
                        {k: model.params[k] for k in grads}, grads, h=1e-5, title=phase, tol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("phase", list(IMAGE_PHASES))
def test_image_phase_gradients_match_finite_differences(phase, activation, backend):
    model = AAE(**SMALL, activation=activation, backend=backend)
    x, z_prior = batch()
    loss, grads = model.phase_grads(phase, x, z_prior=z_prior)
    analytic = {k: g.copy() for k, g in grads.items()}
    assert set(analytic) == set(model.params_of(*TRAINS[phase])) and loss > 0
    report = check(model, phase, x, z_prior, analytic)
    assert report.passed(), str(report)


def test_a_decoder_gradient_without_the_output_sigmoid_is_caught():
    class Forgetful(AAE):           # dL/dlogits = w dL/dx_fake: the sigmoid's x(1 - x) left out
        def _phase_image_generator(self, x, z_prior):
            x_fake = self._decode_prior(z_prior)
            loss, d_fake = fool(self.run["image_discriminator"], x_fake)
            w = self.config.image_adv_weight
            self.run["decoder"].backward(w * d_fake, need_dx=False)
            return w * loss

    model = Forgetful(**SMALL)
    x, z_prior = batch()
    _, grads = model.phase_grads("image_generator", x, z_prior=z_prior)
    report = check(model, "image_generator", x, z_prior, {k: g.copy() for k, g in grads.items()})
    assert not report.passed() and report.max_rel_error > 0.5


def test_image_phases_change_no_parameter_and_need_a_prior_sample():
    model = AAE(**SMALL)
    before = {k: v.copy() for k, v in model.params.items()}
    x, z_prior = batch()
    for phase in model.phases:
        model.phase_grads(phase, x, z_prior=z_prior)
    for k, v in model.params.items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)
    assert 0 <= model.last_stats["image_g_loss"] and model.phases == {**PHASES, **IMAGE_PHASES}
    for phase in IMAGE_PHASES:
        with pytest.raises(ValueError, match=f"the {phase} phase needs z_prior"):
            model.phase_grads(phase, x)


def test_without_an_image_discriminator_the_model_is_the_papers():
    plain = {k: v for k, v in SMALL.items() if k != "image_discriminator_hidden"}
    model, with_image = AAE(**plain), AAE(**SMALL)
    assert model.image_discriminator is None and model.phases == PHASES
    assert not any(k.startswith("image_discriminator") for k in model.params)
    for k, v in model.params.items():        # the other networks start the same either way
        np.testing.assert_array_equal(with_image.params[k], v, err_msg=k)
    x, z_prior = batch()
    with pytest.raises(ValueError, match="needs an image discriminator: set AAEConfig.image_discriminator_hidden"):
        model.phase_grads("image_generator", x, z_prior=z_prior)


@pytest.mark.parametrize("bad, message", [
    (dict(image_discriminator_hidden=(0,)), "image_discriminator_hidden: hidden layer sizes must be >= 1"),
    (dict(image_adv_weight=0.0), "image_adv_weight must be > 0"),
])
def test_bad_image_discriminator_config(bad, message):
    with pytest.raises(ValueError, match=message):
        AAE(**{**SMALL, **bad})


def test_save_and_load_keep_the_image_discriminator(tmp_path):
    model = AAE(**SMALL)
    loaded = AAE.load(model.save(tmp_path / "m.npz"))
    assert loaded.config == model.config and set(loaded.params) == set(model.params)
    for k, v in model.params.items():
        np.testing.assert_array_equal(loaded.params[k], v, err_msg=k)


TINY = dict(input_dim=16, latent_dim=2, encoder_hidden=(8,), decoder_hidden=(8,), discriminator_hidden=(8,),
            image_discriminator_hidden=(8,), seed=3)


def test_training_runs_the_image_phases_and_resumes_bit_identically(tmp_path):
    rng = np.random.default_rng(0)
    x, x_test = rng.random((64, 16), dtype=np.float32), rng.random((16, 16), dtype=np.float32)
    config = dict(epochs=3, batch_size=16, lr_image_d=1e-3, lr_image_g=5e-4)
    straight = Trainer(AAE(**TINY), TrainConfig(**config), x, x_test, out_dir=tmp_path / "a", progress=False)
    assert list(straight.schedule()) == ["reconstruction", "discriminator", "generator", *IMAGE_PHASES]
    assert straight.optimizers["image_generator"].rule.lr == 5e-4
    decoder_before = straight.model.params["decoder.0.W"].copy()
    straight.fit()
    for key in IMAGE_HISTORY_KEYS:
        assert len(straight.history[key]) == 3 and np.isfinite(straight.history[key]).all(), key
    assert not np.array_equal(straight.model.params["decoder.0.W"], decoder_before)

    first = Trainer(AAE(**TINY), TrainConfig(**config), x, x_test, out_dir=tmp_path / "b", progress=False)
    first.fit(epochs=1)
    resumed = Trainer.resume(tmp_path / "b" / "checkpoint.npz", x, x_test, progress=False)
    resumed.fit()
    for k, v in straight.model.params.items():
        np.testing.assert_array_equal(resumed.model.params[k], v, err_msg=k)
    assert resumed.history["image_d_loss"] == straight.history["image_d_loss"]
