"""Tests for ``aae_np.data``: IDX reading, MNIST loading, the checked downloader, folder resolution.

Every download test talks to an ``http.server`` on 127.0.0.1 started here; no real host is
ever contacted (an autouse fixture also points the official mirrors at a closed local port).
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import os
import socket
import struct
import tempfile
import threading
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from aae_np import data
from aae_np.data import DataError, load_mnist, read_idx

SHARED_MNIST = Path(__file__).resolve().parents[1].parent / "shared/data/mnist"
DEFAULT_SHARED_DATA_ROOT = data.SHARED_DATA_ROOT        # before the autouse fixture moves it
IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(np.int16): 0x0B,
             np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D, np.dtype(np.float64): 0x0E}


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of ``array``: header, then the items big-endian in C order."""
    header = struct.pack(f">BBBB{array.ndim}I", 0, 0, IDX_CODES[array.dtype], array.ndim,
                         *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    payload = idx_bytes(array)
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


def write_mnist(folder: Path, n_train: int = 12, n_test: int = 7, gz: bool = True,
                seed: int = 0) -> dict[str, np.ndarray]:
    """Write four synthetic MNIST files into ``folder``; return the arrays by file stem."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for stem, n in zip(data.FILE_STEMS, (n_train, n_train, n_test, n_test)):
        if "images" in stem:
            arr = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
            arr[0, 0, 0], arr[0, 0, 1] = 0, 255          # the scale's two ends
        else:
            arr = rng.integers(0, 10, n, dtype=np.uint8)
        write_idx(folder / (stem + (".gz" if gz else "")), arr, gz)
        arrays[stem] = arr
    return arrays


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No test sees the user's AAE_NP_DATA, the repo's data/, ../shared/data, /usr/share or a
    real mirror."""
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setattr(data, "REPO_DATA_ROOT", tmp_path / "repo-data")
    monkeypatch.setattr(data, "SHARED_DATA_ROOT", tmp_path / "shared-data")
    monkeypatch.setattr(data, "SYSTEM_DATA_DIRS", {})
    dead = f"http://127.0.0.1:{closed_port()}/"
    monkeypatch.setattr(data, "DATASETS", {name: replace(spec, mirrors=(dead,))
                                           for name, spec in data.DATASETS.items()})


# ----------------------------------------------------------------------------- read_idx

@settings(max_examples=60, deadline=None)
@given(array=st.sampled_from(sorted(IDX_CODES, key=str)).flatmap(
           lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=1, max_dims=4, max_side=5))),
       gz=st.booleans())
def test_read_idx_round_trips_exactly(array, gz):
    with tempfile.TemporaryDirectory() as tmp:
        out = read_idx(write_idx(Path(tmp) / "x.idx", array, gz))
    assert out.dtype == array.dtype and out.dtype.isnative
    assert out.shape == array.shape
    assert out.tobytes() == array.tobytes()       # bit for bit, NaNs and -0.0 included
    out[(0,) * out.ndim] = 0                      # writable, not a view on the file's bytes


def test_gzip_is_told_by_magic_not_by_name(tmp_path):
    array = np.arange(24, dtype=np.int16).reshape(2, 3, 4) - 7
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "plain.gz", array)), array)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "packed", array, gz=True)), array)


