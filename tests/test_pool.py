"""aae_np.fast.pool: the split products and updates on two threads give the same bits."""

from __future__ import annotations

import multiprocessing
from contextlib import nullcontext

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

from aae_np.fast import openblas, pool
from aae_np.fast.flat_optim import FlatOptimizer
from aae_np.models.aae import AAE
from aae_np.nn.optim import Adam, Momentum
from aae_np.train.presets import resolve
from aae_np.train.trainer import Trainer

pytestmark = pytest.mark.skipif(not pool.available(), reason=f"no pool here: {pool._unavailable()}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [pool.SPLIT_MIN - 1, pool.SPLIT_MIN, pool.SPLIT_MIN + 17, 1_000_003])
def test_split_updates_give_the_same_bits(n, dtype):
    rng = np.random.default_rng(n)
    p, g, m = (rng.standard_normal(n).astype(dtype) for _ in range(3))
    v = np.abs(rng.standard_normal(n)).astype(dtype)
    ref = [a.copy() for a in (p, m, v)]
    whole = openblas.tensor_layout([(n,)])
    pool.NUMBA.adam_flat(*ref[:1], g, *ref[1:], 1e-3, 0.9, 0.999, 1e-8, 1.02)
    pool.NUMBA.momentum_flat(ref[0], g, ref[1], 0.1, 0.9, True)
    with pool.running(2) as running:
        seq = int(running.ctl[pool.SEQ])
        pool.POOLED.adam_flat(p, g, m, v, 1e-3, 0.9, 0.999, 1e-8, 1.02, whole)
        pool.POOLED.momentum_flat(p, g, m, 0.1, 0.9, True, whole)
        assert int(running.ctl[pool.SEQ]) == seq + 2 * (n >= pool.SPLIT_MIN)     # split only from SPLIT_MIN
    for got, want in zip((p, m, v), ref):
        np.testing.assert_array_equal(got, want)


SHAPES = [(784, 512), (512,), (300, 7), (7,), (5, 512), (1, 40_000), (33, 1), (40_000,)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_updates_split_by_tensor_give_the_same_bits(dtype):
    """FlatOptimizer on the pool's kernels cuts an update tensor by tensor (each thread the rows
    its GEMM half wrote): the same bits as one thread over the whole buffer."""
    rng = np.random.default_rng(2)
    n = sum(int(np.prod(s)) for s in SHAPES)
    p, g = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    named, start = {}, 0
    for i, shape in enumerate(SHAPES):
        size = int(np.prod(shape))
        named[f"t{i}"], start = p[start:start + size].reshape(shape), start + size
    results = []
    for kernels in (pool.NUMBA, pool.POOLED):
        with pool.running(2) if kernels is pool.POOLED else nullcontext():
            for rule in (Adam(lr=1e-3), Momentum(lr=0.1, momentum=0.9, nesterov=True)):
                opt = FlatOptimizer(p.copy(), g, rule, kernels, named={k: np.empty(v.shape, dtype)
                                                                       for k, v in named.items()})
                assert opt.by_tensor == (kernels is pool.POOLED)
                for _ in range(3):
                    opt.step()
                results.append(opt.params)
    for got, want in zip(results[2:], results[:2]):
        np.testing.assert_array_equal(got, want)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 600), st.integers(1, 40)) | st.tuples(st.integers(1, 900)), min_size=1,
                max_size=6))
def test_tensor_halves_cover_each_tensor_once(shapes):
    ctl = np.zeros(pool.CTL_SLOTS, np.int64)
    layout = openblas.tensor_layout(shapes)
    ctl[pool.TENSORS], ctl[pool.LAYOUT] = len(layout), layout.ctypes.data
    start = 0
    for t, shape in enumerate(shapes):
        (a, b), (c, d), none = (openblas.tensor_half(ctl, t, me) for me in (0, 1, 2))
        end = start + int(np.prod(shape))
        assert a == start and b == c and d == end and none == (0, 0)
        if len(shape) == 2 and shape[0] > 1:          # cut between rows, at the GEMM's row cut
            assert (b - start) == shape[0] // 2 * shape[1]
        start = end


def test_one_thread_or_more_than_two_or_nested_runs_no_new_pool():
    for threads in (1, 3, 8):                   # one: all on the caller; three or more: BLAS's own threads
        with pool.running(threads) as none:
            assert none is None and not pool.active()
    with pool.running(2) as outer:
        with pool.running(2) as inner:
            assert inner is outer
        assert pool.active()                    # the inner block did not stop the outer pool
    assert not pool.active()


def _big_product(queue) -> None:
    a = np.ones((300, 300), np.float32)
    queue.put(float((a @ a)[0, 0]))


def test_a_forked_child_uses_openblas_threads_not_the_missing_workers():
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    with pool.running(2):
        child = ctx.Process(target=_big_product, args=(queue,))
        child.start()
        child.join(60)
        alive = child.is_alive()
        if alive:
            child.kill()
    assert not alive, "the child hung in a GEMM waiting for the parent's workers"
    assert child.exitcode == 0 and queue.get(timeout=5) == 300.0


