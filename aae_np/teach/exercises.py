"""Graded gradient exercises: one-call checkers that say *what* is wrong, not only that it is.

    from aae_np.teach import exercises
    result = exercises.check("dense_backward", dense_backward)   # prints a verdict
    result.passed, result.diagnosis, result.max_rel_error          # ... and returns it
    exercises.summary()                                            # every exercise checked so far

A checker calls the student's function on float64 inputs whose sizes all differ (so a product
in the wrong order cannot pass by luck) and compares each returned array with central
differences of the forward computation (``aae_np.nn.gradcheck``); edge trials (ReLU at exactly 0,
logits of +-800) compare with the reference solution (``aae_np.teach.solutions``). A pass is
a relative error below ``TOL`` everywhere. A failure names its pattern: a shape a transpose
fixes, a flipped sign, a constant factor (N, 2, ...), one of the exercise's classic mistakes
(a wrong activation derivative, batch norm's statistics treated as constants, ...), or the
exception and the line that raised it.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import numpy as np

from aae_np.nn.activations import sigmoid
from aae_np.nn.batchnorm import batchnorm_forward
from aae_np.nn.gradcheck import numerical_gradient
from aae_np.teach import loop
from aae_np.teach import more_exercises as more
from aae_np.teach import solutions as ref
from aae_np.teach.grading import TOL, CheckResult, Exercise, Trial, diagnose, grade

__all__ = ["TOL", "CheckResult", "Exercise", "EXERCISES", "check", "diagnose", "summary", "reset",
           "mine_or_reference", "show_solution"]

def check(name: str, fn: Callable[..., Any], record: bool = True) -> CheckResult:
    """Check the student's ``fn`` for exercise ``name``; print the verdict and return it."""
    if name not in EXERCISES:
        raise ValueError(f"unknown exercise {name!r}; choose one of {', '.join(EXERCISES)}")
    result = grade(EXERCISES[name], fn)
    if record:
        _RESULTS[name] = result
    print(result.message)
    return result


_RESULTS: dict[str, CheckResult] = {}


def summary() -> dict[str, CheckResult]:
    """Print one line per exercise (checked or not) and return the results so far."""
    for name in EXERCISES:
        r = _RESULTS.get(name)
        status = "not checked yet" if r is None else {"pass": "PASS", "fail": "FAIL", "error": "ERROR"}.get(
            r.status, "not implemented yet")
        print(f"  {name:<22} {status}")
    print(f"  {sum(r.passed for r in _RESULTS.values())} of {len(EXERCISES)} passed")
    return dict(_RESULTS)


def reset() -> None:
    _RESULTS.clear()


def mine_or_reference(name: str, mine: Callable[..., Any]) -> Callable[..., Any]:
    """The student's ``mine`` once it has passed exercise ``name``, else the reference solution."""
    r = _RESULTS.get(name)
    if r is not None and r.passed:
        return mine
    print(f"(using the reference {name} until yours passes its check)")
    return getattr(ref, name)


def show_solution(name: str) -> str:
    """Print (and return) the reference solution of exercise ``name``: the answer, not a hint.

    The notebook's hints stop at the equation and the shapes; this is the one place the code is
    shown, and only when asked for by name."""
    if name not in EXERCISES:
        raise ValueError(f"unknown exercise {name!r}; choose one of {', '.join(EXERCISES)}")
    source = inspect.getsource(getattr(ref, name))
    print(f"THE ANSWER to exercise {name!r}: the reference solution (aae_np/teach/solutions.py).\n"
          "Read it, close it, then write your own version and check it again.\n\n" + source)
    return source


# ----------------------------------------------------------------------------- the exercises
N = 5


