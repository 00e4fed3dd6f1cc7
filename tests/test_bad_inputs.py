"""Every documented bad input fails before the first training step, with the message that
docs/your-data.md's table shows for it; a last batch of one row never reaches BatchNorm alone;
advice names only what exists (no --resume without a checkpoint)."""

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from aae_np.cli import main
from aae_np.cli_data import interrupt_message
from aae_np.models.aae import AAE
from aae_np.train.inputs import batch_bounds
from aae_np.train.trainer import TrainConfig, Trainer

DOC = Path(__file__).resolve().parents[1] / "docs" / "your-data.md"
TINY = dict(input_dim=64, latent_dim=2, encoder_hidden=(16,), decoder_hidden=(16,), discriminator_hidden=(16,))


def _rows(n=40, d=64, seed=0):
    return np.random.default_rng(seed).random((n, d)).astype(np.float32)


def _npz(tmp, **arrays):
    path = tmp / "data.npz"
    np.savez(path, **arrays)
    return ["--data", str(path)]


def _with(x, row, value):
    x = x.copy()
    x[row, 5] = value
    return x


def _pngs(tmp):
    folder = tmp / "pngs"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "a.png")
    Image.fromarray(np.zeros((9, 8), np.uint8)).save(folder / "b.png")
    return ["--data", str(folder)]


def _csv(tmp):
    (tmp / "data.csv").write_text("1,2\n")
    return ["--data", str(tmp / "data.csv")]


# id in the docs table -> the command line arguments that give that input (written into tmp)
BAD_INPUTS = {
    "nan-rows": lambda tmp: _npz(tmp, x=_with(_with(_rows(), 3, np.nan), 17, np.nan)),
    "inf-row": lambda tmp: _npz(tmp, x=_with(_rows(), 0, np.inf)),
    "out-of-range": lambda tmp: _npz(tmp, x=_rows() * 255),
    "negative": lambda tmp: _npz(tmp, x=_rows() - 0.5),
    "one-dimensional": lambda tmp: _npz(tmp, x=_rows()[:, 0]),
    "colour-images": lambda tmp: _npz(tmp, x=np.zeros((40, 8, 8, 3), np.float32)),
    "empty": lambda tmp: _npz(tmp, x=np.zeros((0, 64), np.float32)),
    "one-row": lambda tmp: _npz(tmp, x=_rows(1)),
    "strings": lambda tmp: _npz(tmp, x=np.full((40, 64), "0.5")),
    "booleans": lambda tmp: _npz(tmp, x=_rows() > 0.5),
    "complex": lambda tmp: _npz(tmp, x=_rows() + 0j),
    "no-x": lambda tmp: _npz(tmp, data=_rows()),
    "unknown-array": lambda tmp: _npz(tmp, x=_rows(), labels=np.zeros(40, int)),
    "x-test-width": lambda tmp: _npz(tmp, x=_rows(), x_test=_rows(10, 32)),
    "labels-length": lambda tmp: _npz(tmp, x=_rows(), y=np.zeros(39, int)),
    "labels-negative": lambda tmp: _npz(tmp, x=_rows(), y=np.arange(40) % 10 - 1),
    "labels-fractional": lambda tmp: _npz(tmp, x=_rows(), y=np.full(40, 0.5)),
    "labels-text": lambda tmp: _npz(tmp, x=_rows(), y=np.array(["cat", "dog"] * 20)),
    "labels-too-many-classes": lambda tmp: [*_npz(tmp, x=_rows(), y=np.arange(40) % 12),
                                            "--variant", "semi-supervised"],
    "variant-without-labels": lambda tmp: [*_npz(tmp, x=_rows()), "--variant", "clustering"],
    "image-shape-mismatch": lambda tmp: [*_npz(tmp, x=_rows()), "--image-shape", "5,5"],
    "png-sizes": _pngs,
    "unknown-file-type": _csv,
    "missing-path": lambda tmp: ["--data", str(tmp / "nowhere.npz")],
    "batchnorm-batch-of-one": lambda tmp: [*_npz(tmp, x=_rows()), "--encoder-batchnorm", "--batch-size", "1"],
}


def doc_table() -> dict[str, str]:
    """The bad-input table of docs/your-data.md: id -> the message it documents."""
    rows = re.findall(r"^\| `([a-z0-9-]+)` \| .*? \| (.+?) \|$", DOC.read_text(), flags=re.M)
    return {key: message.strip().strip("`").replace("\\|", "|") for key, message in rows}


