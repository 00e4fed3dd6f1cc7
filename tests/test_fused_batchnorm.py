"""FusedMLP on ``[Dropout] (Dense [BatchNorm] [activation])*`` networks against ``Sequential`` itself,
its fused backward against central differences, and the BatchNorm kernels against their NumPy twins."""

import copy
import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

from aae_np.fast.bn_kernels import BN_KERNELS, BN_NUMPY
from aae_np.fast.kernels import ACT_CODES, ADD, NUMBA, NUMPY, SET, SKIP, numba_available
from aae_np.fast.runner import FusedMLP
from aae_np.nn import BatchNorm, Dense, Dropout, LeakyReLU, ReLU, Sequential, Sigmoid, Tanh
from aae_np.nn.gradcheck import check_params

pytestmark = pytest.mark.skipif(not numba_available(), reason="numba not installed")
NB = BN_KERNELS["numba"]
KERNEL_SETS = [NUMPY, NUMBA]
ACT_LAYER = {"relu": ReLU, "tanh": Tanh, "leaky_relu": lambda: LeakyReLU(0.2), "sigmoid": Sigmoid, None: None}
# float64 agreement: rtol for every element, atol only for rounding noise on entries that are ~0
# (db of a Dense before a training-mode BatchNorm is a sum of terms that cancel exactly)
AGREE = dict(rtol=1e-12, atol=1e-13)
TOL = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-12, atol=1e-13)}

# (input dim, dropout p or None, blocks: (out dim, BatchNorm?, activation))
NETS = {
    "issue": (6, 0.2, [(5, True, "relu"), (4, True, None), (3, True, None)]),
    "tanh_leaky": (6, None, [(5, True, "tanh"), (4, False, "leaky_relu"), (3, True, "leaky_relu")]),
    "dropout_no_bn": (6, 0.3, [(5, False, "tanh"), (3, False, None)]),
    "plain": (6, None, [(5, False, "relu"), (4, False, "sigmoid"), (3, False, None)]),
}


def build(spec, seed=0, n=8):
    """A float64 Sequential of ``spec`` with random parameters and running statistics (so that
    gamma, beta and evaluation mode all matter), and the dropout mask of an n-row batch."""
    d_in, p, blocks = spec
    rng = np.random.default_rng(seed)
    layers = [Dropout(p)] if p is not None else []
    for d_out, bn, act in blocks:
        layers.append(Dense(d_in, d_out, rng=rng, dtype=np.float64))
        if bn:
            layers.append(BatchNorm(d_out, momentum=0.8, dtype=np.float64))
        if act is not None:
            layers.append(ACT_LAYER[act]())
        d_in = d_out
    net = Sequential(*layers)
    for value in net.params.values():
        value[...] = rng.uniform(0.5, 1.5, value.shape) * rng.choice([-1, 1], value.shape)
    for name, value in net.state.items():
        value[...] = rng.uniform(0.5, 2.0, value.shape) if name.endswith("var") else rng.standard_normal(value.shape)
    if p is not None:
        net.layers[0].set_mask(rng.random((n, spec[0])) >= p)
    return net


def assert_agree(actual, expected, what, **tol):
    np.testing.assert_allclose(actual, expected, **(tol or AGREE), err_msg=what)


