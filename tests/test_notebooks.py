"""The teaching notebooks: committed without outputs, and executed top to bottom in a fresh kernel.

The runner is nbclient, Jupyter's own notebook executor (what ``jupyter nbconvert --execute``
uses): each run starts a new IPython kernel on this interpreter, runs every cell in order and
fails on the first cell that raises. The environment sets ``AAE_NP_QUICK=1``, so notebook 03
trains with its small settings (see notebooks/README.md).

The exercise notebook runs twice: as shipped (every checker must say "not implemented" and the
notebook must still reach its last cell) and with each stub cell replaced by an import of the
reference solution (every checker must pass). A cell appended by the test asserts each outcome.

Outputs are never committed: ``python tests/test_notebooks.py --strip`` removes them.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbclient
import nbformat
import pytest

from conftest import REPO, SHARED_MNIST

NOTEBOOKS = REPO / "notebooks"
EXPECTED = ("01_derivation.ipynb", "02_gradient_check_exercises.ipynb", "03_train_mnist.ipynb")
EXERCISES_NB = NOTEBOOKS / "02_gradient_check_exercises.ipynb"
KERNEL = "aae-np-tests"
STRIP_HOW = "run `.venv/bin/python tests/test_notebooks.py --strip` (or Jupyter's Clear All Outputs, then save)"


def strip(path: Path) -> bool:
    """Remove outputs, execution counts and run metadata from a notebook; True if it changed."""
    nb = nbformat.read(path, as_version=4)
    before = nbformat.writes(nb)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("widgets", None)
    after = nbformat.writes(nb)
    if after != before:
        path.write_text(after + "\n", encoding="utf-8")
    return after != before


# ----------------------------------------------------------------------------- committed form
def test_the_three_notebooks_are_there():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(EXPECTED)


def dirty_cells(nb) -> list[int]:
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
            and (c.outputs or c.execution_count is not None or "execution" in c.metadata)]


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_is_committed_without_outputs(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    assert not dirty_cells(nb), f"{name}: code cells {dirty_cells(nb)} carry outputs or run data; {STRIP_HOW}"
    assert "widgets" not in nb.metadata, f"{name}: widget state in the metadata; {STRIP_HOW}"


def test_an_executed_notebook_is_caught_and_strip_cleans_it(tmp_path):
    path = tmp_path / "run.ipynb"
    nb = nbformat.read(EXERCISES_NB, as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code")
    cell.execution_count = 3
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hello\n")]
    nbformat.write(nb, path)
    assert dirty_cells(nbformat.read(path, as_version=4)) == [nb.cells.index(cell)]
    assert strip(path) and not strip(path)
    assert not dirty_cells(nbformat.read(path, as_version=4))


def test_every_question_is_asked_once():
    nb = nbformat.read(EXERCISES_NB, as_version=4)
    from aae_np.teach.questions import QUESTIONS

    asked = [c.metadata["question"] for c in nb.cells if "question-stub" in c.metadata.get("tags", [])]
    assert sorted(asked) == sorted(QUESTIONS)


def test_exercise_stubs_are_marked_and_raise():
    nb = nbformat.read(EXERCISES_NB, as_version=4)
    stubs = [c for c in nb.cells if "exercise-stub" in c.metadata.get("tags", [])]
    from aae_np.teach.exercises import EXERCISES

    assert [c.metadata["exercise"] for c in stubs] == list(EXERCISES)
    for cell in stubs:
        name = cell.metadata["exercise"]
        assert f"def {name}(" in cell.source and "raise NotImplementedError" in cell.source
        assert "YOUR CODE" in cell.source
        assert any(f'exercises.check("{name}", {name})' in c.source for c in nb.cells)


# ----------------------------------------------------------------------------- execution
@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    """A kernelspec for this interpreter (so a user's own "python3" kernel cannot be picked up),
    AAE_NP_QUICK=1, and AAE_NP_DATA pointing at the shared MNIST copy when nothing else is set."""
    from ipykernel.kernelspec import write_kernel_spec

    jupyter = tmp_path_factory.mktemp("jupyter")
    write_kernel_spec(jupyter / "kernels" / KERNEL, overrides={"display_name": KERNEL})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(jupyter))
        mp.setenv("AAE_NP_QUICK", "1")
        if not os.environ.get("AAE_NP_DATA") and (SHARED_MNIST / "train-images-idx3-ubyte.gz").exists():
            mp.setenv("AAE_NP_DATA", str(SHARED_MNIST))
        yield


def execute(nb, record_property) -> None:
    """Run every cell in a new kernel, in the notebooks folder; raises on the first error."""
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name=KERNEL,
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    start = time.perf_counter()
    client.execute()
    record_property("seconds", round(time.perf_counter() - start, 1))


def outputs_text(nb) -> str:
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_derivation_notebook_runs(kernel_env, record_property):
    nb = nbformat.read(NOTEBOOKS / "01_derivation.ipynb", as_version=4)
    execute(nb, record_property)
    text = outputs_text(nb)
    assert "WRONG" in text and "=> PASS" in text and "FAIL" not in text


def test_train_notebook_runs_with_quick_settings(kernel_env, record_property):
    from aae_np.data import DataError, resolve_data_dir

    try:
        resolve_data_dir(download_ok=False, progress=False)
    except DataError as err:
        pytest.skip(f"MNIST not found and tests do not download: {err}")
    nb = nbformat.read(NOTEBOOKS / "03_train_mnist.ipynb", as_version=4)
    execute(nb, record_property)
    text = outputs_text(nb)
    assert "quick settings" in text and "joint fails, phased learns: confirmed" in text
    images = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert images >= 9                                   # curves, recon, samples, latent, path, 2x2 comparison


ASSERT_STUBS = """
_results = exercises.summary()
assert list(_results) == list(exercises.EXERCISES), list(_results)
assert all(r.status == "not implemented" for r in _results.values()), _results
"""
ASSERT_SOLVED = """
_results = exercises.summary()
assert list(_results) == list(exercises.EXERCISES), list(_results)
assert all(r.passed for r in _results.values()), {n: r.message for n, r in _results.items()}
"""


@pytest.mark.parametrize("variant", ["as shipped", "with solutions"])
def test_exercise_notebook_runs(variant, kernel_env, record_property):
    nb = nbformat.read(EXERCISES_NB, as_version=4)
    if variant == "with solutions":
        for cell in nb.cells:
            if "exercise-stub" in cell.metadata.get("tags", []):
                cell.source = f"from aae_np.teach.solutions import {cell.metadata['exercise']}"
            if "question-stub" in cell.metadata.get("tags", []):
                name = cell.metadata["question"]
                cell.source = (f"from aae_np.teach.questions import SOLUTIONS\n"
                               f"questions.check({name!r}, SOLUTIONS[{name!r}])")
    nb.cells.append(nbformat.v4.new_code_cell(ASSERT_SOLVED if variant == "with solutions" else ASSERT_STUBS))
    execute(nb, record_property)
    text = outputs_text(nb)
    from aae_np.teach.exercises import EXERCISES
    from aae_np.teach.questions import QUESTIONS

    expected = "PASS" if variant == "with solutions" else "not implemented yet"
    assert text.count(f": {expected}") == len(EXERCISES), text
    answered = "right. " if variant == "with solutions" else "not answered yet"
    assert sum(f"{q}: {answered}" in text for q in QUESTIONS) == len(QUESTIONS), text


if __name__ == "__main__":
    if sys.argv[1:] != ["--strip"]:
        raise SystemExit("usage: python tests/test_notebooks.py --strip   (removes outputs from notebooks/*.ipynb)")
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        print(f"{'stripped' if strip(path) else 'already clean'}: {path.relative_to(REPO)}")
