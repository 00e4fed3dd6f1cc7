"""The exercise checkers: the reference solution passes, classic wrong answers fail with the right diagnosis."""

import numpy as np
import pytest

from aae_np.teach import exercises
from aae_np.teach import solutions as ref
from aae_np.nn.activations import sigmoid
from aae_np.nn.batchnorm import batchnorm_backward as nn_batchnorm_backward, batchnorm_forward
from aae_np.nn.gradcheck import numerical_gradient, rel_error
from aae_np.nn.optim import Optimizer


@pytest.fixture(autouse=True)
def fresh_results():
    exercises.reset()
    yield
    exercises.reset()


def _dense_ref(x, W, dout):
    return ref.dense_backward(x, W, dout)


def _gen_parts(x, W1, b1, W2, b2, W_D, b_D):
    u = x @ W1 + b1
    D = sigmoid((np.maximum(u, 0) @ W2 + b2) @ W_D + b_D)
    return u, D


def _gen_from(delta_a_fn, mask=True):
    """A generator_grad built from a given delta_a(D, N); mask: True (1[u > 0]), False (none),
    "dh" (taken from dh > 0) or "relu" (max(0, u), the output)."""
    def fn(x, W1, b1, W2, b2, W_D, b_D):
        u, D = _gen_parts(x, W1, b1, W2, b2, W_D, b_D)
        dh = delta_a_fn(D, len(x)) @ W_D.T @ W2.T
        m = {True: u > 0, False: 1.0, "dh": dh > 0, "relu": np.maximum(u, 0)}[mask]
        delta_u = dh * m
        return x.T @ delta_u, delta_u.sum(0)
    return fn


def _disc_from(delta_real_fn, delta_fake_fn):
    def fn(z_prior, z_fake, W, b):
        n = len(z_prior)
        dr = delta_real_fn(sigmoid(z_prior @ W + b), n)
        df = delta_fake_fn(sigmoid(z_fake @ W + b), n)
        return z_prior.T @ dr + z_fake.T @ df, dr.sum(0) + df.sum(0)
    return fn


def _naive_bce(s, t):
    p = 1 / (1 + np.exp(-s))
    return float(-np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))), (p - t) / s.size


def _bn_staged(mean_div=None, var_div=None, mean_path=True, var_path=True, use_gamma=True, use_eps=True):
    """batchnorm_backward written stage by stage (dx_hat, dvar, dmu), as a student derives it from the
    graph; each argument breaks one stage. mean_div / var_div: the N of dmu/dx_i, dvar/dx_i."""
    def fn(x, gamma, dout, eps):
        n = len(x)
        mu = x.mean(0)
        var = ((x - mu) ** 2).mean(0)
        sigma = np.sqrt(var + (eps if use_eps else 0.0))
        x_hat = (x - mu) / sigma
        dx_hat = dout * gamma if use_gamma else dout
        dvar = np.sum(dx_hat * (x - mu), 0) * -0.5 * sigma ** -3
        dmu = -np.sum(dx_hat, 0) / sigma                    # + dvar * mean(-2 (x - mu)), which is 0
        dx = dx_hat / sigma
        if var_path:
            dx = dx + dvar * 2 * (x - mu) / (var_div or n)
        if mean_path:
            dx = dx + dmu / (mean_div or n)
        return dx, np.sum(dout * x_hat, 0), np.sum(dout, 0)
    return fn


def _bn_compact(dx_fn, dgamma_from_x=False):
    """batchnorm_backward in compact form, dx = dx_fn(dout, x_hat, gamma, sigma, N)."""
    def fn(x, gamma, dout, eps):
        sigma = np.sqrt(x.var(0) + eps)
        x_hat = (x - x.mean(0)) / sigma
        dgamma = np.sum(dout * (x if dgamma_from_x else x_hat), 0)
        return dx_fn(dout, x_hat, gamma, sigma, len(x)), dgamma, np.sum(dout, 0)
    return fn


