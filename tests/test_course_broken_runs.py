"""Exercise 13, diagnose a broken run (aae_np/teach/diagnose.py, broken_runs.py): right and wrong
answers get the right verdict and hint; the rerun shows a right fix helps and a wrong one does not;
the recorded runs are committed, small, and show what they are meant to."""

import json

import nbformat
import numpy as np
import pytest

from aae_np.teach import broken_runs, diagnose, registry
from conftest import REPO

NB02 = REPO / "notebooks" / "02_gradient_check_exercises.ipynb"
RUNS = ("A", "B", "C")


def needs_mnist():
    from aae_np.data import DataError, resolve_data_dir

    try:
        resolve_data_dir(download_ok=False, progress=False)
    except DataError as err:
        pytest.skip(f"MNIST not found: {err}")


@pytest.mark.parametrize("run", RUNS)
def test_the_right_answer_is_right_and_each_wrong_half_is_named(run):
    cause, fix = diagnose.SOLUTIONS[run]
    assert diagnose.verdict(run, cause, fix) == (True, f"run {run}: cause right, fix right.")
    wrong_cause = next(c for c in diagnose.CAUSES if c != cause)
    right, message = diagnose.verdict(run, wrong_cause, fix)
    assert right is False and "cause wrong, fix right" in message and diagnose.LOOK[run] in message
    wrong_fix = next(f for f in diagnose.FIXES if f != fix)
    right, message = diagnose.verdict(run, cause, wrong_fix)
    assert right is False and "cause right, fix wrong" in message and diagnose.WHY_FIX[run] in message
    right, message = diagnose.verdict(run, wrong_cause, wrong_fix)
    assert right is False and "name the cause first" in message


def test_unanswered_unknown_and_not_a_name():
    assert diagnose.verdict("A", ..., ...)[0] is None
    right, message = diagnose.verdict("A", "lr too high", 3)
    assert right is False and "cause 'lr too high' is not one of" in message and "fix 3 is not one of" in message
    with pytest.raises(ValueError, match="no run 'D'"):
        diagnose.verdict("D", "overfitting", "smaller_batch")
    assert {f for _, f in diagnose.SOLUTIONS.values()} < set(diagnose.FIXES)      # a wrong fix exists for each
    assert {c for c, _ in diagnose.SOLUTIONS.values()} < set(diagnose.CAUSES)


@pytest.mark.parametrize("run,wrong", [("A", "smaller_batch"), ("B", "lower_lr_d"), ("C", "cluster_batchnorm")])
def test_the_rerun_shows_the_right_fix_helps_and_a_wrong_one_does_not(run, wrong, capsys):
    needs_mnist()
    _, fix = diagnose.SOLUTIONS[run]
    assert not diagnose.rerun(run, wrong)["helped"]
    assert diagnose.check(run, *diagnose.SOLUTIONS[run]) is True          # reruns the right fix
    out = capsys.readouterr().out
    assert "one epoch as recorded:" in out and f"one epoch with {fix}:" in out and "the fix helps." in out


def test_check_prints_the_hint_and_shows_a_wrong_fix_does_not_help(capsys):
    needs_mnist()
    assert diagnose.check("C", "too_few_epochs", "lower_lr_ae") is False
    out = capsys.readouterr().out
    assert diagnose.LOOK["C"] in out and "no better: this fix does not cure the run." in out
    assert diagnose.check("C", ..., ...) is None and "not answered yet" in capsys.readouterr().out


@pytest.mark.parametrize("run", RUNS)
def test_the_recorded_runs_are_committed_small_and_show_their_failure(run):
    png, path = (broken_runs.FOLDER / f"run_{run.lower()}.{ext}" for ext in ("png", "json"))
    assert png.stat().st_size < 100 * 1024
    h = json.loads(path.read_text())
    recon, acc, steps = np.array(h["batch"]["recon_loss"]), np.array(h["batch"]["d_accuracy"]), h["steps_per_epoch"]
    assert len(recon) == h["epochs"] * steps and h["diverged"] is None
    if run == "A":                                  # leaps by orders of magnitude, then sits at the mean image
        assert recon.max() > 100 * recon[0] and h["epoch"]["test_mse"][-1] > 0.95 * h["mean_image_mse"]
    if run == "B":
        assert max(h["epoch"]["clusters"]) <= 2
    if run == "C":
        assert acc[-steps:].mean() > 0.9


def test_a_recorded_run_is_what_the_script_trains():
    needs_mnist()
    h = json.loads((broken_runs.FOLDER / "run_c.json").read_text())
    fresh = broken_runs.train("C", epochs=1)
    steps = h["steps_per_epoch"]
    np.testing.assert_allclose(fresh["batch"]["d_loss"], h["batch"]["d_loss"][:steps], rtol=1e-3)


def test_the_saved_notebook_is_regraded_from_its_cells(tmp_path):
    assert all(right is None for right, _ in registry.regrade_diagnoses(NB02).values())
    nb = nbformat.read(NB02, as_version=4)
    sources = {"A": 'cause = "lr_too_high"\nfix = "lower_lr_ae"\nprint("run A: cause right, fix right.")',
               "B": 'cause = "overfitting"\nfix = "cluster_batchnorm"',
               "C": 'cause = diagnose.SOLUTIONS["C"][0]\nfix = "lower_lr_d"'}
    for cell in nb.cells:
        run = cell.metadata.get("diagnosis")
        if run:
            cell.source = sources[run]
    nbformat.write(nb, tmp_path / NB02.name)
    assert registry.diagnosis_answers(tmp_path / NB02.name) == {
        "A": ("lr_too_high", "lower_lr_ae"), "B": ("overfitting", "cluster_batchnorm"), "C": (None, "lower_lr_d")}
    got = registry.regrade_diagnoses(tmp_path / NB02.name)
    assert got["A"][0] is True and got["B"][0] is False and diagnose.LOOK["B"] in got["B"][1]
    assert got["C"][0] is False and "write the name as a string" in got["C"][1]


def test_the_grader_skips_the_rerun(monkeypatch, capsys):
    monkeypatch.setenv("AAE_NP_DIAGNOSE_RERUN", "0")
    monkeypatch.setattr(broken_runs, "train", lambda *a, **k: pytest.fail("no training under the grader"))
    assert diagnose.check("B", *diagnose.SOLUTIONS["B"]) is True
    assert "the rerun of one epoch is skipped" in capsys.readouterr().out