@pytest.mark.parametrize("kernels", KERNEL_SETS, ids=lambda k: k.name)
@pytest.mark.parametrize("net_name", list(NETS))
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("param_grads", [True, False], ids=["grads", "no_grads"])
@pytest.mark.parametrize("need_dx", [True, False], ids=["dx", "no_dx"])
def test_fused_matches_sequential(kernels, net_name, training, param_grads, need_dx):
    net = build(NETS[net_name]).train(training)
    for g in net.grads.values():
        g.fill(7.0)                                  # zero_grad is lazy: SET must overwrite these
    ref = copy.deepcopy(net)
    ref.zero_grad()
    fused = FusedMLP(net, kernels)
    fused.zero_grad()
    rng = np.random.default_rng(1)
    x, douts = rng.standard_normal((8, 6)), [rng.standard_normal((8, 3)) for _ in range(2)]
    state_before = {k: v.copy() for k, v in net.state.items()}

    assert_agree(fused.forward(x), ref.forward(x), "forward")
    for name, value in net.state.items():
        assert_agree(value, ref.state[name], name)
        if not training:
            np.testing.assert_array_equal(value, state_before[name], err_msg=f"{name} changed in eval mode")
    for dout in douts:                               # the first backward SETs, the second ADDs
        dx, dx_ref = fused.backward(dout, need_dx, param_grads), ref.backward(dout, need_dx, param_grads)
        if need_dx:
            assert_agree(dx, dx_ref, "dx")
        else:
            assert dx is None
        for name, g in net.grads.items():
            if param_grads:
                assert_agree(g, ref.grads[name], name)
            else:
                np.testing.assert_array_equal(g, 7.0, err_msg=f"{name} touched with param_grads=False")


blocks_st = st.lists(st.tuples(st.integers(1, 7), st.booleans(), st.sampled_from(list(ACT_LAYER))),
                     min_size=1, max_size=3)


@settings(max_examples=25)
@given(d_in=st.integers(1, 7), dropout=st.booleans(), blocks=blocks_st, n=st.integers(2, 9),
       training=st.booleans(), seed=st.integers(0, 2**31))
@example(d_in=3, dropout=False, blocks=[(1, True, "relu"), (5, False, "tanh"), (4, True, "relu")], n=2,
         training=True, seed=0)
def test_fused_matches_sequential_on_random_networks(d_in, dropout, blocks, n, training, seed):
    spec = (d_in, 0.25 if dropout else None, blocks)
    rng = np.random.default_rng(seed)
    x, dout = rng.standard_normal((n, d_in)), rng.standard_normal((n, blocks[-1][0]))
    ref = build(spec, seed, n).train(training)
    ref.zero_grad()
    y_ref = ref.forward(x)
    dx_ref = ref.backward(dout)
    # 1e-9 of the largest gradient, not AGREE's 1e-12: a BatchNorm over n = 2 rows that nearly
    # agree has a large 1/sigma, which amplifies the two sides' different summation orders
    # (hypothesis found this net: bias gradients agreeing to 5e-11 relative, and a Dense bias before
    # a BatchNorm, 0 up to rounding, at 1e-14 against -1.3e-12)
    scale = max([float(np.abs(g).max()) for g in ref.grads.values()] + [float(np.abs(dx_ref).max())])
    tol = dict(rtol=1e-9, atol=1e-9 * scale)
    for kernels in KERNEL_SETS:
        net = build(spec, seed, n).train(training)
        fused = FusedMLP(net, kernels)
        fused.zero_grad()
        assert_agree(fused.forward(x), y_ref, f"{kernels.name}: forward", **tol)
        assert_agree(fused.backward(dout), dx_ref, f"{kernels.name}: dx", **tol)
        for name in ref.grads:
            assert_agree(net.grads[name], ref.grads[name], f"{kernels.name}: {name}", **tol)
        for name in ref.state:
            assert_agree(net.state[name], ref.state[name], f"{kernels.name}: {name}", **tol)


def fused_gradcheck(kernels, break_bn_backward=False):
    """Central differences of L = sum(fused.forward(x) * dout) against the fused backward, in
    training mode with a fixed dropout mask; ``break_bn_backward`` uses the evaluation-mode
    dx = dy * gamma / sigma in training mode (mu and sigma taken as constants: the classic error)."""
    spec = (5, 0.2, [(4, True, "tanh"), (4, True, "leaky_relu"), (3, True, None)])
    net = build(spec, seed=3, n=6).train(True)
    fused = FusedMLP(net, kernels)
    rng = np.random.default_rng(4)
    x, dout = rng.standard_normal((6, 5)), rng.standard_normal((6, 3))
    fused.zero_grad()
    fused.forward(x)
    if break_bn_backward:
        fused.bn_saved = [dataclasses.replace(s, training=False) for s in fused.bn_saved]
    analytic = {"x": fused.backward(dout), **{k: g.copy() for k, g in net.grads.items()}}
    return check_params(lambda: float(np.sum(fused.forward(x) * dout)), {"x": x, **net.params}, analytic,
                        title=f"FusedMLP({kernels.name})", atol=1e-9)   # L ~ 10: noise ~ 1e-10


