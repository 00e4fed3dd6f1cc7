"""Your own data through the command line: train, encode, evaluate and reconstruct on (a) an
.npz of 64-feature rows without labels, (b) 8x8 images with labels, (c) a folder of PNGs; the
model's record of its data; IDX folders named by their content."""

import json

import numpy as np
import pytest
from PIL import Image

from aae_np.cli import main
from aae_np.cli_data import read_record
from test_data import write_idx

COMMON = ["-q", "--backend", "numpy"]


def run_all(tmp_path, capsys, data_args, expect_images: bool, expect_labels: bool):
    """train (1 epoch), encode, evaluate, reconstruct; returns the model path and the outputs."""
    out = tmp_path / "run"
    assert main([*COMMON, "train", *data_args, "--out", str(out), "--epochs", "1", "--batch-size", "32"]) == 0
    train = capsys.readouterr()
    model = out / "model.npz"
    assert (out / "latent.png").is_file() and (out / "losses.png").is_file()      # always drawn
    assert (out / "reconstructions.png").is_file() == expect_images
    assert (out / "samples.png").is_file() == expect_images
    if not expect_images:
        assert "skipped reconstructions.png, samples.png (the rows are not images" in train.err
    if not expect_labels:
        assert "skipped label colours in latent.png (no labels)" in train.err

    assert main([*COMMON, "encode", "--model", str(model), "--out", str(tmp_path / "z.npz"),
                 "--plot", str(tmp_path / "z.png")]) == 0           # no data options: the model's own
    with np.load(tmp_path / "z.npz") as z:
        assert z["z"].shape[1] == 5 and ("labels" in z.files) == expect_labels
    assert (tmp_path / "z.png").is_file()
    encode = capsys.readouterr()
    assert ("no labels: none saved" in encode.out) != expect_labels

    assert main([*COMMON, "evaluate", "--model", str(model), "--json", str(tmp_path / "e.json")]) == 0
    numbers = json.loads((tmp_path / "e.json").read_text())
    assert numbers["test_mse"] == pytest.approx(json.loads((out / "metrics.json").read_text())["test_mse"])

    target = tmp_path / ("r.png" if expect_images else "r.npz")
    assert main([*COMMON, "reconstruct", "--model", str(model), "--out", str(target)]) == 0
    assert target.is_file()
    if not expect_images:             # a PNG of rows that are not images is refused, naming the way out
        assert main([*COMMON, "reconstruct", "--model", str(model), "--out", str(tmp_path / "r.png")]) == 2
        assert "write the reconstructed rows with --out FILE.npz" in capsys.readouterr().err
    capsys.readouterr()
    return model


