"""The aae-np command line end to end on a small synthetic MNIST, and its error paths."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from aae_np.cli import main
from aae_np.models.aae import AAE
from test_data import write_mnist


@pytest.fixture
def mnist_dir(tmp_path, monkeypatch):
    return synthetic_mnist(tmp_path, monkeypatch, n_train=120)


def synthetic_mnist(tmp_path, monkeypatch, n_train: int):
    """A synthetic MNIST folder (60 test images), with $AAE_NP_DATA out of the way."""
    monkeypatch.delenv("AAE_NP_DATA", raising=False)
    folder = tmp_path / "mnist"
    write_mnist(folder, n_train=n_train, n_test=60)
    return folder


def test_train_resume_evaluate_sample_reconstruct_encode(mnist_dir, tmp_path, capsys):
    out = tmp_path / "run"
    common = ["--data-dir", str(mnist_dir)]
    assert main(["-q", "train", *common, "--out", str(out), "--epochs", "1", "--latent-dim", "2"]) == 0
    for name in ["model.npz", "checkpoint.npz", "history.json", "metrics.json", "reconstructions.png",
                 "samples.png", "latent.png", "losses.png", "manifold.png"]:
        assert (out / name).is_file(), name
    assert (out / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) >= {"test_mse", "frechet", "train_seconds"} and metrics["epochs"] == 1
    history = json.loads((out / "history.json").read_text())
    assert history["test_mse"][-1] == metrics["test_mse"]          # one function for both numbers
    seconds = metrics["seconds"]                     # where the process's time went
    assert set(seconds) == {"data", "training", "held_out_per_epoch", "evaluation", "figures"}
    assert all(v > 0 for v in seconds.values()) and seconds["held_out_per_epoch"] < seconds["training"]
    assert "done in" in capsys.readouterr().out

    assert main(["-q", "train", *common, "--out", str(out), "--resume", "--epochs", "2"]) == 0
    assert len(json.loads((out / "history.json").read_text())["test_mse"]) == 2
    assert AAE.load(out / "model.npz").config.latent_dim == 2

    model = str(out / "model.npz")
    assert main(["evaluate", "--model", model, *common, "--json", str(tmp_path / "e.json")]) == 0
    assert main(["sample", "--model", model, "--n", "12", "--out", str(tmp_path / "s.npy")]) == 0
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (12, 784) and (samples > 0).all() and (samples < 1).all()
    assert main(["reconstruct", "--model", model, *common, "--out", str(tmp_path / "r.png")]) == 0
    assert main(["encode", "--model", model, *common, "--out", str(tmp_path / "z.npz"),
                 "--plot", str(tmp_path / "z.png")]) == 0
    codes = np.load(tmp_path / "z.npz")
    assert codes["z"].shape == (60, 2) and codes["labels"].shape == (60,)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_evaluate_matches_training_metrics(mnist_dir, tmp_path, backend, monkeypatch):
    monkeypatch.delenv("AAE_NP_BACKEND", raising=False)
    out = tmp_path / "run"
    assert main(["-q", "--backend", backend, "train", "--data-dir", str(mnist_dir), "--out", str(out),
                 "--epochs", "1"]) == 0
    trained = json.loads((out / "metrics.json").read_text())
    for evaluator, rel in ((backend, 1e-9), ("numpy" if backend == "numba" else "numba", 1e-5)):
        # the same backend: the same numbers; the other: the same up to float32 rounding (the test
        # MSE goes through each backend's own fused sigmoid + MSE, summed in its own order)
        assert main(["-q", "--backend", evaluator, "evaluate", "--model", str(out / "model.npz"),
                     "--data-dir", str(mnist_dir), "--json", str(tmp_path / "e.json")]) == 0
        evaluated = json.loads((tmp_path / "e.json").read_text())
        assert evaluated["test_mse"] == pytest.approx(trained["test_mse"], rel=rel)
        assert evaluated["frechet"] == pytest.approx(trained["frechet"], rel=rel)


def run_cli(*args, env_extra=None):
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("AAE_NP_DATA", "AAE_NP_DEBUG")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "aae_np.cli", *args], capture_output=True, text=True,
                          env=env, timeout=120)


@pytest.mark.parametrize("args, message", [
    (["train", "--data-dir", "/nonexistent/mnist", "--out", "{tmp}/o"], "/nonexistent/mnist"),
    (["train", "--epochs", "0"], "expected a positive integer"),
    (["train", "--lr", "-1"], "expected a positive number"),
    (["train", "--preset", "huge"], "invalid choice: 'huge'"),
    (["train", "--data-dir", "{mnist}", "--out", "{tmp}/fresh", "--resume"], "no checkpoint at"),
    (["sample", "--model", "{tmp}/missing.npz"], "does not exist"),
    (["evaluate", "--model", "{tmp}/junk.npz", "--data-dir", "{mnist}"], "not a readable aae_np model"),
    (["train", "--data-dir", "{tmp}/empty", "--out", "{tmp}/o"], "empty"),
])
def test_bad_input_gives_one_line_and_no_traceback(args, message, mnist_dir, tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"garbage")
    (tmp_path / "empty").mkdir()
    args = [a.format(tmp=tmp_path, mnist=mnist_dir) for a in args]
    result = run_cli(*args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "error" in result.stderr


def test_a_bad_file_found_while_loading_in_the_background_is_one_line(mnist_dir, tmp_path):
    """train loads complete folders on a thread; its errors still end as the usual one line."""
    bad = tmp_path / "bad"
    shutil.copytree(mnist_dir, bad)
    images = next(bad.glob("t10k-images-idx3-ubyte*"))
    images.write_bytes(images.read_bytes()[:-100])
    result = run_cli("train", "--data-dir", str(bad), "--out", str(tmp_path / "o"))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and images.name in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_existing_run_is_not_overwritten_silently(mnist_dir, tmp_path):
    out = tmp_path / "run"
    assert main(["-q", "train", "--data-dir", str(mnist_dir), "--out", str(out), "--epochs", "1"]) == 0
    result = run_cli("-q", "train", "--data-dir", str(mnist_dir), "--out", str(out), "--epochs", "1")
    assert result.returncode == 2 and "already holds a run" in result.stderr


def test_gradcheck_command_passes(capsys):
    assert main(["gradcheck"]) == 0
    out = capsys.readouterr().out
    assert "24/24 checks passed" in out and "WRONG" not in out
    assert "AAE phase 'image_generator'" in out
    assert "semi-supervised phase 'supervised'" in out and "conditioned phase 'discriminator'" in out
