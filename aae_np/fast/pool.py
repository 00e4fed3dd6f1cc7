"""One pool of threads for NumPy's BLAS and for our own kernels, so Adam can use every core too.

Why: OpenBLAS runs a GEMM on its own private threads, which keep spinning on the other cores after
each call; anything else we run there between GEMMs (half of Adam, say) fights them and loses
(``docs/performance.md``: 0.97 -> 1.17 ms a step). So every elementwise loop ran on one core.

OpenBLAS 0.3.27 and later let the program run its jobs instead (a threads callback): we run job 0
of a BLAS call on the calling thread and job ``k`` on our worker ``k``, and the same workers take
their part of each Adam (or momentum) update between the GEMMs. The jobs of one GEMM wait for each
other, so ``running`` sets the BLAS thread count to the pool's size. With ``split_gemms`` (what
``Trainer.fit`` uses) the pool cuts the numba kernels' GEMMs in two halves itself, each one
single-threaded BLAS call (``openblas.py`` says why: the threads share no packed panels).

How the threads talk: one int64 array (the control block). The caller writes a job's fields,
then bumps ``SEQ`` (a release store); each worker spins on ``SEQ`` (acquire loads), does its
share, and adds 1 to ``DONE``; the caller does its own share and waits for ``DONE``. A worker
idle for ~10 ms sleeps in 0.1 ms naps. The numbers do not depend on the pool's size (a split GEMM
is always cut in the same two halves; each thread runs ``kernels.adam_flat`` on its slice); split
GEMMs differ from OpenBLAS's own in the last bits, which cut differently (``tests/test_pool.py``).

    with pool.running(split_gemms=True):    # Trainer.fit, on the numba backend
        ...                                 # GEMMs and FlatOptimizer steps use all threads

Linux x86-64 with NumPy's OpenBLAS only; elsewhere ``available()`` says why, ``running`` does nothing.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
import threading
import time
from contextlib import contextmanager
from types import SimpleNamespace

import numpy as np

from aae_np.fast import jit_cache, openblas
from aae_np.fast.kernels import NUMBA, dense_kernels

__all__ = ["available", "running", "active", "POOLED", "SPLIT_MIN"]

SPLIT_MIN = 1 << 15          # values; below this, handing half an update to a worker costs more than it saves
SPIN_CYCLES = 1 << 25        # ~10 ms of spinning without work before a worker starts to nap
YIELD_CYCLES = 1 << 18       # ~80 us: a caller still waiting for its workers offers its core
NAP_US = 100
# control block slots: SEQ, DONE and LOCK on their own cache lines; a job's fields after them
SEQ, DONE, STOP, LOCK, CALLS = 0, 8, 16, 24, 32
THREADS, KIND, NJOBS, FN, DATA, SIZE, EXTRA, N, ITEM, P, G, M, V = range(40, 53)
READY, REPORT = 53, 54       # workers that have entered their loop; "say which CPU you wait on"
TENSORS, LAYOUT = openblas.TENSORS, openblas.LAYOUT     # on CALLS's line, written by the caller only
FLOATS = 56                  # slots 56-63 hold an update's float arguments (as float64)
CPUS = 64                    # slot 64 + k: the CPU worker k last waited on
MAX_THREADS = 64
CTL_SLOTS = CPUS + MAX_THREADS + openblas.SLOTS     # a split GEMM's fields last (openblas.BASE)
BLAS, ADAM, MOMENTUM = 1, 2, 3

_state = SimpleNamespace(pool=None, setter=None, reason=None, callback=None, gemms=None)
_LIBC = ctypes.CDLL(None)
jit_cache.drop_if_stale(__file__, "kernels.py", "openblas.py", "atomics.py")     # what _share compiles in


def _unavailable() -> str | None:
    """Why the pool cannot run here, or None."""
    if NUMBA is None:
        return "numba is not installed"
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        return f"the pool runs on Linux x86-64 only (this is {sys.platform} {platform.machine()})"
    if _state.setter is None and _state.reason is None:
        _state.setter, _state.gemms, _state.reason = openblas.find()
    return _state.reason


def available() -> bool:
    """Can the pool run here (Linux x86-64, NumPy's OpenBLAS with a threads callback)?"""
    return _unavailable() is None


def active() -> bool:
    """Is a pool running (inside ``running``)?"""
    return _state.pool is not None


if NUMBA is not None:
    import llvmlite.binding as llvm_binding
    from llvmlite import ir
    from numba import carray, cfunc, njit, types
    from numba.extending import intrinsic

    from aae_np.fast.atomics import (as_pointer, call_job, cycles, fetch_add, load_acquire, sched_getcpu,
                                     sched_yield, spin_pause, store_release, usleep)
    from aae_np.fast.openblas import fill, gemm_part, tensor_half

    jit = njit(cache=True, error_model="numpy", nogil=True)
    adam_flat, momentum_flat = NUMBA.adam_flat, NUMBA.momentum_flat
    # the callback OpenBLAS calls has OpenBLAS's arguments only; it finds the control block
    # through this process-wide cell (a symbol its cached machine code is linked against)
    _CELL = ctypes.c_int64(0)
    llvm_binding.add_symbol("aae_np_pool_control_block", ctypes.addressof(_CELL))

    @intrinsic
    def _control_address(typingctx):
        def codegen(context, builder, sig, args):
            cell = builder.module.globals.get("aae_np_pool_control_block")
            if cell is None:
                cell = ir.GlobalVariable(builder.module, ir.IntType(64), "aae_np_pool_control_block")
            return builder.load(cell)
        return types.int64(), codegen

    @jit
    def _wait(ctl, slot, value):
        """Spin until ctl[slot] >= value; after ~80 us (a worker is not running: preempted, or
        on our CPU) offer the core every ~80 us."""
        start = cycles()
        while load_acquire(ctl, slot) < value:
            spin_pause()
            if cycles() - start > YIELD_CYCLES:
                sched_yield()
                start = cycles()

    @jit
    def _lock(ctl):
        while fetch_add(ctl, LOCK, 1) != 0:
            fetch_add(ctl, LOCK, -1)
            spin_pause()

    @jit
    def _bounds(n, parts, k):
        """Slice k of n values cut in ``parts``, at multiples of 16 values (whole cache lines)."""
        lo = (n * k // parts) // 16 * 16
        return lo, (n if k == parts - 1 else (n * (k + 1) // parts) // 16 * 16)

    @jit
    def _share(ctl, me, nthreads, one):
        """Thread ``me``'s part of the job in the control block; ``one`` carries the dtype."""
        kind, fctl = ctl[KIND], ctl.view(np.float64)[FLOATS:]
        if kind == openblas.GEMM:
            if me < 2:                       # always two halves, however many threads
                gemm_part(ctl, me, one)
            return
        if kind == BLAS:
            for i in range(me, ctl[NJOBS], nthreads):
                call_job(ctl[FN], i, ctl[DATA] + i * ctl[SIZE], ctl[EXTRA])
            return
        for t in range(max(ctl[TENSORS], 1)):     # the whole buffer, or each tensor in halves
            lo, hi = _bounds(ctl[N], nthreads, me) if ctl[TENSORS] == 0 else tensor_half(ctl, t, me)
            p = carray(as_pointer(ctl[P], one), ctl[N])[lo:hi]
            g = carray(as_pointer(ctl[G], one), ctl[N])[lo:hi]
            m = carray(as_pointer(ctl[M], one), ctl[N])[lo:hi]
            if kind == ADAM:
                v = carray(as_pointer(ctl[V], one), ctl[N])[lo:hi]
                adam_flat(p, g, m, v, fctl[0], fctl[1], fctl[2], fctl[3], fctl[4])
            else:
                momentum_flat(p, g, m, fctl[0], fctl[1], fctl[2] != 0)

    @jit
    def _serve(ctl, me):
        """A worker's life: wait for the next job, do its share, report; until STOP."""
        seen, idle_since, nthreads = 0, cycles(), ctl[THREADS]
        fetch_add(ctl, READY, 1)
        while True:
            while load_acquire(ctl, SEQ) == seen:
                if load_acquire(ctl, STOP) != 0:
                    return
                if cycles() - idle_since < SPIN_CYCLES:
                    spin_pause()
                else:
                    usleep(NAP_US)
                if ctl[REPORT] != 0:
                    ctl[CPUS + me] = sched_getcpu()
            seen += 1
            if ctl[ITEM] == 4:
                _share(ctl, me, nthreads, np.float32(1))
            else:
                _share(ctl, me, nthreads, np.float64(1))
            fetch_add(ctl, DONE, 1)
            idle_since = cycles()

    @jit
    def _post(ctl, one):
        """Publish the job the caller wrote into ctl (holding the lock), do the caller's share,
        wait for the workers', release the lock."""
        store_release(ctl, DONE, 0)
        fetch_add(ctl, SEQ, 1)
        _share(ctl, 0, ctl[THREADS], one)
        _wait(ctl, DONE, ctl[THREADS] - 1)
        fetch_add(ctl, LOCK, -1)

    @jit
    def _run_blas(ctl, dojob, njobs, size, data, extra):
        _lock(ctl)
        fetch_add(ctl, CALLS, 1)
        ctl[KIND], ctl[NJOBS], ctl[FN], ctl[DATA], ctl[SIZE], ctl[EXTRA] = BLAS, njobs, dojob, data, size, extra
        _post(ctl, np.float64(1))

    def _blas_callback(sync, dojob, njobs, size, data, extra):
        """What OpenBLAS calls with a BLAS call's jobs (``openblas_threads_callback``)."""
        ctl = carray(as_pointer(_control_address(), np.int64(0)), CTL_SLOTS)
        _run_blas(ctl, dojob, njobs, size, data, extra)

    def _callback_address() -> int:
        """The C address of ``_blas_callback``, compiled (or loaded from the cache) on first use."""
        if _state.callback is None:
            signature = types.void(types.int32, types.int64, types.int32, types.uint64, types.int64, types.int32)
            _state.callback = cfunc(signature, cache=True)(_blas_callback)
        return _state.callback.address

    @jit
    def _split_update(ctl, kind, p, g, m, v, a, b, c, d, e, tensors):
        """An update (ADAM: p, g, m, v and its five numbers; MOMENTUM: p, g, velocity, lr, mu,
        nesterov) over all threads, each on its slice: of the buffer, or of each tensor if
        ``tensors`` (``openblas.tensor_half``) is not empty."""
        _lock(ctl)
        ctl[KIND], ctl[N], ctl[ITEM] = kind, p.size, p.itemsize
        ctl[TENSORS], ctl[LAYOUT] = len(tensors), tensors.ctypes.data
        ctl[P], ctl[G], ctl[M], ctl[V] = p.ctypes.data, g.ctypes.data, m.ctypes.data, v.ctypes.data
        fctl = ctl.view(np.float64)[FLOATS:]
        fctl[0], fctl[1], fctl[2], fctl[3], fctl[4] = a, b, c, d, e
        _post(ctl, p.dtype.type(1))


    @jit
    def _split_gemm(ctl, fnptr, a, b, out, scratch):
        """``out = a @ b`` in two halves, one per thread (``openblas``; ``scratch`` like ``out``);
        False if BLAS cannot read an array in place."""
        _lock(ctl)
        if not fill(ctl, fnptr, a, b, out, scratch):
            fetch_add(ctl, LOCK, -1)
            return False
        ctl[KIND], ctl[ITEM], depth = openblas.GEMM, out.itemsize, ctl[openblas.ROWS] == openblas.DEPTH_CUT
        _post(ctl, out.dtype.type(1))
        if depth:
            out += scratch                   # the depth cut's second half
        return True


class _Pool:
    """``threads - 1`` workers and the control block; OpenBLAS's jobs (or our split GEMMs) go to
    them while it lives, BLAS's thread count held at ``threads`` (or 1 for split GEMMs)."""

    def __init__(self, threads: int, split: bool = False) -> None:
        from threadpoolctl import threadpool_limits
        threads = min(threads, MAX_THREADS)
        self.threads, self.users, self.split = threads, 0, split and _state.gemms is not None
        blas = 1 if self.split else threads
        # only when needed: setting it wakes OpenBLAS's threads (first GEMM ~10 ms instead of 0.3)
        self.limits = threadpool_limits(blas, user_api="blas") if openblas.threads() != blas else None
        self.ctl = np.zeros(CTL_SLOTS, np.int64)
        self.ctl[THREADS] = threads
        self.workers = [threading.Thread(target=_serve, args=(self.ctl, k), daemon=True,
                                         name=f"aae_np-pool-{k}") for k in range(1, threads)]
        for worker in self.workers:
            worker.start()
        # wait until workers spin, then (busy) until they sit on other CPUs (a new thread starts on its parent's)
        while self.ctl[READY] < threads - 1:
            time.sleep(1e-4)
        self.ctl[CPUS:CPUS + threads], self.ctl[REPORT] = -1, 1
        deadline = time.perf_counter() + 0.05
        while not self.spread() and time.perf_counter() < deadline:
            pass
        self.ctl[REPORT] = 0
        if not self.split:
            _CELL.value = self.ctl.ctypes.data
            _state.setter(_callback_address())

    def close(self) -> None:
        if not self.split:
            _state.setter(None)                  # OpenBLAS's own threads again
        self.ctl[STOP] = 1
        for worker in self.workers:
            worker.join()
        if self.limits is not None:
            self.limits.restore_original_limits()

    def spread(self) -> bool:
        """Do the caller and the workers run on different CPUs (as far as we last saw)?"""
        cpus = [_LIBC.sched_getcpu(), *self.ctl[CPUS + 1:CPUS + self.threads].tolist()]
        return -1 not in cpus and len(set(cpus)) == self.threads


_guard = threading.Lock()
_WHOLE = np.zeros((0, 2), np.int64)      # no tensors: an update's threads cut the whole buffer


@contextmanager
def running(threads: int | None = None, split_gemms: bool = False):
    """Run NumPy's BLAS and the split updates on a pool of ``threads`` threads (default: BLAS's
    thread count) inside the block; with ``split_gemms``, ``gemm`` cuts the numba kernels' GEMMs
    itself (``openblas``) and BLAS runs single-threaded. Overlapping blocks (nested, or in other
    threads) share one pool (the first one's kind) until the last ends. Yields the pool, or None
    when ``threads`` < 2 or ``available()`` is False (then nothing changes). Do not raise BLAS's
    thread count inside the block: a GEMM cut into more jobs than the pool has threads would wait
    forever for jobs that no thread is free to run."""
    with _guard:
        if _state.pool is None:
            threads = openblas.threads() if threads is None else threads
            if threads >= 2 and available():
                _state.pool = _Pool(threads, split_gemms)
        pool = _state.pool
        if pool is not None:
            pool.users += 1
    try:
        yield pool
    finally:
        if pool is not None:
            with _guard:
                pool.users -= 1
                if pool.users == 0 and _state.pool is pool:
                    _state.pool = None
                    pool.close()


def _forget_in_child() -> None:            # a forked child has none of our workers
    """Let OpenBLAS run its own threads again."""
    if _state.pool is not None:
        _state.setter(None)
        _state.pool = None


os.register_at_fork(after_in_child=_forget_in_child)


def _adam(p, g, m, v, step_size, b1, b2, eps, v_scale, tensors=_WHOLE):
    if _state.pool is None or p.size < SPLIT_MIN:
        return adam_flat(p, g, m, v, step_size, b1, b2, eps, v_scale)
    _split_update(_state.pool.ctl, ADAM, p, g, m, v, step_size, b1, b2, eps, v_scale, tensors)


def _momentum(p, g, vel, lr, mu, nesterov, tensors=_WHOLE):
    if _state.pool is None or p.size < SPLIT_MIN:
        return momentum_flat(p, g, vel, lr, mu, nesterov)
    _split_update(_state.pool.ctl, MOMENTUM, p, g, vel, vel, lr, mu, float(nesterov), 0.0, 0.0, tensors)


def gemm(a, b, out):
    """``np.dot(a, b, out=out)``; in a pool of ``running(split_gemms=True)``, in two halves."""
    pool = _state.pool
    if (pool is not None and pool.split and a.dtype == b.dtype == out.dtype and out.dtype in _state.gemms
            and a.shape[0] * a.shape[1] * b.shape[1] >= openblas.SPLIT_MACS
            and _split_gemm(pool.ctl, _state.gemms[out.dtype], a, b, out, np.empty_like(out))):
        return out
    return np.dot(a, b, out=out)


# the numba kernel set, with the updates (and GEMMs, if asked) split over the pool while one runs
POOLED = None if NUMBA is None else SimpleNamespace(**{
    **vars(NUMBA), "adam_flat": _adam, "momentum_flat": _momentum, "by_tensor": True,
    **dict(zip(("dense_forward", "dense_backward"), dense_kernels(gemm)))})
