"""The gradient checker itself: it must measure, restore, and catch wrong gradients."""

import numpy as np
import pytest

from aae_np.nn.gradcheck import (GradReport, TensorCheck, check_layer, check_loss, check_params,
                              numerical_gradient, numerical_gradient_array, rel_error)
from aae_np.nn.layers import Dense


def test_numerical_gradient_of_a_known_function():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    grad = numerical_gradient(lambda v: np.sum(v ** 3), x)
    np.testing.assert_allclose(grad, 3 * x ** 2, rtol=1e-9)


def test_numerical_gradient_restores_every_element_even_on_error():
    x = np.arange(6, dtype=np.float64).reshape(2, 3)
    original = x.copy()
    numerical_gradient(lambda v: np.sum(np.sin(v)), x)
    np.testing.assert_array_equal(x, original)

    calls = []

    def boom(v):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("f failed")
        return float(v.sum())

    with pytest.raises(RuntimeError):
        numerical_gradient(boom, x)
    np.testing.assert_array_equal(x, original)


def test_numerical_gradient_refuses_float32():
    with pytest.raises(ValueError, match="float64"):
        numerical_gradient(lambda v: v.sum(), np.ones(3, np.float32))


def test_array_form_agrees_with_scalar_form():
    rng = np.random.default_rng(0)
    x, dout = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    a = numerical_gradient_array(np.tanh, x, dout)
    b = numerical_gradient(lambda v: np.sum(np.tanh(v) * dout), x)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    np.testing.assert_allclose(a, dout * (1 - np.tanh(x) ** 2), rtol=1e-9)


def test_rel_error_definition_and_floor():
    assert rel_error(np.array([1.0]), np.array([1.0])) == 0.0
    assert rel_error(np.array([1.0, 2.0]), np.array([-1.0, 2.0])) == 1.0           # sign flip
    assert rel_error(np.array([3.0]), np.array([1.0])) == pytest.approx(0.5)
    assert rel_error(np.array([0.0]), np.array([1e-12])) == pytest.approx(1e-4)     # floor 1e-8
    assert rel_error(np.zeros(0), np.zeros(0)) == 0.0
    with pytest.raises(ValueError, match="shapes differ"):
        rel_error(np.zeros(2), np.zeros(3))


def test_report_names_the_worst_element_and_prints():
    analytic = np.array([[1.0, 2.0], [3.0, 4.0]])
    numeric = analytic.copy()
    numeric[1, 0] = 3.5
    check = TensorCheck.compare("W", analytic, numeric)
    assert check.worst_index == (1, 0)
    assert check.analytic == 3.0 and check.numeric == 3.5
    report = GradReport("demo", {"W": check})
    text = str(report)
    assert "W" in text and "(1, 0)" in text and "WRONG" in text and "FAIL: W" in text
    assert not report.passed() and report.worst is check


def test_check_params_catches_a_missing_factor():
    w = np.array([0.3, -1.2, 2.0])
    good = check_params(lambda: float(np.sum(w ** 2)), {"w": w}, {"w": 2 * w}, h=1e-3)
    bad = check_params(lambda: float(np.sum(w ** 2)), {"w": w}, {"w": w}, h=1e-3)   # forgot the 2
    assert good.passed() and good.max_rel_error < 1e-10
    assert not bad.passed() and bad["w"].max_rel_error == pytest.approx(1 / 3)


def test_check_params_needs_every_analytic_gradient():
    w = np.ones(2)
    with pytest.raises(ValueError, match="no analytic gradient for 'w'"):
        check_params(lambda: float(w.sum()), {"w": w}, {})


def test_check_loss_catches_a_wrong_loss_gradient():
    def mse_missing_two(pred, target):
        diff = pred - target
        return float(np.mean(diff ** 2)), diff / diff.size      # should be 2/n

    rng = np.random.default_rng(0)
    report = check_loss(mse_missing_two, rng.normal(size=(3, 2)), rng.normal(size=(3, 2)), h=1e-3)
    assert list(report) == ["pred"]
    assert report["pred"].max_rel_error == pytest.approx(1 / 3, rel=1e-6)


def test_check_layer_does_not_touch_the_callers_layer():
    layer = Dense(3, 2, rng=0)
    before = layer.params["W"].copy()
    check_layer(layer, np.ones((2, 3)))
    np.testing.assert_array_equal(layer.params["W"], before)
    assert layer.params["W"].dtype == np.float32 and not layer.grads["W"].any()


def test_check_layer_rejects_a_dout_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"dout has shape \(2, 3\), the layer's output is \(2, 2\)"):
        check_layer(Dense(3, 2, rng=0), np.ones((2, 3)), dout=np.ones((2, 3)))


def test_atol_forgives_rounding_noise_on_a_near_zero_entry_but_not_a_wrong_gradient():
    from aae_np.nn.gradcheck import TensorCheck

    analytic = np.array([6.69606e-08, 0.5])
    noisy = np.array([6.69687e-08, 0.5])                  # |diff| 8e-12: finite-difference noise
    assert TensorCheck.compare("w", analytic, noisy).max_rel_error > 1e-5
    assert TensorCheck.compare("w", analytic, noisy, atol=1e-10).max_rel_error == 0.0
    wrong = np.array([6.69606e-08, -0.5])                 # a sign error on a normal entry
    assert TensorCheck.compare("w", analytic, wrong, atol=1e-10).max_rel_error == pytest.approx(1.0)
    small_but_wrong = np.array([2 * 6.69606e-08, 0.5])    # a factor 2 on the tiny entry: |diff| 7e-8
    assert TensorCheck.compare("w", analytic, small_but_wrong, atol=1e-10).max_rel_error > 0.3


def test_gradcheck_command_passes_for_many_seeds():
    from aae_np.teach.tour import gradcheck_reports

    for seed in range(8):
        failed = [r.title for r in gradcheck_reports(seed) if not r.passed()]
        assert not failed, (seed, failed)
