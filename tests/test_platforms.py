"""Every platform and install imports and trains: Windows, no numba, a non-OpenBLAS NumPy, a
non-x86 machine, and a read-only install without a home. Each runs in a fresh process that
simulates the platform before ``aae_np`` is imported, then trains a small model through the
public API on both backends where it has them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

TRAIN = """
import numpy as np
from threadpoolctl import threadpool_limits
from aae_np.fast import backend, openblas, pool
from aae_np.models.aae import AAE
from aae_np.train.trainer import TrainConfig, Trainer

x = np.random.default_rng(0).random((120, 20), dtype=np.float32)
found = openblas.threads()
for name in BACKENDS:
    with threadpool_limits(2, user_api="blas"):
        model = AAE(input_dim=20, latent_dim=2, encoder_hidden=(16,), decoder_hidden=(16,),
                    discriminator_hidden=(8,), seed=1, backend=name)
        history = Trainer(model, TrainConfig(epochs=2, batch_size=30), x, x[:30], progress=False).fit()
        assert np.isfinite(history["test_mse"]).all() and not pool.active()
        print(name, "trained", round(history["test_mse"][-1], 4))
assert openblas.threads() == found
print("pool:", pool._unavailable() or "available")
"""

SIMULATIONS = {
    "windows": ("""
import ctypes, os, random, tempfile        # the standard library's own uses, done as on Windows
del os.register_at_fork                      # Unix only
_CDLL = ctypes.CDLL
class CDLL(_CDLL):
    def __init__(self, name, *a, **k):
        if name is None:                     # Windows has no "this process" library
            raise TypeError("LoadLibrary() argument 1 must be str, not None")
        super().__init__(name, *a, **k)
ctypes.CDLL = CDLL
import aae_np.models, aae_np.cli            # importing must not touch either
import types
from aae_np.fast import pool
pool.sys = types.SimpleNamespace(platform="win32")     # what the pool's check sees
BACKENDS = ("numpy", "numba")
""", "the pool runs on Linux x86-64 only (this is win32"),
    "no-numba": ("""
import sys
sys.modules["numba"] = None                  # import numba raises ImportError
from aae_np.fast.backend import default_backend
assert default_backend() == "numpy"
BACKENDS = ("numpy",)
""", "numba is not installed"),
    "not-openblas": ("""
from aae_np.fast import openblas
openblas.find = lambda: (None, "simulated: NumPy on MKL")
BACKENDS = ("numpy", "numba")
""", "simulated: NumPy on MKL"),
    "arm": ("""
import platform
platform.machine = lambda: "aarch64"
BACKENDS = ("numpy", "numba")
""", "the pool runs on Linux x86-64 only (this is linux aarch64)"),
}


def run(code: str, env: dict | None = None, cwd: Path = REPO, prefix: tuple = ()) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SIMULATIONS))
def test_the_package_imports_and_trains_on(name):
    setup, reason = SIMULATIONS[name]
    done = run(setup + TRAIN, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert reason in done.stdout, done.stdout
    assert done.stdout.count("trained") == (1 if name == "no-numba" else 2)


def _can_drop_write_rights() -> bool:
    """setpriv can run a process whose root cannot write past permission bits (CI runs as root)."""
    if shutil.which("setpriv") is None:
        return False
    probe = subprocess.run(["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--inh-caps=-all",
                            "true"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.slow
def test_a_read_only_install_without_a_home_starts_and_trains(tmp_path):
    """The package copied where the user cannot write, no home, no NUMBA_CACHE_DIR: every entry
    point starts (numba would stop it with 'no locator available'), kernels cache in a temporary
    folder of the user's, and that is said once."""
    install = tmp_path / "site"
    shutil.copytree(REPO / "aae_np", install / "aae_np", ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    home = install / "home"                  # does not exist, and cannot be made (read-only parent)
    env.update(HOME=str(home), PYTHONPATH=str(install), TMPDIR=str(tmp_path / "tmp"),
               XDG_CACHE_HOME=str(home / ".cache"), PYTHONDONTWRITEBYTECODE="1")
    (tmp_path / "tmp").mkdir()
    for path in [install, *install.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    prefix = ()
    if os.geteuid() == 0:
        if not _can_drop_write_rights():
            pytest.skip("running as root and setpriv cannot drop the right to write anywhere")
        prefix = ("setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--inh-caps=-all")
    try:
        check = run(f"open({str(install / 'aae_np' / 'x')!r}, 'w')", env, tmp_path, prefix)
        assert check.returncode != 0 and "Permission" in check.stderr      # really read-only
        helped = run("import sys; from aae_np.cli import main; sys.argv = ['aae-np', '--help']; main()", env,
                     tmp_path, prefix)
        assert helped.returncode == 0 and "usage" in helped.stdout.lower(), helped.stderr[-2000:]
        trained = run("BACKENDS = ('numba',)\n" + TRAIN, env, tmp_path, prefix)
        assert trained.returncode == 0, trained.stderr[-3000:]
        assert "numba trained" in trained.stdout
        assert trained.stderr.count("aae_np: cannot write beside the package") == 1, trained.stderr
        assert any((tmp_path / "tmp").glob("aae_np-numba-cache-*/*")), "nothing was cached"
    finally:
        for path in [install, *install.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
