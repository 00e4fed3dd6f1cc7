"""An independent gradient check that uses only the layer contract, not aae_np.nn.gradcheck.

If gradcheck.py itself were wrong (say it compared a gradient with itself), the
other tests could pass for nothing. This file re-derives the numeric gradient
with its own loop, touching only ``forward``, ``backward``, ``params`` and
``grads``, and uses its own error measure.
"""

import numpy as np
import pytest

from aae_np.nn import losses
from aae_np.nn.layers import Dense, Identity, LeakyReLU, ReLU, Sequential, Sigmoid, Tanh


def own_numeric(f, arr, h):
    out = np.empty_like(arr)
    flat, g = arr.reshape(-1), out.reshape(-1)
    for i in range(flat.size):
        keep = flat[i]
        flat[i] = keep + h
        up = f()
        flat[i] = keep - h
        down = f()
        flat[i] = keep
        g[i] = (up - down) / (2 * h)
    return out


def worst_relative(a, b):
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-8)))


LAYERS = [
    ("dense", lambda: Dense(7, 5, rng=1, dtype=np.float64), 1e-3),
    ("relu", ReLU, 1e-5),
    ("leaky_relu", LeakyReLU, 1e-5),
    ("sigmoid", Sigmoid, 1e-5),
    ("tanh", Tanh, 1e-5),
    ("identity", Identity, 1e-5),
    ("sequential", lambda: Sequential(Dense(7, 6, rng=2, dtype=np.float64, init="glorot"), Tanh(),
                                      Dense(6, 5, rng=3, dtype=np.float64, init="glorot"), Sigmoid()), 1e-5),
]


@pytest.mark.parametrize("name, make, h", LAYERS, ids=[n for n, _, _ in LAYERS])
def test_every_layer_by_contract_only(name, make, h):
    rng = np.random.default_rng(42)
    layer = make()
    for p in layer.params.values():
        p += 0.1 * rng.normal(size=p.shape)          # nonzero biases too
    x = rng.uniform(0.2, 2.0, size=(6, 7)) * rng.choice([-1.0, 1.0], size=(6, 7))
    out = layer.forward(x)
    dout = rng.normal(size=out.shape)
    for g in layer.grads.values():
        g[...] = 0
    analytic = {"x": layer.backward(dout), **{k: g.copy() for k, g in layer.grads.items()}}

    def loss():
        return float(np.sum(layer.forward(x) * dout))

    tol = 1e-7 if name != "sequential" else 1e-6
    for key, arr in {"x": x, **layer.params}.items():
        err = worst_relative(analytic[key], own_numeric(loss, arr, h))
        assert err < tol, f"{name}: {key} rel error {err:.2e}"


LOSSES = [
    ("mse", losses.mse, lambda r: (r.uniform(-1, 1, (4, 5)), r.uniform(2, 3, (4, 5))), 1e-3),
    ("bce", losses.bce, lambda r: (r.uniform(0.05, 0.95, (4, 5)), r.integers(0, 2, (4, 5)) * 1.0), 1e-5),
    ("bce_with_logits", losses.bce_with_logits,
     lambda r: (r.uniform(-4, 4, (4, 5)), r.integers(0, 2, (4, 5)) * 1.0), 1e-5),
    ("softmax_cross_entropy", losses.softmax_cross_entropy,
     lambda r: (r.uniform(-2, 2, (4, 5)), r.integers(0, 5, 4)), 1e-5),
]


@pytest.mark.parametrize("name, fn, make_args, h", LOSSES, ids=[n for n, _, _, _ in LOSSES])
def test_every_loss_independently(name, fn, make_args, h):
    first, second = make_args(np.random.default_rng(7))
    _, analytic = fn(first, second)
    err = worst_relative(analytic, own_numeric(lambda: fn(first, second)[0], first, h))
    assert err < 1e-7, f"{name}: rel error {err:.2e}"


def test_the_independent_check_catches_a_wrong_gradient():
    layer = Dense(3, 2, rng=0, dtype=np.float64)
    x = np.random.default_rng(0).normal(size=(4, 3))
    dout = np.ones((4, 2))
    layer.forward(x)
    layer.backward(dout)
    wrong = layer.grads["W"] / 4                      # the classic 1/N mistake

    def loss():
        return float(np.sum(layer.forward(x) * dout))

    assert worst_relative(wrong, own_numeric(loss, layer.params["W"], 1e-3)) > 0.5
