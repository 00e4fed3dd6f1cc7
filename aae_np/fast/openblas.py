"""NumPy's OpenBLAS as the pool uses it: its GEMMs found, and a product cut in two halves.

``find`` locates NumPy's OpenBLAS and its 64-bit CBLAS ``sgemm`` / ``dgemm``. ``fill`` writes a
product ``C = op(A) op(B)`` into the pool's control block and ``gemm_part`` computes one half,
each half one single-threaded BLAS call on the operands as they are (no packed panel is shared
between the threads). Each weight matrix W (rows = inputs) is cut in the same two row halves
everywhere, so that each thread reads and writes only its own half of W, dW and Adam's moments:

* ``x^T delta`` (tall: M >= ``TALL``): by the rows of C (W's rows);
* ``x W`` (K >= ``TALL``, W not transposed): by the depth K: thread 0 ``x[:, :h] W[:h]`` into C,
  thread 1 ``x[:, h:] W[h:]`` into a scratch array that the caller adds to C;
* ``delta W^T``: by the columns of C (W's rows); when C is short (fewer than ``SHORT`` rows) as
  ``(W[half] delta^T)^T``: each thread computes its rows of the transposed product into the
  scratch and copies them into its columns of C (OpenBLAS is faster that way round at a small
  batch and sums each element in the same order: the same bits);
* anything else by the columns of C, at a multiple of 16.

Each half is exactly what one single-threaded BLAS call gives for that block, and a depth cut
adds its halves in one order (``tests/test_pool.py``); the bits differ from OpenBLAS's own
multithreaded GEMM, which cuts differently. ``docs/performance.md`` has the measurements.
"""

from __future__ import annotations

import ctypes

import numpy as np

from aae_np.fast import jit_cache
from aae_np.fast.kernels import NUMBA

__all__ = ["find", "threads", "tensor_layout", "GEMM", "BASE", "SLOTS", "TALL", "SPLIT_MACS", "NO_TRANS", "TRANS"]

GEMM = 4                     # the pool's job kind
BASE, SLOTS = 128, 16        # the job's fields in the pool's control block: slots BASE .. BASE + SLOTS
FNPTR, TA, TB, GM, GN, GK, GA, LDA, GB, LDB, GC, LDC, ROWS, ITEMSIZE, GS = range(BASE, BASE + 15)
COLS_CUT, ROWS_CUT, DEPTH_CUT, TRANSPOSED = 0, 1, 2, 3     # ctl[ROWS]: how a product is cut
TALL = 256                   # M from which a product is cut by rows instead of columns
SHORT = 64                   # M below which ``delta W^T`` is computed as ``(W delta^T)^T``
SPLIT_MACS = 1 << 16         # products with fewer multiply-adds run whole on the caller
NO_TRANS, TRANS = 111, 112   # CBLAS's codes
TENSORS, LAYOUT = 36, 37     # the pool's slots for an update's tensors (``tensor_half``)
jit_cache.drop_if_stale(__file__, "atomics.py")          # call_gemm compiles into gemm_part


def find():
    """(NumPy's OpenBLAS GEMMs ``{dtype: address}`` (``cblas_gemms``), None), or (None, why not)."""
    from threadpoolctl import ThreadpoolController
    libs = ThreadpoolController().select(internal_api="openblas").lib_controllers
    if len(libs) > 1:                 # SciPy's may be loaded too; NumPy's wheels keep theirs in numpy.libs
        libs = [lib for lib in libs if "numpy" in lib.filepath]
    for lib in libs:
        gemms = cblas_gemms(ctypes.CDLL(lib.filepath))      # already loaded by NumPy: the same library
        if gemms is not None:
            return gemms, None
    return None, ("NumPy's BLAS is not the OpenBLAS of NumPy's wheels (no scipy_cblas_?gemm64_): "
                  "products use the BLAS's own threads, updates one core")


def threads() -> int:
    """OpenBLAS's thread count now."""
    from threadpoolctl import threadpool_info
    counts = [lib["num_threads"] for lib in threadpool_info() if lib["internal_api"] == "openblas"]
    return max(counts, default=1)


def cblas_gemms(library: ctypes.CDLL) -> dict | None:
    """{dtype: address} of ``cblas_sgemm`` and ``cblas_dgemm`` with 64-bit integers in NumPy's
    OpenBLAS, or None if it has not both (then ``pool.gemm`` is ``np.dot``)."""
    found = {}
    for dtype, name in ((np.dtype(np.float32), "scipy_cblas_sgemm64_"), (np.dtype(np.float64), "scipy_cblas_dgemm64_")):
        fn = getattr(library, name, None)
        if fn is None:
            return None
        found[dtype] = ctypes.cast(fn, ctypes.c_void_p).value
    return found


def tensor_layout(shapes) -> np.ndarray:
    """(end in the flat buffer, rows) of each tensor, for the pool's updates (``tensor_half``)."""
    ends = np.cumsum([int(np.prod(s)) for s in shapes])
    return np.array([(end, s[0] if len(s) == 2 else 1) for end, s in zip(ends, shapes)], np.int64).reshape(-1, 2)