def _numeric(f: Callable[[], float], *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    return tuple(numerical_gradient(lambda _a: f(), a) for a in arrays)


def _dense() -> list[Trial]:
    rng = np.random.default_rng(1)
    x, W, b, dout = rng.normal(size=(N, 7)), rng.normal(size=(7, 3)), rng.normal(size=3), rng.normal(size=(N, 3))
    want = _numeric(lambda: np.sum((x @ W + b) * dout), x, W, b)
    return [Trial({"x": x, "W": W, "dout": dout}, want,
                  "central differences of L = sum((x W + b) * dout), N=5, D_in=7, D_out=3")]


def _act_trial(seed: int, f: Callable[[np.ndarray], np.ndarray], kink: bool = False) -> tuple:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.1, 2.0, (N, 7)) * rng.choice([-1, 1], (N, 7))   # away from ReLU's kink
    if kink:
        x[::2, ::3] = 0.0
    dout = rng.normal(size=(N, 7))
    return x, dout, _numeric(lambda: np.sum(f(x) * dout), x)


def _sigmoid() -> list[Trial]:
    x, dout, want = _act_trial(2, sigmoid)
    s = sigmoid(x)
    return [Trial({"x": x, "dout": dout}, want, "central differences of L = sum(sigmoid(x) * dout)", {
        "used_sigmoid_not_derivative": ((dout * s,), "wrong activation derivative: you multiplied by "
                                        "sigma(x) itself; the derivative is sigma(x)(1 - sigma(x))."),
        "derivative_of_input": ((dout * x * (1 - x),), "wrong activation derivative: s(1 - s) must use "
                                "the sigmoid's OUTPUT s = sigma(x), not its input x."),
        "missing_dout": ((s * (1 - s),), "you returned sigma'(x) alone; the chain rule multiplies it by "
                         "dout, the gradient arriving from above."),
        "sigmoid_of_output": ((dout * sigmoid(s) * (1 - sigmoid(s)),), "you applied the sigmoid twice: "
                              "sigma'(x) = s(1 - s) with s = sigma(x) itself, not sigma(s)(1 - sigma(s)), "
                              "which is sigma'(sigma(x)).")})]


def _relu() -> list[Trial]:
    relu = lambda a: np.maximum(a, 0)                                  # noqa: E731
    x, dout, want = _act_trial(3, relu)
    common = {
        "missing_relu_mask": ((dout,), "no ReLU mask: the gradient is 0 where the unit was off (x <= 0)."),
        "mask_from_dout": ((dout * (dout > 0),), "the mask must come from the INPUT x (was the unit on?), "
                           "not from dout."),
        "missing_dout": (((x > 0) * 1.0,), "you returned the mask alone; multiply it by dout."),
        "output_not_mask": ((dout * np.maximum(0, x),), "you multiplied by max(0, x), the ReLU's OUTPUT; "
                            "the slope is the 0/1 mask 1[x > 0]: where the unit is on, y = x has slope 1.")}
    xk, doutk, _ = _act_trial(4, relu, kink=True)
    kink = {"mask_at_zero": ((doutk * (xk >= 0),), "your mask is 1 where x is exactly 0. The package's ReLU "
                             "(and the derivation) uses 1[x > 0]: a unit that outputs exactly 0 is off and "
                             "passes no gradient.")}
    return [Trial({"x": x, "dout": dout}, want, "central differences of L = sum(max(0, x) * dout)", common),
            Trial({"x": xk, "dout": doutk}, (ref.relu_backward(xk, doutk),),
                  "the reference at x containing exact zeros", kink,
                  "a finite difference at the kink x = 0 gives 0.5 and proves nothing, so this trial "
                  "compares with the convention 1[x > 0].")]


def _mse() -> list[Trial]:
    rng = np.random.default_rng(5)
    pred, target = rng.uniform(0, 1, (N, 7)), rng.uniform(0, 1, (N, 7))
    want = _numeric(lambda: np.mean((pred - target) ** 2), pred)
    return [Trial({"pred": pred, "target": target}, want,
                  "central differences of L = mean((pred - target)^2) over all N*D = 35 elements")]


