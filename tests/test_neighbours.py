"""The consistency phase's neighbour views (``aae_np.train.neighbours``): the nearest rows by cosine
similarity, checked against a brute-force sort, and the trainer drawing each view from the row or
one of its neighbours."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aae_np.fast.kernels import numba_available
from aae_np.train.neighbours import nearest_neighbours, neighbour_rows
from test_consistency import tiny_trainer


def brute_force(x, k):
    f = x / np.linalg.norm(x, axis=1, keepdims=True)
    sim = f @ f.T
    np.fill_diagonal(sim, -np.inf)
    return np.argsort(-sim, axis=1, kind="stable")[:, :k]


@settings(max_examples=25, deadline=None)
@given(n=st.integers(3, 40), k=st.integers(1, 5), chunk=st.integers(1, 50), seed=st.integers(0, 10_000))
def test_the_nearest_rows_by_cosine_nearest_first_never_the_row_itself_in_any_chunking(n, k, chunk, seed):
    k = min(k, n - 1)
    x = np.random.default_rng(seed).random((n, 7))          # continuous: no ties
    table = nearest_neighbours(x, k, chunk=chunk)
    assert table.shape == (n, k) and table.dtype == np.int64
    assert not (table == np.arange(n)[:, None]).any()
    np.testing.assert_array_equal(table, brute_force(x, k))


def test_an_image_finds_its_brighter_copy_before_other_images():
    rng = np.random.default_rng(1)
    x = rng.random((20, 784))
    x[10] = 2.0 * x[3]                                     # the same direction: cosine 1
    assert nearest_neighbours(x, 1)[3, 0] == 10 and nearest_neighbours(x, 1)[10, 0] == 3


@pytest.mark.parametrize("x,k", [(np.ones((5, 3)), 5), (np.ones((5, 3)), 0), (np.ones(5), 1)])
def test_bad_sizes_are_refused(x, k):
    with pytest.raises(ValueError, match="nearest_neighbours: x must be"):
        nearest_neighbours(x, k)


def test_neighbour_rows_draw_the_row_or_each_neighbour_evenly():
    table = np.array([[1, 2], [2, 0], [0, 1]])
    rows = np.zeros(30_000, np.int64)
    drawn = neighbour_rows(rows, table, np.random.default_rng(0))
    counts = np.bincount(drawn, minlength=3) / len(drawn)
    np.testing.assert_allclose(counts, 1 / 3, atol=0.01)
    assert set(neighbour_rows(np.array([1] * 50), table, np.random.default_rng(1))) == {1, 2, 0}


def test_the_trainer_draws_each_view_from_the_row_or_its_neighbours_and_only_when_asked():
    from aae_np.train.variant import VariantTrainConfig

    plain = dict(shift=0, rotate=0, scale=0)                # views are the images themselves
    trainer, x = tiny_trainer(neighbours=3, **plain)
    table = nearest_neighbours(x, 3)
    np.testing.assert_array_equal(trainer.neighbours, table)
    rows = np.arange(5, 25)
    trainer.batch_rows = rows
    xb, inputs = trainer.phase_inputs("consistency", x[rows], None)
    np.testing.assert_array_equal(xb, x[rows])             # the target is still the row's own q(y|x)
    allowed = np.concatenate([rows[:, None], table[rows]], axis=1)
    found = [np.flatnonzero((x == view).all(axis=1)) for view in inputs["x_in"]]
    assert all(len(f) == 1 and f[0] in allowed[i] for i, f in enumerate(found))
    assert any(f[0] != rows[i] for i, f in enumerate(found))     # some views are neighbours
    off, _ = tiny_trainer(**plain)
    assert off.neighbours is None
    off.batch_rows = rows
    np.testing.assert_array_equal(off.phase_inputs("consistency", x[rows], None)[1]["x_in"], x[rows])
    assert np.isfinite(trainer.train_epoch()["consistency_loss"])
    with pytest.raises(ValueError, match="neighbours must be >= 0"):
        VariantTrainConfig(neighbours=-1)
    with pytest.raises(ValueError, match=r"neighbours_at \(2\) must lie in \[0, epochs = 3\] and needs neighbours"):
        VariantTrainConfig(epochs=3, neighbours_at=2)
    assert trainer.batch_rows is None                  # after an epoch: a step on its own has no rows


def clustering_trainer(out_dir=None, **config):
    from aae_np.models.variants import VariantAAE
    from aae_np.train.variant import VariantTrainConfig, VariantTrainer

    rng = np.random.default_rng(0)
    x, y = rng.random((40, 784), dtype=np.float32), rng.integers(0, 10, 40)
    tiny = dict(input_dim=784, n_classes=4, style_dim=2, encoder_hidden=(8, 6), decoder_hidden=(8,),
                discriminator_hidden=(8,), variant="clustering", encoder_batchnorm=True, input_dropout=0.2)
    config = VariantTrainConfig(**{"epochs": 3, "batch_size": 20, "n_labels": 0, "consistency": 0.01,
                                   "neighbours": 3, **config})
    return VariantTrainer(VariantAAE(**tiny), config, x, y, out_dir=out_dir, progress=False), x, y


@pytest.mark.parametrize("backend", ["numpy"] + (["numba"] if numba_available() else []))
def test_the_hidden_layer_is_what_the_heads_read_in_evaluation_mode(backend):
    trainer, x, _ = clustering_trainer()
    model = trainer.model
    model.set_backend(backend)
    trainer.fit(1)                                         # running statistics that are not the initial ones
    h = model.hidden("encoder", x, batch_size=7)
    assert h.shape == (40, 6)
    last = model.nets["encoder"].layers
    out = h
    for layer in last[max(i for i, layer in enumerate(last) if hasattr(layer, "out_dim")):]:
        out = layer.forward(out)
    np.testing.assert_allclose(out, model._encoder_out(x, 2048), rtol=1e-5, atol=1e-6)


def assert_resumes_bit_for_bit(checkpoint, straight, x, y, check) -> None:
    """The run resumed from ``checkpoint`` passes ``check`` and ends with the weights of ``straight``
    (the same run trained without a stop), bit for bit."""
    from aae_np.train.variant import VariantTrainer

    straight.fit()
    resumed = VariantTrainer.resume(checkpoint, x, y, progress=False)
    check(resumed)
    resumed.fit()
    for k, v in straight.model.params.items():
        np.testing.assert_array_equal(resumed.model.params[k], v, err_msg=k)


def test_neighbours_are_mined_from_the_encoder_at_their_epoch_and_a_resumed_run_keeps_them(tmp_path):
    trainer, x, y = clustering_trainer(out_dir=tmp_path / "a", neighbours_at=1)
    pixels = nearest_neighbours(x, 3)
    trainer.fit(1)
    np.testing.assert_array_equal(trainer.neighbours, pixels)     # epoch 1 has not begun
    mined = nearest_neighbours(trainer.model.hidden("encoder", x), 3)
    assert not np.array_equal(mined, pixels)
    trainer.fit(2)
    np.testing.assert_array_equal(trainer.neighbours, mined)
    straight, *_ = clustering_trainer(out_dir=tmp_path / "b", neighbours_at=1)
    assert_resumes_bit_for_bit(tmp_path / "a" / "checkpoint.npz", straight, x, y,
                               lambda resumed: np.testing.assert_array_equal(resumed.neighbours, mined))
    good = trainer.extra_state()
    for bad in ([[0, 1]] * 40, [[99, 0, 1]] * 40, [[0.5, 1, 2]] * 40):
        fresh, *_ = clustering_trainer(neighbours_at=1)
        with pytest.raises(ValueError, match="neighbours are malformed"):
            fresh.load_extra_state({**good, "neighbour_rows": bad})
