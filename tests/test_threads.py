"""``--threads`` above the cores is capped with one line; the pool's rule for thread counts."""

import os

import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from aae_np import cli_args

VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


@pytest.fixture
def restored(monkeypatch):
    for var in VARS:                      # monkeypatch puts each back as it was
        monkeypatch.setenv(var, os.environ.get(var, "1"))
    with threadpool_limits(limits=None):
        yield


def blas_threads() -> int:
    return max(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas")


def test_more_threads_than_cores_are_capped_with_a_warning(restored, capsys):
    cores = len(os.sched_getaffinity(0))
    cli_args.set_threads(cores + 6)
    err = capsys.readouterr().err
    assert f"--threads {cores + 6} is more than the {cores} cores" in err and err.count("\n") == 1
    assert blas_threads() == cores and os.environ["OPENBLAS_NUM_THREADS"] == str(cores)


def test_threads_within_the_cores_are_taken_silently(restored, capsys):
    cli_args.set_threads(1)
    assert capsys.readouterr().err == "" and blas_threads() == 1