def _bce() -> list[Trial]:
    rng = np.random.default_rng(6)
    s, t = rng.normal(0, 2, (N, 7)), rng.uniform(0, 1, (N, 7))        # pixels need not be 0/1
    p = sigmoid(s)
    loss = ref.bce_with_logits(s, t)[0]
    mistakes = {
        "forgot_sigmoid": ((loss, (s - t) / s.size), "the gradient is (sigmoid(s) - t)/n: you used s - t."),
        "extra_sigmoid_derivative": ((loss, (p - t) * p * (1 - p) / s.size), "you multiplied by "
                                     "sigma'(s) = p(1 - p) again; in the fused loss it cancels against the "
                                     "1/(p(1 - p)) of the BCE, leaving (p - t)/n.")}
    edge_s = np.array([[40.0, -40.0, 800.0, -800.0, 0.5]] * 2)
    edge_t = np.array([[1.0, 1.0, 0.0, 1.0, 0.3], [0.0, 0.0, 1.0, 0.0, 0.7]])
    return [Trial({"logits": s, "target": t}, (loss, *_numeric(lambda: ref.bce_with_logits(s, t)[0], s)),
                  "the stable loss and central differences of it, N=5, D=7", mistakes),
            Trial({"logits": edge_s, "target": edge_t}, ref.bce_with_logits(edge_s, edge_t),
                  "the reference at logits of +-40 and +-800",
                  note="at logit 800, exp(800) overflows and sigmoid(40) rounds to exactly 1.0 in float64, so "
                       "log(p), log(1 - p) or 1/(p(1 - p)) blow up. Use max(s, 0) - s t + log1p(exp(-|s|)) and "
                       "sigmoid(s) - t (aae_np.nn.activations.sigmoid is safe).")]


def _discriminator() -> list[Trial]:
    rng = np.random.default_rng(7)
    zp, zf = rng.normal(size=(N, 3)), rng.normal(0.5, 0.8, (N, 3))
    W, b = rng.normal(0, 0.8, (3, 1)), rng.normal(0, 0.1, 1)

    def loss() -> float:                                              # the mean over all 2N rows
        a_real, a_fake = zp @ W + b, zf @ W + b
        return 0.5 * (ref.bce_with_logits(a_real, np.ones_like(a_real))[0] + ref.bce_with_logits(
            a_fake, np.zeros_like(a_fake))[0])

    Dp, Df = sigmoid(zp @ W + b), sigmoid(zf @ W + b)
    grads = lambda dr, df, z1=zp, z2=zf: (z1.T @ dr + z2.T @ df, dr.sum(0) + df.sum(0))   # noqa: E731
    M = 2 * N                                                         # rows in the stacked batch
    mistakes = {
        "tutorial_real_sign": (grads(-(Dp - 1) / M, Df / M), "the real term's sign is flipped (the tutorial's "
                               "E11): -log D(z_prior) has dL/da = (D - 1)/2N, which is negative."),
        "labels_swapped": (grads(Dp / M, (Df - 1) / M), "labels swapped: prior samples are 'real' "
                           "(target 1, delta (D - 1)/2N), encoded codes 'fake' (target 0, delta D/2N)."),
        "same_codes": (grads((Df - 1) / M, Df / M, zf, zf), "both terms evaluated at the encoded codes; the "
                       "real term belongs to z_prior."),
        "extra_sigmoid_derivative": (grads((Dp - 1) * Dp * (1 - Dp) / M, Df * Df * (1 - Df) / M),
                                     "you multiplied by D(1 - D) again: the fused deltas (D - 1)/2N and "
                                     "D/2N already contain the sigmoid's derivative.")}
    return [Trial({"z_prior": zp, "z_fake": zf, "W": W, "b": b}, _numeric(loss, W, b),
                  "central differences of L_D = 1/2 [BCE(D(z_prior), 1) + BCE(D(z_fake), 0)]", mistakes)]