GOOD = idx_bytes(np.arange(12, dtype=np.uint8).reshape(3, 4))
BAD_FILES = {
    # case: (file contents, fragment the message must contain)
    "corrupt-gzip": (gzip.compress(GOOD)[:12] + b"\xff" * 8 + gzip.compress(GOOD)[20:], "gzip"),
    "cut-gzip": (gzip.compress(GOOD)[:-6], "gzip"),
    "truncated": (GOOD[:-1], "truncated"),
    "trailing": (GOOD + b"\0", "trailing bytes"),
    "gz-trailing": (gzip.compress(GOOD + b"\0\0"), "after gunzip"),
    "wrong-magic": (b"\x01" + GOOD[1:], "magic number"),
    "bad-dtype": (GOOD[:2] + b"\x0a" + GOOD[3:], "dtype code 0x0A"),
    "zero-dim": (struct.pack(">BBBBII", 0, 0, 8, 2, 3, 0), "dimension 1 is zero"),
    "no-dims": (b"\0\0\x08\0", "0 dimensions"),
    "short-header": (GOOD[:9], "truncated header"),
    "tiny": (b"\0\0", "too short"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_read_idx_rejects_bad_files_naming_them(tmp_path, case):
    contents, fragment = BAD_FILES[case]
    path = tmp_path / f"{case}-idx1-ubyte.gz"
    path.write_bytes(contents)
    with pytest.raises(DataError) as info:
        read_idx(path)
    message = str(info.value)
    assert str(path) in message and fragment in message
    assert "--data-dir" in message                 # says what to do
    assert isinstance(info.value, ValueError)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(DataError, match="no-such-file.*no such file"):
        read_idx(tmp_path / "no-such-file")


# ----------------------------------------------------------------------------- load_mnist

@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_synthetic(tmp_path, gz):
    arrays = write_mnist(tmp_path, gz=gz)
    x_train, y_train, x_test, y_test = load_mnist(tmp_path)
    assert x_train.shape == (12, 784) and x_test.shape == (7, 784)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    expected = arrays["train-images-idx3-ubyte"].reshape(12, 784) / np.float32(255)
    np.testing.assert_array_equal(x_train, expected)
    np.testing.assert_array_equal(np.rint(x_test * 255), arrays["t10k-images-idx3-ubyte"].reshape(7, 784))
    np.testing.assert_array_equal(y_train, arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(y_test, arrays["t10k-labels-idx1-ubyte"])


def test_load_mnist_accepts_mixed_names(tmp_path):
    write_mnist(tmp_path, gz=True)
    raw = tmp_path / "t10k-images-idx3-ubyte"
    raw.write_bytes(gzip.decompress((tmp_path / "t10k-images-idx3-ubyte.gz").read_bytes()))
    (tmp_path / "t10k-images-idx3-ubyte.gz").unlink()
    assert load_mnist(tmp_path, dataset="fashion-mnist").x_test.shape == (7, 784)


def test_load_mnist_count_mismatch(tmp_path):
    write_mnist(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(6, np.uint8), gz=True)
    with pytest.raises(DataError, match=r"7 images but .*t10k-labels-idx1-ubyte\.gz holds 6 labels"):
        load_mnist(tmp_path)


@pytest.mark.parametrize("stem, array, fragment", [
    ("train-images-idx3-ubyte", np.zeros((12, 27, 28), np.uint8), "shape (N, 28, 28)"),
    ("train-images-idx3-ubyte", np.zeros((12, 784), np.uint8), "shape (N, 28, 28)"),
    ("train-images-idx3-ubyte", np.zeros((12, 28, 28), np.float32), "found float32"),
    ("train-labels-idx1-ubyte", np.zeros((12, 1), np.uint8), "labels of shape (N,)"),
    ("train-labels-idx1-ubyte", np.full(12, 10, np.uint8), "0..9, found 10"),
])
def test_load_mnist_rejects_wrong_contents(tmp_path, stem, array, fragment):
    write_mnist(tmp_path)
    write_idx(tmp_path / (stem + ".gz"), array, gz=True)
    with pytest.raises(DataError) as info:
        load_mnist(tmp_path)
    assert stem in str(info.value) and fragment in str(info.value)


def test_load_mnist_missing_file(tmp_path):
    write_mnist(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="lacks train-labels-idx1-ubyte.*--data-dir"):
        load_mnist(tmp_path)


def test_start_loading_loads_on_a_thread_what_load_mnist_loads(tmp_path):
    write_mnist(tmp_path)
    loading = data.start_loading("mnist", tmp_path)
    assert loading is not None and loading._thread is not threading.current_thread()
    for got, want in zip(loading.result(), load_mnist(tmp_path)):
        np.testing.assert_array_equal(got, want)
    assert loading.seconds > 0


def test_start_loading_leaves_missing_data_to_the_foreground(tmp_path):
    assert data.start_loading("mnist", tmp_path) is None         # empty: load() reports it (or downloads)
    write_mnist(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b junk")
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz: corrupt gzip stream"):
        data.start_loading("mnist", tmp_path).result()       # found but bad: raised where result() is called


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason=f"no shared MNIST copy at {SHARED_MNIST}")
def test_real_mnist_files():
    x_train, y_train, x_test, y_test = load_mnist(SHARED_MNIST)
    assert x_train.shape == (10000, 784) and len(y_train) == 10000
    assert x_test.shape == (10000, 784) and len(y_test) == 10000
    counts = np.bincount(y_test, minlength=10)
    assert len(counts) == 10 and counts.sum() == 10000 and counts.min() > 0
    assert y_test[0] == 7
    assert x_train.min() == 0.0 and x_train.max() == 1.0 and x_test.max() == 1.0
    # the shared copy's test files are the official ones: the built-in MD5 table agrees
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert md5_of(SHARED_MNIST / name) == data.DATASETS["mnist"].md5[name]


# ----------------------------------------------------------------------------- download

def closed_port() -> int:
    """A local port nothing listens on (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A local server: ``good/`` has four synthetic files, ``bad/`` the same names with other
    contents, ``none/`` nothing (404). Yields (base URL, MD5 table of good/, arrays)."""
    root = tmp_path_factory.mktemp("www")
    arrays = write_mnist(root / "good", seed=1)
    write_mnist(root / "bad", seed=2)
    (root / "none").mkdir()
    md5 = {stem + ".gz": md5_of(root / "good" / (stem + ".gz")) for stem in data.FILE_STEMS}
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=root))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", md5, arrays
    httpd.shutdown()
    httpd.server_close()


def assert_loaded(folder: Path, arrays: dict[str, np.ndarray]) -> None:
    assert sorted(os.listdir(folder)) == sorted(s + ".gz" for s in data.FILE_STEMS)  # no .part left
    loaded = load_mnist(folder)
    np.testing.assert_array_equal(loaded.y_train, arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(np.rint(loaded.x_test * 255),
                                  arrays["t10k-images-idx3-ubyte"].reshape(7, 784))


def test_download_lands_files_that_load(server, tmp_path):
    base, md5, arrays = server
    dest = tmp_path / "fresh" / "mnist"
    assert data.download("mnist", dest, [base + "good"], progress=True, checksums=md5) == dest
    assert_loaded(dest, arrays)


def test_download_discards_bad_checksum_and_uses_next_mirror(server, tmp_path):
    base, md5, arrays = server
    data.download("mnist", tmp_path, [base + "bad/", base + "good/"], False, checksums=md5)
    assert_loaded(tmp_path, arrays)


def test_download_bad_checksum_everywhere_leaves_nothing(server, tmp_path):
    base, md5, _ = server
    with pytest.raises(DataError) as info:
        data.download("mnist", tmp_path, [base + "bad"], False, checksums=md5)
    assert "MD5" in str(info.value) and "no network" not in str(info.value)
    assert os.listdir(tmp_path) == []


def test_download_skips_404_mirror(server, tmp_path):
    base, md5, arrays = server
    data.download("mnist", tmp_path, [base + "none", base + "good"], False, checksums=md5)
    assert_loaded(tmp_path, arrays)


def test_download_all_mirrors_failing_reports_each(server, tmp_path):
    base, md5, _ = server
    dead = f"http://127.0.0.1:{closed_port()}/mnist"
    with pytest.raises(DataError) as info:
        data.download("mnist", tmp_path, [dead, base + "none"], False, checksums=md5)
    message = str(info.value)
    assert f"{dead}/train-images-idx3-ubyte.gz: " in message
    assert f"{base}none/train-images-idx3-ubyte.gz: HTTP 404" in message
    assert "--data-dir DIR" in message and "AAE_NP_DATA=DIR" in message
    assert "t10k-labels-idx1-ubyte.gz" in message and str(tmp_path) in message
    assert os.listdir(tmp_path) == []


def test_download_offline_says_no_network(tmp_path):
    # the autouse fixture made the official mirrors a closed local port: this is "offline"
    with pytest.raises(DataError, match=r"could not download MNIST .*\(no network\?\)"):
        data.download("mnist", tmp_path, progress=False)


def test_download_times_out(tmp_path):
    with socket.socket() as silent:                # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        with pytest.raises(DataError, match="timed out"):
            data.download("mnist", tmp_path, [url], False, timeout=0.2)


def test_download_keeps_files_already_there(tmp_path):
    arrays = write_mnist(tmp_path, gz=False)       # any mirror would fail: none is asked
    assert data.download("mnist", tmp_path, progress=False) == tmp_path
    np.testing.assert_array_equal(load_mnist(tmp_path).y_test, arrays["t10k-labels-idx1-ubyte"])


# ----------------------------------------------------------------------------- resolution

def no_download(*args, **kwargs):
    raise AssertionError("resolve_data_dir downloaded although it should not have")


def test_explicit_dir_beats_env_and_repo(tmp_path, monkeypatch):
    for name in ("explicit", "env"):
        write_mnist(tmp_path / name)
    write_mnist(data.REPO_DATA_ROOT / "mnist")
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "env"))
    assert data.resolve_data_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert data.resolve_data_dir() == tmp_path / "env"
    monkeypatch.setenv(data.ENV_VAR, "")           # empty: ignored
    assert data.resolve_data_dir() == data.REPO_DATA_ROOT / "mnist"


