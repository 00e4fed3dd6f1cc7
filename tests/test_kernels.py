"""Every Numba kernel against its NumPy twin (float32 and float64), and the twins against the layers."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from aae_np.nn import losses
from aae_np.fast.backend import get_kernels
from aae_np.fast.kernels import ACT_CODES, NUMPY, numba_available
from aae_np.nn.layers import Dense, Identity, LeakyReLU, ReLU, Sigmoid, Tanh

pytestmark = pytest.mark.skipif(not numba_available(), reason="numba/scipy not installed")
NB = get_kernels("numba") if numba_available() else None
LAYER_OF = {"identity": Identity, "relu": ReLU, "leaky_relu": lambda: LeakyReLU(0.2), "sigmoid": Sigmoid,
            "tanh": Tanh}
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}
shapes = st.tuples(st.integers(1, 9), st.integers(1, 13), st.integers(1, 11))


def arrays(rng, dtype, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", list(ACT_CODES))
@settings(max_examples=20)
@given(shape=shapes, seed=st.integers(0, 2**31))
def test_dense_forward_and_backward_twins(dtype, act, shape, seed):
    n, d_in, d_out = shape
    rng = np.random.default_rng(seed)
    x, W, b = arrays(rng, dtype, n, d_in), arrays(rng, dtype, d_in, d_out), arrays(rng, dtype, d_out)
    dout = arrays(rng, dtype, n, d_out)
    code = ACT_CODES[act]
    results = {}
    for kernels in (NUMPY, NB):
        y = kernels.dense_forward(x, W, b, code, 0.2, np.empty((n, d_out), dtype))
        delta, dW, db, dx = (np.empty((n, d_out), dtype), np.ones((d_in, d_out), dtype),
                             np.ones(d_out, dtype), np.empty((n, d_in), dtype))
        kernels.dense_backward(x, W, y, dout, code, 0.2, delta, dW, db, dx, True)
        results[kernels.name] = (y, delta, dW, db, dx)
    for a, b_ in zip(results["numpy"], results["numba"]):
        assert a.dtype == b_.dtype == dtype
        np.testing.assert_allclose(b_, a, **TOL[dtype])

    # the twin computes what the layers compute (dW, db accumulate onto the ones above)
    dense, layer = Dense(d_in, d_out, dtype=dtype), LAYER_OF[act]()
    dense.params["W"][...], dense.params["b"][...] = W, b
    y_ref = layer.forward(dense.forward(x))
    dx_ref = dense.backward(layer.backward(dout))
    y, _, dW, db, dx = results["numpy"]
    np.testing.assert_allclose(y, y_ref, **TOL[dtype])
    np.testing.assert_allclose(dx, dx_ref, **TOL[dtype])
    np.testing.assert_allclose(dW - 1, dense.grads["W"], **TOL[dtype])
    np.testing.assert_allclose(db - 1, dense.grads["b"], **TOL[dtype])


@pytest.mark.parametrize("kernels", [NUMPY, NB], ids=["numpy", "numba"])
def test_need_dx_false_leaves_dx_alone(kernels):
    rng = np.random.default_rng(0)
    x, W, dout = arrays(rng, np.float32, 4, 3), arrays(rng, np.float32, 3, 2), arrays(rng, np.float32, 4, 2)
    y = np.maximum(x @ W, 0)
    dx = np.full((4, 3), 7.0, np.float32)
    kernels.dense_backward(x, W, y, dout, 1, 0.2, np.empty_like(y), np.zeros_like(W), np.zeros(2, np.float32),
                           dx, False)
    assert (dx == 7).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", list(ACT_CODES))
def test_activation_twins(dtype, act):
    rng = np.random.default_rng(1)
    u, dout = arrays(rng, dtype, 7, 5, scale=3), arrays(rng, dtype, 7, 5)
    code = ACT_CODES[act]
    y_np = NUMPY.activation_forward(u, code, 0.2, np.empty_like(u))
    y_nb = NB.activation_forward(u, code, 0.2, np.empty_like(u))
    np.testing.assert_allclose(y_nb, y_np, **TOL[dtype])
    np.testing.assert_allclose(NB.activation_backward(y_np, dout, code, 0.2, np.empty_like(u)),
                               NUMPY.activation_backward(y_np, dout, code, 0.2, np.empty_like(u)), **TOL[dtype])
    np.testing.assert_allclose(y_np, LAYER_OF[act]().forward(u), **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(max_examples=20)
@given(n=st.integers(1, 9), d=st.integers(1, 9), seed=st.integers(0, 2**31))
def test_bce_logits_twins_match_the_loss(dtype, n, d, seed):
    rng = np.random.default_rng(seed)
    s = arrays(rng, dtype, n, d, scale=5)
    s[0, 0] = 1e4                                        # stays finite and exact
    t = rng.integers(0, 2, (n, d)).astype(dtype)
    value, grad = losses.bce_with_logits(s, t)
    for kernels in (NUMPY, NB):
        g = np.empty_like(s)
        v = kernels.bce_logits(s, t, g)
        assert v == pytest.approx(value, rel=1e-5 if dtype == np.float32 else 1e-12)
        np.testing.assert_allclose(g, grad, **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_flat_twins_match_the_pure_rule(dtype):
    from aae_np.nn.optim import Adam

    rng = np.random.default_rng(2)
    rule = Adam(lr=1e-2, betas=(0.5, 0.999))
    p0 = arrays(rng, dtype, 1000)
    pure, state = p0.copy(), rule.init_state(p0)
    flat = {k.name: (p0.copy(), np.zeros_like(p0), np.zeros_like(p0)) for k in (NUMPY, NB)}
    for t in range(1, 6):
        g = arrays(rng, dtype, 1000)
        pure, state = rule.update(pure, g, state)
        for kernels in (NUMPY, NB):
            p, m, v = flat[kernels.name]
            kernels.adam_flat(p, g, m, v, rule.lr / (1 - 0.5 ** t), 0.5, 0.999, rule.eps,
                              1 / np.sqrt(1 - 0.999 ** t))
    for name, (p, m, v) in flat.items():
        np.testing.assert_allclose(p, pure, rtol=1e-5 if dtype == np.float32 else 1e-12, err_msg=name)
        np.testing.assert_allclose(m, state["m"], rtol=1e-5 if dtype == np.float32 else 1e-12, err_msg=name)


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_momentum_flat_twins_match_the_pure_rule(dtype, nesterov):
    from aae_np.nn.optim import Momentum

    rng = np.random.default_rng(3)
    rule = Momentum(lr=0.1, momentum=0.9, nesterov=nesterov)
    p0 = arrays(rng, dtype, 300)
    pure, state = p0.copy(), rule.init_state(p0)
    flat = {k.name: (p0.copy(), np.zeros_like(p0)) for k in (NUMPY, NB)}
    for _ in range(4):
        g = arrays(rng, dtype, 300)
        pure, state = rule.update(pure, g, state)
        for kernels in (NUMPY, NB):
            p, vel = flat[kernels.name]
            kernels.momentum_flat(p, g, vel, 0.1, 0.9, nesterov)
    for name, (p, _) in flat.items():
        np.testing.assert_allclose(p, pure, rtol=1e-5 if dtype == np.float32 else 1e-12, err_msg=name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(max_examples=15)
@given(shape=st.tuples(st.integers(1, 130), st.integers(1, 70), st.integers(1, 90)), seed=st.integers(0, 2**31))
def test_teaching_matmul_matches_blas(dtype, shape, seed):
    n, k, m = shape
    rng = np.random.default_rng(seed)
    a, b = arrays(rng, dtype, n, k), arrays(rng, dtype, k, m)
    out = NB.matmul(a, b, np.empty((n, m), dtype))
    np.testing.assert_allclose(out, NUMPY.matmul(a, b, np.empty((n, m), dtype)),
                               rtol=1e-4 if dtype == np.float32 else 1e-11, atol=1e-4 if dtype == np.float32 else 1e-11)


def test_unknown_backend():
    with pytest.raises(ValueError, match="backend must be 'numpy' or 'numba'"):
        get_kernels("cuda")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_mse_twins_match_the_layers(dtype):
    rng = np.random.default_rng(4)
    s, x = arrays(rng, dtype, 6, 9, scale=3), rng.random((6, 9)).astype(dtype)
    sig = Sigmoid()
    x_hat = sig.forward(s)
    value, d_xhat = losses.mse(x_hat, x)
    expected = sig.backward(d_xhat)
    for kernels in (NUMPY, NB):
        g = np.empty_like(s)
        assert kernels.sigmoid_mse(s, x, g) == pytest.approx(value, rel=1e-5 if dtype == np.float32 else 1e-12)
        np.testing.assert_allclose(g, expected, **TOL[dtype])


@pytest.mark.parametrize("kernels", [NUMPY, NB], ids=["numpy", "numba"])
def test_dense_backward_grad_modes(kernels):
    from aae_np.fast.kernels import ADD, SET, SKIP

    rng = np.random.default_rng(5)
    x, W, dout = arrays(rng, np.float64, 5, 4), arrays(rng, np.float64, 4, 3), arrays(rng, np.float64, 5, 3)
    y = np.tanh(x @ W)
    runs = {}
    for mode in (SKIP, SET, ADD):
        dW, db, dx = np.full((4, 3), 1.0), np.full(3, 1.0), np.empty((5, 4))
        kernels.dense_backward(x, W, y, dout, 4, 0.2, np.empty_like(y), dW, db, dx, True, mode)
        runs[mode] = dW, db, dx
    np.testing.assert_array_equal(runs[SKIP][0], 1.0)                     # untouched
    np.testing.assert_allclose(runs[ADD][0], runs[SET][0] + 1.0, rtol=1e-12)
    np.testing.assert_allclose(runs[ADD][1], runs[SET][1] + 1.0, rtol=1e-12)
    for mode in (SKIP, SET):
        np.testing.assert_allclose(runs[mode][2], runs[ADD][2], rtol=1e-12)  # dx never depends on it


def test_adam_flat_stores_subnormal_moments_as_zero():
    """A parameter whose gradient stays 0 decays its first moment through float32's subnormals;
    the numba kernel stores them as 0 (x86 computes on subnormals slowly), the update is unchanged."""
    tiny = np.finfo(np.float32).tiny
    p0 = np.array([0.5, -0.25, 1.0], np.float32)
    g = np.array([0.0, 0.0, 1e-3], np.float32)
    runs = {}
    for kernels in (NUMPY, NB):
        p, m, v = p0.copy(), np.array([3e-38, 1e-3, 1e-3], np.float32), np.full(3, 1e-6, np.float32)
        for _ in range(3):                                   # m[0]: 1.5e-38, then 7.5e-39 (subnormal)
            kernels.adam_flat(p, g, m, v, 1e-3, 0.5, 0.999, 1e-8, 1.0)
        runs[kernels.name] = p, m, v
    (p_np, m_np, _), (p_nb, m_nb, _) = runs["numpy"], runs["numba"]
    assert 0 < m_np[0] < tiny and m_nb[0] == 0                # the twin keeps it; the kernel flushes
    np.testing.assert_array_equal(m_nb[1:], m_np[1:])
    np.testing.assert_allclose(p_nb, p_np, rtol=1e-6)
