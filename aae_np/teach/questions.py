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
from dataclasses import dataclass

__all__ = ["Question", "QUESTIONS", "SOLUTIONS", "check"]


@dataclass(frozen=True)
class Question:
    prompt: str
    answer: float
    why: str
    rel_tol: float = 1e-2


QUESTIONS: dict[str, Question] = {
    "relu_kink": Question(
        "Your central difference of ReLU at exactly x = 0, with h = 1e-5: what slope does it measure?", 0.5,
        "(max(0, h) - max(0, -h)) / 2h = h / 2h = 1/2: the average of the slopes on either side, neither "
        "of them. A finite difference proves nothing at a kink, which is why checks keep inputs away from 0."),
    "output_not_mask": Question(
        "Someone multiplies dout by max(0, x) instead of the mask. At x = 3, dout = 1, by what factor is "
        "their gradient off?", 3.0,
        "Their value is 3, the right one 1: the slope of y = x is 1 wherever the unit is on, whatever x is. "
        "The mask 1[x > 0] is the derivative; max(0, x) is the output. It is x > 0 (not x >= 0) because a "
        "unit that outputs exactly 0 is off and passes no gradient, the convention of the package."),
    "softmax_rows": Question("What does each row of your softmax cross-entropy's dlogits sum to?", 0.0,
                             "(p - onehot(y)) / N: p sums to 1 and the one-hot to 1. Adding a constant to "
                             "every logit of a row does not change the softmax, so the loss cannot change "
                             "along that direction.", rel_tol=0.0),
    "nonsaturating": Question(
        "The discriminator rejects a code confidently, D = 0.001. How many times larger is |dL/da| for the "
        "generator loss -log D than for the minimax loss log(1 - D)?", 999.0,
        "-log D gives dL/da = D - 1 = -0.999; log(1 - D) gives -D = -0.001. Early in training, when the "
        "discriminator wins, the minimax loss barely moves the encoder (it saturates); -log D pushes hardest "
        "exactly there. Both have the same fixed point."),
    "detach": Question(
        "In the discriminator's phase (the package's L_D, the mean over 2N rows), N = 50, D(z_fake) = 0.8 for "
        "one encoded code. What is dL_D/da for that code's logit?", 0.008,
        "D / 2N = 0.8 / 100 = +0.008. Positive: descending it lowers D(z_fake), which is the discriminator's "
        "goal. If this gradient flowed on into the encoder, the encoder would move its codes to look MORE "
        "fake, helping its opponent. So the phase holds z_fake fixed (detaches it), and the encoder learns "
        "only in its own phase, from L_G."),
    "adam_first_step": Question(
        "Adam at t = 1 with m = v = 0 and any nonzero gradient g (ignore eps): how large is |step| / lr?", 1.0,
        "m_hat = g and v_hat = g^2 after the bias correction, so the step is lr * g / |g|: exactly lr per "
        "parameter, whatever the gradient's scale. Without the correction it would be lr * 0.1 / sqrt(0.001) "
        "= 3.16 lr."),
}

SOLUTIONS: dict[str, float] = {name: q.answer for name, q in QUESTIONS.items()}


def check(name: str, answer) -> bool:
    """Print whether ``answer`` is right (and why), or that it is not answered yet; return right or not."""
    if name not in QUESTIONS:
        raise ValueError(f"unknown question {name!r}; choose one of {', '.join(QUESTIONS)}")
    q = QUESTIONS[name]
    if answer is None or answer is ...:
        print(f"{name}: not answered yet. {q.prompt}")
        return False
    try:
        value = float(answer)
    except (TypeError, ValueError):
        print(f"{name}: the answer is one number; got {answer!r}.")
        return False
    right = math.isclose(value, q.answer, rel_tol=q.rel_tol, abs_tol=1e-9)
    print(f"{name}: {'right. ' + q.why if right else f'not yet ({value:g}). Look again: ' + q.prompt}")
    return right
