"""Self-training in the semi-supervised variant: VariantTrainConfig.pseudo_labels, pseudo_at."""

import json

import numpy as np
import pytest

from aae_np.models.variants import VariantAAE
from aae_np.train.presets import resolve
from aae_np.train.variant import VariantTrainConfig, VariantTrainer

TINY = dict(input_dim=20, n_classes=4, style_dim=2, encoder_hidden=(16,), decoder_hidden=(16,),
            discriminator_hidden=(8,), seed=3)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    x, y = rng.random((96, 20), dtype=np.float32), np.tile(np.arange(4), 24)
    return x, y, x[:32].copy(), y[:32].copy()


def trainer(data, variant="semi-supervised", out_dir=None, **config):
    x, y, xt, yt = data
    config = {"epochs": 3, "batch_size": 16, "n_labels": 8, "sup_batch_size": 8, **config}
    return VariantTrainer(VariantAAE(**TINY, variant=variant), VariantTrainConfig(**config), x, y, xt, yt,
                          out_dir=out_dir, progress=False)


def test_the_surest_unlabelled_rows_of_each_predicted_class_are_chosen(data, monkeypatch):
    t = trainer(data)
    n = len(t.x_train)
    pred = np.arange(n) % 4
    sure = np.linspace(0.3, 0.9, n)                       # later rows surer
    q = np.full((n, 4), 0.0)
    q[np.arange(n), pred] = sure
    q[np.arange(n), (pred + 1) % 4] = 1 - sure
    monkeypatch.setattr(t.model, "classify", lambda x: q)
    rows, classes = t.surest(3)
    free = np.flatnonzero(t.labels < 0)
    expected = np.concatenate([free[pred[free] == k][-3:] for k in range(4)])
    assert sorted(rows.tolist()) == sorted(expected.tolist())
    assert np.array_equal(classes, pred[rows]) and not np.isin(rows, t.labelled).any()


def test_they_join_the_supervised_phase_at_their_epoch_and_the_true_labels_stay(data):
    t = trainer(data, pseudo_labels=5, pseudo_at=2)
    labelled, true_labels = t.labelled.copy(), t.labels[t.labelled].copy()
    t.fit(2)
    assert len(t.pseudo) == 0 and np.array_equal(t.supervised_rows, labelled)
    rows, classes = t.surest(5)                           # what the next epoch starts by taking
    t.fit()
    assert np.array_equal(t.pseudo, rows) and np.array_equal(t.labels[rows], classes)
    assert np.array_equal(t.labelled, labelled) and np.array_equal(t.labels[labelled], true_labels)
    assert np.array_equal(t.supervised_rows, np.sort(np.concatenate([labelled, rows])))
    assert t.facts()["n_labels"] == 8                     # the true labels, as before


def test_the_supervised_phase_draws_them(data, monkeypatch):
    t = trainer(data, pseudo_labels=5, pseudo_at=1)
    t.fit(1)
    batches = []
    real = t.phase_inputs

    def spy(phase, x, labels):
        out = real(phase, x, labels)
        if phase == "supervised":
            batches.append((out[0], out[1]["labels"]))
        return out
    monkeypatch.setattr(t, "phase_inputs", spy)
    t.fit(2)
    assert len(t.pseudo) > 0
    drawn = np.concatenate([x for x, _ in batches])
    row_of = {t.x_train[r].tobytes(): r for r in range(len(t.x_train))}
    rows = np.array([row_of[x.tobytes()] for x in drawn])
    assert np.isin(rows, t.pseudo).any() and np.isin(rows, t.supervised_rows).all()
    assert np.array_equal(np.concatenate([lab for _, lab in batches]), t.labels[rows])

def test_a_resumed_run_keeps_its_pseudo_labels_and_goes_on_bit_for_bit(data, tmp_path):
    straight = trainer(data, out_dir=tmp_path / "a", pseudo_labels=5, pseudo_at=1)
    straight.fit()
    first = trainer(data, out_dir=tmp_path / "b", pseudo_labels=5, pseudo_at=1)
    first.fit(2)
    x, y, xt, yt = data
    resumed = VariantTrainer.resume(tmp_path / "b" / "checkpoint.npz", x, y, xt, yt, progress=False)
    assert np.array_equal(resumed.pseudo, first.pseudo) and np.array_equal(resumed.labels, first.labels)
    resumed.fit()
    for k, v in straight.model.params.items():
        np.testing.assert_array_equal(resumed.model.params[k], v, err_msg=k)


def test_damaged_pseudo_labels_in_a_checkpoint_are_refused(data, tmp_path):
    t = trainer(data, pseudo_labels=5, pseudo_at=1)
    t.fit(2)
    good = t.extra_state()
    n = len(good["pseudo_rows"])
    assert n > 0 and json.dumps(good)
    for bad in ({**good, "pseudo_classes": good["pseudo_classes"][:-1]},
                {**good, "pseudo_classes": [9] * n},
                {**good, "pseudo_rows": [t.labelled[0], *good["pseudo_rows"][1:]]},   # a truly labelled row
                {**good, "pseudo_rows": [10_000] * n}):
        fresh = trainer(data, pseudo_labels=5, pseudo_at=1)
        with pytest.raises(ValueError, match="pseudo-labels are malformed"):
            fresh.load_extra_state(bad)


def test_settings_are_checked_and_the_papers_recipe_has_none(data):
    with pytest.raises(ValueError, match=r"pseudo_at \(0\) must lie in \[1, epochs = 3\]"):
        VariantTrainConfig(epochs=3, pseudo_labels=5)
    with pytest.raises(ValueError, match="pseudo_labels must be >= 0"):
        VariantTrainConfig(pseudo_labels=-1)
    with pytest.raises(ValueError, match="applies to the semi-supervised variant, not clustering"):
        trainer(data, variant="clustering", n_labels=0, pseudo_labels=5, pseudo_at=1)
    assert resolve(variant="semi-supervised", recipe="paper")[1].pseudo_labels == 0


def test_our_semi_supervised_recipe_self_trains_and_a_shorter_run_at_the_same_share():
    train = resolve(variant="semi-supervised")[1]
    assert (train.pseudo_labels, train.pseudo_at, train.epochs) == (800, 40, 150)
    assert resolve(variant="semi-supervised", epochs=15)[1].pseudo_at == 4
    assert resolve(variant="semi-supervised", epochs=1)[1].pseudo_at == 1
    assert resolve(variant="semi-supervised", recipe="paper")[1].pseudo_labels == 0
    assert resolve(variant="clustering", epochs=7)[1].pseudo_at == 0           # off: left alone