if NUMBA is not None:
    from numba import carray, njit

    from aae_np.fast.atomics import as_pointer, call_gemm

    jit = njit(cache=jit_cache.cache_ok(), error_model="numpy", nogil=True)

    @jit
    def layout(x):
        """(CBLAS transpose code, leading dimension) of a 2-D array, or (0, 0) if BLAS cannot
        read it in place (neither its rows nor its columns are contiguous)."""
        item, (rows, cols), (s0, s1) = x.itemsize, x.shape, x.strides
        if (cols == 1 or s1 == item) and (rows == 1 or (s0 % item == 0 and s0 // item >= cols)):
            return NO_TRANS, cols if rows == 1 else s0 // item
        if (rows == 1 or s0 == item) and (cols == 1 or (s1 % item == 0 and s1 // item >= rows)):
            return TRANS, rows if cols == 1 else s1 // item
        return 0, 0

    @jit
    def halves(ctl):
        """Where the product in ``ctl`` is cut: (length of the cut dimension, end of the first half)."""
        if ctl[ROWS] == ROWS_CUT:
            return ctl[GM], ctl[GM] // 2
        if ctl[ROWS] == DEPTH_CUT:
            return ctl[GK], ctl[GK] // 2
        n = ctl[GN]
        if ctl[TB] == TRANS:                 # B = W^T: cut W's rows where the updates cut them
            return n, n // 2
        return n, min((n // 2 + 15) // 16 * 16, n)

    @jit
    def gemm_part(ctl, half, one):
        """Half ``half`` (0 or 1) of the product in ``ctl``, one single-threaded BLAS call;
        ``one``'s type is the dtype."""
        n, mid = halves(ctl)
        lo, hi = (0, mid) if half == 0 else (mid, n)
        if hi <= lo:
            return
        item = ctl[ITEMSIZE]
        a, b, c = ctl[GA], ctl[GB], ctl[GC]
        if ctl[ROWS] == DEPTH_CUT:           # op(A)[:, lo:hi] @ op(B)[lo:hi]: into C, or into the scratch
            a += lo * (1 if ctl[TA] == NO_TRANS else ctl[LDA]) * item
            b += lo * ctl[LDB] * item
            call_gemm(ctl[FNPTR], ctl[TA], ctl[TB], ctl[GM], ctl[GN], hi - lo, a, ctl[LDA], b, ctl[LDB],
                      c if half == 0 else ctl[GS], ctl[LDC] if half == 0 else ctl[GN], one)
        elif ctl[ROWS] == TRANSPOSED:        # C[:, lo:hi] = (W[lo:hi] op(A)^T)^T, through the scratch
            flip = TRANS if ctl[TA] == NO_TRANS else NO_TRANS
            m = ctl[GM]
            call_gemm(ctl[FNPTR], NO_TRANS, flip, hi - lo, m, ctl[GK], b + lo * ctl[LDB] * item, ctl[LDB], a,
                      ctl[LDA], ctl[GS] + lo * m * item, m, one)
            scratch = carray(as_pointer(ctl[GS], one), (n, m))
            out = carray(as_pointer(c, one), (m, ctl[LDC]))
            for i in range(m):
                for j in range(lo, hi):
                    out[i, j] = scratch[j, i]
        elif ctl[ROWS] == ROWS_CUT:          # rows lo:hi of op(A) and of C
            a += lo * (ctl[LDA] if ctl[TA] == NO_TRANS else 1) * item
            c += lo * ctl[LDC] * item
            call_gemm(ctl[FNPTR], ctl[TA], ctl[TB], hi - lo, ctl[GN], ctl[GK], a, ctl[LDA], b, ctl[LDB], c,
                      ctl[LDC], one)
        else:                                # columns lo:hi of op(B) and of C
            b += lo * (1 if ctl[TB] == NO_TRANS else ctl[LDB]) * item
            c += lo * item
            call_gemm(ctl[FNPTR], ctl[TA], ctl[TB], ctl[GM], hi - lo, ctl[GK], ctl[GA], ctl[LDA], b, ctl[LDB], c,
                      ctl[LDC], one)

    @jit
    def fill(ctl, fnptr, a, b, out, scratch):
        """Write the product ``out = a @ b`` (``scratch``: an array like ``out`` for a depth cut's
        second half) into ``ctl``'s GEMM fields; False if BLAS cannot read one of the arrays in
        place (then the caller uses ``np.dot``)."""
        ta, lda = layout(a)
        tb, ldb = layout(b)
        tc, ldc = layout(out)
        if ta == 0 or tb == 0 or tc != NO_TRANS:
            return False
        ctl[FNPTR], ctl[TA], ctl[TB], ctl[LDA], ctl[LDB], ctl[LDC] = fnptr, ta, tb, lda, ldb, ldc
        ctl[GM], ctl[GK], ctl[GN] = a.shape[0], a.shape[1], b.shape[1]
        ctl[GA], ctl[GB], ctl[GC] = a.ctypes.data, b.ctypes.data, out.ctypes.data
        ctl[ITEMSIZE], ctl[GS] = out.itemsize, scratch.ctypes.data
        if a.shape[0] >= TALL:
            ctl[ROWS] = ROWS_CUT
        elif a.shape[1] >= TALL and tb == NO_TRANS:
            ctl[ROWS] = DEPTH_CUT
        elif a.shape[0] < SHORT and tb == TRANS:
            ctl[ROWS] = TRANSPOSED
        else:
            ctl[ROWS] = COLS_CUT
        return True

    @jit
    def tensor_half(ctl, t, me):
        """Thread ``me``'s part of tensor ``t`` of the update in ``ctl`` (``pool``'s TENSORS and
        LAYOUT slots: ``tensor_layout``): the first or last ``rows // 2`` rows of a weight matrix,
        the rows whose gradient that thread's half of the tall ``x^T delta`` GEMM wrote, so that
        it reads them from its own cache; a bias goes to thread 0 whole; threads past 1 get none."""
        layout = carray(as_pointer(ctl[LAYOUT], np.int64(0)), (ctl[TENSORS], 2))
        start, (end, rows) = (layout[t - 1, 0] if t > 0 else 0), layout[t]
        mid = start + rows // 2 * ((end - start) // rows) if rows > 1 else end
        return (start, mid) if me == 0 else ((mid, end) if me == 1 else (0, 0))
