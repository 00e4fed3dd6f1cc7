"""`make lab` starts a JupyterLab on 127.0.0.1 that serves the repository, the teaching notebooks opened,
so every file a notebook links (``../docs/derivations.md``...) opens in the lab too.

The test runs the Makefile's own target (with `-o .venv/.installed`, so an out-of-date stamp does
not reinstall the package in the middle of a test run), on a free port with a random token and
no browser, waits for the server's REST API, lists the repository and the notebooks folder through
it, fetches every file the notebooks link (``tests/notebook_links.py``), loads the lab page, and stops the server (the whole process group it started, by its id).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import REPO
from notebook_links import links

pytest.importorskip("jupyterlab", reason="JupyterLab is not installed: `pip install -e '.[dev]'` (or make lab) "
                                         "installs it")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, r.read()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_lab_serves_the_notebooks(tmp_path):
    port, token = free_port(), secrets.token_hex(16)
    args = f"--no-browser --port={port} --ServerApp.port_retries=0 --IdentityProvider.token={token}"
    bin_dir = os.path.dirname(sys.executable)
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "JUPYTER_CONFIG_DIR": str(tmp_path),
           "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    log = open(tmp_path / "lab.log", "wb")
    proc = subprocess.Popen(["make", "-o", ".venv/.installed", "lab", f"LAB_ARGS={args}"], cwd=REPO, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        listing, deadline = None, time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                listing = json.loads(get(f"{base}/api/contents?token={token}")[1])
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.5)
        assert listing is not None, (tmp_path / "lab.log").read_text(errors="replace")[-3000:]
        assert {"notebooks", "docs", "aae_np"} <= {item["name"] for item in listing["content"]}   # the repository
        names = {item["name"] for item in json.loads(get(f"{base}/api/contents/notebooks?token={token}")[1])["content"]}
        assert {"01_derivation.ipynb", "02_gradient_check_exercises.ipynb", "03_train_mnist.ipynb"} <= names
        nb = json.loads(get(f"{base}/api/contents/notebooks/02_gradient_check_exercises.ipynb?token={token}")[1])
        assert nb["type"] == "notebook" and nb["content"]["cells"]
        targets = {link.path.relative_to(REPO).as_posix() for link in links() if link.path is not None}
        assert "docs/derivations.md" in targets
        for target in sorted(targets):                               # what the notebooks link, as the lab serves it
            if (REPO / target).is_dir():                             # a folder: the lab lists it
                status, body = get(f"{base}/api/contents/{urllib.parse.quote(target)}?token={token}")
                assert status == 200 and json.loads(body)["type"] == "directory", target
                continue
            status, body = get(f"{base}/files/{urllib.parse.quote(target)}?token={token}")
            assert status == 200 and body == (REPO / target).read_bytes(), target
        status, page = get(f"{base}/lab?token={token}")
        assert status == 200 and b"JupyterLab" in page
        with urllib.request.urlopen(f"{base}/?token={token}", timeout=5) as r:   # opens on the notebooks folder
            assert r.status == 200 and "/lab/tree/notebooks" in r.geturl()
        with pytest.raises(urllib.error.HTTPError):                 # the token is really required
            get(f"{base}/api/contents")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)                       # make and the server it started
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        log.close()
