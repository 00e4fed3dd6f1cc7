"""Layers: finite-difference gradients, the contract, dtypes and bad input."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from aae_np.nn.gradcheck import check_layer
from aae_np.nn.layers import Dense, Identity, LeakyReLU, ReLU, Sequential, Sigmoid, Tanh
from strategies import batch_and_dims, matrices

ACTIVATIONS = [ReLU, lambda: LeakyReLU(0.2), Sigmoid, Tanh, Identity]


@given(shape=batch_and_dims(), seed=st.integers(0, 2**32 - 1), data=st.data())
def test_dense_gradients_match_finite_differences(shape, seed, data):
    n, d_in, d_out = shape
    # |values| >= 0.1: a gradient of ~1e-10 (x ~ 1e-10) is below what any finite difference resolves
    x = data.draw(matrices(n, d_in, away_from_zero=0.1))
    # dout > 0: db = sum over rows of dout cannot cancel to 0, whose finite difference is pure rounding
    dout = data.draw(matrices(n, d_out, lo=0.1, hi=2.0))
    layer = Dense(d_in, d_out, rng=seed, dtype=np.float64)
    layer.params["b"][:] = np.random.default_rng(seed).normal(size=d_out)
    # L = sum(y * dout) is linear in x, W and b: central differences are exact up to rounding, so h=1e-3.
    # atol: dW = x^T dout can still cancel to exactly 0 (hypothesis drew x columns like (-1, 0.5, 0.5)
    # against equal douts), where the finite difference is rounding noise of ~1e-13
    report = check_layer(layer, x, dout, h=1e-3, atol=1e-10)
    assert set(report) == {"x", "W", "b"}
    assert report.max_rel_error < 1e-7, str(report)


@pytest.mark.parametrize("make", ACTIVATIONS, ids=["relu", "leaky_relu", "sigmoid", "tanh", "identity"])
@given(shape=batch_and_dims(), data=st.data())
def test_activation_gradients_match_finite_differences(make, shape, data):
    n, d, _ = shape
    # away from the ReLU kink by 1e-3 >> h = 1e-5, so no difference straddles 0
    x = data.draw(matrices(n, d, -4, 4, away_from_zero=1e-3))
    dout = data.draw(matrices(n, d, -2, 2))
    report = check_layer(make(), x, dout)
    assert set(report) == {"x"}
    assert report.max_rel_error < 1e-7, str(report)


def test_relu_kink_is_the_left_derivative_and_finite_differences_disagree_there():
    # At exactly x = 0 the central difference sees half of each side: 0.5.
    # Our backward uses 1[x > 0] = 0 there. Both are valid subgradients; the check
    # reports the disagreement instead of hiding it.
    x = np.array([[0.0, 1.0, -1.0]])
    report = check_layer(ReLU(), x, dout=np.ones((1, 3)))
    assert report["x"].worst_index == (0, 0)
    assert report["x"].numeric == pytest.approx(0.5)
    assert report["x"].analytic == 0.0
    assert not report.passed()


@given(shape=batch_and_dims(), seed=st.integers(0, 2**32 - 1), data=st.data())
def test_sequential_gradients_through_a_small_mlp(shape, seed, data):
    n, d_in, d_out = shape
    rng = np.random.default_rng(seed)
    net = Sequential(Dense(d_in, 5, rng=rng, init="glorot"), Tanh(),
                     Dense(5, 4, rng=rng, init="glorot"), Tanh(),
                     Dense(4, d_out, rng=rng, init="glorot"), Sigmoid())
    # smooth activations only (kinks are tested above); |x| >= 0.1 so dW = x^T delta is not ~0,
    # where no finite difference can resolve it (rounding noise ~ eps |y| / h)
    x = data.draw(matrices(n, d_in, -1, 1, away_from_zero=0.1))
    report = check_layer(net, x, h=1e-5)
    assert set(report) == {"x", "0.W", "0.b", "2.W", "2.b", "4.W", "4.b"}
    # Through three layers every numeric entry carries rounding from the whole net (~1e-11
    # absolute), so an entry that cancels to ~1e-6 cannot be measured to 1e-6 relative: such
    # an entry must agree absolutely instead. A wrong gradient is off by far more than 1e-9.
    for check in report.values():
        assert check.max_rel_error < 1e-6 or check.max_abs_error < 1e-9, str(report)


class FlippedDense(Dense):
    """A deliberately wrong backward: the sign of dW is flipped."""

    def backward(self, dout):
        dx = super().backward(dout)
        self.grads["W"] *= -1
        return dx


class TransposedDense(Dense):
    """A deliberately wrong backward: dx uses W instead of W^T (square layer, so shapes still fit)."""

    def backward(self, dout):
        super().backward(dout)
        return dout @ self.params["W"]


def test_wrong_backward_is_reported_with_the_tensor_name():
    x = np.random.default_rng(0).normal(size=(4, 5))
    flipped = check_layer(FlippedDense(5, 3, rng=0), x, h=1e-3)
    assert not flipped.passed()
    assert [c.name for c in flipped.failures()] == ["W"]
    assert flipped["W"].max_rel_error == pytest.approx(1.0)    # |a - (-a)| / (|a| + |a|)
    assert "WRONG" in str(flipped) and "FAIL: W" in str(flipped)

    transposed = check_layer(TransposedDense(5, 5, rng=0), x, h=1e-3)
    assert [c.name for c in transposed.failures()] == ["x"]
    assert transposed["x"].max_rel_error > 0.1


def test_backward_accumulates_until_zero_grad():
    layer = Dense(3, 2, rng=0, dtype=np.float64)
    x, dout = np.ones((4, 3)), np.ones((4, 2))
    layer.forward(x)
    layer.backward(dout)
    once = layer.grads["W"].copy()
    layer.backward(dout)
    np.testing.assert_allclose(layer.grads["W"], 2 * once)
    layer.zero_grad()
    assert not layer.grads["W"].any() and not layer.grads["b"].any()


def test_backward_changes_no_parameter():
    layer = Dense(3, 2, rng=0)
    before = {k: v.copy() for k, v in layer.params.items()}
    layer.forward(np.ones((2, 3), np.float32))
    layer.backward(np.ones((2, 2), np.float32))
    for k in before:
        np.testing.assert_array_equal(layer.params[k], before[k])


def test_sequential_names_and_shares_arrays():
    net = Sequential(Dense(4, 3, rng=0), ReLU(), Dense(3, 2, rng=1))
    names = [name for name, _ in net.named_params()]
    assert names == ["0.W", "0.b", "2.W", "2.b"]
    assert list(net.params) == list(net.grads)
    assert net.params["2.W"] is net[2].params["W"]
    assert [n for n, _ in net.named_params("encoder.")][0] == "encoder.0.W"
    x = np.ones((5, 4), np.float32)
    net.forward(x)
    net.backward(np.ones((5, 2), np.float32))
    assert net.grads["0.W"].any() and net.grads["0.W"] is net[0].grads["W"]
    net.zero_grad()
    assert not any(g.any() for g in net.grads.values())


def test_dense_init_is_seeded_and_scaled():
    a, b = Dense(400, 300, rng=7), Dense(400, 300, rng=7)
    np.testing.assert_array_equal(a.params["W"], b.params["W"])
    assert not np.array_equal(a.params["W"], Dense(400, 300, rng=8).params["W"])
    assert a.params["W"].dtype == np.float32 and a.params["W"].shape == (400, 300)
    assert a.params["W"].std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)              # He
    g = Dense(400, 300, rng=7, init="glorot")
    assert g.params["W"].std() == pytest.approx(np.sqrt(2 / 700), rel=0.02)              # Glorot
    assert not a.params["b"].any()


@pytest.mark.parametrize("make", ACTIVATIONS + [lambda: Dense(6, 4, rng=3)])
def test_float32_forward_agrees_with_float64(make):
    layer32 = make()
    if isinstance(layer32, Dense):
        layer32.params["b"][:] = 0.1
    layer64 = layer32.astype(np.float64)
    x = np.random.default_rng(1).normal(size=(8, 6))
    y32 = layer32.forward(x.astype(np.float32))
    y64 = layer64.forward(x)
    assert y32.dtype == np.float32 and y64.dtype == np.float64
    np.testing.assert_allclose(y32, y64, rtol=1e-5, atol=1e-6)


def test_astype_leaves_the_original_alone():
    layer = Dense(3, 2, rng=0)
    copy64 = layer.astype(np.float64)
    copy64.params["W"][:] = 0
    assert layer.params["W"].any() and layer.params["W"].dtype == np.float32


@pytest.mark.parametrize("bad, message", [
    (np.ones((2, 5), np.float32), r"shape \(2, 5\), expected \(N, 4\) \(the layer is Dense\(4, 3"),
    (np.ones(4, np.float32), r"must be 2-D .*shape \(4,\)"),
    (np.ones((2, 4), np.float64), r"dtype float64 .*parameters are float32"),
    (np.ones((2, 4), np.int64), r"floating point"),
    (np.array([[1, np.nan, 0, 0]], np.float32), r"NaN or inf .*first at \(0, 1\)"),
    ([[1.0, 2.0, 3.0, 4.0]], r"numpy array"),
])
def test_bad_input_names_the_layer_and_shapes(bad, message):
    net = Sequential(Dense(4, 3, rng=0), ReLU())
    net._set_name("encoder")
    with pytest.raises(ValueError, match=message) as err:
        net.forward(bad)
    assert "encoder.0" in str(err.value)


def test_bad_dout_and_backward_before_forward():
    layer = Dense(4, 3, rng=0)
    with pytest.raises(ValueError, match="before forward"):
        layer.backward(np.ones((2, 3), np.float32))
    layer.forward(np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"dout has 5 rows but the last forward had 2"):
        layer.backward(np.ones((5, 3), np.float32))
    act = Sigmoid()
    act.forward(np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"Sigmoid.backward: dout has shape \(2, 3\)"):
        act.backward(np.ones((2, 3)))


@pytest.mark.parametrize("kwargs, message", [
    (dict(in_dim=0, out_dim=3), "in_dim must be a positive integer"),
    (dict(in_dim=3, out_dim=2.5), "out_dim must be a positive integer"),
    (dict(in_dim=3, out_dim=2, init="xavier"), "init must be"),
    (dict(in_dim=3, out_dim=2, dtype=np.int32), "floating"),
])
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Dense(**kwargs)


def test_need_dx_false_skips_only_the_input_gradient():
    net = Sequential(Dense(4, 3, rng=0, dtype=np.float64), Tanh(), Dense(3, 2, rng=1, dtype=np.float64))
    x, dout = np.random.default_rng(0).normal(size=(5, 4)), np.ones((5, 2))
    net.forward(x)
    dx = net.backward(dout)
    full = {k: g.copy() for k, g in net.grads.items()}
    net.zero_grad()
    net.forward(x)
    assert net.backward(dout, need_dx=False) is None and dx.shape == (5, 4)
    for k, g in net.grads.items():
        np.testing.assert_array_equal(g, full[k])
