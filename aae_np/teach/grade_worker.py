"""One submission, in its own process: ``python -m aae_np.teach.grade_worker FOLDER SEED DEADLINE CELL CALL``.

``aae-np grade`` starts one of these per submission, in the submission's own temporary
``FOLDER`` (which holds its notebooks under their course names), under a memory limit it sets
before this starts (``resource.RLIMIT_AS``, inherited by the kernel), and kills it if it outlives
its time limit. It runs each notebook with nbclient in a fresh kernel, cell by cell:

* ``allow_errors``: a cell that raises does not stop the cells after it;
* a cell that runs longer than ``CELL`` seconds (or than the time left of ``DEADLINE``) is
  interrupted, marked as an error, and the next cell runs;
* a kernel that dies (a crash, ``os._exit``, the memory limit) ends that notebook;
* after each exercise cell and each question cell, and once more at the end, a hidden cell calls
  ``aae_np.teach.grade_kernel`` to record what the student's code produced (``harvest/``), so
  whatever ran before a crash, a loop or the deadline is kept. The records of the end win.

It writes ``log.json`` (each cell's error, timeouts, a dead kernel) and decides nothing: every
verdict is made by the grader, in its own process, from ``harvest/``.
"""

from __future__ import annotations

import ast
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

EXERCISES_NB, CAPSTONE_NB = "02_gradient_check_exercises.ipynb", "04_capstone_train_your_own.ipynb"
KERNEL = "aae-np-grade"


def question_expression(source: str, name: str) -> str:
    """The source of the answer a question cell passes to ``questions.check(name, ...)`` ("answer" if none)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return "answer"
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "check"
                and len(node.args) == 2 and isinstance(node.args[0], ast.Constant) and node.args[0].value == name):
            return ast.get_source_segment(source, node.args[1]) or "answer"
    return "answer"


def _hidden_calls(cell: Any, seed: int, call_limit: float) -> list[str]:
    meta = cell.get("metadata", {})
    tags = meta.get("tags", [])
    call = "__import__('aae_np.teach.grade_kernel', fromlist=['_'])."
    if "exercise-stub" in tags and meta.get("exercise"):
        return [f"{call}record_exercise(globals(), {meta['exercise']!r}, 'harvest', {seed}, {call_limit})"]
    if "question-stub" in tags and meta.get("question"):
        expr = question_expression(cell.source, meta["question"])
        return [f"{call}record_question(globals(), {meta['question']!r}, {expr!r}, 'harvest')"]
    return []


def run_notebook(path: Path, seed: int, deadline: float, cell_limit: float, call_limit: float,
                 log: dict[str, Any]) -> None:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    events = log.setdefault(path.name, [])
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as err:                                        # noqa: BLE001 - a broken file
        events.append({"problem": f"could not be read as a notebook ({type(err).__name__}: {err})"})
        return
    client = NotebookClient(nb, timeout=int(cell_limit), kernel_name=KERNEL, allow_errors=True,
                            interrupt_on_timeout=True, resources={"metadata": {"path": str(path.parent)}},
                            error_on_timeout={"ename": "TimeoutError",
                                              "evalue": "the cell ran past its time limit and was interrupted"})
    final = [f"__import__('aae_np.teach.grade_kernel', fromlist=['_']).record_capstone(globals(), 'harvest')"] \
        if path.name == CAPSTONE_NB else \
        [c for cell in nb.cells if "exercise-stub" in cell.get("metadata", {}).get("tags", [])
         for c in _hidden_calls(cell, seed, call_limit)]        # the functions as the notebook left them
    with client.setup_kernel():
        (path.parent / "kernels.txt").open("a").write(f"{getattr(client.km.provisioner, 'pid', '')}\n")

        def run(cell: Any, index: int) -> bool:
            left = deadline - time.monotonic()
            if left < 1:
                events.append({"cell": index, "problem": "the submission's time limit ran out before this cell"})
                return False
            client.timeout = max(1, int(min(cell_limit, left)))
            start = time.monotonic()
            try:
                client.execute_cell(cell, index, store_history=cell is nb.cells[index])
            except DeadKernelError:
                events.append({"cell": index, "problem": "the kernel died in this cell (a crash, os._exit, "
                               "or the memory limit)"})
                return False
            timed_out = time.monotonic() - start >= client.timeout
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    events.append({"cell": index, "error": f"TimeoutError: the cell ran longer than {client.timeout} s "
                                   "and was interrupted" if timed_out else
                                   f"{out.get('ename')}: {out.get('evalue')}"[:500]})
                    break
            return True

        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            if not run(cell, index):
                return
            for code in _hidden_calls(cell, seed, call_limit):
                if not run(nbformat.v4.new_code_cell(code), index):
                    return
        for code in final:
            if not run(nbformat.v4.new_code_cell(code), len(nb.cells) - 1):
                return


def main(argv: list[str]) -> int:
    folder, seed, seconds, cell_limit, call_limit = Path(argv[0]), int(argv[1]), *map(float, argv[2:5])
    deadline = time.monotonic() + seconds
    from ipykernel.kernelspec import write_kernel_spec

    # a kernelspec for this interpreter: a user's own "python3" kernel must not run the submissions
    write_kernel_spec(folder / "jupyter" / "kernels" / KERNEL, overrides={"display_name": KERNEL})
    os.environ["JUPYTER_PATH"] = str(folder / "jupyter")
    os.environ["AAE_NP_DIAGNOSE_RERUN"] = "0"          # Exercise 13's verdicts need no training (diagnose)
    log: dict[str, Any] = {}
    try:
        for name in (EXERCISES_NB, CAPSTONE_NB):
            if (folder / name).is_file():
                run_notebook(folder / name, seed, deadline, cell_limit, call_limit, log)
    finally:
        (folder / "log.json").write_text(json.dumps(log), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