def _fit(schedule, monkeypatch, threads):
    """The weights after one epoch of Trainer.fit in a pool of ``threads`` (0: no pool)."""
    model_cfg, train_cfg = resolve("default", schedule=schedule, epochs=1, batch_size=50)
    x = np.random.default_rng(0).random((400, 784), dtype=np.float32)
    real = pool.running
    monkeypatch.setattr(pool, "running", lambda *a, **k: real(threads) if threads else nullcontext())
    trainer = Trainer(AAE(model_cfg, backend="numba"), train_cfg, x, progress=False)
    calls, epoch = [], trainer.train_epoch
    trainer.train_epoch = lambda: calls.append(pool.active()) or epoch()
    trainer.fit(on_epoch=lambda t, _: calls.append(pool.active()))
    assert calls == [bool(threads), False]          # the steps on the pool, the held-out numbers not
    return trainer.model.flat_params.copy()


@pytest.mark.parametrize("schedule", ["phased", "joint"])
def test_training_on_the_pool_is_repeatable_and_close_to_blas(schedule, monkeypatch):
    """Trainer.fit runs on the pool: two runs give the same bits (always the same two halves), and
    the same weights as without the pool up to float rounding (OpenBLAS cuts its GEMMs differently)."""
    two, again, none = (_fit(schedule, monkeypatch, n) for n in (2, 2, 0))
    np.testing.assert_array_equal(two, again)
    # Adam's steps are ~lr (2e-3) whatever the gradient's size: a rounding-size difference in a
    # gradient near 0 can move a weight by a step; all but a few stay within 1e-5
    np.testing.assert_allclose(two, none, rtol=0, atol=4e-3)
    assert np.mean(np.abs(two - none) > 1e-5) < 1e-3


def _halves(a, b):
    """``a @ b`` cut as ``openblas`` cuts it, each half a single-threaded np.dot."""
    (m, k), n = a.shape, b.shape[1]
    out = np.empty((m, n), a.dtype)
    with threadpool_limits(1, user_api="blas"):
        if m * k * n < openblas.SPLIT_MACS:                         # whole, on the caller
            out[...] = a @ b
        elif m >= openblas.TALL:                                    # rows
            out[:m // 2], out[m // 2:] = a[:m // 2] @ b, a[m // 2:] @ b
        elif k >= openblas.TALL and b.flags.c_contiguous:           # depth: x W
            h = k // 2
            out[...] = a[:, :h] @ b[:h]
            out += a[:, h:] @ b[h:]
        elif m < openblas.SHORT and not b.flags.c_contiguous:      # b = W^T, short: (W a^T)^T by W's rows
            w, h = b.T, n // 2
            out[:, :h], out[:, h:] = (w[:h] @ a.T).T, (w[h:] @ a.T).T
        else:                                                       # columns (W's rows if b = W^T)
            mid = n // 2 if not b.flags.c_contiguous else min((n // 2 + 15) // 16 * 16, n)
            out[:, :mid], out[:, mid:] = a @ b[:, :mid], a @ b[:, mid:]
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m, k, n", [(50, 784, 512), (784, 50, 512), (128, 784, 256), (300, 40, 33), (50, 5, 512),
                                     (50, 256, 1), (50, 300, 40)])
def test_split_gemms_are_two_single_threaded_halves(m, k, n, dtype):
    """Each layout the kernels pass (a and b as they are, or transposed views), tall and wide."""
    rng = np.random.default_rng(m + n)
    for ta in (False, True):
        for tb in (False, True):
            a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
            b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
            a, b = (a.T if ta else a), (b.T if tb else b)
            with pool.running(2) as running:
                assert running is not None
                outs = [pool.gemm(a, b, np.empty((m, n), dtype))]
            np.testing.assert_array_equal(outs[0], _halves(a, b))
            np.testing.assert_allclose(outs[0], a.astype(np.float64) @ b, rtol=1e-4, atol=1e-3)


def test_split_gemms_leave_small_or_strided_products_to_numpy():
    rng = np.random.default_rng(1)
    a, b = rng.random((50, 400)), rng.random((400, 600))
    with pool.running(2) as running:
        assert openblas.threads() == 1              # halves call a single-threaded BLAS
        seq = int(running.ctl[pool.SEQ])
        np.testing.assert_allclose(pool.gemm(a[:, ::2], b[::2], np.empty((50, 600))), a[:, ::2] @ b[::2])
        np.testing.assert_allclose(pool.gemm(a[:5, :5], b[:5, :5], np.empty((5, 5))), a[:5, :5] @ b[:5, :5])
        assert int(running.ctl[pool.SEQ]) == seq    # neither went to the workers
        pool.gemm(a, b, np.empty((50, 600)))
        assert int(running.ctl[pool.SEQ]) == seq + 1