def _fd(forward=False, restore=True, two=2.0):
    """numerical_gradient as students write it, with one slip switched on."""
    def fn(f, x, h):
        grad = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            old = x[i]
            x[i] = old + h
            up = f(x)
            x[i] = old if forward else old - h
            down = f(x)
            if restore:
                x[i] = old
            grad[i] = (up - down) / (h if forward else two * h)
        return grad
    return fn


def _softmax_ce(axis=1, stable=True, onehot=True):
    def fn(s, y):
        n = len(s)
        e = np.exp(s - s.max(axis=axis, keepdims=True) if stable else s)
        p = e / e.sum(axis=axis, keepdims=True)
        loss = float(-np.mean(np.log(p[np.arange(n), y])))
        g = p.copy()
        if onehot:
            g[np.arange(n), y] -= 1
        return loss, g / n
    return fn


def _adam_from(correct=True, sqrt=True, square=True, sign=-1.0, eps_inside=False):
    def fn(p, g, m, v, t, lr, b1, b2, eps):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * (g ** 2 if square else g)
        mh, vh = (m / (1 - b1 ** t), v / (1 - b2 ** t)) if correct else (m, v)
        d = np.sqrt(vh + eps) if eps_inside else (np.sqrt(vh) if sqrt else vh) + eps
        return p + sign * lr * mh / d, m, v
    return fn


def _loop_without_zero_grad(model, batches, rules):
    """The phased loop with model.zero_grad() left out (every other line right)."""
    opt = {p: Optimizer(model.params_of(*nets), rules[p]) for p, nets in
           (("reconstruction", ("encoder", "decoder")), ("discriminator", ("discriminator",)), ("generator", ("encoder",)))}
    for x, z in batches:
        model.reconstruction(x), opt["reconstruction"].step(model.grads)
        model.discriminator(x, z), opt["discriminator"].step(model.grads)
        model.generator(x), opt["generator"].step(model.grads)


def _loop_one_optimizer(model, batches, rules):
    """One Adam over every network, stepped after each phase."""
    opt = Optimizer(model.params, rules["reconstruction"])
    for x, z in batches:
        for run in (lambda: model.reconstruction(x), lambda: model.discriminator(x, z), lambda: model.generator(x)):
            model.zero_grad()
            run()
            opt.step(model.grads)


