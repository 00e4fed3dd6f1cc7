"""Two threads for a training step: each product cut in two halves, and each update too.

Inside ``running()`` (what ``Trainer.fit`` uses on the numba backend) the caller and one worker
thread share the step's work: ``gemm`` cuts each product of the numba kernels in two halves, each
one single-threaded call of NumPy's OpenBLAS (``openblas.py`` says how a product is cut), and
``POOLED.adam_flat`` / ``momentum_flat`` cut each update so that each thread updates the rows of
W whose gradient its half of ``x^T delta`` wrote. BLAS is held at one thread inside the block.
Why (measured in ``docs/performance.md``): NumPy's BLAS with two threads of its own leaves every
elementwise loop (Adam, the epilogues) on one core, and its threads share packed panels of each
product, which costs more than our halves on a 2-vCPU machine.

When: exactly two threads (``--threads 2``, or BLAS's own count when it is 2), on Linux x86-64
with NumPy's OpenBLAS (its 64-bit CBLAS GEMMs). One thread runs everything on the caller; three
or more leave the products to BLAS's own threads (the halves would use only two of them);
elsewhere ``available()`` says why not and ``running`` changes nothing.

How the threads talk: one int64 array (the control block). The caller writes a job's fields,
then bumps ``SEQ`` (a release store); the worker spins on ``SEQ`` (acquire loads), does its half
and adds 1 to ``DONE``; the caller does its own half and waits for ``DONE``. A worker idle for
~10 ms sleeps in 0.1 ms naps. A product is always cut in the same two halves and an update in
the same slices, so the numbers do not depend on timing; they differ from OpenBLAS's own
multithreaded GEMMs in the last bits (``tests/test_pool.py``).
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

__all__ = ["available", "running", "active", "POOLED", "SPLIT_MIN", "THREADS"]

THREADS = 2                  # the pool's size: products are cut in two halves
SPLIT_MIN = 1 << 15          # values; below this, handing half an update to the worker costs more than it saves
SPIN_CYCLES = 1 << 25        # ~10 ms of spinning without work before a worker starts to nap
YIELD_CYCLES = 1 << 18       # ~80 us: a caller still waiting for its worker offers its core
NAP_US = 100
# the control block: SEQ, DONE and LOCK on their own cache lines; a job's fields after them;
# slots openblas.BASE .. openblas.BASE + openblas.SLOTS hold a split GEMM's fields
SEQ, DONE, STOP, LOCK = 0, 8, 16, 24
THREADS_SLOT, KIND, N, ITEM, P, G, M, V = range(40, 48)
READY, REPORT = 53, 54       # workers that have entered their loop; "say which CPU you wait on"
TENSORS, LAYOUT = openblas.TENSORS, openblas.LAYOUT     # an update's tensors (``openblas.tensor_half``)
FLOATS = 56                  # slots 56-63 hold an update's float arguments (as float64)
CPUS = 64                    # slot 64 + k: the CPU worker k last waited on
CTL_SLOTS = openblas.BASE + openblas.SLOTS
ADAM, MOMENTUM = 2, 3        # job kinds; openblas.GEMM is the third
assert CPUS + THREADS <= openblas.BASE and FLOATS + 8 <= CPUS and max(TENSORS, LAYOUT) < THREADS_SLOT

_state = SimpleNamespace(pool=None, gemms=None, reason=None)
jit_cache.drop_if_stale(__file__, "kernels.py", "openblas.py", "atomics.py")     # what _share compiles in


def _unavailable() -> str | None:
    """Why the pool cannot run here, or None."""
    if NUMBA is None:
        return "numba is not installed"
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        return f"the pool runs on Linux x86-64 only (this is {sys.platform} {platform.machine()})"
    if _state.gemms is None and _state.reason is None:
        _state.gemms, _state.reason = openblas.find()
    return _state.reason


def available() -> bool:
    """Can the pool run here (Linux x86-64, NumPy's OpenBLAS with 64-bit CBLAS GEMMs)?"""
    return _unavailable() is None


def active() -> bool:
    """Is a pool running (inside ``running``)?"""
    return _state.pool is not None


if NUMBA is not None:
    from numba import carray, njit

    from aae_np.fast.atomics import (as_pointer, cycles, fetch_add, load_acquire, sched_getcpu, sched_yield,
                                     spin_pause, store_release, usleep)
    from aae_np.fast.openblas import fill, gemm_part, tensor_half

    jit = njit(cache=jit_cache.cache_ok(), error_model="numpy", nogil=True)
    adam_flat, momentum_flat = NUMBA.adam_flat, NUMBA.momentum_flat

    @jit
    def _wait(ctl, slot, value):
        """Spin until ctl[slot] >= value; after ~80 us (the worker is not running: preempted, or
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
    def _share(ctl, me, one):
        """Thread ``me``'s half of the job in the control block; ``one`` carries the dtype."""
        kind, fctl = ctl[KIND], ctl.view(np.float64)[FLOATS:]
        if kind == openblas.GEMM:
            gemm_part(ctl, me, one)
            return
        for t in range(ctl[TENSORS]):
            lo, hi = tensor_half(ctl, t, me)
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
        """The worker's life: wait for the next job, do its half, report; until STOP."""
        seen, idle_since = 0, cycles()
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
                _share(ctl, me, np.float32(1))
            else:
                _share(ctl, me, np.float64(1))
            fetch_add(ctl, DONE, 1)
            idle_since = cycles()

    @jit
    def _post(ctl, one):
        """Publish the job the caller wrote into ctl (holding the lock), do the caller's half,
        wait for the worker's, release the lock."""
        store_release(ctl, DONE, 0)
        fetch_add(ctl, SEQ, 1)
        _share(ctl, 0, one)
        _wait(ctl, DONE, ctl[THREADS_SLOT] - 1)
        fetch_add(ctl, LOCK, -1)

    @jit
    def _split_update(ctl, kind, p, g, m, v, a, b, c, d, e, tensors):
        """An update (ADAM: p, g, m, v and its five numbers; MOMENTUM: p, g, velocity, lr, mu,
        nesterov), each thread its half of each tensor in ``tensors`` (``openblas.tensor_layout``)."""
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
    """The worker thread and the control block; BLAS held at one thread while it lives."""

    def __init__(self) -> None:
        from threadpoolctl import threadpool_limits
        self.users, self.threads, self.workers = 0, THREADS, []
        self.ctl = np.zeros(CTL_SLOTS, np.int64)
        self.ctl[THREADS_SLOT] = THREADS
        # only when needed: setting it wakes OpenBLAS's threads (first GEMM ~10 ms instead of 0.3)
        self.limits = threadpool_limits(1, user_api="blas") if openblas.threads() != 1 else None
        try:                                 # an interrupt here must leave no thread and BLAS as found
            self.workers = [threading.Thread(target=_serve, args=(self.ctl, k), daemon=True,
                                             name=f"aae_np-pool-{k}") for k in range(1, THREADS)]
            for worker in self.workers:
                worker.start()
            # wait until the worker spins, then (busy) until it sits on another CPU (a new thread
            # starts on its parent's)
            while self.ctl[READY] < THREADS - 1:
                time.sleep(1e-4)
            self.ctl[CPUS:CPUS + THREADS], self.ctl[REPORT] = -1, 1
            deadline = time.perf_counter() + 0.05
            while not self.spread() and time.perf_counter() < deadline:
                pass
            self.ctl[REPORT] = 0
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self.ctl[STOP] = 1
        for worker in self.workers:
            if worker.ident is not None:
                worker.join()
        if self.limits is not None:
            self.limits.restore_original_limits()
            self.limits = None

    def spread(self) -> bool:
        """Do the caller and the worker run on different CPUs (as far as we last saw)?"""
        cpus = [ctypes.CDLL(None).sched_getcpu(), *self.ctl[CPUS + 1:CPUS + THREADS].tolist()]
        return -1 not in cpus and len(set(cpus)) == THREADS


_guard = threading.Lock()


def _should_run(threads: int) -> bool:
    """The rule: a pool for exactly two threads where it is available."""
    return threads == THREADS and available()


@contextmanager
def running(threads: int | None = None):
    """Run the numba kernels' products and updates on two threads inside the block, when
    ``threads`` (default: BLAS's thread count now) is 2 and ``available()``; yields the pool, or
    None (then nothing changes: one thread, or BLAS's own threads for three or more).
    Overlapping blocks (nested, or in other threads) share one pool until the last ends."""
    with _guard:
        if _state.pool is None:
            threads = openblas.threads() if threads is None else threads
            if _should_run(threads):
                _state.pool = _Pool()
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
    _state.pool = None


if hasattr(os, "register_at_fork"):        # not on Windows
    os.register_at_fork(after_in_child=_forget_in_child)


def _adam(p, g, m, v, step_size, b1, b2, eps, v_scale, tensors=None):
    if _state.pool is None or p.size < SPLIT_MIN or tensors is None:
        return adam_flat(p, g, m, v, step_size, b1, b2, eps, v_scale)
    _split_update(_state.pool.ctl, ADAM, p, g, m, v, step_size, b1, b2, eps, v_scale, tensors)


def _momentum(p, g, vel, lr, mu, nesterov, tensors=None):
    if _state.pool is None or p.size < SPLIT_MIN or tensors is None:
        return momentum_flat(p, g, vel, lr, mu, nesterov)
    _split_update(_state.pool.ctl, MOMENTUM, p, g, vel, vel, lr, mu, float(nesterov), 0.0, 0.0, tensors)


def gemm(a, b, out):
    """``np.dot(a, b, out=out)``; inside ``running()``, in two halves (large products BLAS can
    read in place)."""
    pool = _state.pool
    if (pool is not None and a.dtype == b.dtype == out.dtype and out.dtype in _state.gemms
            and a.shape[0] * a.shape[1] * b.shape[1] >= openblas.SPLIT_MACS
            and _split_gemm(pool.ctl, _state.gemms[out.dtype], a, b, out, np.empty_like(out))):
        return out
    return np.dot(a, b, out=out)


# the numba kernel set, with the products and updates split over the pool while one runs
POOLED = None if NUMBA is None else SimpleNamespace(**{
    **vars(NUMBA), "adam_flat": _adam, "momentum_flat": _momentum, "by_tensor": True,
    **dict(zip(("dense_forward", "dense_backward"), dense_kernels(gemm)))})
