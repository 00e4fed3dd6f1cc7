"""Hostile IDX files: gzip bombs and huge headers fail fast, in bounded memory, naming the file.

The bombs are built as concatenated gzip members (one small member with the header, then one
16 MiB member of zeros repeated), so making a 1.6 GB bomb takes a fraction of a second.
"""

from __future__ import annotations

import gzip
import json
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aae_np import idx
from aae_np.idx import DataError, read_idx

ZEROS_MEMBER = 16 << 20


def idx_header(dims: tuple[int, ...], code: int = 0x08) -> bytes:
    return struct.pack(f">BBBB{len(dims)}I", 0, 0, code, len(dims), *dims)


def write_bomb(path: Path, dims: tuple[int, ...], inflated: int) -> Path:
    """A gzip file: ``idx_header(dims)`` then ``inflated`` bytes of zeros, about 1/1000 the size."""
    member = gzip.compress(b"\0" * ZEROS_MEMBER, compresslevel=9)
    with open(path, "wb") as f:
        f.write(gzip.compress(idx_header(dims)))
        for _ in range(inflated // ZEROS_MEMBER):
            f.write(member)
    return path


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    """1.6 GB of zeros after a plausible header for 10,000 MNIST images (7.8 MB), in 1.6 MB."""
    path = write_bomb(tmp_path_factory.mktemp("bomb") / "train-images-idx3-ubyte.gz",
                      (10_000, 28, 28), inflated=96 * ZEROS_MEMBER)
    assert path.stat().st_size < 2_000_000
    return path


MEASURE = """
import json, sys, time
from aae_np.idx import DataError, read_idx
start = time.perf_counter()
try:
    read_idx(sys.argv[1])
    outcome = "loaded"
except DataError as err:
    outcome = str(err)
# VmHWM: this process's own peak RSS (ru_maxrss would include the forking parent's, kept across exec)
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"seconds": time.perf_counter() - start, "outcome": outcome, "peak_mb": hwm / 1024}))
"""


def read_in_subprocess(path: Path) -> dict:
    """``read_idx(path)`` in a fresh interpreter: its time, outcome and peak RSS (Linux: MB)."""
    result = subprocess.run([sys.executable, "-c", MEASURE, str(path)], capture_output=True,
                            text=True, timeout=60, cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc/self/status")
def test_gzip_bomb_fails_fast_in_bounded_memory(bomb):
    inflated_mb = 96 * ZEROS_MEMBER / 2**20
    run = read_in_subprocess(bomb)
    assert str(bomb) in run["outcome"] and "trailing bytes" in run["outcome"]
    assert "needs 7840016 bytes, the file has at least" in run["outcome"]
    assert run["seconds"] < 2.0, run
    assert run["peak_mb"] < 200 < inflated_mb / 5, run     # 7.8 MB of body, not 1.6 GB


def test_gzip_bomb_in_process_is_fast_too(bomb):
    start = time.perf_counter()
    with pytest.raises(DataError, match="trailing bytes.*after gunzip; delete it"):
        read_idx(bomb)
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize("dims", [(10**9, 28, 28), (2**16, 2**16, 2**16), (2**31 + 1,)])
def test_header_over_the_limit_is_refused_before_the_body(tmp_path, dims):
    path = write_bomb(tmp_path / "labels.gz", dims, inflated=4 * ZEROS_MEMBER)
    start = time.perf_counter()
    with pytest.raises(DataError) as info:
        read_idx(path)
    message = str(info.value)
    assert time.perf_counter() - start < 0.5
    assert str(path) in message and f"shape {dims}" in message
    assert "limit of 2147483648 bytes (2 GiB)" in message and "--data-dir" in message


def test_the_limit_is_exact(tmp_path, monkeypatch):
    monkeypatch.setattr(idx, "MAX_IDX_BYTES", 24)
    at_limit = np.arange(6, dtype=np.int32).reshape(2, 3)        # 24 bytes of body: allowed
    (tmp_path / "ok").write_bytes(idx_header((2, 3), 0x0C) + at_limit.astype(">i4").tobytes())
    np.testing.assert_array_equal(read_idx(tmp_path / "ok"), at_limit)
    (tmp_path / "over").write_bytes(idx_header((25,)) + bytes(25))
    with pytest.raises(DataError, match=r"25 bytes, over this reader's limit of 24 bytes"):
        read_idx(tmp_path / "over")


def test_sane_header_with_missing_body_costs_nothing(tmp_path):
    # 1.96 GB claimed, 100 bytes there: the buffer is reserved, never touched, and refused
    path = tmp_path / "images.gz"
    path.write_bytes(gzip.compress(idx_header((2_500_000, 28, 28)) + bytes(100)))
    start = time.perf_counter()
    with pytest.raises(DataError, match=r"truncated: .* needs 1960000016 bytes, "
                                         r"the file has 116 after gunzip"):
        read_idx(path)
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize("extra, said", [(5, "the file has 29 after gunzip"),
                                         (1 << 20, "the file has at least 65560 after gunzip")])
def test_trailing_bytes_are_counted_only_up_to_the_slack(tmp_path, extra, said):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(idx_header((4, 3)) + bytes(12 + extra)))
    with pytest.raises(DataError, match="trailing bytes: shape .* needs 24 bytes, " + said):
        read_idx(path)


def test_raw_file_of_the_wrong_size_is_refused_without_reading_it(tmp_path):
    path = tmp_path / "raw"
    path.write_bytes(idx_header((3, 4)) + bytes(13))
    with pytest.raises(DataError, match="trailing bytes: .* needs 24 bytes, the file has 25; delete"):
        read_idx(path)


def test_multi_member_gzip_still_loads(tmp_path):
    array = np.arange(-6, 6, dtype=np.float64).reshape(3, 4)
    payload = idx_header((3, 4), 0x0E) + array.astype(">f8").tobytes()
    path = tmp_path / "members.gz"
    path.write_bytes(gzip.compress(payload[:7]) + gzip.compress(payload[7:50]) + gzip.compress(payload[50:]))
    np.testing.assert_array_equal(read_idx(path), array)


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(1, 59), max_size=4, unique=True), padding=st.lists(st.integers(0, 3), min_size=5,
                                                                                   max_size=5),
       chunk=st.sampled_from([1, 2, 7, 64, 1 << 24]))
def test_members_padding_and_chunk_sizes_read_the_same_bytes(cuts, padding, chunk, tmp_path_factory):
    """Members split anywhere, zero padding after any member (as gzip.GzipFile allows), any read size."""
    array = np.arange(12, dtype=np.float32).reshape(3, 4) - 5.5
    payload = idx_header((3, 4), 0x0D) + array.astype(">f4").tobytes()         # 60 bytes
    bounds = [0, *sorted(cuts), len(payload)]
    data = b"".join(gzip.compress(payload[a:b]) + bytes(pad) for a, b, pad in zip(bounds, bounds[1:], padding))
    path = tmp_path_factory.mktemp("gz") / "members.gz"
    path.write_bytes(data)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(idx, "_CHUNK", chunk)
        np.testing.assert_array_equal(read_idx(path), array)


def test_garbage_after_a_member_is_a_corrupt_stream(tmp_path):
    path = tmp_path / "junk.gz"
    path.write_bytes(gzip.compress(idx_header((2,)) + b"ab") + b"not gzip")
    with pytest.raises(DataError, match="junk.gz: corrupt gzip stream"):
        read_idx(path)


def test_a_folder_is_not_readable(tmp_path):
    with pytest.raises(DataError, match=f"{tmp_path}: cannot be read"):
        read_idx(tmp_path)