@pytest.mark.parametrize("how", ["argument", "env"])
def test_incomplete_explicit_dir_is_an_error_not_a_download(tmp_path, monkeypatch, how):
    write_mnist(tmp_path / "partial")
    (tmp_path / "partial" / "t10k-images-idx3-ubyte.gz").unlink()
    write_mnist(data.REPO_DATA_ROOT / "mnist")     # complete, but must not be used
    monkeypatch.setattr(data, "download", no_download)
    if how == "env":
        monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "partial"))
        source, arg = "AAE_NP_DATA=", None
    else:
        source, arg = "--data-dir", tmp_path / "partial"
    with pytest.raises(DataError) as info:
        data.resolve_data_dir(arg)
    assert source in str(info.value) and "lacks t10k-images-idx3-ubyte" in str(info.value)
    with pytest.raises(DataError, match="is not a folder"):
        data.resolve_data_dir(tmp_path / "nowhere")


def test_system_dir_for_fashion_mnist(tmp_path, monkeypatch):
    write_mnist(tmp_path / "usr-share")
    monkeypatch.setattr(data, "SYSTEM_DATA_DIRS", {"fashion-mnist": (tmp_path / "usr-share",)})
    monkeypatch.setattr(data, "download", no_download)
    assert data.resolve_data_dir(dataset="fashion-mnist") == tmp_path / "usr-share"
    write_mnist(data.REPO_DATA_ROOT / "fashion-mnist")
    assert data.resolve_data_dir(dataset="fashion-mnist") == data.REPO_DATA_ROOT / "fashion-mnist"


