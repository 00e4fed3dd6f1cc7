"""The capstone's plumbing (aae_np/teach/capstone.py): the student's functions are read from the
saved notebook 02, each is graded, anything missing or failing stops the capstone with a message
that names it (the reference stands in only on request), and the batches are the trainer's."""

from pathlib import Path

import nbformat
import numpy as np
import pytest

from aae_np.models.aae import AAE
from aae_np.teach import capstone, solutions
from aae_np.teach.capstone import NEEDED, CapstoneNotReady, batches, my_functions
from aae_np.teach.exercises import EXERCISES
from aae_np.train.trainer import TrainConfig, Trainer

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
EXERCISES_NB = NOTEBOOKS / "02_gradient_check_exercises.ipynb"
CAPSTONE_NB = NOTEBOOKS / "04_capstone_train_your_own.ipynb"


def notebook_02(tmp_path, sources=None, drop=()):
    """A copy of notebook 02: every stub imports its reference solution unless ``sources`` gives
    the cell's code (None: left as shipped); the cells named in ``drop`` are removed."""
    nb = nbformat.read(EXERCISES_NB, as_version=4)
    sources = sources or {}
    kept = []
    for cell in nb.cells:
        name = cell.metadata.get("exercise")
        if name in drop:
            continue
        if "exercise-stub" in cell.metadata.get("tags", []):
            if name in sources:
                cell.source = sources[name] if sources[name] is not None else cell.source
            else:
                cell.source = f"from aae_np.teach.solutions import {name}"
        kept.append(cell)
    nb.cells = kept
    path = tmp_path / EXERCISES_NB.name
    nbformat.write(nb, path)
    return path


def not_ready(path, **kwargs) -> str:
    with pytest.raises(CapstoneNotReady) as err:
        my_functions(path, **kwargs)
    return str(err.value)


def test_every_needed_function_is_an_exercise_and_the_capstone_takes_each():
    assert set(NEEDED) <= set(EXERCISES)
    source = "".join(c.source for c in nbformat.read(CAPSTONE_NB, as_version=4).cells)
    for name in NEEDED:
        assert f"mine.{name}" in source, name


def test_with_the_solutions_every_function_is_theirs(tmp_path, capsys):
    mine = my_functions(notebook_02(tmp_path))
    assert mine.origin == {name: "yours" for name in NEEDED}
    assert all(getattr(mine, name) is getattr(solutions, name) for name in NEEDED)   # what the cells imported
    assert f"{len(NEEDED)} of {len(NEEDED)} functions are yours" in capsys.readouterr().out


def test_a_function_written_in_the_cell_is_the_one_handed_over(tmp_path):
    own = "def mse_grad(pred, target):\n    return 2 * (pred - target) / pred.size\n"
    mine = my_functions(notebook_02(tmp_path, {"mse_grad": own}))
    assert mine.origin["mse_grad"] == "yours" and mine.mse_grad is not solutions.mse_grad
    assert mine.mse_grad.__code__.co_filename == "<notebook 02: exercise mse_grad>"
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(mine.mse_grad(x, 0 * x), x / 3)


def test_notebook_02_as_shipped_gives_the_clear_message():
    message = not_ready(EXERCISES_NB)
    assert f"{len(NEEDED)} of the {len(NEEDED)} it needs are not ready" in message
    assert message.count("not implemented yet") == len(NEEDED)
    assert "Ctrl+S" in message and "FALL_BACK_TO_REFERENCE = True" in message
    assert CapstoneNotReady(message)._render_traceback_() == message.splitlines()   # what Jupyter shows


def test_missing_failing_and_broken_functions_are_each_named(tmp_path):
    path = notebook_02(tmp_path, {
        "relu_backward": "def relu_backward(x, dout):\n    return dout\n",                   # no mask
        "sigmoid_backward": "def sigmoid_backward(x, dout)\n    return dout\n",             # syntax
        "rel_error": "def rel_error(a, b):\n    return float(np.max(np.abs(a - b) / undefined))\n",
        "adam_update": None}, drop=("dense_backward",))
    message = not_ready(path)
    assert "5 of the 10 it needs are not ready" in message
    assert "relu_backward        FAIL" in message and "no ReLU mask" in message
    assert "dense_backward       MISSING" in message and "no cell tagged 'exercise-stub'" in message
    assert "sigmoid_backward     ERROR" in message and "SyntaxError" in message
    assert "rel_error            ERROR" in message and "NameError" in message
    assert "at the line `return float(np.max(np.abs(a - b) / undefined))`" in message   # the student's line
    assert "adam_update          not implemented yet" in message
    for fine in ("numerical_gradient", "mse_grad", "bce_with_logits", "discriminator_grad", "generator_grad"):
        assert fine not in message


