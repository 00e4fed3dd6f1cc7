"""aae_np/teach/registry.py: the saved notebook 02 regraded outside the student's process."""

import nbformat

from aae_np.teach import registry
from aae_np.teach.questions import SOLUTIONS
from conftest import REPO

NB02 = REPO / "notebooks" / "02_gradient_check_exercises.ipynb"


def test_as_shipped_nothing_passes_and_nothing_is_answered():
    results = registry.regrade_exercises(NB02)
    assert set(results) == set(registry.EXERCISES)
    assert all(r.status == "not implemented" for r in results.values())
    assert all(right is None for right, _ in registry.regrade_questions(NB02).values())


def test_solutions_and_answers_are_found_and_a_printed_pass_changes_nothing(tmp_path):
    nb = nbformat.read(NB02, as_version=4)
    for cell in nb.cells:
        name = cell.metadata.get("exercise")
        if "exercise-stub" in cell.metadata.get("tags", []):
            cell.source = f"from aae_np.teach.solutions import {name}"
            if name == "relu_backward":                         # a wrong one that prints PASS
                cell.source = ("def relu_backward(x, dout):\n    print('relu_backward: PASS')\n    return dout\n")
        q = cell.metadata.get("question")
        if q:
            cell.source = f"answer = {SOLUTIONS[q]!r}" if q != "mse_factor" else "answer = 2 * 0.3 / 6"
            if q == "disc_delta":
                cell.source = "answer = -0.7 / 50"              # the plain sum: wrong
    path = tmp_path / NB02.name
    nbformat.write(nb, path)
    results = registry.regrade_exercises(path)
    assert results["relu_backward"].diagnosis == "missing_relu_mask"
    assert all(r.passed for n, r in results.items() if n != "relu_backward")
    answers = registry.regrade_questions(path)
    assert answers["mse_factor"][0] is True
    assert answers["disc_delta"][0] is False and "plain SUM" in answers["disc_delta"][1]
    assert sum(right is True for right, _ in answers.values()) == len(SOLUTIONS) - 1