def test_the_mnist_variable_does_not_feed_fashion_mnist(tmp_path, monkeypatch):
    """$AAE_NP_DATA names MNIST's folder (the Makefile sets it so): Fashion-MNIST's files have the
    same names, so a --dataset fashion-mnist run must look elsewhere, not load MNIST silently."""
    write_mnist(tmp_path / "mnist")
    write_mnist(tmp_path / "usr-share")
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "mnist"))
    monkeypatch.setattr(data, "SYSTEM_DATA_DIRS", {"fashion-mnist": (tmp_path / "usr-share",)})
    monkeypatch.setattr(data, "download", no_download)
    assert data.resolve_data_dir() == tmp_path / "mnist"
    assert data.resolve_data_dir(dataset="fashion-mnist") == tmp_path / "usr-share"
    monkeypatch.setattr(data, "SYSTEM_DATA_DIRS", {})
    with pytest.raises(DataError) as info:
        data.resolve_data_dir(dataset="fashion-mnist", download_ok=False)
    assert "--data-dir DIR" in str(info.value) and data.ENV_VAR not in str(info.value)


def test_shared_copy_comes_after_the_repo_and_before_the_system(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "download", no_download)
    write_mnist(tmp_path / "usr-share")
    monkeypatch.setattr(data, "SYSTEM_DATA_DIRS", {"mnist": (tmp_path / "usr-share",)})
    shared = data.SHARED_DATA_ROOT / "mnist"
    write_mnist(shared)
    (shared / "t10k-labels-idx1-ubyte.gz").unlink()                   # incomplete: skipped
    assert data.resolve_data_dir() == tmp_path / "usr-share"
    write_mnist(shared)
    assert data.resolve_data_dir() == shared
    assert data.load(progress=False).x_test.shape == (7, 784)
    write_mnist(data.REPO_DATA_ROOT / "mnist")
    assert data.resolve_data_dir() == data.REPO_DATA_ROOT / "mnist"
    with pytest.raises(DataError) as info:                              # listed when not found
        data.resolve_data_dir(dataset="fashion-mnist", download_ok=False)
    assert f", {data.SHARED_DATA_ROOT / 'fashion-mnist'})" in str(info.value)


