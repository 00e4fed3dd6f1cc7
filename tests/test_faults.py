"""Fault injection: crafted and damaged files, killed and concurrent runs, a full disk, logs.

Every case ends in one ``aae-np: error:`` line (exit 2) or works; nothing crashes (no exit 134 or
139 from the numba kernels), nothing is lost. The command line runs in subprocesses, as a user
runs it, on a small synthetic MNIST (``tests/test_data.write_mnist``).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from aae_np.models import AAE
from test_data import write_mnist

TINY = ["--preset", "tutorial", "--batch-size", "40"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults") / "mnist"
    write_mnist(folder, n_train=120, n_test=60)
    return folder


def cli(*args, env=None, timeout=180, wait=True):
    full_env = {k: v for k, v in os.environ.items() if k not in ("AAE_NP_DATA", "AAE_NP_DEBUG")}
    full_env.update(env or {})
    command = [sys.executable, "-m", "aae_np.cli", "--threads", "1", *map(str, args)]
    if not wait:
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env)
    return subprocess.run(command, capture_output=True, text=True, env=full_env, timeout=timeout)


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aae-np: error:"), result.stderr[-2000:]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def train(data_dir, out, *extra):
    result = cli("-q", "train", "--data-dir", data_dir, "--out", out, *TINY, *extra)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


@pytest.fixture(scope="module")
def run(tmp_path_factory, data_dir):
    """A finished 1-epoch run, copied by each test that damages it."""
    out = tmp_path_factory.mktemp("run") / "r"
    train(data_dir, out, "--epochs", "1")
    return out


def damaged(run, tmp_path, change):
    """A copy of the run whose checkpoint.npz went through ``change(arrays)``."""
    out = tmp_path / "r"
    shutil.copytree(run, out)
    arrays = dict(np.load(out / "checkpoint.npz"))
    change(arrays)
    np.savez(out / "checkpoint.npz", **arrays)
    return out


def cut_moments(arrays):
    for key in [k for k in arrays if k.startswith("optim/") and k.endswith(("/m", "/v"))]:
        arrays[key] = arrays[key].reshape(-1)[:10]


@pytest.mark.parametrize("change, fragments", [
    (cut_moments, ("optimizer state", "expected floats of shape")),
    (lambda a: a.pop("param/encoder.0.W"), ("param/encoder.0.W is missing",)),
    (lambda a: a.update(__trainer__=np.array(json.dumps({**json.loads(str(a["__trainer__"])), "epoch": "x"}))),
     ("malformed epoch",)),
    (lambda a: a.update(__trainer__=np.array("{not json")), ("not JSON",)),
    (lambda a: a.update({"optim/reconstruction/t": np.array(1.5)}), ("step count",)),
])
def test_a_damaged_checkpoint_is_one_clear_line_not_a_crash(run, tmp_path, data_dir, change, fragments):
    out = damaged(run, tmp_path, change)
    result = cli("train", "--data-dir", data_dir, "--out", out, "--resume", "--epochs", "2")
    assert_one_line_error(result, "checkpoint.npz", *fragments)


def test_flipped_bytes_and_huge_configs_in_a_model_file(run, tmp_path, data_dir):
    raw = bytearray((run / "model.npz").read_bytes())
    raw[len(raw) // 2] ^= 0xFF                                     # inside a parameter's data
    (tmp_path / "flipped.npz").write_bytes(bytes(raw))
    assert_one_line_error(cli("evaluate", "--model", tmp_path / "flipped.npz", "--data-dir", data_dir),
                          "flipped.npz", "not a readable aae_np model file")
    arrays = dict(np.load(run / "model.npz"))
    config = json.loads(str(arrays["__config__"]))
    arrays["__config__"] = np.array(json.dumps({**config, "encoder_hidden": [1_000_000, 1_000_000]}))
    np.savez(tmp_path / "huge.npz", **arrays)
    start = time.perf_counter()
    assert_one_line_error(cli("sample", "--model", tmp_path / "huge.npz", "--out", tmp_path / "s.png"),
                          "huge.npz", "GiB")
    assert time.perf_counter() - start < 30                      # refused from the config, nothing allocated


def test_unbounded_requests_are_refused(run, tmp_path):
    assert_one_line_error(cli("sample", "--model", run / "model.npz", "--n", "1000000000", "--out", tmp_path / "s.npy"),
                          "--n 1000000000")
    model = AAE.load(run / "model.npz")
    for bad in (-1, 0, 2.5):
        with pytest.raises(ValueError, match="batch_size must be a positive integer"):
            model.encode(np.zeros((3, 784)), batch_size=bad)


def test_train_never_overwrites_a_run_silently(run, tmp_path, data_dir):
    out = tmp_path / "r"
    shutil.copytree(run, out)
    (out / "checkpoint.npz").unlink()                              # model, metrics, figures: still a run
    before = (out / "model.npz").read_bytes()
    assert_one_line_error(cli("train", "--data-dir", data_dir, "--out", out, *TINY, "--epochs", "1"),
                          "already holds a run", "--overwrite")
    assert (out / "model.npz").read_bytes() == before
    (tmp_path / "a-file").write_text("keep me")
    assert_one_line_error(cli("train", "--data-dir", data_dir, "--out", tmp_path / "a-file"), "is a file")
    assert (tmp_path / "a-file").read_text() == "keep me"


def test_overwrite_replaces_a_planted_symlink_not_its_target(run, tmp_path, data_dir):
    out = tmp_path / "r"
    shutil.copytree(run, out)
    target = tmp_path / "precious.txt"
    target.write_text("precious")
    (out / "metrics.json").unlink()
    (out / "metrics.json").symlink_to(target)
    train(data_dir, out, "--epochs", "1", "--overwrite")
    assert target.read_text() == "precious"
    assert not (out / "metrics.json").is_symlink() and "test_mse" in json.loads((out / "metrics.json").read_text())


def test_a_second_run_into_the_same_folder_fails_at_once(tmp_path, data_dir):
    out = tmp_path / "r"
    first = cli("-q", "train", "--data-dir", data_dir, "--out", out, *TINY, "--epochs", "40", wait=False)
    for _ in range(600):                                           # until the first run holds the folder
        if (out / ".aae-np.lock").exists() and (out / ".aae-np.lock").read_text().strip():
            break
        time.sleep(0.05)
    start = time.perf_counter()
    second = cli("-q", "train", "--data-dir", data_dir, "--out", out, *TINY, "--epochs", "1", "--overwrite")
    assert_one_line_error(second, "in use by another aae-np run")
    assert time.perf_counter() - start < 30
    first.send_signal(signal.SIGKILL)                              # its lock dies with it ...
    first.wait(timeout=60)
    train(data_dir, out, "--epochs", "1", "--overwrite")           # ... so the folder is free again


@pytest.mark.parametrize("first, second", [("numba", "numpy"), ("numpy", "numba")])
def test_checkpoints_resume_on_either_backend(tmp_path, data_dir, first, second):
    out = tmp_path / "r"
    assert cli("-q", "--backend", first, "train", "--data-dir", data_dir, "--out", out, *TINY,
               "--epochs", "1").returncode == 0
    result = cli("-q", "--backend", second, "train", "--data-dir", data_dir, "--out", out, "--resume",
                 "--epochs", "2")
    assert result.returncode == 0, result.stderr
    history = json.loads((out / "history.json").read_text())
    assert len(history["test_mse"]) == 2 and np.isfinite(history["test_mse"]).all()
    assert history["resumes"] == [{"epoch": 1, "epochs": 2}]


def test_an_older_flat_checkpoint_still_resumes_bit_identically(run, tmp_path, data_dir):
    """Checkpoints written before the per-tensor format (one flat buffer per optimizer)."""
    reference = tmp_path / "reference"
    shutil.copytree(run, reference)

    def to_flat(arrays):
        model = AAE.load(run / "model.npz", backend="numpy")
        for phase, nets in (("reconstruction", ("encoder", "decoder")), ("discriminator", ("discriminator",)),
                            ("generator", ("encoder",))):
            names = list(model.params_of(*nets))
            arrays[f"optim/{phase}/flat/t"] = arrays.pop(f"optim/{phase}/t")
            for key in ("m", "v"):
                arrays[f"optim/{phase}/flat/{key}"] = np.concatenate(
                    [arrays.pop(f"optim/{phase}/{n}/{key}").reshape(-1) for n in names])

    old = damaged(run, tmp_path / "old", to_flat)
    for out in (reference, old):
        assert cli("-q", "train", "--data-dir", data_dir, "--out", out, "--resume", "--epochs", "2").returncode == 0
    a, b = np.load(reference / "model.npz"), np.load(old / "model.npz")
    assert all(np.array_equal(a[k], b[k]) for k in a.files)


def test_resume_refuses_settings_it_cannot_change_and_applies_lr(run, tmp_path, data_dir):
    out = tmp_path / "r"
    shutil.copytree(run, out)
    assert_one_line_error(cli("train", "--data-dir", data_dir, "--out", out, "--resume", "--batch-size", "64"),
                          "--batch-size 64 (the run has 40)")
    assert_one_line_error(cli("train", "--data-dir", data_dir, "--out", out, "--resume", "--latent-dim", "3"),
                          "--latent-dim 3")
    assert_one_line_error(cli("train", "--data-dir", data_dir, "--out", out, "--resume", "--preset", "default"),
                          "--preset cannot change")
    same = cli("-q", "train", "--data-dir", data_dir, "--out", out, "--resume", "--batch-size", "40",
               "--epochs", "2", "--lr", "1e-4")
    assert same.returncode == 0, same.stderr
    history = json.loads((out / "history.json").read_text())
    assert history["resumes"] == [{"epoch": 1, "epochs": 2, "lr": 1e-4}]
    saved = json.loads(str(np.load(out / "checkpoint.npz")["__trainer__"]))["train_config"]
    assert saved["lr_ae"] == saved["lr_d"] == saved["lr_g"] == 1e-4


def test_killed_at_random_moments_and_resumed_equals_an_uninterrupted_run(tmp_path, data_dir):
    straight = tmp_path / "straight"
    train(data_dir, straight, "--epochs", "6")
    out = tmp_path / "killed"
    rng = np.random.default_rng(7)
    for attempt in range(4):
        resume = (out / "checkpoint.npz").exists()
        args = ["-q", "train", "--data-dir", data_dir, "--out", out, *TINY, "--epochs", "6"]
        process = cli(*args, *(["--resume"] if resume else ["--overwrite"]), wait=False)
        time.sleep(rng.uniform(0.5, 4.0))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        if process.returncode == 0:
            break
    if not (out / "model.npz").exists():                           # finish what the kills left
        finish = cli("-q", "train", "--data-dir", data_dir, "--out", out, *TINY, "--epochs", "6",
                     *(["--resume"] if (out / "checkpoint.npz").exists() else ["--overwrite"]))
        assert finish.returncode == 0, finish.stderr
    a, b = np.load(straight / "model.npz"), np.load(out / "model.npz")
    assert all(np.array_equal(a[k], b[k]) for k in a.files)
    ha, hb = (json.loads((d / "history.json").read_text()) for d in (straight, out))
    assert all(ha[k] == hb[k] for k in ha if k != "seconds")
    assert not list(out.glob(".*.tmp"))


def test_temp_files_of_killed_writes_are_removed(run, tmp_path, data_dir):
    out = tmp_path / "r"
    shutil.copytree(run, out)
    for name in (".checkpoint.npz.x1.tmp", ".model.npz.x2.tmp"):
        (out / name).write_bytes(b"half a file")
    (out / "notes.tmp").write_text("not ours")
    assert cli("-q", "train", "--data-dir", data_dir, "--out", out, "--resume", "--epochs", "2").returncode == 0
    assert not list(out.glob(".*.tmp")) and (out / "notes.tmp").exists()


def test_a_log_gets_one_line_an_epoch_and_no_progress_bars(tmp_path, data_dir):
    result = cli("train", "--data-dir", data_dir, "--out", tmp_path / "r", *TINY, "--epochs", "3")
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stdout + result.stderr and "%|" not in result.stderr   # no bar frames
    assert sum(line.startswith("epoch ") for line in result.stdout.splitlines()) == 3


def test_a_run_that_went_wrong_ends_with_a_warning(tmp_path, data_dir):
    out = tmp_path / "r"
    result = cli("-q", "train", "--data-dir", data_dir, "--out", out, *TINY, "--epochs", "2", "--lr", "1e3")
    if result.returncode == 3:                                     # or it diverged: also one clear message
        assert "training stopped" in result.stderr and "--lr" in result.stderr
        return
    assert result.returncode == 0, result.stderr
    warnings = json.loads((out / "metrics.json").read_text())["warnings"]
    assert warnings and all(w in result.stderr for w in warnings)
    assert "aae-np: warning:" in result.stderr


def test_a_full_disk_is_one_line_naming_the_file(tmp_path, data_dir):
    disk = tmp_path / "small-disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip() or 'mount failed'})")
    try:
        result = cli("-q", "train", "--data-dir", data_dir, "--out", disk / "r", *TINY, "--epochs", "1")
        assert_one_line_error(result, str(disk / "r"), "no space left")
        assert not list((disk / "r").glob(".*.tmp"))
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)