@pytest.mark.parametrize("kernels", KERNEL_SETS, ids=lambda k: k.name)
def test_fused_backward_with_batchnorm_passes_a_gradient_check(kernels):
    report = fused_gradcheck(kernels)
    assert report.passed(1e-7), str(report)


@pytest.mark.parametrize("kernels", KERNEL_SETS, ids=lambda k: k.name)
def test_the_gradient_check_catches_the_naive_batchnorm_backward(kernels):
    report = fused_gradcheck(kernels, break_bn_backward=True)
    wrong = {c.name for c in report.failures(1e-7)}
    assert {"x", "1.W"} <= wrong, str(report)       # below the first BatchNorm
    assert "8.gamma" not in wrong and "8.beta" not in wrong   # the last BatchNorm's own: dy is right there


def bn_inputs(rng, dtype, n, d):
    u = (rng.standard_normal((n, d)) * 2 + 1).astype(dtype)
    gamma, beta = rng.uniform(0.5, 1.5, d).astype(dtype), rng.standard_normal(d).astype(dtype)
    running = rng.standard_normal(d).astype(dtype), rng.uniform(0.5, 2, d).astype(dtype)
    return u, gamma, beta, running


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", list(ACT_CODES))
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@settings(max_examples=10)
@given(n=st.integers(2, 9), d=st.integers(1, 9), seed=st.integers(0, 2**31))
def test_bn_kernels_and_twins_agree(dtype, act, training, n, d, seed):
    rng = np.random.default_rng(seed)
    u, gamma, beta, running = bn_inputs(rng, dtype, n, d)
    dout = rng.standard_normal((n, d)).astype(dtype)
    code = ACT_CODES[act]
    results = {}
    for bn in (BN_NUMPY, NB):
        rm, rv = running[0].copy(), running[1].copy()
        x_hat, inv_sigma, out = np.empty_like(u), np.empty(d, dtype), np.empty_like(u)
        bn.bn_forward(u, gamma, beta, rm, rv, 0.9, 1e-5, training, code, 0.2, x_hat, inv_sigma, out)
        dx, dgamma, dbeta = np.empty_like(u), np.ones(d, dtype), np.ones(d, dtype)
        bn.bn_backward(out, dout, code, 0.2, x_hat, gamma, inv_sigma, training, dx, dgamma, dbeta, ADD)
        results[bn.name] = out, x_hat, inv_sigma, rm, rv, dx, dgamma, dbeta
        if not training:
            assert (rm == running[0]).all() and (rv == running[1]).all()
    for what, a, b in zip("out x_hat inv_sigma running_mean running_var dx dgamma dbeta".split(),
                          results["numpy"], results["numba"]):
        assert a.dtype == b.dtype == dtype, what
        np.testing.assert_allclose(b, a, **TOL[dtype], err_msg=what)


