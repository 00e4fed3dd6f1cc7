"""Losses: values against plain definitions, gradients against finite differences, stability."""

import warnings

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra.numpy import arrays

from aae_np.nn import losses
from aae_np.nn.gradcheck import check_loss
from strategies import batch, dims, matrices


def binary(n, d):
    return arrays(np.float64, (n, d), elements=st.sampled_from([0.0, 1.0]))


@given(n=batch, d=dims, data=st.data())
def test_mse_value_and_gradient(n, d, data):
    pred = data.draw(matrices(n, d))
    # the gradient is 2/n (pred - target): keep each residual >= 0.1 so it is measurable
    target = pred + data.draw(matrices(n, d, away_from_zero=0.1))
    value, _ = losses.mse(pred, target)
    assert value == pytest.approx(np.mean((pred - target) ** 2), rel=1e-12)
    # exactly quadratic: central differences have no truncation error, so h=1e-3
    report = check_loss(losses.mse, pred, target, h=1e-3)
    assert report["pred"].max_rel_error < 1e-7, str(report)


@given(n=batch, d=dims, data=st.data())
def test_bce_on_probabilities(n, d, data):
    prob = data.draw(matrices(n, d, 0.02, 0.98))
    target = data.draw(binary(n, d))
    value, _ = losses.bce(prob, target)
    expected = -np.mean(target * np.log(prob) + (1 - target) * np.log(1 - prob))
    assert value == pytest.approx(expected, rel=1e-12)
    assert check_loss(losses.bce, prob, target).max_rel_error < 1e-7


@given(n=batch, d=dims, data=st.data())
def test_bce_with_logits_matches_bce_of_sigmoid(n, d, data):
    logits = data.draw(matrices(n, d, -4, 4))
    target = data.draw(binary(n, d))
    value, grad = losses.bce_with_logits(logits, target)
    p = 1 / (1 + np.exp(-logits))
    assert value == pytest.approx(losses.bce(p, target)[0], rel=1e-9)
    assert check_loss(losses.bce_with_logits, logits, target).max_rel_error < 1e-7


@given(n=batch, k=st.integers(2, 12), data=st.data())
def test_softmax_cross_entropy(n, k, data):
    logits = data.draw(matrices(n, k, -2, 2))
    labels = data.draw(arrays(np.int64, (n,), elements=st.integers(0, k - 1)))
    value, grad = losses.softmax_cross_entropy(logits, labels)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert value == pytest.approx(-np.mean(np.log(p[np.arange(n), labels])), rel=1e-10)
    np.testing.assert_allclose(grad.sum(axis=1), 0, atol=1e-15)   # softmax rows sum to 1, one-hot too
    assert check_loss(losses.softmax_cross_entropy, logits, labels).max_rel_error < 1e-7


@given(n=batch, k=st.integers(2, 12), data=st.data())
def test_soft_cross_entropy(n, k, data):
    logits = data.draw(matrices(n, k, -2, 2))
    raw = data.draw(matrices(n, k, 0.01, 1))
    target = raw / raw.sum(axis=1, keepdims=True)
    value, grad = losses.soft_cross_entropy(logits, target)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert value == pytest.approx(-np.mean(np.sum(target * np.log(p), axis=1)), rel=1e-10)
    numeric = np.zeros_like(logits)                  # central differences; the gradient can be exactly 0
    for idx in np.ndindex(logits.shape):             # (softmax = target), so compare with an absolute floor
        up, down = logits.copy(), logits.copy()
        up[idx] += 1e-5
        down[idx] -= 1e-5
        numeric[idx] = (losses.soft_cross_entropy(up, target)[0] - losses.soft_cross_entropy(down, target)[0]) / 2e-5
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-10)
    labels = data.draw(arrays(np.int64, (n,), elements=st.integers(0, k - 1)))
    hard_value, hard_grad = losses.softmax_cross_entropy(logits, labels)    # one-hot targets: the same loss
    soft_value, soft_grad = losses.soft_cross_entropy(logits, np.eye(k)[labels])
    assert soft_value == pytest.approx(hard_value, rel=1e-12)
    np.testing.assert_allclose(soft_grad, hard_grad, atol=1e-15)