def _generator() -> list[Trial]:
    rng = np.random.default_rng(8)
    x = rng.uniform(0, 1, (N, 7))
    W1, b1 = rng.normal(0, 0.5, (7, 4)), rng.normal(0, 0.3, 4)
    W2, b2 = rng.normal(0, 0.6, (4, 3)), rng.normal(0, 0.1, 3)
    WD, bD = rng.normal(0, 0.8, (3, 1)), rng.normal(0, 0.1, 1)
    u = x @ W1 + b1
    assert np.abs(u).min() > 1e-3, "inputs too close to the ReLU kink"     # fixed seed: never fires
    D = sigmoid((np.maximum(u, 0) @ W2 + b2) @ WD + bD)

    def loss() -> float:
        a = (np.maximum(x @ W1 + b1, 0) @ W2 + b2) @ WD + bD
        return ref.bce_with_logits(a, np.ones_like(a))[0]

    def grads(delta_a: np.ndarray, mask: Any = u > 0) -> tuple[np.ndarray, np.ndarray]:
        dh = delta_a @ WD.T @ W2.T
        delta_u = dh * (mask(dh) if callable(mask) else mask)
        return x.T @ delta_u, delta_u.sum(0)

    mistakes = {
        "missing_relu_mask": (grads((D - 1) / N, 1.0), "wrong activation derivative: no ReLU mask 1[u > 0] "
                              "on the hidden layer (a mask from h >= 0 is all ones, too)."),
        "mask_from_dh": (grads((D - 1) / N, lambda dh: dh > 0), "the ReLU mask must come from the "
                         "hidden layer's INPUT u (was the unit on in the forward pass?), not from dh > 0."),
        "output_not_mask": (grads((D - 1) / N, np.maximum(u, 0)), "you multiplied dh by max(0, u), the ReLU's "
                            "output; the slope is the 0/1 mask 1[u > 0]."),
        "discriminator_target": (grads(D / N), "you used the discriminator's target 0 for the encoded codes; "
                                 "the generator's loss flips it to 1: delta_a = (D - 1)/N."),
        "minimax": (grads(-D / N), "you differentiated the minimax form log(1 - D); the generator loss here "
                    "is -log D, delta_a = (D - 1)/N."),
        "extra_sigmoid_derivative": (grads((D - 1) * D * (1 - D) / N), "you multiplied by D(1 - D) again: "
                                     "the fused delta (D - 1)/N already contains the sigmoid's derivative.")}
    args = {"x": x, "W1": W1, "b1": b1, "W2": W2, "b2": b2, "W_D": WD, "b_D": bD}
    return [Trial(args, _numeric(loss, W1, b1), "central differences of L_G = BCE(D(enc(x)), 1), "
                  "N=5, D_x=7, H=4, D_z=3", mistakes)]


def _dropout() -> list[Trial]:
    rng = np.random.default_rng(9)
    keep = 0.7
    mask = (rng.random((N, 7)) < keep).astype(np.float64)          # 1: kept, 0: dropped
    dout = rng.normal(size=(N, 7))
    x = rng.normal(size=(N, 7))
    want = _numeric(lambda: np.sum(x * mask / keep * dout), x)
    mistakes = {
        "mask_not_applied": ((dout / keep,), "the mask is missing: a dropped unit (mask 0) did not reach the "
                             "output, so it gets no gradient. dx is 0 wherever mask is 0."),
        "missing_1_over_keep": ((dout * mask,), "the 1/keep is missing: the forward pass scaled the kept units "
                                "by 1/keep (inverted dropout), so the backward pass scales by it too."),
        "times_keep": ((dout * mask * keep,), "you multiplied by keep; the forward DIVIDES by keep (that is "
                       "what makes evaluation mode the identity), so dx = dout * mask / keep."),
        "divided_by_p": ((dout * mask / (1 - keep),), "you divided by p = 1 - keep, the probability of "
                         "DROPPING; the scale is 1/keep, the probability of keeping."),
        "inverted_mask": ((dout * (1 - mask) / keep,), "the mask is inverted: mask is 1 where the unit was "
                          "KEPT, and those units pass the gradient.")}
    return [Trial({"mask": mask, "keep": keep, "dout": dout}, want,
                  "central differences of L = sum(x * mask / keep * dout), keep = 0.7, N=5, D=7", mistakes)]