def test_overlapping_blocks_in_two_threads_share_the_pool_until_the_last_ends():
    """A block that ends first must not stop the pool under a block still running in another thread."""
    import threading

    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((50, 784)).astype(np.float32), rng.standard_normal((784, 512)).astype(np.float32)
    want = x @ w
    entered, first_done, results = threading.Event(), threading.Event(), []

    def short():
        entered.wait(30)
        with pool.running(2) as shared:
            results.append(shared is pool._state.pool)
            x @ w
        first_done.set()

    def long():
        with pool.running(2) as mine:
            entered.set()
            first_done.wait(30)
            results.append((pool.active(), mine is not None, [np.array_equal(x @ w, want) for _ in range(20)]))

    threads = [threading.Thread(target=long), threading.Thread(target=short)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a GEMM hung after the other block ended"
    assert results == [True, (True, True, [True] * 20)]
    assert not pool.active()


def test_the_blas_thread_count_is_restored():
    with threadpool_limits(2, user_api="blas"):
        with pool.running(2):
            assert openblas.threads() == 1
        assert openblas.threads() == 2


def test_spread_tells_whether_the_threads_sit_on_different_cpus():
    with pool.running(2) as running:
        assert running.ctl[pool.REPORT] == 0              # workers stopped reporting after the start
        me = __import__("ctypes").CDLL(None).sched_getcpu()
        running.ctl[pool.CPUS + 1] = me
        assert not running.spread()                       # the worker on the caller's CPU
        running.ctl[pool.CPUS + 1] = me + 1
        assert running.spread()
        running.ctl[pool.CPUS + 1] = -1
        assert not running.spread()                       # not seen yet


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m, k, n", [(50, 512, 512), (50, 784, 512), (50, 5, 512), (63, 300, 40), (100, 256, 256)])
def test_short_products_by_w_transposed_run_as_w_delta_transposed_with_the_same_bits(m, k, n, dtype):
    """``delta W^T`` with fewer than ``SHORT`` rows runs as ``(W[half] delta^T)^T`` (faster at batch
    50), each half single-threaded; at ``SHORT`` rows the column cut by W's rows. The two agree to
    rounding (the same bits with OpenBLAS's AVX2 kernels, not with its AVX-512 ones)."""
    rng = np.random.default_rng(m * n)
    delta, W = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((n, k)).astype(dtype)
    h = n // 2
    with threadpool_limits(1, user_api="blas"):
        columns = np.concatenate([delta @ W[:h].T, delta @ W[h:].T], axis=1)
        transposed = np.concatenate([(W[:h] @ delta.T).T, (W[h:] @ delta.T).T], axis=1)
    with pool.running(2):
        got = pool.gemm(delta, W.T, np.empty((m, n), dtype))
    np.testing.assert_array_equal(got, transposed if m < openblas.SHORT else columns)
    np.testing.assert_allclose(transposed, columns, rtol=1e-4, atol=1e-3)
    ctl, out = np.zeros(pool.CTL_SLOTS, np.int64), np.empty((m, n), dtype)
    assert openblas.fill(ctl, 0, delta, W.T, out, np.empty_like(out))
    assert ctl[openblas.ROWS] == (openblas.TRANSPOSED if m < 64 else openblas.COLS_CUT)     # batch 50: yes; 128: no
    assert openblas.fill(ctl, 0, delta[:1].repeat(openblas.SHORT, 0), W.T, np.empty((openblas.SHORT, n), dtype),
                         np.empty((openblas.SHORT, n), dtype))
    assert ctl[openblas.ROWS] == openblas.COLS_CUT


def test_an_interrupt_while_the_pool_starts_leaves_no_thread_and_blas_as_found(monkeypatch):
    import threading

    def interrupted(self):
        raise KeyboardInterrupt
    monkeypatch.setattr(pool._Pool, "spread", interrupted)
    with threadpool_limits(2, user_api="blas"):
        with pytest.raises(KeyboardInterrupt):
            with pool.running(2):
                pass
        assert openblas.threads() == 2 and not pool.active()
    assert not [t for t in threading.enumerate() if t.name.startswith("aae_np-pool")]


def test_an_interrupt_during_training_leaves_no_thread_and_blas_as_found():
    import threading

    model_cfg, train_cfg = resolve("default", epochs=2, batch_size=50)
    x = np.random.default_rng(0).random((200, 784), dtype=np.float32)
    trainer = Trainer(AAE(model_cfg, backend="numba"), train_cfg, x, progress=False)
    step, calls = trainer.step, []

    def interrupted(*args, **kwargs):
        calls.append(pool.active())
        if len(calls) == 3:
            raise KeyboardInterrupt
        return step(*args, **kwargs)
    trainer.step = interrupted
    with threadpool_limits(2, user_api="blas"):
        with pytest.raises(KeyboardInterrupt):
            trainer.fit()
        assert calls == [True] * 3 and openblas.threads() == 2 and not pool.active()
    assert not [t for t in threading.enumerate() if t.name.startswith("aae_np-pool")]
