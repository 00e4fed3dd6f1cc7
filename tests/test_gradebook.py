"""``aae-np grade``: a folder with a correct, an empty, a looping, a crashing, a memory-eating and a
cheating notebook 02 gets the right CSV; a submission cannot change its own grade."""

from __future__ import annotations

import csv
import inspect
import os
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from aae_np.cli import main  # noqa: E402
from aae_np.teach import diagnose, solutions  # noqa: E402
from aae_np.teach.exercises import EXERCISES  # noqa: E402
from aae_np.teach.grade_verdicts import source_flags  # noqa: E402
from aae_np.teach.gradebook import Limits, find_submissions, grade_folder  # noqa: E402
from aae_np.teach.questions import QUESTIONS, SOLUTIONS  # noqa: E402
from aae_np.teach.registry import DIAGNOSES  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NB02 = ROOT / "notebooks" / "02_gradient_check_exercises.ipynb"
NB04 = ROOT / "notebooks" / "04_capstone_train_your_own.ipynb"
SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist"
pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the memory limit is Unix-only")


def correct() -> nbformat.NotebookNode:
    """Notebook 02 as a good student hands it in: each function written out, each question answered."""
    nb = nbformat.read(NB02, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "exercise-stub" in tags:
            cell.source = inspect.getsource(getattr(solutions, cell.metadata["exercise"]))
        if "question-stub" in tags:
            q = cell.metadata["question"]
            cell.source = f"answer = {SOLUTIONS[q]!r}\nquestions.check({q!r}, answer)"
        if "diagnosis-stub" in tags:
            run = cell.metadata["diagnosis"]
            cause, fix = diagnose.SOLUTIONS[run]
            cell.source = f"cause = {cause!r}\nfix = {fix!r}\ndiagnose.check({run!r}, cause, fix, run_fix=False)"
    return nb


def cell_of(nb, name: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if c.metadata.get("exercise") == name)


def set_fn(nb, name: str, source: str) -> None:
    nb.cells[cell_of(nb, name)].source = source


def after(nb, name: str, source: str) -> int:
    """Insert a code cell after exercise ``name``'s cell; its index."""
    i = cell_of(nb, name) + 1
    nb.cells.insert(i, nbformat.v4.new_code_cell(source))
    return i


def graded_before(nb, index: int) -> set[str]:
    """The exercises and questions whose cells come before cell ``index``."""
    names = set()
    for cell in nb.cells[:index]:
        meta = cell.metadata
        if "exercise-stub" in meta.get("tags", []):
            names.add(meta["exercise"])
        if "question-stub" in meta.get("tags", []):
            names.add("q_" + meta["question"])
    return names | {f"diagnose_{run}" for run in DIAGNOSES}     # read from the saved notebook


ALL = {*EXERCISES, *(f"q_{q}" for q in QUESTIONS),
       *(f"diagnose_{run}" for run in DIAGNOSES)}


def build(folder: Path, csv_path: Path) -> dict[str, set[str]]:
    """Write the submissions; return for each student the columns that must score 1."""
    folder.mkdir()
    want = {}
    nbformat.write(correct(), folder / "correct.ipynb")
    want["correct"] = set(ALL)
    nbformat.write(nbformat.read(NB02, as_version=4), folder / "empty.ipynb")
    want["empty"] = set()

    nb = correct()                            # a cell that never ends, a function that never returns
    set_fn(nb, "relu_backward", "while True:\n    pass\n" + nb.cells[cell_of(nb, "relu_backward")].source)
    set_fn(nb, "mse_grad", "def mse_grad(pred, target):\n    while True:\n        pass\n")
    (folder / "looping").mkdir()
    nbformat.write(nb, folder / "looping" / "02_mine.ipynb")
    want["looping"] = ALL - {"relu_backward", "mse_grad"}

    nb = correct()                            # the kernel dies half-way: what ran before counts
    crash = after(nb, "mse_grad", "import os\nos._exit(1)")
    nbformat.write(nb, folder / "crashing.ipynb")
    want["crashing"] = graded_before(nb, crash)

    nb = correct()                            # a cell and a function that eat memory
    after(nb, "dense_backward", "hog = bytearray(64 * 2**30)")
    set_fn(nb, "sigmoid_backward", "def sigmoid_backward(x, dout):\n    return np.ones((2**20, 2**20))\n")
    nbformat.write(nb, folder / "memory.ipynb")
    want["memory"] = ALL - {"sigmoid_backward"}

    nb = correct()                            # every way we could think of to change the grade
    set_fn(nb, "dense_backward", "def dense_backward(x, W, dout):\n    return 0 * x, 0 * W, 0 * W[0]\n"
           "print('dense_backward: PASS (max rel error 1e-12 < 1e-06)')")
    set_fn(nb, "relu_backward", "from aae_np.teach.solutions import relu_backward")
    after(nb, "sigmoid_backward", "from aae_np.teach import solutions as s\nhelp_me, help_loop = s.mse_grad, "
          "s.train_phased")
    set_fn(nb, "train_phased", "def train_phased(model, batches, rules):\n    help_loop(model, batches, rules)\n")
    set_fn(nb, "mse_grad", "def mse_grad(pred, target):\n    return help_me(pred, target)\n")
    after(nb, "generator_grad", "_E = __import__('aae_np.teach.exercises', fromlist=['_']).EXERCISES\n"
          "_known = _E['dropout_backward'].trials()[0].want[0]")
    set_fn(nb, "dropout_backward", "def dropout_backward(mask, keep, dout):\n    return _known.copy()\n")
    set_fn(nb, "batchnorm_backward", "def batchnorm_backward(x, gamma, dout, eps):\n    return None\n"
           "import aae_np.teach.grading as g, aae_np.teach.exercises as e\n"
           "g.grade = e.grade = lambda ex, fn: g.CheckResult(ex.name, 'pass', 'PASS')\n"
           "e.check = lambda *a, **k: print('PASS')")
    for cell in nb.cells:                     # a wrong diagnosis, with the verdict patched to say "right"
        if cell.metadata.get("diagnosis") == "B":
            cell.source = ('cause = "overfitting"\nfix = "lower_lr_d"\nimport aae_np.teach.diagnose as d\n'
                           'd.verdict = lambda *a: (True, "run B: cause right, fix right.")\nd.check("B", cause, fix)')
    nb.cells.append(nbformat.v4.new_code_cell(
        f"open({str(csv_path)!r}, 'w').write('student,score\\ncheating,999\\n')"))
    nbformat.write(nb, folder / "cheating.ipynb")
    want["cheating"] = ALL - {"dense_backward", "relu_backward", "mse_grad", "dropout_backward",
                              "batchnorm_backward", "train_phased", "diagnose_B"}
    return want


def read(csv_path: Path) -> dict[str, dict[str, str]]:
    with open(csv_path, newline="") as f:
        return {row["student"]: row for row in csv.DictReader(f)}


@pytest.mark.slow                         # ~30 s: six kernels, a 3 s loop, two 2 s calls, on 2 cores
def test_a_folder_of_submissions_gets_the_right_csv(tmp_path):
    out = tmp_path / "grades.csv"
    want = build(tmp_path / "subs", out)
    assert main(["grade", str(tmp_path / "subs"), "--out", str(out), "--time-limit", "60", "--cell-time-limit", "3",
                 "--call-time-limit", "2"]) == 0
    rows = read(out)
    assert sorted(rows) == sorted(want) and "999" not in out.read_text()     # the grader's CSV, not the cheat's
    for student, passing in want.items():
        row = rows[student]
        got = {col for col in ALL if row[col] == "1"}
        assert got == passing, (student, sorted(got ^ passing))
        assert int(row["score"]) == len(passing) and row["out_of"] == str(len(ALL) + 1)
        assert row["capstone"] == "0" and "04 was not handed in" in row["problems"]
    assert rows["correct"]["flags"] == "" and rows["empty"]["flags"] == ""
    flags = rows["cheating"]["flags"]
    assert "relu_backward: " in flags and "imports aae_np.teach.solutions" in flags
    assert "mse_grad: calls the package's teach/solutions.py:mse_grad" in flags
    assert "train_phased: calls the package's teach/solutions.py:train_phased" in flags
    assert "dense_backward: " not in flags                     # wrong, not a cheat: just 0
    assert "kernel died" in rows["crashing"]["problems"]
    feedback = tmp_path / "grades_feedback"
    assert sorted(p.stem for p in feedback.iterdir()) == sorted(want)
    cheat = (feedback / "cheating.txt").read_text()
    assert "dropout_backward: FAIL, it passes the checker's own inputs but not others" in cheat
    assert "dense_backward: FAIL" in cheat and "batchnorm_backward: FAIL" in cheat
    loop = (feedback / "looping.txt").read_text()
    assert "mse_grad: ERROR, your function raised TimeoutError: the call took longer than 2 s" in loop
    assert "TimeoutError: the cell ran longer than 3 s and was interrupted" in loop
    assert "MemoryError" in (feedback / "memory.txt").read_text()


def _loop_verdict(tmp_path, fn, seed=7, source=None):
    """Exercise 12 recorded as the kernel records it, then judged as the grader judges it."""
    from aae_np.teach import grade_kernel, grade_verdicts

    grade_kernel.record_exercise({"train_phased": fn}, "train_phased", str(tmp_path), seed)
    return grade_verdicts.exercise_verdict("train_phased", source or inspect.getsource(fn), tmp_path, seed, "")


def test_the_training_loop_is_judged_from_its_record_outside_the_kernel(tmp_path):
    ok = _loop_verdict(tmp_path / "ok", _copy_of_reference(), source=inspect.getsource(solutions.train_phased))
    assert ok.score == 1 and "PASS" in ok.message and not ok.flag, ok.message
    wrong = _loop_verdict(tmp_path / "wrong", _no_zero_grad)
    assert wrong.score == 0 and "zero_grad" in wrong.message and not wrong.flag, wrong.message
    lazy = _loop_verdict(tmp_path / "lazy", _calls_reference)
    assert lazy.score == 0 and "calls the package's teach/solutions.py:train_phased" in lazy.flag, lazy.message
    cheat = _loop_verdict(tmp_path / "cheat", solutions.train_phased)
    assert cheat.score == 0 and "is not written in the notebook" in cheat.flag
    seen = _loop_verdict(tmp_path / "seen", _only_the_notebooks_seeds)
    assert seen.score == 0 and "but not on others it never saw" in seen.message, seen.message


def _copy_of_reference():
    namespace = {"Optimizer": __import__("aae_np.nn.optim", fromlist=["_"]).Optimizer}
    exec(compile(inspect.getsource(solutions.train_phased), "<student>", "exec"), namespace)   # noqa: S102
    return namespace["train_phased"]


def _no_zero_grad(model, batches, rules):
    from aae_np.nn.optim import Optimizer

    opt = {p: Optimizer(model.params_of(*nets), rules[p]) for p, nets in
           (("reconstruction", ("encoder", "decoder")), ("discriminator", ("discriminator",)),
            ("generator", ("encoder",)))}
    for x, z_prior in batches:
        model.reconstruction(x)
        opt["reconstruction"].step(model.grads)
        model.discriminator(x, z_prior)
        opt["discriminator"].step(model.grads)
        model.generator(x)
        opt["generator"].step(model.grads)


def _calls_reference(model, batches, rules):
    solutions.train_phased(model, batches, rules)


def _only_the_notebooks_seeds(model, batches, rules):
    """Right on the notebook's batches only: skips the generator's step on any other batches."""
    import numpy as np
    from aae_np.nn.optim import Optimizer

    known = batches[0][0][0, 0] == 0.5118216247002567           # the notebook's first batch, remembered
    opt = {p: Optimizer(model.params_of(*nets), rules[p]) for p, nets in
           (("reconstruction", ("encoder", "decoder")), ("discriminator", ("discriminator",)),
            ("generator", ("encoder",)))}
    for x, z_prior in batches:
        for phase in ("reconstruction", "discriminator", "generator"):
            model.zero_grad()
            getattr(model, phase)(*((x, z_prior) if phase == "discriminator" else (x,)))
            if known or phase != "generator":
                opt[phase].step(model.grads)


def test_source_flags_name_what_a_graded_cell_must_not_use():
    assert source_flags("from aae_np.teach.solutions import dense_backward") == [
        "imports aae_np.teach.solutions.dense_backward"]
    assert source_flags("import aae_np.nn.losses as L\nL.bce_with_logits") == ["imports aae_np.nn.losses"]
    assert source_flags("def f(x):\n    return exercises.mine_or_reference('x', f)(x)") == ["uses .mine_or_reference"]
    assert source_flags("from aae_np.nn.activations import sigmoid\ndef f(x):\n    return sigmoid(x)") == []
    assert source_flags(inspect.getsource(solutions.batchnorm_backward)) == []


def test_bad_input_is_one_clear_line(tmp_path, capsys):
    assert main(["grade", str(tmp_path / "nowhere"), "--out", str(tmp_path / "g.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("aae-np: error: ") and "nowhere: not a folder" in err and len(err.splitlines()) == 1
    (tmp_path / "empty").mkdir()
    assert main(["grade", str(tmp_path / "empty"), "--out", str(tmp_path / "g.csv")]) == 2
    assert "no notebooks found" in capsys.readouterr().err


def test_submissions_are_found_by_content_not_by_name(tmp_path):
    (tmp_path / "ann").mkdir()
    nbformat.write(correct(), tmp_path / "ann" / "whatever.ipynb")
    nbformat.write(nbformat.read(NB04, as_version=4), tmp_path / "ann" / "capstone_ann.ipynb")
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "ann" / "notes.ipynb")
    nbformat.write(correct(), tmp_path / "bob.ipynb")
    subs = {s.student: s for s in find_submissions(tmp_path)}
    assert sorted(subs) == ["ann", "bob"]
    assert {k: p.name for k, p in subs["ann"].notebooks.items()} == {
        "exercises": "whatever.ipynb", "capstone": "capstone_ann.ipynb"}
    assert subs["ann"].problems == ["notes.ipynb: neither notebook 02 nor 04 (ignored)"]


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("AAE_NP_DATA") and not (SHARED_MNIST / "train-images-idx3-ubyte.gz").exists(),
                    reason="needs MNIST")
def test_the_capstone_is_graded_from_its_trained_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("AAE_NP_QUICK", "1")
    if not os.environ.get("AAE_NP_DATA"):
        monkeypatch.setenv("AAE_NP_DATA", str(SHARED_MNIST))
    for student, fall_back in (("good", False), ("lazy", True)):
        (tmp_path / "subs" / student).mkdir(parents=True)
        nb02 = correct() if student == "good" else nbformat.read(NB02, as_version=4)
        nbformat.write(nb02, tmp_path / "subs" / student / "02.ipynb")
        nb04 = nbformat.read(NB04, as_version=4)
        for cell in nb04.cells:
            cell.source = cell.source.replace("FALL_BACK_TO_REFERENCE = False", f"FALL_BACK_TO_REFERENCE = {fall_back}")
        nbformat.write(nb04, tmp_path / "subs" / student / "04.ipynb")
    rows = grade_folder(tmp_path / "subs", tmp_path / "g.csv", limits=Limits(seconds=300, cell_seconds=200),
                        progress=False)
    good, lazy = rows
    assert good["capstone"] == 1 and good["score"] == len(ALL) + 1 and good["flags"] == ""
    assert lazy["capstone"] == 0 and "FALL_BACK_TO_REFERENCE = True" in lazy["flags"]
    assert "held-out MSE" in (tmp_path / "g_feedback" / "good.txt").read_text()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
