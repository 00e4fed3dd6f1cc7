"""Trainer: schedules, bit-identical resume, the NaN guard, atomic checkpoints."""

import json

import numpy as np
import pytest

from aae_np.models.aae import AAE
from aae_np.train.trainer import HISTORY_KEYS, TrainConfig, Trainer, TrainingDiverged

TINY = dict(input_dim=20, latent_dim=2, encoder_hidden=(16,), decoder_hidden=(16,),
            discriminator_hidden=(8,), seed=3)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.random((96, 20), dtype=np.float32), rng.random((32, 20), dtype=np.float32)


@pytest.mark.parametrize("schedule", ["phased", "joint"])
def test_training_lowers_reconstruction_and_records_history(data, schedule):
    x, x_test = data
    trainer = Trainer(AAE(**TINY), TrainConfig(epochs=6, batch_size=16, schedule=schedule), x, x_test,
                      progress=False)
    history = trainer.fit()
    assert set(history) == set(HISTORY_KEYS)
    assert all(len(v) == 6 for v in history.values())
    assert all(np.isfinite(v).all() for k, v in history.items())
    if schedule == "phased":      # the joint schedule need not learn: that is the tutorial's failure
        assert history["test_mse"][-1] < history["test_mse"][0]
    assert set(trainer.optimizers) == ({"reconstruction", "discriminator", "generator"}
                                       if schedule == "phased" else {"joint", "discriminator"})


def test_same_seed_same_history(data):
    x, x_test = data
    runs = [Trainer(AAE(**TINY), TrainConfig(epochs=2, batch_size=16), x, x_test, progress=False).fit()
            for _ in range(2)]
    assert runs[0] == runs[1] or all(
        np.array_equal(runs[0][k], runs[1][k]) for k in HISTORY_KEYS if k != "seconds")


def test_resume_is_bit_identical(data, tmp_path):
    x, x_test = data
    config = TrainConfig(epochs=4, batch_size=16)
    straight = Trainer(AAE(**TINY), config, x, x_test, out_dir=tmp_path / "a", progress=False)
    straight.fit()

    first = Trainer(AAE(**TINY), TrainConfig(epochs=4, batch_size=16), x, x_test, out_dir=tmp_path / "b",
                    progress=False)
    first.fit(epochs=2)                                # "crash" after epoch 2
    resumed = Trainer.resume(tmp_path / "b" / "checkpoint.npz", x, x_test, progress=False)
    assert resumed.epoch == 2
    resumed.fit()
    for k, v in straight.model.params.items():
        np.testing.assert_array_equal(resumed.model.params[k], v, err_msg=k)
    for k in HISTORY_KEYS:
        if k != "seconds":
            assert resumed.history[k] == straight.history[k], k
    saved = json.loads((tmp_path / "b" / "history.json").read_text())
    assert saved["test_mse"] == straight.history["test_mse"]


def test_nan_guard_stops_and_keeps_the_last_good_checkpoint(data, tmp_path):
    x, x_test = data
    trainer = Trainer(AAE(**TINY), TrainConfig(epochs=3, batch_size=16), x, x_test, out_dir=tmp_path,
                      progress=False)
    trainer.fit(epochs=1)
    good = (tmp_path / "checkpoint.npz").read_bytes()
    trainer.model.params["decoder.0.W"][0, 0] = np.nan        # something goes badly wrong
    with pytest.raises(TrainingDiverged, match=r"(?i)diverged in (the reconstruction phase of )?epoch 2: .*nan.*checkpoint.npz \(epoch 1\)"):
        trainer.fit()
    assert (tmp_path / "checkpoint.npz").read_bytes() == good
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_checkpoint_write_is_atomic(data, tmp_path, monkeypatch):
    x, _ = data
    trainer = Trainer(AAE(**TINY), TrainConfig(epochs=2, batch_size=16), x, out_dir=tmp_path, progress=False)
    trainer.fit(epochs=1)
    good = (tmp_path / "checkpoint.npz").read_bytes()

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", killed)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    assert (tmp_path / "checkpoint.npz").read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz", "history.json"]