WRONG = {   # exercise -> [(wrong function, expected diagnosis), ...]
    "train_phased": [(_loop_without_zero_grad, "zero_grad_forgotten"), (_loop_one_optimizer, "shared_optimizer")],
    "numerical_gradient": [
        (_fd(forward=True), "forward_difference"),
        (_fd(restore=False), "not_restored"),
        (_fd(two=1.0), "divided_by_h"),
        (lambda f, x, h: -ref.numerical_gradient(f, x, h), "sign"),
    ],
    "rel_error": [
        (lambda a, b: float(np.max(np.abs(a - b) / (np.abs(a) + np.abs(b)))), "not finite"),   # no floor
        (lambda a, b: float(np.mean(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b)))), "mean_not_max"),
        (lambda a, b: float(np.max(np.abs(a - b) / np.abs(b))), "relative_to_b_only"),
        (lambda a, b: float(np.linalg.norm(a - b) / (np.linalg.norm(a) + np.linalg.norm(b))), "whole_array_norms"),
    ],
    "softmax_cross_entropy": [
        (_softmax_ce(onehot=False), "missing_one_hot"),
        (_softmax_ce(axis=0), "softmax_over_batch"),
        (_softmax_ce(stable=False), "not finite"),
        (lambda s, y: (ref.softmax_cross_entropy(s, y)[0], ref.softmax_cross_entropy(s, y)[1] * len(s)), "factor"),
        (lambda s, y: (ref.softmax_cross_entropy(s, y)[0], -ref.softmax_cross_entropy(s, y)[1]), "sign"),
    ],
    "adam_update": [
        (_adam_from(correct=False), "no_bias_correction"),
        (_adam_from(sign=+1.0), "ascent"),
        (_adam_from(sqrt=False), "no_sqrt"),
        (_adam_from(square=False), "v_not_squared"),
        (_adam_from(eps_inside=True), "eps_inside_sqrt"),
    ],
    "dense_backward": [
        (lambda x, W, dout: (dout @ W.T, dout.T @ x, dout.sum(0)), "transposed"),
        (lambda x, W, dout: (dout @ W.T, -(x.T @ dout), dout.sum(0)), "sign"),
        (lambda x, W, dout: (dout @ W.T, x.T @ dout, dout.mean(0)), "factor"),
        (lambda x, W, dout: (dout @ W, x.T @ dout, dout.sum(0)), "crashed"),
        (lambda x, W, dout: (dout @ W.T, x.T @ dout, dout.sum(0, keepdims=True)), "shape"),
        (lambda x, W, dout: (dout @ W.T, x.T @ dout), "returned"),
    ],
    "sigmoid_backward": [
        (lambda x, dout: dout * sigmoid(x), "used_sigmoid_not_derivative"),
        (lambda x, dout: dout * x * (1 - x), "derivative_of_input"),
        (lambda x, dout: sigmoid(x) * (1 - sigmoid(x)), "missing_dout"),
        (lambda x, dout: -dout * sigmoid(x) * (1 - sigmoid(x)), "sign"),
        (lambda x, dout: dout * sigmoid(sigmoid(x)) * (1 - sigmoid(sigmoid(x))), "sigmoid_of_output"),
    ],
    "relu_backward": [
        (lambda x, dout: dout, "missing_relu_mask"),
        (lambda x, dout: dout * (dout > 0), "mask_from_dout"),
        (lambda x, dout: dout * (x >= 0), "mask_at_zero"),
        (lambda x, dout: (x > 0) * 1.0, "missing_dout"),
        (lambda x, dout: dout * np.maximum(0, x), "output_not_mask"),
    ],
    "mse_grad": [
        (lambda p, t: t - p, "sign+factor"),                       # the tutorial's (x - x_hat)
        (lambda p, t: 2 * (p - t) / len(p), "factor"),              # mean over N only
        (lambda p, t: (p - t) / p.size, "factor"),                  # the square's 2 missing
        (lambda p, t: 2 * (t - p) / p.size, "sign"),
    ],
    "bce_with_logits": [
        (_naive_bce, "not finite"),
        (lambda s, t: (ref.bce_with_logits(s, t)[0], (s - t) / s.size), "forgot_sigmoid"),
        (lambda s, t: (ref.bce_with_logits(s, t)[0], (sigmoid(s) - t) * sigmoid(s) * (1 - sigmoid(s)) / s.size),
         "extra_sigmoid_derivative"),
        (lambda s, t: (ref.bce_with_logits(s, t)[0], sigmoid(s) - t), "factor"),
        (lambda s, t: (ref.bce_with_logits(s, t)[0] * s.shape[1], ref.bce_with_logits(s, t)[1]), "factor"),
    ],
    "discriminator_grad": [
        (_disc_from(lambda D, n: -(D - 1) / (2 * n), lambda D, n: D / (2 * n)), "tutorial_real_sign"),
        (_disc_from(lambda D, n: D / (2 * n), lambda D, n: (D - 1) / (2 * n)), "labels_swapped"),
        (_disc_from(lambda D, n: (D - 1) / n, lambda D, n: D / n), "factor"),          # the plain sum
        (lambda zp, zf, W, b: (ref.discriminator_grad(zp, zf, W, b)[0], float(ref.discriminator_grad(zp, zf, W, b)[1][0])),
         "shape"),                                                                     # a scalar db
        (_disc_from(lambda D, n: D - 1, lambda D, n: D), "factor"),
        (lambda zp, zf, W, b: tuple(-g for g in ref.discriminator_grad(zp, zf, W, b)), "sign"),
        (lambda zp, zf, W, b: (ref.discriminator_grad(zp, zf, W, b)[0].T, ref.discriminator_grad(zp, zf, W, b)[1]),
         "transposed"),
    ],
    "generator_grad": [
        (_gen_from(lambda D, n: (D - 1) / n, mask=False), "missing_relu_mask"),
        (_gen_from(lambda D, n: D / n), "discriminator_target"),
        (_gen_from(lambda D, n: (D - 1) / n, mask="dh"), "mask_from_dh"),
        (_gen_from(lambda D, n: (D - 1) / n, mask="relu"), "output_not_mask"),
        (_gen_from(lambda D, n: -D / n), "minimax"),
        (_gen_from(lambda D, n: (D - 1) * D * (1 - D) / n), "extra_sigmoid_derivative"),
        (_gen_from(lambda D, n: D - 1), "factor"),
        (_gen_from(lambda D, n: (1 - D) / n), "sign"),
    ],
    "dropout_backward": [
        (lambda mask, keep, dout: dout / keep, "mask_not_applied"),
        (lambda mask, keep, dout: dout * mask, "missing_1_over_keep"),
        (lambda mask, keep, dout: dout * mask * keep, "times_keep"),
        (lambda mask, keep, dout: dout * mask / (1 - keep), "divided_by_p"),
        (lambda mask, keep, dout: dout * (mask == 0) / keep, "inverted_mask"),
        (lambda mask, keep, dout: -dout * mask / keep, "sign"),
    ],
    "batchnorm_backward": [
        (_bn_compact(lambda dy, xh, g, s, n: dy * g / s), "naive_form"),
        (_bn_staged(mean_path=False, var_path=False), "naive_form"),
        (_bn_staged(use_gamma=False), "missing_gamma"),
        (_bn_compact(lambda dy, xh, g, s, n: g / s * (n * dy - dy.sum(0) - xh * (dy * xh).sum(0))),
         "missing_1_over_N"),
        (_bn_compact(lambda dy, xh, g, s, n: g / s * (dy - dy.sum(0) - xh * (dy * xh).sum(0))), "sums_not_means"),
        (_bn_staged(mean_div=1), "mean_path_without_1_over_N"),
        (_bn_staged(var_div=1), "variance_path_without_1_over_N"),
        (_bn_staged(mean_path=False), "missing_mean_path"),
        (_bn_staged(var_path=False), "missing_variance_path"),
        (_bn_staged(use_eps=False), "eps_ignored"),
        (_bn_compact(lambda dy, xh, g, s, n: g / s * (dy - dy.mean(0) - xh * (dy * xh).mean(0)), True),
         "dgamma_from_x"),
        (lambda x, gamma, dout, eps: (*ref.batchnorm_backward(x, gamma, dout, eps)[:2], dout.mean(0)), "factor"),
        (lambda x, gamma, dout, eps: (ref.batchnorm_backward(x, gamma, dout, eps)[0], dout.sum(1), dout.sum(0)),
         "shape"),
    ],
}


