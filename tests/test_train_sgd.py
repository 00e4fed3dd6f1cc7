"""The paper's optimizer (SGD with momentum, per-phase momentum) and step decay of the learning rates."""

import numpy as np
import pytest

from aae_np.models.aae import AAE
from aae_np.nn.optim import Adam, Momentum
from aae_np.train.trainer import TrainConfig, Trainer

TINY = dict(input_dim=20, latent_dim=2, encoder_hidden=(16,), decoder_hidden=(16,),
            discriminator_hidden=(8,), seed=3, dtype="float64")
SGD = dict(optimizer="momentum", lr_ae=0.01, lr_d=0.1, lr_g=0.1, momentum_ae=0.9, momentum_adv=0.1)


@pytest.fixture
def x():
    return np.random.default_rng(0).random((64, 20))


def test_momentum_rules_per_phase(x):
    trainer = Trainer(AAE(**TINY), TrainConfig(epochs=1, batch_size=32, **SGD), x, progress=False)
    rules = {phase: opt.rule for phase, opt in trainer.optimizers.items()}
    assert rules == {"reconstruction": Momentum(lr=0.01, momentum=0.9),
                     "discriminator": Momentum(lr=0.1, momentum=0.1),
                     "generator": Momentum(lr=0.1, momentum=0.1)}
    assert isinstance(Trainer(AAE(**TINY), TrainConfig(), x, progress=False).optimizers["generator"].rule, Adam)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_two_momentum_steps_are_the_heavy_ball_formula(x, backend):
    """Reconstruction phase twice on the same batch: p2 = p1 - lr (mu g0 + g1), p1 = p0 - lr g0."""
    model = AAE(**TINY, backend=backend)
    trainer = Trainer(model, TrainConfig(epochs=1, batch_size=32, **SGD), x, progress=False)
    opt = trainer.optimizers["reconstruction"]
    p0 = {k: v.copy() for k, v in model.params.items()}
    _, g0 = model.phase_grads("reconstruction", x[:32])
    g0 = {k: v.copy() for k, v in g0.items()}
    opt.step(g0)
    _, g1 = model.phase_grads("reconstruction", x[:32])
    g1 = {k: v.copy() for k, v in g1.items()}
    opt.step(g1)
    for k in g0:
        np.testing.assert_allclose(model.params[k], p0[k] - 0.01 * g0[k] - 0.01 * (0.9 * g0[k] + g1[k]),
                                   rtol=1e-12, atol=1e-14, err_msg=k)


def test_step_decay_divides_every_rate_by_ten_after_each_listed_epoch(x):
    trainer = Trainer(AAE(**TINY), TrainConfig(epochs=5, batch_size=32, decay_epochs=(2, 4), **SGD), x,
                      progress=False)
    seen = []
    trainer.fit(on_epoch=lambda t, _: seen.append({p: o.rule.lr for p, o in t.optimizers.items()}))
    # the rates used during epochs 1..5 (recorded after each): x1, x1, x0.1, x0.1, x0.01
    factors = [s["generator"] / 0.1 for s in seen]
    np.testing.assert_allclose(factors, [1, 1, 0.1, 0.1, 0.01], rtol=1e-12)
    assert seen[-1]["reconstruction"] == pytest.approx(0.01 * 0.01)


def test_momentum_run_resumes_bit_identically(x, tmp_path):
    config = dict(epochs=4, batch_size=16, decay_epochs=(3,), **SGD)
    straight = Trainer(AAE(**TINY), TrainConfig(**config), x, out_dir=tmp_path / "a", progress=False)
    straight.fit()
    first = Trainer(AAE(**TINY), TrainConfig(**config), x, out_dir=tmp_path / "b", progress=False)
    first.fit(epochs=2)
    resumed = Trainer.resume(tmp_path / "b" / "checkpoint.npz", x, progress=False)
    assert resumed.config.decay_epochs == (3,) and resumed.config.optimizer == "momentum"
    resumed.fit()
    for k, v in straight.model.params.items():
        np.testing.assert_array_equal(resumed.model.params[k], v, err_msg=k)


@pytest.mark.parametrize("bad, message", [
    (dict(optimizer="rmsprop"), "optimizer must be one of"),
    (dict(momentum_adv=1.0), "momentum_ae and momentum_adv"),
    (dict(decay_epochs=(5, 2)), "decay_epochs must be increasing"),
    (dict(decay_epochs=(0,)), "decay_epochs must be increasing"),
])
def test_bad_optimizer_settings(bad, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**bad)
