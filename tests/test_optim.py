"""Update rules against sequences computed by hand, and the Optimizer loop."""

import numpy as np
import pytest

from aae_np.nn.optim import SGD, Adam, Momentum, Optimizer


def run(rule, grads, p0=1.0):
    p = np.array([p0])
    state = rule.init_state(p)
    out = []
    for g in grads:
        p, state = rule.update(p, np.array([g]), state)
        out.append(float(p[0]))
    return out


def test_sgd_by_hand():
    assert run(SGD(lr=0.1), [1.0, -2.0]) == pytest.approx([0.9, 1.1])


def test_momentum_by_hand():
    # v1 = 1, p1 = 1 - 0.1*1 = 0.9 ; v2 = 0.5*1 + 1 = 1.5, p2 = 0.9 - 0.15 = 0.75
    assert run(Momentum(lr=0.1, momentum=0.5), [1.0, 1.0]) == pytest.approx([0.9, 0.75])
    # nesterov: step = g + mu v: 1 + 0.5*1 = 1.5 -> 0.85 ; v2 = 1.5, step = 1 + 0.75 -> 0.85 - 0.175
    assert run(Momentum(lr=0.1, momentum=0.5, nesterov=True), [1.0, 1.0]) == pytest.approx([0.85, 0.675])


def test_adam_by_hand():
    # t=1: m = 0.1 g, v = 0.001 g^2, m_hat = g, v_hat = g^2 -> step = lr * g/|g| = lr (eps aside)
    rule = Adam(lr=0.01, betas=(0.9, 0.999), eps=0.0)
    seq = run(rule, [2.0, -1.0])
    m2 = 0.9 * 0.2 + 0.1 * -1.0
    v2 = 0.999 * 0.004 + 0.001 * 1.0
    step2 = 0.01 * (m2 / (1 - 0.81)) / np.sqrt(v2 / (1 - 0.999 ** 2))
    assert seq == pytest.approx([1.0 - 0.01, 1.0 - 0.01 - step2], rel=1e-12)


def test_update_rules_are_pure():
    p, g = np.array([1.0, 2.0]), np.array([0.5, -0.5])
    for rule in (SGD(0.1), Momentum(0.1, 0.9), Adam(0.1)):
        state = rule.init_state(p)
        snapshot = {k: np.copy(v) for k, v in state.items()}
        new_p, new_state = rule.update(p, g, state)
        np.testing.assert_array_equal(p, [1.0, 2.0])
        for k in snapshot:
            np.testing.assert_array_equal(state[k], snapshot[k])
        assert not np.array_equal(new_p, p)


def test_optimizer_updates_in_place_by_name_and_keeps_dtype():
    w, b = np.ones((2, 2), np.float32), np.zeros(2, np.float32)
    opt = Optimizer({"net.W": w, "net.b": b}, Adam(lr=0.1))
    opt.step({"net.W": np.ones((2, 2), np.float32), "net.b": -np.ones(2, np.float32), "other": None})
    np.testing.assert_allclose(w, 0.9, rtol=1e-6)
    np.testing.assert_allclose(b, 0.1, rtol=1e-5)
    assert w.dtype == np.float32 and opt.state["net.W"]["t"] == 1
    with pytest.raises(ValueError, match=r"no gradient for \['net.b'\]"):
        opt.step({"net.W": np.ones((2, 2), np.float32)})


def test_optimizer_state_round_trip():
    w = np.ones(3)
    opt = Optimizer([("w", w)], Adam(lr=0.1))
    opt.step({"w": np.array([1.0, 2.0, 3.0])})
    saved = opt.state_arrays("opt")
    w2 = w.copy()
    opt2 = Optimizer([("w", w2)], Adam(lr=0.1))
    opt2.load_state_arrays(saved, "opt")
    g = np.array([0.3, -0.2, 0.1])
    opt.step({"w": g})
    opt2.step({"w": g})
    np.testing.assert_array_equal(w, w2)


def test_optimizer_needs_parameters():
    with pytest.raises(ValueError, match="no parameters"):
        Optimizer({}, SGD())


@pytest.mark.parametrize("rule", [SGD(0.1), Momentum(0.05, 0.9), Momentum(0.05, 0.9, nesterov=True),
                                  Adam(0.01, (0.5, 0.999))], ids=["sgd", "momentum", "nesterov", "adam"])
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_flat_optimizer_matches_the_per_tensor_optimizer(rule, backend):
    from aae_np.fast.backend import get_kernels
    from aae_np.fast.flat_optim import FlatOptimizer
    from aae_np.fast.kernels import numba_available

    if backend == "numba" and not numba_available():
        pytest.skip("numba not installed")
    rng = np.random.default_rng(0)
    flat_p, flat_g = rng.normal(size=12), np.zeros(12)
    views = {"a": flat_p[:4].reshape(2, 2), "b": flat_p[4:]}
    reference = {k: v.copy() for k, v in views.items()}
    per_tensor = Optimizer(reference, rule)
    flat = FlatOptimizer(flat_p, flat_g, rule, get_kernels(backend))
    for _ in range(3):
        flat_g[:] = rng.normal(size=12)
        per_tensor.step({"a": flat_g[:4].reshape(2, 2), "b": flat_g[4:]})
        flat.step()
    for k in views:
        np.testing.assert_allclose(views[k], reference[k], rtol=1e-12)


def test_flat_optimizer_refuses_gradients_of_other_tensors():
    """A phase's optimizer updates one flat slice; the gradients handed to it must name exactly
    the tensors of that slice (the model's phase table and the slice cannot disagree silently)."""
    from aae_np.models import AAE

    model = AAE(input_dim=6, latent_dim=2, encoder_hidden=(5,), decoder_hidden=(4,), discriminator_hidden=(3,),
                backend="numba" if _numba() else "numpy")
    opt = model.optimizer("reconstruction", Adam(1e-3))
    x = np.full((4, 6), 0.5)
    _, grads = model.phase_grads("reconstruction", x)
    opt.step(grads)                                            # the right tensors: fine
    if _numba():
        _, wrong = model.phase_grads("generator", x)
        with pytest.raises(ValueError, match="owns"):
            opt.step(wrong)


def _numba() -> bool:
    from aae_np.fast.kernels import numba_available

    return numba_available()
