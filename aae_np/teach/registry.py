"""Everything a grader checks, in one importable place, and how to check it outside the student's
process.

    from aae_np.teach import registry
    registry.EXERCISES, registry.QUESTIONS           # name -> checker / question, as the notebooks use
    registry.regrade_exercises("02_gradient_check_exercises.ipynb")   # name -> CheckResult
    registry.regrade_questions("02_gradient_check_exercises.ipynb")   # name -> (right or None, message)
    registry.regrade_diagnoses("02_gradient_check_exercises.ipynb")   # run -> (right or None, message)

A submission's printed verdicts are not evidence: ``regrade_*`` read the *saved* notebook 02 (its
exercise cells as the capstone runs them, its question cells' ``answer = ...`` lines) and make the
decision here, with the package's own checkers. Exercise 13's diagnoses are data too (two names
per run, ``cause = "..."`` and ``fix = "..."`` in its cell), judged by ``diagnose.verdict``.
"""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import numpy as np

from aae_np.teach import capstone, diagnose
from aae_np.teach.exercises import EXERCISES
from aae_np.teach.grading import CheckResult
from aae_np.teach.questions import QUESTIONS, verdict

__all__ = ["EXERCISES", "QUESTIONS", "DIAGNOSES", "NOTEBOOKS", "regrade_exercises", "regrade_questions",
           "question_answers", "diagnosis_answers", "regrade_diagnoses"]

DIAGNOSES = tuple(diagnose.SOLUTIONS)                  # Exercise 13's runs: "A", "B", "C"

# notebook -> what it holds: exercise checkers (exercises.check) and questions (questions.check)
NOTEBOOKS: dict[str, dict[str, tuple[str, ...]]] = {
    "02_gradient_check_exercises.ipynb": {"exercises": tuple(EXERCISES), "questions": tuple(QUESTIONS),
                                          "diagnoses": DIAGNOSES},
    "04_capstone_train_your_own.ipynb": {"exercises": capstone.NEEDED, "questions": (), "diagnoses": ()},
}


def _cells(notebook: str | Path, tag: str, key: str) -> dict[str, str]:
    """The source of each code cell tagged ``tag``, by its ``metadata[key]``."""
    found = {}
    for cell in json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]:
        meta = cell.get("metadata", {})
        if tag in meta.get("tags", []) and meta.get(key) is not None:
            found[meta[key]] = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
    return found


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


def diagnosis_answers(notebook: str | Path) -> dict[str, tuple[object, object] | None]:
    """Run -> (cause, fix) as its cell's last ``cause = ...`` and ``fix = ...`` lines write them
    (``...`` if not replaced, None for a value that is not a literal); None if the cell is missing."""
    cells = _cells(notebook, "diagnosis-stub", "diagnosis")
    found: dict[str, tuple[object, object] | None] = {name: None for name in DIAGNOSES}
    for name in DIAGNOSES:
        if name not in cells:
            continue
        values: dict[str, object] = {"cause": None, "fix": None}
        try:
            tree = ast.parse(cells[name])
        except SyntaxError:
            tree = ast.Module(body=[], type_ignores=[])
        for node in tree.body:
            target = [getattr(t, "id", None) for t in node.targets] if isinstance(node, ast.Assign) else []
            if len(target) == 1 and target[0] in values:
                try:
                    values[target[0]] = ast.literal_eval(node.value)
                except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                    values[target[0]] = None
        found[name] = (values["cause"], values["fix"])
    return found


def regrade_diagnoses(notebook: str | Path) -> dict[str, tuple[bool | None, str]]:
    """Run -> (right, or None if unanswered; the message a student would see, without the rerun)."""
    return {name: diagnose.verdict(name, *answer) if answer is not None else
            (False, f"run {name}: no answer found (its cell deleted).")
            for name, answer in diagnosis_answers(notebook).items()}