def test_a_64_feature_npz_without_labels(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = np.tanh(rng.standard_normal((300, 3)) @ rng.standard_normal((3, 64))) * 4 + 2     # not in [0, 1]
    np.savez(tmp_path / "sensors.npz", x=x)
    args = ["--data", str(tmp_path / "sensors.npz")]
    assert main([*COMMON, "train", *args, "--out", str(tmp_path / "refused"), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "outside [0, 1]" in err and "--scale minmax" in err and f"[{x.min():.4g}, {x.max():.4g}]" in err
    model = run_all(tmp_path, capsys, [*args, "--scale", "minmax", "--image-shape", "none"], False, False)
    record = read_record(model)
    assert record["name"] == "sensors" and record["features"] == 64 and record["labels"] is False
    assert record["scaling"]["kind"] == "minmax" and len(record["scaling"]["low"]) == 64
    assert record["image_shape"] is None and record["rows"] == 270 and record["test_rows"] == 30


def test_8x8_images_with_labels(tmp_path, capsys):
    from sklearn.datasets import load_digits

    digits = load_digits()                   # 8x8 grey levels 0..16, labels 0..9
    np.savez(tmp_path / "digits.npz", x=digits.images[:250], y=digits.target[:250],
             x_test=digits.images[250:300], y_test=digits.target[250:300])
    model = run_all(tmp_path, capsys, ["--data", str(tmp_path / "digits.npz"), "--scale", "minmax-all"],
                    True, True)
    record = read_record(model)
    assert record["image_shape"] == [8, 8] and record["scaling"]["high"] == [16.0]

    # another dataset of the same width: refused, unless --other-data
    np.savez(tmp_path / "other.npz", x=digits.images[300:400] / 16)
    assert main([*COMMON, "encode", "--model", str(model), "--data", str(tmp_path / "other.npz"),
                 "--out", str(tmp_path / "z2.npy")]) == 2
    err = capsys.readouterr().err
    assert "was trained on digits" in err and "--other-data" in err
    assert main([*COMMON, "encode", "--model", str(model), "--data", str(tmp_path / "other.npz"),
                 "--other-data", "--out", str(tmp_path / "z2.npy")]) == 0
    assert "not the rows" in capsys.readouterr().err and np.load(tmp_path / "z2.npy").shape == (10, 5)
    # another width: refused, no override
    np.savez(tmp_path / "wide.npz", x=np.zeros((10, 100)))
    assert main([*COMMON, "evaluate", "--model", str(model), "--data", str(tmp_path / "wide.npz"),
                 "--other-data"]) == 2
    err = capsys.readouterr().err
    assert "wide.npz has 100 features per row; it cannot read them" in err


def test_a_folder_of_pngs(tmp_path, capsys):
    folder = tmp_path / "faces"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(120):                     # 12x10 (not square): blobs at random places
        im = np.zeros((12, 10), np.uint8)
        r, c = rng.integers(0, 9), rng.integers(0, 7)
        im[r:r + 4, c:c + 4] = 255
        Image.fromarray(im).save(folder / f"{i:03d}.png")
    model = run_all(tmp_path, capsys, ["--data", str(folder)], True, False)
    record = read_record(model)
    assert record["image_shape"] == [12, 10] and record["name"] == "faces" and record["features"] == 120
    with Image.open(tmp_path / "run" / "samples.png") as im:
        assert im.size[0] > 0


def _idx_folder(folder, train_labels, test_labels, black: float, n=40, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir()
    for stem, labels in (("train", train_labels), ("t10k", test_labels)):
        images = (rng.integers(1, 256, (n, 28, 28)) * (rng.random((n, 28, 28)) > black)).astype(np.uint8)
        write_idx(folder / f"{stem}-images-idx3-ubyte", images)
        y = np.concatenate([labels, rng.integers(0, 10, n - len(labels))]).astype(np.uint8)
        write_idx(folder / f"{stem}-labels-idx1-ubyte", y)


def test_an_idx_folder_is_named_by_its_content_and_a_model_refuses_the_other(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("AAE_NP_DATA", raising=False)
    fashion, digits = tmp_path / "f", tmp_path / "m"
    _idx_folder(fashion, [9, 0, 0, 3, 0, 2, 7, 2, 5, 5], [9, 2, 1, 1, 6, 1, 4, 6, 5, 7], black=0.5)
    _idx_folder(digits, [], [], black=0.8, seed=1)              # no signature: named by its black pixels
    out = tmp_path / "run"
    assert main([*COMMON, "train", "--data-dir", str(fashion), "--out", str(out), "--epochs", "1"]) == 0
    captured = capsys.readouterr()
    assert "of fashion-mnist" in captured.out
    assert read_record(out / "model.npz")["name"] == "fashion-mnist"
    assert main([*COMMON, "evaluate", "--model", str(out / "model.npz"), "--data-dir", str(digits)]) == 2
    err = capsys.readouterr().err
    assert "was trained on fashion-mnist" in err and "is mnist" in err and "--other-data" in err
    assert main([*COMMON, "evaluate", "--model", str(out / "model.npz"), "--data-dir", str(digits),
                 "--other-data"]) == 0
    # the flag says mnist, the content says fashion-mnist: the content wins, and says so
    assert main([*COMMON, "train", "--data-dir", str(fashion), "--dataset", "mnist", "--out",
                 str(tmp_path / "run2"), "--epochs", "1"]) == 0
    captured = capsys.readouterr()
    assert "of fashion-mnist" in captured.out and "not mnist" in captured.err