def test_the_docs_table_lists_every_bad_input_and_only_those():
    assert set(doc_table()) == set(BAD_INPUTS)


@pytest.mark.parametrize("key", sorted(BAD_INPUTS))
def test_a_bad_input_fails_before_training_with_its_documented_message(key, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["-q", "--backend", "numpy", "train", *BAD_INPUTS[key](tmp_path), "--out", str(out),
                 "--epochs", "1", "--latent-dim", "2"])
    captured = capsys.readouterr()
    assert code == 2, captured
    assert "training preset" not in captured.out and not (out / "checkpoint.npz").exists()   # no step was taken
    error = captured.err.strip().splitlines()[-1]
    assert error.startswith("aae-np: error: ") and "Traceback" not in captured.err
    documented = doc_table()[key]
    for part in documented.split(" ... "):
        assert part in error, f"{key}: the docs say {part!r}; the CLI says {error!r}"


@given(n=st.integers(0, 700), batch_size=st.integers(1, 400))
@settings(max_examples=400, deadline=None)
def test_batches_cover_every_row_once_and_never_hold_one_row_after_another(n, batch_size):
    bounds = batch_bounds(n, batch_size)
    rows = [i for start, stop in bounds for i in range(start, stop)]
    assert rows == list(range(n))
    assert all(stop - start <= batch_size + 1 for start, stop in bounds)
    if batch_size > 1 and n > 1:
        assert all(stop - start >= 2 for start, stop in bounds)
    ordinary = -(-n // batch_size)
    assert len(bounds) == (ordinary - 1 if n % batch_size == 1 and n > 1 else ordinary)


@pytest.mark.parametrize("n, batch_size", [(304, 303), (7, 3), (3, 2)])
def test_a_batchnorm_encoder_trains_when_the_last_batch_would_hold_one_row(n, batch_size):
    model = AAE(**{**TINY, "encoder_batchnorm": True}, backend="numpy")
    trainer = Trainer(model, TrainConfig(epochs=1, batch_size=batch_size), _rows(n), progress=False)
    history = trainer.fit()
    assert trainer.epoch == 1 and np.isfinite(history["recon_loss"]).all()


@pytest.mark.parametrize("x, message", [
    (np.full((4, 64), np.nan, np.float32), "x_train has NaN or inf in 4 of 4 rows"),
    (np.zeros((0, 64), np.float32), "x_train is empty: 0 sample(s)"),
    (_rows() * 3 - 1, "x_train holds values in [-0.9994, 1.999]"),
])
def test_the_api_refuses_bad_training_data_before_the_first_step(x, message):
    with pytest.raises(ValueError) as err:
        Trainer(AAE(**TINY, backend="numpy"), TrainConfig(), x, progress=False)
    assert message in str(err.value) and "--lr" not in str(err.value)


def test_an_empty_array_through_a_batchnorm_encoder_gives_no_codes_not_an_attribute_error():
    model = AAE(**{**TINY, "encoder_batchnorm": True}, backend="numpy")
    assert model.encode(np.zeros((0, 64), np.float32)).shape == (0, 2)


def test_divergence_before_any_checkpoint_does_not_advise_resume(tmp_path, capsys):
    path = tmp_path / "data.npz"
    np.savez(path, x=_rows(200))
    code = main(["-q", "--backend", "numpy", "train", "--data", str(path), "--out", str(tmp_path / "run"),
                 "--epochs", "1", "--lr", "1e6"])
    err = capsys.readouterr().err
    assert code == 3 and "diverged" in err
    assert "--resume" not in err and "No checkpoint was written" in err


def test_fit_past_the_schedule_refuses_and_says_how_to_extend():
    trainer = Trainer(AAE(**TINY, backend="numpy"), TrainConfig(epochs=1), _rows(), progress=False)
    with pytest.raises(ValueError, match=r"fit\(3\) goes past this trainer's schedule of 1 epochs.*epochs=3"):
        trainer.fit(3)
    assert trainer.epoch == 0


def test_an_interrupt_mentions_the_checkpoint_only_when_there_is_one(tmp_path):
    from argparse import Namespace

    args = Namespace(command="train", out=str(tmp_path))
    assert "no checkpoint was written" in interrupt_message(args) and "--resume" not in interrupt_message(args)
    (tmp_path / "checkpoint.npz").write_bytes(b"")
    assert "--resume continues" in interrupt_message(args)
    assert interrupt_message(Namespace(command="evaluate")) == "aae-np: interrupted"
