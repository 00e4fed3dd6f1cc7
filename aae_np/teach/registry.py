"""Everything a grader checks, in one importable place, and how to check it outside the student's
process.

    from aae_np.teach import registry
    registry.EXERCISES, registry.QUESTIONS           # name -> checker / question, as the notebooks use
    registry.regrade_exercises("02_gradient_check_exercises.ipynb")   # name -> CheckResult
    registry.regrade_questions("02_gradient_check_exercises.ipynb")   # name -> (right or None, message)

A submission's printed verdicts are not evidence: ``regrade_*`` read the *saved* notebook 02 (its
exercise cells as the capstone runs them, its question cells' ``answer = ...`` lines) and make the
decision here, with the package's own checkers.
"""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import numpy as np

from aae_np.teach import capstone
from aae_np.teach.exercises import EXERCISES
from aae_np.teach.grading import CheckResult
from aae_np.teach.questions import QUESTIONS, verdict

__all__ = ["EXERCISES", "QUESTIONS", "NOTEBOOKS", "regrade_exercises", "regrade_questions", "question_answers"]

# notebook -> what it holds: exercise checkers (exercises.check) and questions (questions.check)
NOTEBOOKS: dict[str, dict[str, tuple[str, ...]]] = {
    "02_gradient_check_exercises.ipynb": {"exercises": tuple(EXERCISES), "questions": tuple(QUESTIONS)},
    "04_capstone_train_your_own.ipynb": {"exercises": capstone.NEEDED, "questions": ()},
}


def regrade_exercises(notebook: str | Path) -> dict[str, CheckResult]:
    """Every exercise of the saved notebook 02, graded in this process (missing ones say so)."""
    return {name: result for name, (_, result) in capstone._collect(Path(notebook), tuple(EXERCISES)).items()}


def question_answers(notebook: str | Path) -> dict[str, object]:
    """Question name -> the value its cell's last top-level ``answer = <expression>`` gives
    (``...`` if unanswered, None if the cell or the expression is missing or does not evaluate).

    The expression is evaluated with NumPy and math only (a student may write ``2 * 0.3 / 6``)."""
    cells = json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]
    found: dict[str, object] = {name: None for name in QUESTIONS}
    for cell in cells:
        meta = cell.get("metadata", {})
        name = meta.get("question")
        if "question-stub" not in meta.get("tags", []) or name not in found:
            continue
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["answer"]:
                try:
                    found[name] = eval(compile(ast.Expression(node.value), name, "eval"),   # noqa: S307
                                       {"__builtins__": {}, "np": np, "math": math})
                except Exception:                                                        # noqa: BLE001
                    found[name] = None
    return found


def regrade_questions(notebook: str | Path) -> dict[str, tuple[bool | None, str]]:
    """Question name -> (right, or None if unanswered; the message a student would see)."""
    return {name: verdict(name, value) if value is not None else
            (False, f"{name}: no answer found (its cell deleted, or `answer = ...` not a number).")
            for name, value in question_answers(notebook).items()}