def test_every_exercise_has_at_least_two_classic_wrong_answers():
    assert set(WRONG) == set(exercises.EXERCISES)
    assert all(len(v) >= 2 for v in WRONG.values())
    assert len(exercises.EXERCISES) >= 13


@pytest.mark.parametrize("name", list(exercises.EXERCISES))
def test_reference_solution_passes(name, capsys):
    result = exercises.check(name, getattr(ref, name))
    assert result.passed, result.message
    assert result.max_rel_error < exercises.TOL
    assert f"{name}: PASS" in capsys.readouterr().out


@pytest.mark.parametrize("name,index", [(n, i) for n, cases in WRONG.items() for i in range(len(cases))])
def test_classic_wrong_answer_fails_with_its_diagnosis(name, index, capsys):
    fn, diagnosis = WRONG[name][index]
    result = exercises.check(name, fn)
    printed = capsys.readouterr().out
    assert not result.passed
    assert result.diagnosis == diagnosis, result.message
    assert printed.strip() == result.message.strip()
    assert "FAIL" in printed or "ERROR" in printed


def test_messages_name_the_pattern_and_the_worst_element():
    r = exercises.check("mse_grad", lambda p, t: t - p)             # the tutorial's (x - x_hat)
    assert "17.5 = N*D/2 times" in r.message and "sign is flipped" in r.message
    assert "worst at [" in r.message and "yours" in r.message and "expected" in r.message
    r = exercises.check("dense_backward", WRONG["dense_backward"][0][0])
    assert "transposed" in r.message and "(3, 7)" in r.message and "(7, 3)" in r.message
    r = exercises.check("dense_backward", WRONG["dense_backward"][2][0])
    assert "1/N times" in r.message and "plain sum over the batch" in r.message
    r = exercises.check("bce_with_logits", _naive_bce)
    assert "NaN or inf" in r.message and "log1p" in r.message
    r = exercises.check("discriminator_grad", WRONG["discriminator_grad"][2][0])
    assert "= 2 times" in r.message and "plain sum L_real + L_fake" in r.message
    r = exercises.check("discriminator_grad", WRONG["discriminator_grad"][3][0])
    assert "a single number where an array of shape (1,) belongs" in r.message and "keepdims" not in r.message
    r = exercises.check("batchnorm_backward", WRONG["batchnorm_backward"][0][0])
    assert "EVALUATION-mode gradient" in r.message and "section 6" in r.message
    assert "dgamma   (D,)           max rel error" in r.message and r.message.count("WRONG") == 1
    r = exercises.check("batchnorm_backward", WRONG["batchnorm_backward"][-2][0])
    assert "1/N times" in r.message and "plain sums over the batch" in r.message
    r = exercises.check("dropout_backward", WRONG["dropout_backward"][1][0])
    assert "the 1/keep is missing" in r.message


