"""Why the numba kernels leave GEMMs to NumPy: two BLAS thread pools in one process.

``np.dot`` inside ``@njit`` calls SciPy's OpenBLAS; plain ``np.dot`` calls NumPy's. Each alone
is fast; alternating them makes the idle pool's spinning threads fight the busy one.

    .venv/bin/python benchmarks/two_blas_pools.py      (needs scipy: pip install scipy)
"""

import time

import numpy as np
from numba import njit


@njit(cache=False)
def numba_dot(a, b, out):
    np.dot(a, b, out)


def per_call_ms(fn, n: int = 300) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e3


def main() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.random((128, 784), dtype=np.float32), rng.random((784, 256), dtype=np.float32)
    out = np.empty((128, 256), np.float32)
    numba_dot(a, b, out)                                    # compile
    print(f"NumPy's BLAS only        {per_call_ms(lambda: np.dot(a, b, out=out)):7.3f} ms per GEMM")
    print(f"SciPy's BLAS (in @njit)  {per_call_ms(lambda: numba_dot(a, b, out)):7.3f} ms per GEMM")

    def both():
        np.dot(a, b, out=out)
        numba_dot(a, b, out)

    print(f"alternating the two      {per_call_ms(both):7.3f} ms per pair")


if __name__ == "__main__":
    main()
