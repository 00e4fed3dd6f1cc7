"""The mean teacher (``aae_np.train.teacher``): its average, its place in the trainer, its checkpoint."""

import numpy as np
import pytest

from aae_np.models.variants import VariantAAE
from aae_np.train.teacher import Teacher
from aae_np.train.variant import VariantTrainConfig, VariantTrainer

TINY = dict(input_dim=784, n_classes=4, style_dim=2, encoder_hidden=(16,), decoder_hidden=(16,),
            discriminator_hidden=(8,), seed=3, encoder_batchnorm=True)
RUN = dict(epochs=2, batch_size=16, n_labels=8, sup_batch_size=8, consistency=0.05, teacher=0.9)


def semi():
    return VariantAAE(variant="semi-supervised", **TINY)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    x, y = rng.random((96, 784), dtype=np.float32), np.tile(np.arange(4), 24)
    return x, y, x[:32].copy(), y[:32].copy()


def test_the_average_follows_its_formula_and_ramps_up():
    student = semi()
    teacher = Teacher(student, 0.99)
    start = teacher.model.flat_params.copy()
    np.testing.assert_array_equal(start, student.flat_params)
    rng = np.random.default_rng(1)
    for t in range(30):
        student.flat_params[...] = rng.standard_normal(student.flat_params.shape)
        a = min(0.99, (1 + t) / (10 + t))
        assert teacher.rate() == pytest.approx(a)
        expected = a * teacher.model.flat_params.astype(np.float64) + (1 - a) * student.flat_params
        teacher.update()
        np.testing.assert_allclose(teacher.model.flat_params, expected, rtol=1e-5, atol=1e-6)
    assert teacher.steps == 30 and teacher.rate() == pytest.approx(31 / 40)
    key = next(k for k in student.state if k.startswith("encoder."))
    student.state[key][...] = 7.0               # BatchNorm's statistics are copied, not averaged
    teacher.update()
    np.testing.assert_array_equal(teacher.model.state[key], student.state[key])


def test_decay_is_checked():
    for bad in (0.0, 1.0, -0.5):
        with pytest.raises(ValueError, match="decay"):
            Teacher(semi(), bad)
    with pytest.raises(ValueError, match=r"teacher must lie in \[0, 1\)"):
        VariantTrainConfig(teacher=1.0)


def test_the_trainer_targets_and_evaluates_with_the_teacher(data):
    x, y, xt, yt = data
    plain = VariantTrainer(semi(), VariantTrainConfig(**{**RUN, "teacher": 0.0}), x, y, xt, yt, progress=False)
    assert plain.teacher is None and plain.evaluated_model is plain.model
    trainer = VariantTrainer(semi(), VariantTrainConfig(**RUN), x, y, xt, yt, progress=False)
    trainer.fit(epochs=1)
    teacher = trainer.evaluated_model
    assert teacher is trainer.teacher.model and trainer.teacher.steps == 6
    assert not np.array_equal(teacher.flat_params, trainer.model.flat_params)   # it lags behind
    # the consistency target is the teacher's sharpened q(y|x) in evaluation mode
    q = teacher.classify(x[:16]).astype(np.float64) ** 2
    np.testing.assert_allclose(trainer._target(x[:16]), q / q.sum(1, keepdims=True), rtol=1e-4, atol=1e-6)
    assert not np.allclose(trainer.model.classify(x[:16]), teacher.classify(x[:16]))
    # the held-out numbers are the teacher's
    trainer.fit()
    mse = ((teacher.reconstruct(xt, None) - xt) ** 2).mean()
    assert trainer.history["test_mse"][-1] == pytest.approx(mse, rel=1e-5)


def test_resume_continues_the_average_bit_for_bit(data, tmp_path):
    x, y, xt, yt = data
    straight = VariantTrainer(semi(), VariantTrainConfig(**{**RUN, "epochs": 3}), x, y, xt, yt,
                              out_dir=tmp_path / "a", progress=False)
    straight.fit()
    first = VariantTrainer(semi(), VariantTrainConfig(**{**RUN, "epochs": 3}), x, y, xt, yt,
                           out_dir=tmp_path / "b", progress=False)
    first.fit(epochs=1)
    resumed = VariantTrainer.resume(tmp_path / "b" / "checkpoint.npz", x, y, xt, yt, progress=False)
    assert resumed.teacher.steps == 6
    resumed.fit()
    np.testing.assert_array_equal(resumed.teacher.model.flat_params, straight.teacher.model.flat_params)
    np.testing.assert_array_equal(resumed.model.flat_params, straight.model.flat_params)
    assert resumed.history["test_error"] == straight.history["test_error"]


def test_a_checkpoint_without_the_teacher_is_refused(data, tmp_path):
    x, y, xt, yt = data
    trainer = VariantTrainer(semi(), VariantTrainConfig(**RUN), x, y, xt, yt, out_dir=tmp_path, progress=False)
    trainer.fit(epochs=1)
    path = tmp_path / "checkpoint.npz"
    arrays = dict(np.load(path))
    del arrays["teacher/params"]
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="damaged or from another run"):
        VariantTrainer.resume(path, x, y, xt, yt, progress=False)