def _batchnorm() -> list[Trial]:
    rng = np.random.default_rng(10)
    x = rng.normal(size=(N, 7)) * rng.uniform(0.5, 3.0, 7) + rng.normal(0, 2, 7)   # columns of own mean, spread
    gamma, beta, dout, eps = rng.uniform(0.5, 2.0, 7), rng.normal(size=7), rng.normal(size=(N, 7)), 1e-3
    want = _numeric(lambda: np.sum(batchnorm_forward(x, gamma, beta, eps)[0] * dout), x, gamma, beta)

    def with_sigma(sigma: np.ndarray, mean_div: float = N, var_div: float = N) -> tuple[np.ndarray, ...]:
        """(dx, dgamma, dbeta); the compact form's two batch sums divided by mean_div, var_div (inf: left out)."""
        x_hat = (x - x.mean(0)) / sigma
        dbeta, dgamma = dout.sum(0), (dout * x_hat).sum(0)
        return gamma / sigma * (dout - dbeta / mean_div - x_hat * dgamma / var_div), dgamma, dbeta

    sigma = np.sqrt(x.var(0) + eps)
    right = with_sigma(sigma)
    wrong_dx = lambda dx: (dx, *right[1:])                                       # noqa: E731
    paths = "docs/derivations.md, section 6"
    from_n = "the 1/N comes from dmu/dx_i = 1/N and dvar/dx_i = 2 (x_i - mu)/N."
    mistakes = {
        "naive_form": (wrong_dx(dout * gamma / sigma), "dout * gamma / sigma treats mu and sigma as constants: "
                       "that is the EVALUATION-mode gradient (running statistics). In training mode each x_i "
                       "also moves mu and var, and through them every x_hat of its column: add those two paths "
                       f"({paths})."),
        "missing_gamma": (wrong_dx(right[0] / gamma), "gamma is missing from dx: y = gamma * x_hat + beta, so "
                          "dL/dx_hat = gamma * dout before anything else."),
        "missing_1_over_N": (wrong_dx(N * right[0]), f"the values are N = {N} times the right ones: the compact "
                             f"form is gamma / (N sigma) * (N dout - ...): {from_n}"),
        "sums_not_means": (wrong_dx(with_sigma(sigma, 1, 1)[0]), "both batch sums lack their 1/N (sums where "
                           f"means belong): {from_n}"),
        "mean_path_without_1_over_N": (wrong_dx(with_sigma(sigma, 1, N)[0]), "the mean path's term lacks its "
                                       "1/N: dmu/dx_i = 1/N, since mu is the MEAN of the column."),
        "variance_path_without_1_over_N": (wrong_dx(with_sigma(sigma, N, 1)[0]), "the variance path's term "
                                           "lacks its 1/N: dvar/dx_i = 2 (x_i - mu)/N."),
        "missing_mean_path": (wrong_dx(with_sigma(sigma, np.inf, N)[0]), "the path through the mean is missing: "
                              f"moving one x_i moves mu, and with it every x_hat of the column ({paths})."),
        "missing_variance_path": (wrong_dx(with_sigma(sigma, N, np.inf)[0]), "the path through the variance is "
                                  "missing: moving one x_i moves var, and with it every x_hat of the column "
                                  f"({paths})."),
        "eps_ignored": (with_sigma(np.sqrt(x.var(0))), "sigma must be sqrt(var + eps), as in the forward pass "
                        "(here eps = 1e-3), not sqrt(var) or x.std(axis=0)."),
        "unbiased_variance": (with_sigma(np.sqrt(x.var(0, ddof=1) + eps)), "your variance divides by N - 1 "
                              "(np.var(..., ddof=1), or pandas' default); batch normalisation's forward pass "
                              "divides by N (the biased variance of the batch), so its gradient does too."),
        "dgamma_from_x": ((right[0], (dout * x).sum(0), right[2]), "dgamma sums dout * x_hat over the batch: "
                          "gamma multiplies the NORMALISED input, not x.")}
    return [Trial({"x": x, "gamma": gamma, "dout": dout, "eps": eps}, want, "central differences of L = "
                  "sum(batchnorm_forward(x, gamma, beta, eps)[0] * dout), N=5, D=7, eps=1e-3", mistakes)]


