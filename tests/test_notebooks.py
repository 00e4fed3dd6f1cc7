"""The teaching notebooks: committed without outputs, and executed top to bottom in a fresh kernel.

The runner is nbclient, Jupyter's own notebook executor (what ``jupyter nbconvert --execute``
uses): each run starts a new IPython kernel on this interpreter, runs every cell in order and
fails on the first cell that raises. The environment sets ``AAE_NP_QUICK=1``, so notebooks 03
and 04 train with their small settings (see notebooks/README.md).

The exercise notebook runs twice: as shipped (every checker must say "not implemented" and the
notebook must still reach its last cell) and with each stub cell replaced by an import of the
reference solution and each diagnosis by the right one (every checker must pass; the diagnoses
rerun one epoch of each broken run with its fix, which must help). A cell appended by the test asserts each outcome.

The capstone (04) reads the student's functions from the saved notebook 02 beside it. It runs
twice too: beside notebook 02 as shipped, where it must stop at its first cell that needs them
with the message that says what to do (and no traceback), and in a folder beside a copy of 02
with the solutions put in, where it trains in quick mode and its own last cell asserts that the
student's AAE learns.

Outputs are never committed: ``python tests/test_notebooks.py --strip`` removes them.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import nbclient
import nbformat
import pytest

from conftest import REPO, SHARED_MNIST

NOTEBOOKS = REPO / "notebooks"
EXPECTED = ("01_derivation.ipynb", "02_gradient_check_exercises.ipynb", "03_train_mnist.ipynb",
            "04_capstone_train_your_own.ipynb")
EXERCISES_NB = NOTEBOOKS / "02_gradient_check_exercises.ipynb"
CAPSTONE_NB = NOTEBOOKS / "04_capstone_train_your_own.ipynb"
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
def test_the_notebooks_are_there():
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


def execute(nb, record_property, folder: Path = NOTEBOOKS) -> None:
    """Run every cell in a new kernel, in ``folder``; raises on the first error."""
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name=KERNEL,
                                     resources={"metadata": {"path": str(folder)}})
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


def skip_without_mnist() -> None:
    from aae_np.data import DataError, resolve_data_dir

    try:
        resolve_data_dir(download_ok=False, progress=False)
    except DataError as err:
        pytest.skip(f"MNIST not found and tests do not download: {err}")


def test_train_notebook_runs_with_quick_settings(kernel_env, record_property):
    skip_without_mnist()
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


def with_solutions(nb):
    """Notebook 02 with each stub cell importing its reference solution and each question answered."""
    for cell in nb.cells:
        if "exercise-stub" in cell.metadata.get("tags", []):
            cell.source = f"from aae_np.teach.solutions import {cell.metadata['exercise']}"
        if "question-stub" in cell.metadata.get("tags", []):
            name = cell.metadata["question"]
            cell.source = (f"from aae_np.teach.questions import SOLUTIONS\n"
                           f"questions.check({name!r}, SOLUTIONS[{name!r}])")
        if "diagnosis-stub" in cell.metadata.get("tags", []):
            run = cell.metadata["diagnosis"]
            cell.source = f"assert diagnose.check({run!r}, *diagnose.SOLUTIONS[{run!r}])"
    return nb


@pytest.mark.parametrize("variant", ["as shipped", "with solutions"])
def test_exercise_notebook_runs(variant, kernel_env, record_property):
    nb = nbformat.read(EXERCISES_NB, as_version=4)
    if variant == "with solutions":
        with_solutions(nb)
    nb.cells.append(nbformat.v4.new_code_cell(ASSERT_SOLVED if variant == "with solutions" else ASSERT_STUBS))
    execute(nb, record_property)
    text = outputs_text(nb)
    from aae_np.teach.exercises import EXERCISES
    from aae_np.teach.questions import QUESTIONS

    expected = "PASS" if variant == "with solutions" else "not implemented yet"
    assert text.count(f": {expected}") == len(EXERCISES), text
    answered = "right. " if variant == "with solutions" else "not answered yet"
    assert sum(f"{q}: {answered}" in text for q in QUESTIONS) == len(QUESTIONS), text
    diagnosed = "cause right, fix right." if variant == "with solutions" else "not answered yet"
    assert all(f"run {run}: {diagnosed}" in text for run in "ABC"), text
    images = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert images == 3                                   # the three broken runs' curves


def test_capstone_trains_your_functions_with_quick_settings(kernel_env, record_property, tmp_path):
    """Beside a notebook 02 whose stubs import the reference solutions, the capstone trains the
    student's AAE and the package's; its last cell asserts held-out MSE below the mean image's."""
    skip_without_mnist()
    nbformat.write(with_solutions(nbformat.read(EXERCISES_NB, as_version=4)), tmp_path / EXERCISES_NB.name)
    nb = nbformat.read(CAPSTONE_NB, as_version=4)
    execute(nb, record_property, folder=tmp_path)
    text = outputs_text(nb)
    from aae_np.teach.capstone import NEEDED

    assert "quick settings" in text and f"{len(NEEDED)} of {len(NEEDED)} functions are yours" in text, text
    assert text.count(" PASS\n") == len(NEEDED) and "REFERENCE" not in text, text
    assert "the same initial weights as yours: True" in text and "your AAE learns: confirmed" in text, text
    mse = {who: float(re.search(rf"{who} +([0-9.]+)", text).group(1)) for who in ("your AAE", "the mean image")}
    assert mse["your AAE"] < mse["the mean image"], mse  # held-out, read back from the notebook's table
    images = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert images == 3                                   # curves, reconstructions, prior samples


def test_capstone_as_shipped_stops_with_a_clear_message(kernel_env, record_property):
    """Beside notebook 02 as shipped, the capstone stops at the cell that reads the student's
    functions: one message naming each function and what to do, no stack of frames."""
    nb = nbformat.read(CAPSTONE_NB, as_version=4)
    with pytest.raises(nbclient.exceptions.CellExecutionError):
        execute(nb, record_property)
    code = [c for c in nb.cells if c.cell_type == "code"]
    failed = [i for i, c in enumerate(code) if any(o.output_type == "error" for o in c.outputs)]
    assert len(failed) == 1 and "capstone.my_functions(" in code[failed[0]].source
    assert not any(c.outputs for c in code[failed[0] + 1:])            # nothing after it ran
    error = next(o for o in code[failed[0]].outputs if o.output_type == "error")
    shown = "\n".join(error.traceback)
    from aae_np.teach.capstone import NEEDED

    assert error.ename == "CapstoneNotReady"
    assert f"{len(NEEDED)} of the {len(NEEDED)} it needs are not ready" in shown, shown
    assert shown.count("not implemented yet") == len(NEEDED), shown
    assert "Ctrl+S" in shown and "FALL_BACK_TO_REFERENCE = True" in shown, shown
    assert "Traceback" not in shown and "File " not in shown and "---->" not in shown, shown


if __name__ == "__main__":
    if sys.argv[1:] != ["--strip"]:
        raise SystemExit("usage: python tests/test_notebooks.py --strip   (removes outputs from notebooks/*.ipynb)")
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        print(f"{'stripped' if strip(path) else 'already clean'}: {path.relative_to(REPO)}")
