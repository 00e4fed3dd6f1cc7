"""Short questions inside the exercise notebook, each answered with one number and checked.

    from aae_np.teach import questions
    questions.check("relu_kink", 0.5)      # prints right / not yet, and the reason once right

A question is about *why*: why the mask is 1[x > 0], why the generator's loss is -log D, why
the discriminator's phase holds the codes fixed. A number makes the answer checkable; the
explanation printed with a right answer is the point. ``SOLUTIONS`` holds the answers (the
notebook tests inject them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["Question", "QUESTIONS", "SOLUTIONS", "check", "verdict"]


@dataclass(frozen=True)
class Question:
    """``hint`` names the step to look at again after any wrong answer; ``wrong`` maps the
    usual wrong answers to what each one means (checked before the general hint)."""

    prompt: str
    answer: float
    why: str
    hint: str
    wrong: dict[float, str] = field(default_factory=dict)
    rel_tol: float = 1e-2

    def hint_for(self, value: float) -> str:
        """What to look at again after the wrong answer ``value``."""
        for known, meaning in self.wrong.items():
            if math.isclose(value, known, rel_tol=self.rel_tol, abs_tol=1e-9):
                return meaning
        return self.hint


QUESTIONS: dict[str, Question] = {
    # ------------------------------------------ asked before the code: the derivation's checkable form
    "central_order": Question(
        "Exercise 0a. The error of the central difference (f(x + h) - f(x - h)) / 2h shrinks like h^k. "
        "What is k?", 2.0,
        "Taylor: f(x +- h) = f +- h f' + h^2 f''/2 +- h^3 f'''/6. Subtracted, the f and h^2 terms cancel: "
        "(f(x + h) - f(x - h)) / 2h = f' + h^2 f'''/6. The one-sided difference keeps h f''/2: k = 1.",
        "write f(x + h) and f(x - h) as Taylor series up to h^3 and subtract them: which terms cancel?",
        {1.0: "k = 1 is the one-sided difference (f(x + h) - f(x)) / h, whose h f''/2 term survives; in the "
              "central one the h^2 terms of f(x + h) and f(x - h) cancel."}),
    "dense_inner": Question(
        "Exercise 1. x is (50, 784), W (784, 256), dout (50, 256). dL/dW[k, j] is a sum over one index: "
        "how many terms does it add?", 50.0,
        "W[k, j] is used once by every row n of the batch (y[n, j] = sum_k x[n, k] W[k, j] + b[j]), so "
        "dL/dW[k, j] = sum_n dout[n, j] x[n, k]: 50 terms, the batch. The batch index is the one that "
        "disappears, so it is the inner dimension of the product that gives the (784, 256) dW.",
        "write y[n, j] as a sum over k; which rows n use W[k, j]? Those are the terms of dL/dW[k, j].",
        {784.0: "784 is D_in, the index k of W[k, j] itself; the sum runs over the rows that USE W[k, j].",
         256.0: "256 is D_out, the index j of W[k, j] itself; the sum runs over the rows that USE W[k, j]."}),
    "sigmoid_slope": Question(
        "Exercise 2. What is sigmoid'(0), the slope of the sigmoid at x = 0?", 0.25,
        "s = sigmoid(0) = 1/2, and sigmoid' = s (1 - s) = 1/4.",
        "differentiate 1 / (1 + e^-x) and write the result as s (1 - s) with s = sigmoid(x); then put x = 0.",
        {0.5: "0.5 is sigmoid(0), the VALUE; the slope is s (1 - s).",
         0.0: "the sigmoid has no flat point: its slope s (1 - s) is largest at 0."}),
    "mse_factor": Question(
        "Exercise 4. pred and target are (N, D) = (2, 3). One element has pred - target = 0.3. What is "
        "dL/dpred there, for L = mean((pred - target)^2) over all elements?", 0.1,
        "2 (pred - target) / n with n = N*D = 6: 2 * 0.3 / 6 = 0.1.",
        "only one term of the sum contains this element: differentiate (p - t)^2 / n, n = N*D.",
        {0.6: "0.6 = 2 * 0.3: the 1/n of the mean is missing (n = N*D = 6).",
         0.05: "0.05 = 0.3 / 6: the square's 2 is missing, d/dp (p - t)^2 = 2 (p - t).",
         0.3: "0.3 is 2 * 0.3 / N, a mean over the N = 2 rows only, or (p - t) with no factor at all; the "
              "mean runs over all n = N*D = 6 elements.",
         -0.1: "the sign: d/dp (p - t)^2 = +2 (p - t); the tutorial's (x - x_hat) points uphill."}),
    "bce_slope": Question(
        "Exercise 5. One element (n = 1), logit s = 0, target t = 1. What is dL/ds?", -0.5,
        "dL/ds = (sigmoid(s) - t) / n = (0.5 - 1) / 1 = -0.5: the sigmoid's s (1 - s) cancels against "
        "the 1 / (p (1 - p)) of the log terms.",
        "substitute p = sigmoid(s) into -[t log p + (1 - t) log(1 - p)] and differentiate with respect to s; "
        "use dp/ds = p (1 - p).",
        {0.5: "the sign: the loss falls as s grows towards the target 1, so dL/ds < 0.",
         -1.0: "-1 = s - t: the sigmoid is missing, dL/ds = sigmoid(s) - t.",
         -0.125: "-0.125 = (p - t) p (1 - p): the sigmoid's derivative is already inside p - t; it cancels."}),
    "disc_delta": Question(
        "Exercise 6. N = 50 prior samples and N = 50 encoded codes; L_D is the mean BCE over all 2N rows. "
        "A prior sample has D(z_prior) = 0.3. What is dL_D/da for its logit?", -0.007,
        "(D - 1) / 2N = -0.7 / 100 = -0.007: target 1 (a prior sample is 'real'), the fused delta D - t, "
        "and the mean over the 2N = 100 rows.",
        "the fused BCE gives (D - t) per row; which target does a prior sample have, and over how many rows "
        "is L_D the mean?",
        {-0.014: "-0.7 / 50 is the gradient of the plain SUM of the two means; L_D is their average, the "
                 "mean over 2N = 100 rows: divide by 2N.",
         0.007: "the sign: a prior sample is 'real', target 1, so delta = (D - 1)/2N < 0 (the tutorial's E11 "
                "flips it).",
         -0.7: "-0.7 = D - 1 is the delta of one row; L_D is a mean over 2N = 100 rows.",
         0.003: "0.3 / 100 = D/2N is the delta of a FAKE row (target 0); a prior sample has target 1."}),
    "gen_delta": Question(
        "Exercise 7. N = 10, and the discriminator gives one encoded code D = 0.2. What is dL_G/da for that "
        "code's logit, with L_G = BCE(D(enc(x)), 1)?", -0.08,
        "(D - 1) / N = -0.8 / 10 = -0.08: the generator's target is 1, and L_G is a mean over the N codes.",
        "the fused BCE gives (D - t) / N; the generator wants its codes called real.",
        {0.02: "0.02 = D/N uses the discriminator's target 0; the generator's loss flips it to 1.",
         -0.02: "-0.02 = -D/N is the minimax loss log(1 - D); L_G = -log D gives (D - 1)/N.",
         -0.8: "-0.8 = D - 1: the 1/N of the mean is missing.",
         -0.0128: "-0.0128 = (D - 1) D (1 - D)/N: the sigmoid's derivative is already in D - 1."}),
    "dropout_scale": Question(
        "Exercise 8. keep = 0.8, a unit that was kept (mask 1), dout = 2. What is dx for it?", 2.5,
        "y = x * m / keep, so dx = dout * m / keep = 2 * 1 / 0.8 = 2.5.",
        "y = x * m / keep is x times a constant the forward pass fixed; the slope is that constant.",
        {2.0: "2 = dout * m: the 1/keep of inverted dropout is missing.",
         1.6: "1.6 = dout * keep: the forward DIVIDES by keep.",
         10.0: "10 = dout / (1 - keep) divides by p, the probability of dropping; divide by keep.",
         0.0: "0 is a dropped unit's gradient; this unit was kept (mask 1)."}),
    "bn_var_rows": Question(
        "Exercise 9. A batch of N = 8 rows. The variance batch normalisation uses divides the sum of squared "
        "deviations by what number?", 8.0,
        "By N = 8: the biased variance of the batch, as the forward pass computes it (np.var's default).",
        "read the forward pass: var = 1/N sum_i (x_i - mu)^2.",
        {7.0: "7 = N - 1 is the unbiased estimator (np.var(..., ddof=1), pandas' default); batch "
              "normalisation divides by N."}),
    "bn_column_sum": Question(
        "Exercise 9. What does each column of batch normalisation's dx sum to (training mode)?", 0.0,
        "0: adding one constant to a whole column of x moves mu by it and leaves x_hat, so y and L, "
        "unchanged. The sum of a column of dx is exactly the loss's change along that direction.",
        "add the same c to every row of one column of x: what happens to mu, to x - mu, to x_hat, to L?",
        {1.0: "x_hat does not move at all when a whole column is shifted, so L does not either."},
        rel_tol=0.0),
    "softmax_true_class": Question(
        "Exercise 10. N = 1, C = 3, softmax p = (0.2, 0.7, 0.1) and label y = 1. What is dL/ds at the true "
        "class, s[0, 1]?", -0.3,
        "p_y - 1 = 0.7 - 1 = -0.3 (divided by N = 1): the label's -log p_y gives -1, the softmax's "
        "normaliser gives + p_c at every class.",
        "write log p_y = s_y - log sum_c exp(s_c) and differentiate with respect to s_y.",
        {0.7: "0.7 = p_y: the -1 from the label's own logit s_y is missing (p - onehot(y)).",
         -1.0: "-1 treats p_y as if the normaliser did not depend on s_y; it adds + p_y.",
         0.3: "the sign: raising the true class's logit lowers the loss, so dL/ds_y < 0."}),
    # ------------------------------------------ asked after the check: why
    "relu_kink": Question(
        "Your central difference of ReLU at exactly x = 0, with h = 1e-5: what slope does it measure?", 0.5,
        "(max(0, h) - max(0, -h)) / 2h = h / 2h = 1/2: the average of the slopes on either side, neither "
        "of them. A finite difference proves nothing at a kink, which is why checks keep inputs away from 0.",
        "compute (max(0, h) - max(0, -h)) / 2h by hand; the cell above prints it too.",
        {0.0: "0 is the convention a backward pass uses at the kink (1[x > 0]); the question asks what the "
              "finite difference MEASURES there: (max(0, h) - max(0, -h)) / 2h.",
         1.0: "1 is the slope on the right only; the central difference also sees the left side."}),
    "output_not_mask": Question(
        "Someone multiplies dout by max(0, x) instead of the mask. At x = 3, dout = 1, by what factor is "
        "their gradient off?", 3.0,
        "Their value is 3, the right one 1: the slope of y = x is 1 wherever the unit is on, whatever x is. "
        "The mask 1[x > 0] is the derivative; max(0, x) is the output. It is x > 0 (not x >= 0) because a "
        "unit that outputs exactly 0 is off and passes no gradient, the convention of the package.",
        "compute both: theirs, dout * max(0, 3); the right one, dout * 1[3 > 0]. Theirs over the right one.",
        {1 / 3: "that is the right value over theirs; the question asks theirs over the right one."}),
    "softmax_rows": Question(
        "What does each row of your softmax cross-entropy's dlogits sum to?", 0.0,
        "(p - onehot(y)) / N: p sums to 1 and the one-hot to 1. Adding a constant to every logit of a row "
        "does not change the softmax, so the loss cannot change along that direction.",
        "a row of dlogits is (p - onehot(y)) / N: what does p sum to, and the one-hot?",
        {1.0: "p sums to 1, but the one-hot subtracts 1 as well."}, rel_tol=0.0),
    "nonsaturating": Question(
        "The discriminator rejects a code confidently, D = 0.001. How many times larger is |dL/da| for the "
        "generator loss -log D than for the minimax loss log(1 - D)?", 999.0,
        "-log D gives dL/da = D - 1 = -0.999; log(1 - D) gives -D = -0.001. Early in training, when the "
        "discriminator wins, the minimax loss barely moves the encoder (it saturates); -log D pushes hardest "
        "exactly there. Both have the same fixed point.",
        "with D = sigmoid(a): d/da of -log D is D - 1, d/da of log(1 - D) is -D. Divide their sizes.",
        {1 / 999: "that is the minimax loss's gradient over -log D's; the question asks the other way round."}),
    "detach": Question(
        "In the discriminator's phase (the package's L_D, the mean over 2N rows), N = 50, D(z_fake) = 0.8 for "
        "one encoded code. What is dL_D/da for that code's logit?", 0.008,
        "D / 2N = 0.8 / 100 = +0.008. Positive: descending it lowers D(z_fake), which is the discriminator's "
        "goal. If this gradient flowed on into the encoder, the encoder would move its codes to look MORE "
        "fake, helping its opponent. So the phase holds z_fake fixed (detaches it), and the encoder learns "
        "only in its own phase, from L_G.",
        "an encoded code is 'fake' (target 0): the fused delta is (D - 0) over the 2N rows of the mean.",
        {0.016: "0.8 / 50 divides by N; L_D is the mean over 2N = 100 rows.",
         -0.008: "the sign: a fake row has target 0, so delta = D/2N > 0.",
         -0.002: "(D - 1)/2N is a REAL row's delta (target 1); the encoded code is fake, target 0.",
         0.8: "0.8 = D is one row's delta before the mean over 2N = 100 rows."}),
    "adam_first_step": Question(
        "Adam at t = 1 with m = v = 0 and any nonzero gradient g (ignore eps): how large is |step| / lr?", 1.0,
        "m_hat = g and v_hat = g^2 after the bias correction, so the step is lr * g / |g|: exactly lr per "
        "parameter, whatever the gradient's scale. Without the correction it would be lr * 0.1 / sqrt(0.001) "
        "= 3.16 lr.",
        "after one step m = (1 - beta1) g and v = (1 - beta2) g^2; divide each by its bias correction "
        "(1 - beta^1) and form m_hat / sqrt(v_hat).",
        {3.16: "3.16 = 0.1 / sqrt(0.001) is the step WITHOUT the bias correction; with it, m_hat = g and "
               "v_hat = g^2."}),
}

SOLUTIONS: dict[str, float] = {name: q.answer for name, q in QUESTIONS.items()}


def verdict(name: str, answer) -> tuple[bool | None, str]:
    """``(right, message)`` without printing; ``right`` is None while unanswered (``...`` or None)."""
    if name not in QUESTIONS:
        raise ValueError(f"unknown question {name!r}; choose one of {', '.join(QUESTIONS)}")
    q = QUESTIONS[name]
    if answer is None or answer is ...:
        return None, f"{name}: not answered yet. {q.prompt}"
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return False, f"{name}: the answer is one number; got {answer!r}."
    if math.isclose(value, q.answer, rel_tol=q.rel_tol, abs_tol=1e-9):
        return True, f"{name}: right. {q.why}"
    return False, f"{name}: not yet ({value:g}). {q.prompt}\n  Hint: {q.hint_for(value)}"


def check(name: str, answer) -> bool:
    """Print whether ``answer`` is right (and why), or that it is not answered yet; return right or not."""
    right, message = verdict(name, answer)
    print(message)
    return bool(right)