def test_shared_copy_is_the_one_beside_the_repository(monkeypatch):
    assert DEFAULT_SHARED_DATA_ROOT == SHARED_MNIST.parent
    if not (SHARED_MNIST / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"no shared MNIST copy at {SHARED_MNIST}")
    monkeypatch.setattr(data, "SHARED_DATA_ROOT", DEFAULT_SHARED_DATA_ROOT)
    monkeypatch.setattr(data, "download", no_download)
    assert data.resolve_data_dir(download_ok=False) == SHARED_MNIST    # without AAE_NP_DATA


def test_download_is_the_last_resort(server, monkeypatch):
    base, md5, arrays = server
    spec = replace(data.DATASETS["mnist"], mirrors=(base + "none", base + "good"), md5=md5)
    monkeypatch.setitem(data.DATASETS, "mnist", spec)
    with pytest.raises(DataError, match="downloading is turned off"):
        data.resolve_data_dir(download_ok=False)
    assert data.resolve_data_dir(progress=False) == data.REPO_DATA_ROOT / "mnist"
    assert_loaded(data.REPO_DATA_ROOT / "mnist", arrays)
    assert data.load(progress=False).x_train.shape == (12, 784)      # now found, not fetched


def test_resolve_offline_tells_what_to_do():
    with pytest.raises(DataError) as info:
        data.load(progress=False)
    message = str(info.value)
    assert "(no network?)" in message
    for hint in (str(data.REPO_DATA_ROOT / "mnist"), "--data-dir DIR", "AAE_NP_DATA=DIR",
                 "train-images-idx3-ubyte.gz"):
        assert hint in message


def test_unknown_dataset():
    with pytest.raises(DataError, match="unknown dataset 'cifar'.*mnist, fashion-mnist"):
        data.resolve_data_dir(dataset="cifar")


def _label_files(folder: Path, train: tuple, test: tuple) -> None:
    """``write_mnist``'s random files, with the label files starting as ``train`` and ``test``."""
    write_mnist(folder, n_train=12, n_test=12)
    for stem, first in ((data.FILE_STEMS[1], train), (data.FILE_STEMS[3], test)):
        labels = read_idx(folder / (stem + ".gz"))
        labels[:10] = first
        write_idx(folder / (stem + ".gz"), labels, True)


def test_load_refuses_the_other_datasets_folder(tmp_path):
    """Both datasets' files have the same names: load() reads the first ten labels and refuses a
    folder that holds the other one, instead of training and scoring Fashion-MNIST runs on MNIST."""
    mnist, fashion = tmp_path / "mnist", tmp_path / "fashion"
    _label_files(mnist, *data.SIGNATURES["mnist"])
    _label_files(fashion, *data.SIGNATURES["fashion-mnist"])
    assert data.load("mnist", mnist).y_train[0] == 5
    assert data.load("fashion-mnist", fashion).y_train[0] == 9
    with pytest.raises(DataError) as info:
        data.load("fashion-mnist", mnist)
    assert f"{mnist} holds MNIST, not Fashion-MNIST" in str(info.value) and "'mnist'" in str(info.value)
    with pytest.raises(DataError, match="holds Fashion-MNIST, not MNIST"):
        data.load("mnist", fashion)
    _label_files(tmp_path / "other", (1,) * 10, (2,) * 10)           # neither: loads as asked
    assert data.load("fashion-mnist", tmp_path / "other").y_test[0] == 2