def test_resume_rejects_a_plain_model_file(data, tmp_path):
    x, _ = data
    path = AAE(**TINY).save(tmp_path / "model.npz")
    with pytest.raises(ValueError, match="without trainer state"):
        Trainer.resume(path, x)


@pytest.mark.parametrize("bad, message", [
    (dict(schedule="alternating"), "schedule must be one of"),
    (dict(batch_size=0), "batch_size must be >= 1"),
    (dict(lr_d=0), "lr_d must be > 0"),
])
def test_bad_train_config(bad, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**bad)


def test_wrong_data_shape(data):
    with pytest.raises(ValueError, match=r"x_train has 7 features per row but the model takes 20"):
        Trainer(AAE(**TINY), TrainConfig(), np.zeros((4, 7), np.float32))


def test_linear_lr_decay(data):
    x, _ = data
    trainer = Trainer(AAE(**TINY), TrainConfig(epochs=2, batch_size=16, lr_decay_start=0.5), x, progress=False)
    assert trainer.lr_factor(0.25) == 1.0 and trainer.lr_factor(0.75) == pytest.approx(0.5)
    trainer.fit()
    last = (2 * 6 - 1) / 12                           # progress of the final step
    for phase, opt in trainer.optimizers.items():
        assert opt.rule.lr == pytest.approx(trainer.base_lr[phase] * (1 - last) / 0.5)
    with pytest.raises(ValueError, match="lr_decay_start"):
        TrainConfig(lr_decay_start=1.5)


def test_adv_steps_repeats_the_discriminator_and_generator(data):
    x, _ = data
    trainer = Trainer(AAE(**TINY), TrainConfig(epochs=1, batch_size=96, adv_steps=3), x, progress=False)
    trainer.fit()
    def adam_t(opt):      # Optimizer keeps state per tensor, FlatOptimizer one state for its buffer
        return opt.state["t"] if "t" in opt.state else opt.state[next(iter(opt.state))]["t"]

    steps = {phase: adam_t(opt) for phase, opt in trainer.optimizers.items()}
    assert steps == {"reconstruction": 1, "discriminator": 3, "generator": 3}
    with pytest.raises(ValueError, match="adv_steps must be >= 1"):
        TrainConfig(adv_steps=0)


@pytest.mark.skipif(not __import__("aae_np.fast.kernels", fromlist=["x"]).numba_available(), reason="needs numba")
def test_numpy_and_numba_backends_train_the_same_history(data):
    x, x_test = data
    histories = {}
    for backend in ("numpy", "numba"):
        model = AAE(**TINY, backend=backend)
        histories[backend] = Trainer(model, TrainConfig(epochs=3, batch_size=16), x, x_test,
                                     progress=False).fit()
    for key in ("recon_loss", "d_loss", "g_loss", "test_mse"):
        np.testing.assert_allclose(histories["numba"][key], histories["numpy"][key], rtol=1e-4, err_msg=key)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("options,model_options", [({}, {}), ({"adv_steps": 2}, {}), ({}, {"input_dropout": 0.2})])
