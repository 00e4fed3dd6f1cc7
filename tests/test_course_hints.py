"""Derive, then code: the notebook's hints stop short of the solution, the answer is shown only
on request, each derivation question meets a wrong answer with a hint naming the step, and the
checker gaps of issue 29 (N - 1 variance, an Adam step that writes in place or is not applied)
are named."""

import ast
import inspect
import re

import nbformat
import numpy as np
import pytest

from aae_np.teach import exercises, questions
from aae_np.teach import solutions as ref
from conftest import REPO

NB02 = REPO / "notebooks" / "02_gradient_check_exercises.ipynb"


def _squash(text: str) -> str:
    """Code or prose with spaces, backticks and typographic signs removed, for substring search."""
    for a, b in (("−", "-"), ("·", "*"), ("⊙", "*"), ("`", ""), ("²", "**2")):
        text = text.replace(a, b)
    return re.sub(r"\s+", "", text)


def _solution_statements(name: str) -> list[str]:
    """Every statement of the reference solution's body, as squashed code (no docstring, no comments)."""
    fn = ast.parse(inspect.getsource(getattr(ref, name))).body[0]
    body = [s for s in fn.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    return [_squash(ast.unparse(s)) for s in body]


def _hint_cells() -> dict[str, str]:
    nb = nbformat.read(NB02, as_version=4)
    found, current = {}, None
    for cell in nb.cells:
        m = re.search(r'exercises\.check\("(\w+)"', cell.source) if cell.cell_type == "code" else None
        if m:
            current = m.group(1)
        elif cell.cell_type == "markdown" and cell.source.startswith("## "):
            current = None                                 # a new section (Exercise 13 has hints of its own)
        elif cell.cell_type == "markdown" and "<summary>Hint" in cell.source and current:
            found[current] = cell.source
    return found


def test_every_exercise_has_hints_and_a_way_to_the_answer():
    hints = _hint_cells()
    assert set(hints) == set(exercises.EXERCISES)
    for name, text in hints.items():
        assert f'exercises.show_solution("{name}")' in text, name


@pytest.mark.parametrize("name", list(exercises.EXERCISES))
def test_no_hint_contains_the_solution_code(name):
    hint = _squash(_hint_cells()[name])
    statements = _solution_statements(name)
    assert statements
    leaked = [s for s in statements if len(s) >= 8 and s in hint]
    assert not leaked, f"{name}: hint contains solution code {leaked}"
    spans = re.findall(r"`([^`]*)`", _hint_cells()[name])
    assert not [s for s in spans if "return" in s and "show_solution" not in s], spans


def test_the_leak_test_can_fail():
    """A hint that quotes the solution line (the old last hint of Exercise 3) is caught."""
    assert any(s in _squash("Hint 2: `return dout * (x > 0)`") for s in _solution_statements("relu_backward"))
    assert any(s in _squash("`dW = x.T @ dout`, `dx = dout @ W.T`") for s in _solution_statements("dense_backward"))


def test_show_solution_says_it_is_the_answer(capsys):
    source = exercises.show_solution("dense_backward")
    out = capsys.readouterr().out
    assert out.startswith("THE ANSWER to exercise 'dense_backward'") and "x.T @ dout" in source
    with pytest.raises(ValueError, match="unknown exercise"):
        exercises.show_solution("dense")


# ----------------------------------------------------------------------------- questions
def test_each_exercise_with_a_checkable_form_asks_for_it_before_the_code():
    nb = nbformat.read(NB02, as_version=4)
    before = {}
    for i, cell in enumerate(nb.cells):
        if "question-stub" in cell.metadata.get("tags", []) and "before you write the code" in cell.source:
            stub = next(c for c in nb.cells[i + 1:] if "exercise-stub" in c.metadata.get("tags", []))
            before.setdefault(stub.metadata["exercise"], []).append(cell.metadata["question"])
    assert len(before) >= 10 and len(sum(before.values(), [])) >= 11, before


@pytest.mark.parametrize("name", list(questions.QUESTIONS))
def test_every_wrong_answer_gets_a_hint(name, capsys):
    q = questions.QUESTIONS[name]
    assert q.hint and q.wrong, name
    assert questions.check(name, q.answer) and "right." in capsys.readouterr().out
    for value, meaning in q.wrong.items():
        assert not questions.check(name, value)
        out = capsys.readouterr().out
        assert "not yet" in out and f"Hint: {meaning}" in out, out
    odd = q.answer + 12345.678                                  # no named mistake: the general hint
    assert not questions.check(name, odd) and f"Hint: {q.hint}" in capsys.readouterr().out


def test_the_usual_wrong_answers_are_named(capsys):
    questions.check("disc_delta", -0.014)                       # the plain sum: 1/N
    assert "plain SUM" in capsys.readouterr().out
    questions.check("bn_var_rows", 7)                           # N - 1
    assert "unbiased" in capsys.readouterr().out
    questions.check("adam_first_step", 3.16)
    assert "WITHOUT the bias correction" in capsys.readouterr().out


# ----------------------------------------------------------------------------- checker gaps
def _bn_unbiased(x, gamma, dout, eps):
    n = len(x)
    sigma = np.sqrt(x.var(0, ddof=1) + eps)                    # N - 1: the classic slip
    x_hat = (x - x.mean(0)) / sigma
    dbeta, dgamma = dout.sum(0), (dout * x_hat).sum(0)
    return gamma / (n * sigma) * (n * dout - dbeta - x_hat * dgamma), dgamma, dbeta


def _adam_in_place(param, grad, m, v, t, lr, beta1, beta2, eps):
    m *= beta1
    m += (1 - beta1) * grad
    v *= beta2
    v += (1 - beta2) * grad ** 2
    param -= lr * (m / (1 - beta1 ** t)) / (np.sqrt(v / (1 - beta2 ** t)) + eps)
    return param, m, v


def _adam_step_not_applied(param, grad, m, v, t, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad ** 2
    param - lr * (m / (1 - beta1 ** t)) / (np.sqrt(v / (1 - beta2 ** t)) + eps)   # noqa: B018 - the slip
    return param, m, v


def _adam_old_state(param, grad, m, v, t, lr, beta1, beta2, eps):
    m_new = beta1 * m + (1 - beta1) * grad
    v_new = beta2 * v + (1 - beta2) * grad ** 2
    return param - lr * (m_new / (1 - beta1 ** t)) / (np.sqrt(v_new / (1 - beta2 ** t)) + eps), m, v


def _relu_in_place(x, dout):
    dout[x <= 0] = 0
    return dout


@pytest.mark.parametrize("name,fn,diagnosis,words", [
    ("batchnorm_backward", _bn_unbiased, "unbiased_variance", "N - 1"),
    ("adam_update", _adam_in_place, "modified_input", "`param`, `m`, `v` in place"),
    ("adam_update", _adam_step_not_applied, "step_not_applied", "param came back unchanged"),
    ("adam_update", _adam_old_state, "state_not_returned", "m and v came back as they went in"),
    ("relu_backward", _relu_in_place, "modified_input", "`dout` in place"),
])
def test_the_checker_gaps_are_named(name, fn, diagnosis, words, capsys):
    result = exercises.check(name, fn)
    assert not result.passed and result.diagnosis == diagnosis, result.message
    assert words in result.message


def test_numerical_gradient_may_nudge_x_if_it_puts_it_back():
    assert exercises.check("numerical_gradient", ref.numerical_gradient).passed
