"""The downloader against a hostile server and a full disk.

A local ``http.server`` on 127.0.0.1 cuts transfers, trickles a byte a second (body or
headers), redirects, loops and answers 404; no real host is contacted (the autouse fixture of
test_data also points the official mirrors at a closed local port). Each test fetches one
file: the other three are already in the folder, so ``download`` asks only for it.
"""

from __future__ import annotations

import errno
import http.server
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from aae_np import data
from aae_np import download as dl
from aae_np.data import DataError
from test_data import isolated, md5_of, write_mnist  # noqa: F401  (isolated: autouse fixture)

NAME = "train-labels-idx1-ubyte.gz"        # the one file each test fetches
DEADLINE = 2.0


class FaultHandler(http.server.BaseHTTPRequestHandler):
    """``/<kind>/<name>``: good, cut, chunked-cut, trickle, slow-headers, redirect, loop; else 404."""

    files: dict[str, bytes] = {}

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        kind, _, name = self.path.strip("/").partition("/")
        body = self.files.get(name)
        if body is None or kind not in {"good", "cut", "chunked-cut", "trickle", "slow-headers",
                                        "redirect", "loop"}:
            self.send_error(404)
        elif kind in ("redirect", "loop"):
            self.send_response(302)
            self.send_header("Location", f"/{'good' if kind == 'redirect' else 'loop'}/{name}")
            self.end_headers()
        elif kind == "slow-headers":
            self.trickle(b"HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\n0123456789")
        elif kind == "chunked-cut":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"%x\r\n" % 30 + body[:30] + b"\r\n")     # then hang up
        else:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if kind == "trickle":
                self.trickle(body)
            else:
                self.wfile.write(body if kind == "good" else body[:len(body) // 3])

    def trickle(self, payload: bytes) -> None:
        """One byte a second, until the client hangs up (at most 20 s)."""
        try:
            for i in range(min(len(payload), 20)):
                self.wfile.write(payload[i:i + 1])
                self.wfile.flush()
                time.sleep(1.0)
        except OSError:
            pass


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Yields (base URL, MD5 table of the files served)."""
    root = tmp_path_factory.mktemp("www")
    write_mnist(root, seed=3)
    FaultHandler.files = {p.name: p.read_bytes() for p in root.iterdir()}
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FaultHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", {p.name: md5_of(p) for p in root.iterdir()}
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def folder(tmp_path) -> Path:
    """A download folder holding every file but ``NAME``."""
    write_mnist(tmp_path / "mnist")
    (tmp_path / "mnist" / NAME).unlink()
    return tmp_path / "mnist"


def fetch(server, folder, *kinds: str, **kwargs) -> Path:
    base, md5 = server
    return data.download("mnist", folder, [base + kind for kind in kinds], False, checksums=md5,
                         **kwargs)


def failure(server, folder, *kinds: str, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        fetch(server, folder, *kinds, **kwargs)
    assert sorted(os.listdir(folder)) == sorted(s + ".gz" for s in data.FILE_STEMS if s + ".gz" != NAME)
    return str(info.value)


def test_redirect_is_followed(server, folder):
    fetch(server, folder, "none", "redirect")
    assert md5_of(folder / NAME) == server[1][NAME]
    assert not list(folder.glob(".*.part"))


def test_cut_transfer_says_so_and_the_next_mirror_is_used(server, folder):
    size = len(FaultHandler.files[NAME])
    message = failure(server, folder, "cut", "chunked-cut", "loop", "none")
    base = server[0]
    assert f"{base}cut/{NAME}: connection closed after {size // 3} of {size} bytes\n" in message
    assert f"{base}chunked-cut/{NAME}: connection lost after 30 of ? bytes (IncompleteRead)" in message
    assert f"{base}loop/{NAME}: HTTP 302" in message and f"{base}none/{NAME}: HTTP 404" in message
    assert "MD5" not in message and "no network" not in message
    fetch(server, folder, "cut", "good")
    assert md5_of(folder / NAME) == server[1][NAME]


@pytest.mark.parametrize("kind", ["trickle", "slow-headers"])
def test_trickling_server_fails_at_the_deadline(server, folder, kind):
    outcome: dict[str, object] = {}

    def run() -> None:
        start = time.perf_counter()
        try:
            fetch(server, folder, kind, deadline=DEADLINE)
        except DataError as err:
            outcome["message"] = str(err)
        outcome["seconds"] = time.perf_counter() - start

    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(DEADLINE / 2)                       # mid-download: its part file is not stale
    parts = list(folder.glob(f".{NAME}.pid{os.getpid()}.*.part"))
    assert len(parts) == 1 and dl.remove_stale_parts(folder, [NAME]) == [] and parts[0].exists()
    worker.join(timeout=30)
    assert DEADLINE <= outcome["seconds"] < DEADLINE + 1.5, outcome
    assert f"{kind}/{NAME}: not complete within the 2 s deadline" in outcome["message"]
    assert not list(folder.glob(".*.part"))


@pytest.mark.parametrize("code, said, module, function", [
    (errno.ENOSPC, "the disk is full", dl, "_write_all"),
    (errno.ENOSPC, "the disk is full", os, "fsync"),             # how NFS and quotas report it
    (errno.EDQUOT, "the disk is full", dl, "_write_all"),
    (errno.EIO, "cannot write the download (Input/output error)", dl, "_write_all")])
def test_write_errors_name_the_file_and_stop_at_once(server, folder, monkeypatch, code, said,
                                                     module, function):
    calls = []

    def failing(*args) -> None:
        calls.append(args)
        raise OSError(code, os.strerror(code))

    with monkeypatch.context() as patch:                # os.fsync only for as long as needed
        patch.setattr(module, function, failing)
        message = failure(server, folder, "good", "good")
    assert message.startswith(f"{folder / NAME}: {said}") and "\n" not in message
    assert "[Errno" not in message and "--data-dir DIR" in message
    if code == errno.ENOSPC:
        assert f"free some space on the disk holding {folder}" in message
    assert len(calls) == 1                         # the second mirror was not tried


def test_stale_part_files_are_removed_on_the_next_download(server, folder):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    hour_ago = time.time() - dl.STALE_AFTER - 60
    parts = {
        f".{NAME}.pid{dead.pid}.abcd_123.part": ("removed", None),          # its process is gone
        f".t10k-images-idx3-ubyte.gz.pid{os.getpid()}.x1y2z3w4.part": ("kept", None),  # alive
        ".t10k-labels-idx1-ubyte.gz.k2j4h6g8.part": ("removed", hour_ago),  # older, no pid
        ".train-images-idx3-ubyte.gz.k2j4h6g8.part": ("kept", None),        # recent, no pid
        f".train-images-idx3-ubyte.gz.pid{os.getpid()}.q1w2e3r4.part": ("removed", hour_ago),
        f".notes.txt.pid{dead.pid}.abcd_123.part": ("kept", None),          # not one of ours
    }
    for name, (_, mtime) in parts.items():
        (folder / name).write_bytes(b"half a file")
        if mtime:
            os.utime(folder / name, (mtime, mtime))
    fetch(server, folder, "good")
    for name, (fate, _) in parts.items():
        assert (folder / name).exists() == (fate == "kept"), name
    assert md5_of(folder / NAME) == server[1][NAME]