def test_reusing_the_encoder_forward_changes_no_bit(data, backend, options, model_options):
    """The generator phase takes the discriminator phase's enc(x): the same numbers, one forward less
    (with input dropout too: the step's phases share one mask)."""
    x, x_test = data
    runs = {}
    for reuse in (False, True):
        trainer = Trainer(AAE(**TINY, backend=backend, **model_options),
                          TrainConfig(epochs=2, batch_size=16, **options), x, x_test, progress=False)
        trainer.reuse_encoder = reuse
        forwards = []
        original = trainer.model.run["encoder"].forward
        trainer.model.run["encoder"].forward = lambda xb: (forwards.append(len(xb)), original(xb))[1]
        trainer.fit()
        runs[reuse] = trainer, len(forwards)
    (plain, n_plain), (reused, n_reused) = runs[False], runs[True]
    for k, v in plain.model.params.items():
        np.testing.assert_array_equal(reused.model.params[k], v, err_msg=k)
    assert reused.history["g_loss"] == plain.history["g_loss"]
    steps = 2 * -(-len(x) // 16)
    assert n_plain - n_reused == steps * options.get("adv_steps", 1)      # one encoder forward less per D-G pair


def test_the_encoder_is_recomputed_unless_the_promise_can_hold():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (8, 20)).astype(np.float32)
    z_prior = rng.standard_normal((8, 2)).astype(np.float32)
    model = AAE(**TINY)
    model.phase_grads("discriminator", x, z_prior=z_prior)
    fresh, _ = AAE(**TINY).phase_grads("generator", x.copy())
    assert model.phase_grads("generator", x.copy(), reuse_encoder=True)[0] == fresh   # another array: recomputed
    noisy = AAE(**TINY, encoder_batchnorm=True)
    noisy.phase_grads("discriminator", x, z_prior=z_prior)
    calls = []
    original = noisy.run["encoder"].forward
    noisy.run["encoder"].forward = lambda xb: (calls.append(1), original(xb))[1]
    noisy.phase_grads("generator", x, reuse_encoder=True)
    assert calls == [1]                          # batch statistics: the promise cannot hold, so no reuse
    dropped = AAE(**TINY, input_dropout=0.5)
    masks = [(rng.random(x.shape) >= 0.5).astype(np.float32) for _ in range(2)]
    dropped.phase_grads("discriminator", x, z_prior=z_prior, dropout_mask=masks[0])
    calls = []
    original = dropped.run["encoder"].forward
    dropped.run["encoder"].forward = lambda xb: (calls.append(1), original(xb))[1]
    other, _ = dropped.phase_grads("generator", x, reuse_encoder=True, dropout_mask=masks[1])
    assert calls == [1]                          # another mask: recomputed ...
    again, _ = dropped.phase_grads("generator", x, reuse_encoder=True, dropout_mask=masks[1])
    assert calls == [1] and again == other       # ... the same x and mask: reused, the same loss


@pytest.mark.parametrize("model_options,shared", [({"input_dropout": 0.2}, True),
                                                  ({"input_dropout": 0.2, "encoder_batchnorm": True}, False)])
def test_one_dropout_mask_per_step_only_where_the_encoder_pass_can_be_shared(data, model_options, shared):
    x, _ = data
    trainer = Trainer(AAE(**TINY, **model_options), TrainConfig(epochs=1, batch_size=16), x, progress=False)
    seen = []
    original = trainer.model.phase_grads
    trainer.model.phase_grads = lambda phase, xb, **kw: (seen.append(kw["dropout_mask"]), original(phase, xb, **kw))[1]
    for _ in range(2):
        trainer.step(x[:16])
    first, second = seen[:3], seen[3:]
    assert len(first) == len(second) == 3                   # reconstruction, discriminator, generator
    assert all(m is first[0] for m in first) == shared and all(m is second[0] for m in second) == shared
    assert not np.array_equal(first[0], second[0])          # a new mask every step
    assert abs(first[0].mean() - 0.8) < 0.05


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("schedule", ["phased", "joint"])
def test_leaving_untrained_gradients_unzeroed_changes_no_bit(data, backend, schedule):
    """The trainer skips zeroing the gradient buffers a phase does not return: the same training."""
    x, x_test = data
    runs = {}
    for zero in (True, False):
        trainer = Trainer(AAE(**TINY, backend=backend), TrainConfig(epochs=2, batch_size=16, schedule=schedule),
                          x, x_test, progress=False)
        trainer.zero_others = zero
        trainer.fit()
        runs[zero] = trainer
    for k, v in runs[True].model.params.items():
        np.testing.assert_array_equal(runs[False].model.params[k], v, err_msg=k)
    for key, values in runs[True].history.items():
        if key != "seconds":
            assert runs[False].history[key] == values, key


def test_zero_others_false_leaves_the_other_buffers_and_true_clears_them():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (8, 20)).astype(np.float32)
    z_prior = rng.standard_normal((8, 2)).astype(np.float32)
    model = AAE(**TINY)
    model.phase_grads("reconstruction", x)
    model.phase_grads("discriminator", x, z_prior=z_prior, zero_others=False)
    assert np.abs(model.grads["encoder.0.W"]).sum() > 0             # the reconstruction's, left as it was
    model.phase_grads("discriminator", x, z_prior=z_prior)
    assert not any(np.any(g) for k, g in model.grads.items() if not k.startswith("discriminator"))