def test_a_staged_batchnorm_backward_passes_too():
    """The checker accepts the graph's stages (dx_hat, dvar, dmu) as well as the compact form."""
    assert exercises.check("batchnorm_backward", _bn_staged()).passed


@pytest.mark.parametrize("name", list(exercises.EXERCISES))
def test_stub_reports_not_implemented(name):
    def stub(*args):
        raise NotImplementedError(f"Exercise {name}")

    r = exercises.check(name, stub)
    assert r.status == "not implemented" and not r.passed and "not implemented yet" in r.message
    assert r.diagnosis == "not implemented"


def test_crashes_show_the_exception(capsys):
    def buggy(x, W, dout):
        dx = dout @ W                                              # missing .T: (N,3)(7,3)
        return dx, x.T @ dout, dout.sum(0)

    r = exercises.check("dense_backward", buggy)
    assert r.status == "error" and "ValueError" in r.message and "shape" in r.message
    assert "`dx = dout @ W" in r.message                            # the student's own line

    def forgot_return(x, dout):
        dout * (x > 0)

    r = exercises.check("relu_backward", forgot_return)
    assert r.diagnosis == "returned" and "missing `return`" in r.message


def test_checker_does_not_let_the_student_change_its_inputs():
    def scribbles(x, W, dout):
        x[...] = 0
        dout *= 2
        return ref.dense_backward(x, W, dout)

    assert not exercises.check("dense_backward", scribbles).passed
    assert exercises.check("dense_backward", ref.dense_backward).passed      # inputs were copies


def test_summary_lists_every_exercise(capsys):
    exercises.check("relu_backward", ref.relu_backward)
    results = exercises.summary()
    out = capsys.readouterr().out
    assert set(results) == {"relu_backward"} and f"1 of {len(exercises.EXERCISES)} passed" in out
    assert all(name in out for name in exercises.EXERCISES) and "not checked yet" in out
    exercises.check("mse_grad", ref.mse_grad, record=False)
    assert "mse_grad" not in exercises.summary()


def test_reference_solutions_agree_with_finite_differences_on_other_shapes():
    """The solutions are right in general, not only on the checker's inputs."""
    rng = np.random.default_rng(11)
    x, W, b, dout = rng.normal(size=(3, 2)), rng.normal(size=(2, 4)), rng.normal(size=4), rng.normal(size=(3, 4))
    dx, dW, db = ref.dense_backward(x, W, dout)
    for mine, arr in ((dx, x), (dW, W), (db, b)):
        assert rel_error(mine, numerical_gradient(lambda _a: np.sum((x @ W + b) * dout), arr)) < 1e-7
    s, t = rng.normal(0, 3, (2, 6)), rng.uniform(0, 1, (2, 6))
    assert rel_error(ref.bce_with_logits(s, t)[1],
                     numerical_gradient(lambda _a: ref.bce_with_logits(s, t)[0], s)) < 1e-7
    x, gamma, beta, dy = rng.normal(2, 3, (3, 4)), rng.normal(size=4), rng.normal(size=4), rng.normal(size=(3, 4))
    mine = ref.batchnorm_backward(x, gamma, dy, 1e-5)
    for g, arr in zip(mine, (x, gamma, beta)):
        assert rel_error(g, numerical_gradient(lambda _a: np.sum(batchnorm_forward(x, gamma, beta, 1e-5)[0] * dy),
                                               arr)) < 1e-7
    _, x_hat, _, _, inv_sigma = batchnorm_forward(x, gamma, beta, 1e-5)
    for a, b in zip(mine, nn_batchnorm_backward(dy, x_hat, gamma, inv_sigma)):    # the layer's own function
        assert rel_error(a, b) < 1e-12