@pytest.mark.parametrize("bn", [BN_NUMPY, NB], ids=["numpy", "numba"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_bn_kernels_compute_what_the_layers_compute(bn, training):
    """Against BatchNorm + Tanh layers; x_hat written over u (as the runner does)."""
    rng = np.random.default_rng(5)
    u, gamma, beta, (rm, rv) = bn_inputs(rng, np.float64, 7, 4)
    dout = rng.standard_normal((7, 4))
    layer, act = BatchNorm(4, momentum=0.8, dtype=np.float64).train(training), Tanh()
    layer.params["gamma"][...], layer.params["beta"][...] = gamma, beta
    layer.state["running_mean"][...], layer.state["running_var"][...] = rm, rv
    y_ref = act.forward(layer.forward(u))
    dx_ref = layer.backward(act.backward(dout))
    x_hat, inv_sigma, out = u.copy(), np.empty(4), np.empty_like(u)
    bn.bn_forward(x_hat, gamma, beta, rm, rv, 0.8, layer.eps, training, ACT_CODES["tanh"], 0.0, x_hat, inv_sigma, out)
    assert_agree(out, y_ref, "out")
    assert_agree(rm, layer.state["running_mean"], "running_mean")
    assert_agree(rv, layer.state["running_var"], "running_var")
    dx, dgamma, dbeta = np.empty_like(u), np.empty(4), np.empty(4)
    bn.bn_backward(out, dout, ACT_CODES["tanh"], 0.0, x_hat, gamma, inv_sigma, training, dx, dgamma, dbeta, SET)
    assert_agree(dx, dx_ref, "dx")
    assert_agree(dgamma, layer.grads["gamma"], "dgamma")
    assert_agree(dbeta, layer.grads["beta"], "dbeta")


@pytest.mark.parametrize("bn", [BN_NUMPY, NB], ids=["numpy", "numba"])
def test_bn_backward_grad_modes(bn):
    rng = np.random.default_rng(6)
    u, gamma, beta, (rm, rv) = bn_inputs(rng, np.float64, 5, 3)
    x_hat, inv_sigma, out = np.empty_like(u), np.empty(3), np.empty_like(u)
    bn.bn_forward(u, gamma, beta, rm, rv, 0.9, 1e-5, True, 4, 0.0, x_hat, inv_sigma, out)
    dout = rng.standard_normal((5, 3))
    runs = {}
    for mode in (SKIP, SET, ADD):
        dx, dgamma, dbeta = np.empty_like(u), np.ones(3), np.ones(3)
        bn.bn_backward(out, dout, 4, 0.0, x_hat, gamma, inv_sigma, True, dx, dgamma, dbeta, mode)
        runs[mode] = dgamma, dbeta, dx
    np.testing.assert_array_equal(runs[SKIP][0], 1.0)                       # untouched
    np.testing.assert_array_equal(runs[SKIP][1], 1.0)
    for i in (0, 1):
        np.testing.assert_allclose(runs[ADD][i], runs[SET][i] + 1.0, rtol=1e-12)
    for mode in (SKIP, SET):
        np.testing.assert_allclose(runs[mode][2], runs[ADD][2], rtol=1e-12)   # dx never depends on it


def test_a_network_without_batchnorm_makes_the_same_kernel_calls_as_before():
    calls = []

    def spy(name):
        def call(*args):
            calls.append(name)
            return getattr(NUMPY, name)(*args)
        return call

    kernels = SimpleNamespace(name="spy", dense_forward=spy("dense_forward"), dense_backward=spy("dense_backward"),
                              flushed=NUMPY.flushed, flush=NUMPY.flush)
    net = build(NETS["plain"])
    fused = FusedMLP(net, kernels)
    fused.forward(np.ones((8, 6)))
    fused.backward(np.ones((8, 3)))
    assert calls == ["dense_forward"] * 3 + ["dense_backward"] * 3


def test_networks_of_another_form_are_refused_with_a_message():
    with pytest.raises(ValueError, match=r"layer 2 is Dropout\(p=0.5\), expected Dense"):
        FusedMLP(Sequential(Dense(3, 2), ReLU(), Dropout(0.5), Dense(2, 2)), NUMPY)
    with pytest.raises(ValueError, match="must have the Dense's out_dim and dtype"):
        FusedMLP(Sequential(Dense(3, 2), BatchNorm(3)), NUMPY)
    with pytest.raises(ValueError, match="at least 2 rows"):
        FusedMLP(Sequential(Dense(3, 2), BatchNorm(2)), NUMPY).forward(np.ones((1, 3), np.float32))