@given(n=batch, k=st.integers(2, 8), data=st.data())
def test_weighted_soft_cross_entropy(n, k, data):
    logits = data.draw(matrices(n, k, -2, 2))
    raw = data.draw(matrices(n, k, 0.01, 1))
    target = raw / raw.sum(axis=1, keepdims=True)
    weights = data.draw(arrays(np.float64, (n,), elements=st.sampled_from([0.0, 0.5, 1.0, 2.0])))
    value, grad = losses.soft_cross_entropy(logits, target, weights)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert value == pytest.approx(-np.sum(weights * np.sum(target * np.log(p), axis=1)) / n, rel=1e-10, abs=1e-15)
    numeric = np.zeros_like(logits)
    for idx in np.ndindex(logits.shape):
        up, down = logits.copy(), logits.copy()
        up[idx] += 1e-5
        down[idx] -= 1e-5
        numeric[idx] = (losses.soft_cross_entropy(up, target, weights)[0]
                        - losses.soft_cross_entropy(down, target, weights)[0]) / 2e-5
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-10)
    same = losses.soft_cross_entropy(logits, target, np.ones(n))     # weights of 1: the unweighted loss
    assert same[0] == pytest.approx(losses.soft_cross_entropy(logits, target)[0], rel=1e-12)
    with pytest.raises(ValueError, match=f"weights must be {n} numbers >= 0"):
        losses.soft_cross_entropy(logits, target, -np.ones(n))


def test_log_softmax_is_stable():
    out = losses.log_softmax(np.array([[1000.0, 0.0, -1000.0]]))
    assert np.isfinite(out[0, :2]).all() and out[0, 0] == 0.0 and out[0, 1] == pytest.approx(-1000.0)
    with pytest.raises(ValueError, match="must both be"):
        losses.soft_cross_entropy(np.ones((2, 3)), np.ones((2, 2)) / 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_with_logits_is_finite_and_exact_at_large_logits(dtype):
    logits = np.array([[1e4, -1e4, 1e4, -1e4, 88.0, -104.0]], dtype)
    target = np.array([[1, 0, 0, 1, 0, 1]], dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                 # any overflow warning fails the test
        value, grad = losses.bce_with_logits(logits, target)
    # right answers cost exp(-1e4) ~ 0; wrong ones cost |s| exactly
    expected = (0 + 0 + 1e4 + 1e4 + 88.0 + 104.0) / 6
    assert value == pytest.approx(expected, rel=1e-6)
    assert np.isfinite(grad).all() and grad.dtype == dtype
    np.testing.assert_allclose(grad * 6, [[0, 0, 1, -1, 1, -1]], atol=1e-6)


def test_unfused_bce_saturates_where_the_fused_loss_does_not():
    # the teaching point: sigmoid(20) rounds to 1 in float32, bce clips it and its gradient is 0
    logits = np.array([[20.0]], np.float32)
    target = np.zeros((1, 1), np.float32)
    p = 1 / (1 + np.exp(-logits))
    _, grad_prob = losses.bce(p, target)
    assert grad_prob[0, 0] == 0.0
    _, grad_logit = losses.bce_with_logits(logits, target)
    assert grad_logit[0, 0] == pytest.approx(1.0)


def test_mse_averages_over_all_elements():
    value, grad = losses.mse(np.ones((2, 3)), np.zeros((2, 3)))
    assert value == 1.0
    np.testing.assert_allclose(grad, np.full((2, 3), 2 / 6))


@pytest.mark.parametrize("fn, args, message", [
    (losses.mse, (np.ones((2, 3)), np.ones((3, 2))), r"mse: pred has shape \(2, 3\) but target has shape \(3, 2\)"),
    (losses.bce, (np.ones((2, 3)), np.ones(3)), r"bce: prob has shape"),
    (losses.bce_with_logits, (np.ones((2, 1)), np.ones(2)), r"bce_with_logits: logits"),
    (losses.softmax_cross_entropy, (np.ones(3), np.zeros(3, int)), r"must be \(N, K\)"),
    (losses.softmax_cross_entropy, (np.ones((2, 3)), np.zeros(2)), r"labels must be integers"),
    (losses.softmax_cross_entropy, (np.ones((2, 3)), np.array([0, 3])), r"labels must lie in \[0, 3\)"),
])
def test_bad_loss_arguments(fn, args, message):
    with pytest.raises(ValueError, match=message):
        fn(*args)