def test_the_reference_stands_in_only_when_asked(tmp_path, capsys):
    path = notebook_02(tmp_path, {"relu_backward": "def relu_backward(x, dout):\n    return dout\n"})
    assert "relu_backward        FAIL" in not_ready(path)
    mine = my_functions(path, fall_back_to_reference=True)
    assert mine.relu_backward is solutions.relu_backward and mine.origin["relu_backward"] == "reference"
    assert all(mine.origin[n] == "yours" for n in NEEDED if n != "relu_backward")
    out = capsys.readouterr().out
    assert "the REFERENCE relu_backward stands in for yours (FAIL)" in out
    assert f"{len(NEEDED) - 1} of {len(NEEDED)} functions are yours." in out


def test_a_notebook_that_is_not_there_says_where_it_looked(tmp_path):
    message = not_ready(tmp_path / "nowhere.ipynb")
    assert "Notebook 02 is not at" in message and "EXERCISES_NOTEBOOK" in message
    (tmp_path / "broken.ipynb").write_text("{not json")
    assert "could not be read as a notebook" in not_ready(tmp_path / "broken.ipynb")


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="not exercises of notebook 02"):
        my_functions(EXERCISES_NB, names=("dense_backward", "conv_backward"))


def test_batches_are_the_trainers_batches_and_prior_samples(monkeypatch):
    """Same seed, same draws: the rows and the discriminator's z_prior of every step, in order,
    over two epochs whose last batch is short."""
    x = np.random.default_rng(9).uniform(0, 1, (10, 6)).astype(np.float32)
    model = AAE(input_dim=6, latent_dim=2, encoder_hidden=(4,), decoder_hidden=(4,), discriminator_hidden=(4,),
                seed=0, backend="numpy")
    seen, real = [], model.phase_grads

    def record(phase, xb, **inputs):
        if phase == "discriminator":
            seen.append((xb.copy(), inputs["z_prior"].copy()))
        return real(phase, xb, **inputs)

    monkeypatch.setattr(model, "phase_grads", record)
    Trainer(model, TrainConfig(epochs=2, batch_size=4, seed=3), x, progress=False).fit()
    rng = np.random.default_rng(3)
    ours = [pair for _ in range(2) for pair in batches(x, 4, rng, latent_dim=2)]
    assert [len(xb) for xb, _ in ours] == [4, 4, 2, 4, 4, 2]
    assert len(ours) == len(seen)
    for (xb, zb), (xt, zt) in zip(ours, seen):
        np.testing.assert_array_equal(xb, xt)
        np.testing.assert_array_equal(zb, zt)
        assert zb.dtype == np.float32


def test_batches_refuse_bad_input():
    with pytest.raises(ValueError, match="batch_size"):
        next(batches(np.zeros((4, 3)), 0, np.random.default_rng(0), 2))
    assert capstone.STUB_TAG == "exercise-stub"


def _with_cell_after(path, after: str, source: str):
    """Notebook ``path`` with a new untagged code cell ``source`` right after exercise ``after``'s cell."""
    nb = nbformat.read(path, as_version=4)
    i = next(k for k, c in enumerate(nb.cells) if c.metadata.get("exercise") == after)
    nb.cells.insert(i + 1, nbformat.v4.new_code_cell(source))
    nbformat.write(nb, path)
    return path


def test_a_helper_in_a_cell_of_its_own_works(tmp_path):
    """Issue 29: a helper the student writes in a cell of its own reaches the capstone."""
    own = "def relu_backward(x, dout):\n    return dout * relu_mask(x)\n"
    path = _with_cell_after(notebook_02(tmp_path, {"relu_backward": own}), "sigmoid_backward",
                            "SLOPE = 1.0\n\ndef relu_mask(x):\n    return (x > 0) * SLOPE\n\n"
                            "print('a statement that is not run')\nresult = exercises.check('x', None)\n")
    mine = my_functions(path)
    assert mine.origin["relu_backward"] == "yours" and mine.relu_backward is not solutions.relu_backward
    np.testing.assert_array_equal(mine.relu_backward(np.array([-1.0, 2.0]), np.ones(2)), [0.0, 1.0])


def test_a_helper_cell_cannot_replace_an_exercise(tmp_path):
    path = _with_cell_after(notebook_02(tmp_path), "mse_grad",
                            "from aae_np.teach.solutions import relu_backward as relu_backward\n"
                            "def mse_grad(pred, target):\n    return pred - target\n")
    mine = my_functions(path)
    assert mine.mse_grad is solutions.mse_grad                 # from its exercise cell, not the later copy
    helpers = "".join(capstone.helper_cells(path))
    assert "mse_grad" not in helpers and "relu_backward" not in helpers


def test_a_name_the_capstone_cannot_see_gets_advice_that_fits(tmp_path):
    own = "def relu_backward(x, dout):\n    return dout * made_in_a_loop(x)\n"
    path = _with_cell_after(notebook_02(tmp_path, {"relu_backward": own}), "sigmoid_backward",
                            "for _ in range(1):\n    made_in_a_loop = lambda x: x > 0\n")
    message = not_ready(path)
    assert "relu_backward        ERROR" in message and "NameError" in message
    assert "SAVED notebook 02" in message and "top-level imports, defs, classes and constants" in message
