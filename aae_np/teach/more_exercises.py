"""The trials of the course's other exercises: the student's own gradient checker (Exercise 0),
softmax cross-entropy backward and the Adam update (Exercises 10 and 11).

Each function returns the ``Trial`` list ``grading.grade`` runs, with the classic wrong answers
computed by running the wrong code itself, so a diagnosis matches what a student really writes.
The ``Exercise`` entries are registered in ``exercises.EXERCISES``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from aae_np.teach import solutions as ref
from aae_np.teach.grading import Trial

__all__ = ["numerical_gradient_trials", "rel_error_trials", "softmax_trials", "adam_trials"]


# ----------------------------------------------------------------------------- Exercise 0
def _fd(f: Callable, x: np.ndarray, h: float, forward: bool = False, restore: bool = True,
        two: float = 2.0) -> np.ndarray:
    """A finite-difference gradient with one of the classic slips switched on."""
    x, grad = x.copy(), np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        f_plus = f(x)
        x[i] = old if forward else old - h
        f_other = f(x)
        if restore:
            x[i] = old
        grad[i] = (f_plus - f_other) / (h if forward else two * h)
    return grad


def numerical_gradient_trials() -> list[Trial]:
    rng = np.random.default_rng(20)
    B, C = rng.normal(size=(4, 3)), rng.normal(size=(2, 3))
    x = rng.normal(size=(2, 4))
    f = lambda a: float(np.sum(np.tanh(a @ B) * C) + np.sum(a ** 3) / 3)          # noqa: E731
    exact = ((1 - np.tanh(x @ B) ** 2) * C) @ B.T + x ** 2                         # df/dx by hand
    h = 1e-5
    mistakes = {
        "forward_difference": ((_fd(f, x, h, forward=True),), "a one-sided difference (f(x + h) - f(x)) / h: "
                               "its error is O(h), about 1e-5 here. The central difference "
                               "(f(x + h) - f(x - h)) / 2h cancels the h^2 term and errs by O(h^2) only."),
        "not_restored": ((_fd(f, x, h, restore=False),), "after nudging x[i] you did not put it back, so "
                         "every later element was measured at a shifted point. Save old = x[i] and set "
                         "x[i] = old after the two evaluations."),
        "divided_by_h": ((_fd(f, x, h, two=1.0),), "you divided by h; the two points x - h and x + h are "
                         "2h apart, so divide by 2h."),
    }
    return [Trial({"f": f, "x": x, "h": h}, (exact,), "the gradient worked out by hand, "
                  "f(x) = sum(tanh(x B) * C) + sum(x^3)/3, x of shape (2, 4)", mistakes)]


def rel_error_trials() -> list[Trial]:
    rng = np.random.default_rng(21)
    a, b = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    b[0] = a[0] * (1 + 1e-3)                                  # one row nearly equal, one far off
    want = ref.rel_error(a, b)
    diff = np.abs(a - b)
    mistakes = {
        "mean_not_max": ((float(np.mean(diff / (np.abs(a) + np.abs(b)))),), "you averaged the elementwise "
                         "errors; a check must report the WORST element (max), or one wrong entry among "
                         "many right ones would pass."),
        "relative_to_b_only": ((float(np.max(diff / np.abs(b))),), "you divided by |b| only; use |a| + |b| "
                               "so that rel_error(a, b) == rel_error(b, a) and a 0 in b cannot divide by 0."),
        "whole_array_norms": ((float(np.linalg.norm(a - b) / (np.linalg.norm(a) + np.linalg.norm(b))),),
                              "you compared whole arrays (norms); this exercise asks for the elementwise "
                              "error, max over i of |a_i - b_i| / (|a_i| + |b_i|), which names a worst element."),
    }
    z = rng.normal(size=(2, 4)) * 1e-3
    za, zb = z.copy(), z.copy()
    za[0, :2] = zb[0, :2] = 0.0                               # both gradients exactly 0 there
    zb[1] *= 1 + 1e-4
    return [Trial({"a": a, "b": b}, (want,), "max over elements of |a - b| / max(1e-8, |a| + |b|)", mistakes),
            Trial({"a": za, "b": zb}, (ref.rel_error(za, zb),), "the same on arrays with exact zeros in both",
                  note="where a and b are both exactly 0, |a - b| / (|a| + |b|) is 0/0 = nan. The floor "
                       "max(1e-8, |a| + |b|) in the denominator gives 0 there: both agree.")]


# ----------------------------------------------------------------------------- Exercise 10
def softmax_trials() -> list[Trial]:
    rng = np.random.default_rng(22)
    n, c = 5, 3
    s, y = rng.normal(0, 2, (n, c)), rng.integers(0, c, n)
    onehot = np.eye(c)[y]
    p = np.exp(s) / np.exp(s).sum(1, keepdims=True)
    p_col = np.exp(s) / np.exp(s).sum(0, keepdims=True)
    loss = ref.softmax_cross_entropy(s, y)[0]
    grad = np.zeros_like(s)
    for i in np.ndindex(s.shape):                             # central differences of the loss
        old = s[i]
        s[i] = old + 1e-5
        up = ref.softmax_cross_entropy(s, y)[0]
        s[i] = old - 1e-5
        grad[i] = (up - ref.softmax_cross_entropy(s, y)[0]) / 2e-5
        s[i] = old
    mistakes = {
        "missing_one_hot": ((loss, p / n), "you returned p/N: the label's -log p_y also contributes -1 at the "
                            "true class, so dL/ds = (p - onehot(y)) / N."),
        "softmax_over_batch": ((loss, (p_col - onehot) / n), "your softmax normalises each COLUMN (axis=0, over "
                               "the batch); each row is one example's C class scores: sum over axis=1."),
        "onehot_only": ((loss, -onehot / n), "you differentiated -log p_y as if p_y did not depend on the other "
                        "logits; through the softmax every logit moves p_y, which gives the + p term."),
    }
    edge = np.array([[1000.0, 0.0, -1000.0], [-800.0, 800.0, 0.5]])
    ey = np.array([2, 1])
    return [Trial({"logits": s, "labels": y}, (loss, grad), "the stable loss and central differences of it, "
                  "N=5, C=3", mistakes),
            Trial({"logits": edge, "labels": ey}, ref.softmax_cross_entropy(edge, ey),
                  "the reference at logits of +-1000", note="exp(1000) overflows to inf. Subtract each row's "
                  "max before exponentiating (softmax does not change) and take log p = s - log sum exp s.")]


# ----------------------------------------------------------------------------- Exercise 11
def _adam(param, grad, m, v, t, lr, b1, b2, eps, correct=True, sqrt=True, square=True, sign=-1.0,
          eps_inside=False):
    m = b1 * m + (1 - b1) * grad
    v = b2 * v + (1 - b2) * (grad * grad if square else grad)
    m_hat, v_hat = (m / (1 - b1 ** t), v / (1 - b2 ** t)) if correct else (m, v)
    with np.errstate(invalid="ignore"):                      # v not squared can be negative
        denom = np.sqrt(v_hat + eps) if eps_inside else (np.sqrt(v_hat) if sqrt else v_hat) + eps
    return param + sign * lr * m_hat / denom, m, v


def adam_trials() -> list[Trial]:
    rng = np.random.default_rng(23)
    trials = []
    for t, warm in ((1, False), (7, True)):
        p, g = rng.normal(size=(3, 4)), rng.normal(0, 1e-2, (3, 4))
        m = rng.normal(0, 1e-2, (3, 4)) if warm else np.zeros((3, 4))
        v = rng.uniform(1e-5, 1e-4, (3, 4)) if warm else np.zeros((3, 4))
        hyper = dict(t=t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8)
        args = (p, g, m, v, *hyper.values())
        mistakes = {
            "no_bias_correction": (_adam(*args, correct=False), "the bias correction is missing: m and v start "
                                   "at 0, so early on they are too small by (1 - beta^t); divide m by "
                                   "1 - beta1^t and v by 1 - beta2^t (t counted from 1)."),
            "ascent": (_adam(*args, sign=+1.0), "you stepped uphill: param - lr * m_hat / (sqrt(v_hat) + eps)."),
            "no_sqrt": (_adam(*args, sqrt=False), "the denominator is sqrt(v_hat) + eps: v is a mean of SQUARED "
                        "gradients, its square root has the gradient's scale."),
            "v_not_squared": (_adam(*args, square=False), "v averages grad**2 (elementwise), not grad."),
            "eps_inside_sqrt": (_adam(*args, eps_inside=True), "eps goes outside the square root: "
                                "sqrt(v_hat) + eps."),
        }
        new_p, new_m, new_v = ref.adam_update(*args)
        mistakes["step_not_applied"] = ((p, new_m, new_v), "param came back unchanged: the step was computed "
                                        "but not applied. `param - lr * ...` on a line of its own is thrown "
                                        "away; return it (or assign it: param = param - lr * ...).")
        mistakes["state_not_returned"] = ((new_p, m, v), "m and v came back as they went in: return the NEW "
                                          "running averages, or the next step starts from the old ones and "
                                          "Adam forgets every gradient but the last.")
        trials.append(Trial({"param": p, "grad": g, "m": m, "v": v, **hyper}, ref.adam_update(*args),
                            f"the update rule of Kingma & Ba (2015) at step t = {t}"
                            + (", m = v = 0 before it" if not warm else ""), mistakes))
    return trials