_BATCH_NOTE = {"1/N": "The 1/N of the loss is already inside dout: db is a plain sum over the batch.",
               "N": "A 1/N is missing: every loss here is a mean over the batch."}
EXERCISES: dict[str, Exercise] = {ex.name: ex for ex in [
    Exercise("numerical_gradient", "numerical_gradient(f, x, h) -> grad", {"grad": "shape of x"},
             more.numerical_gradient_trials, {}, {"2": "You divided by h: the two points are 2h apart."}),
    Exercise("rel_error", "rel_error(a, b) -> float", {"error": "float"}, more.rel_error_trials, {}),
    Exercise("dense_backward", "dense_backward(x, W, dout) -> (dx, dW, db)",
             {"dx": "(N, D_in)", "dW": "(D_in, D_out)", "db": "(D_out,)"}, _dense, {"N": N},
             {"1/N": _BATCH_NOTE["1/N"]}),
    Exercise("sigmoid_backward", "sigmoid_backward(x, dout) -> dx", {"dx": "(N, D)"}, _sigmoid, {}),
    Exercise("relu_backward", "relu_backward(x, dout) -> dx", {"dx": "(N, D)"}, _relu, {}),
    Exercise("mse_grad", "mse_grad(pred, target) -> dpred", {"dpred": "(N, D)"}, _mse, {"N": N, "D": 7},
             {"D": "You divided by N only: the mean runs over all n = N*D elements.",
              "1/2": "The square's 2 is missing: d/dp (p - t)^2 = 2 (p - t).",
              "N*D/2": "The whole 2/n is missing (the tutorial's (x - x_hat))."}),
    Exercise("bce_with_logits", "bce_with_logits(logits, target) -> (loss, dlogits)",
             {"loss": "float", "dlogits": "(N, D)"}, _bce, {"N": N, "D": 7},
             {"D": "You averaged over N only: the mean runs over all n = N*D elements.",
              "N*D": "A 1/n is missing: the loss is a mean over all n = N*D elements."}),
    Exercise("discriminator_grad", "discriminator_grad(z_prior, z_fake, W, b) -> (dW, db)",
             {"dW": "(D_z, 1)", "db": "(1,)"}, _discriminator, {"N": N},
             {"2": "That is the gradient of the plain sum L_real + L_fake; L_D is their average, the mean "
                   "BCE over all 2N rows (as the package's model and the tutorial program's d_loss), so "
                   "each delta is divided by 2N.", "N": _BATCH_NOTE["N"]}),
    Exercise("generator_grad", "generator_grad(x, W1, b1, W2, b2, W_D, b_D) -> (dW1, db1)",
             {"dW1": "(D_x, H)", "db1": "(H,)"}, _generator, {"N": N}, {"N": _BATCH_NOTE["N"]}),
    Exercise("dropout_backward", "dropout_backward(mask, keep, dout) -> dx", {"dx": "(N, D)"}, _dropout, {}),
    Exercise("batchnorm_backward", "batchnorm_backward(x, gamma, dout, eps) -> (dx, dgamma, dbeta)",
             {"dx": "(N, D)", "dgamma": "(D,)", "dbeta": "(D,)"}, _batchnorm, {"N": N},
             {"1/N": "dgamma and dbeta are plain sums over the batch: the 1/N of the loss is already in dout."}),
    Exercise("softmax_cross_entropy", "softmax_cross_entropy(logits, labels) -> (loss, dlogits)",
             {"loss": "float", "dlogits": "(N, C)"}, more.softmax_trials, {"N": N, "C": 3},
             {"N": _BATCH_NOTE["N"], "1/C": "The loss is a mean over the N examples, not over all N*C logits."}),
    Exercise("adam_update", "adam_update(param, grad, m, v, t, lr, beta1, beta2, eps) -> (param, m, v)",
             {"param": "(3, 4)", "m": "(3, 4)", "v": "(3, 4)"}, more.adam_trials, {}),
    Exercise("train_phased", "train_phased(model, batches, rules) -> None", {}, list, {},
             checker=loop.check_training_loop),
]}