def test_the_batchnorm_facts_of_derivations_section_6():
    """docs/derivations.md section 6: the naive dx is right only for constant statistics (evaluation
    mode); dx sums to 0 down every column, so a Dense bias right before BatchNorm gets no gradient."""
    rng = np.random.default_rng(12)
    x, W, b = rng.normal(size=(6, 3)), rng.normal(size=(3, 4)), rng.normal(size=4)
    gamma, beta, dy, eps = rng.uniform(0.5, 2, 4), rng.normal(size=4), rng.normal(size=(6, 4)), 1e-5
    u = x @ W + b
    dx = ref.batchnorm_backward(u, gamma, dy, eps)[0]
    assert np.abs(dx.sum(axis=0)).max() < 1e-12                              # 1^T dx = 0, column by column
    naive = dy * gamma / np.sqrt(u.var(0) + eps)
    assert rel_error(naive, dx) > 0.1                                       # wrong in training mode
    m, v = rng.normal(size=4), rng.uniform(0.5, 2, 4)                      # running statistics: constants
    eval_loss = lambda _a: np.sum((gamma * (u - m) / np.sqrt(v + eps) + beta) * dy)       # noqa: E731
    assert rel_error(dy * gamma / np.sqrt(v + eps), numerical_gradient(eval_loss, u)) < 1e-7
    train_loss = lambda _a: np.sum(batchnorm_forward(x @ W + b, gamma, beta, eps)[0] * dy)  # noqa: E731
    assert np.abs(numerical_gradient(train_loss, b)).max() < 1e-8             # db = 1^T dx = 0: b cannot move y


def test_diagnose_is_usable_on_its_own():
    want = np.arange(1.0, 7.0).reshape(2, 3)
    assert exercises.diagnose(want, want) == (None, "ok")
    assert exercises.diagnose(want.T, want)[0] == "transposed"
    assert exercises.diagnose(-want, want)[0] == "sign"
    assert exercises.diagnose(want * 5, want, {"N": 5})[0] == "factor"
    assert "= N times" in exercises.diagnose(want * 5, want, {"N": 5})[1]
    assert exercises.diagnose(want[:1], want)[0] == "shape"
    assert exercises.diagnose(want + np.eye(2, 3), want)[0] == "wrong values"
    with pytest.raises(ValueError, match="unknown exercise"):
        exercises.check("no_such_exercise", print)


def test_one_element_answers_are_not_called_a_constant_factor():
    """Any two numbers differ by 'a factor': for a one-element output only a nameable one is reported."""
    key, why = exercises.diagnose(np.array([0.7]), np.array([0.3]), {"N": 5})
    assert key == "wrong values" and "one number shows no pattern" in why
    assert exercises.diagnose(np.array([1.5]), np.array([0.3]), {"N": 5})[0] == "factor"     # = N times
    assert exercises.diagnose(2.0, np.array([2.0, 3.0]))[0] == "shape"
    assert "a sum without axis" in exercises.diagnose(2.0, np.array([2.0, 3.0]))[1]


def test_a_transposed_answer_that_is_also_wrong_gets_both_diagnoses():
    r = exercises.check("dense_backward", lambda x, W, dout: (dout @ W.T, -(dout.T @ x), dout.sum(0)))
    assert r.diagnosis == "transposed" and "still wrong: sign-flipped" in r.message
