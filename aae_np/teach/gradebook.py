"""``aae-np grade SUBMISSIONS/ --out grades.csv``: a gradebook for a folder of submitted notebooks.

    from aae_np.teach.gradebook import grade_folder
    rows = grade_folder("submissions/", "grades.csv")      # also writes grades_feedback/<student>.txt

**Submissions.** One student is a sub-folder of ``SUBMISSIONS/`` (the folder's name is the
student's) holding their notebooks 02 and/or 04, or a single ``.ipynb`` file at the top (its
name is the student's). A notebook is recognised by what it is, not by its file name: 02 has
cells tagged ``exercise-stub``, 04 calls ``capstone.``.

**Running.** Each submission runs in its own process (``grade_worker``), in its own temporary
folder holding copies of its notebooks under the course's names (so 04 finds 02 beside it),
``jobs`` at a time (default: one per core), with a tqdm bar. Its limits: ``seconds`` for the
whole submission (after that its process is killed), ``cell_seconds`` per cell (a longer cell
is interrupted and the next one runs), ``call_seconds`` per call of a graded function, and
``memory_mb`` of address space (``resource.RLIMIT_AS``, set in the child before it starts and
inherited by its kernel; Unix only, elsewhere there is no memory limit). The notebook runs in a
fresh Jupyter kernel with nbclient, every cell even after one raises, as a student's "Run All"
would if it did not stop at errors.

**What is graded, and where.** After each exercise cell and question cell, and once at the end,
the worker has the kernel record what the student's code produced (``grade_kernel``): each
graded function's outputs on the checker's inputs and on inputs it never saw, each question's
answer, the capstone's trained weights. The verdicts are made here, in the grader's process,
from those numbers (``grade_verdicts``): the course's own checker judges replayed outputs,
the reference solution judges the unseen inputs, the question's own check judges the answer,
and the capstone's held-out MSE is recomputed from its weights. A submission can therefore not
change its grade by printing "PASS", by patching the checker or the questions in its kernel,
or by writing the CSV (which is written here, after every submission has finished). A function
that calls the reference solution, the checkers or the package's own gradient code is flagged
and scores 0. A submission that crashes, loops or runs out of memory keeps what it recorded
before, and never stops the others.

**Not a sandbox.** A submission's code runs as the user who grades, with that user's files and
network. The grader guards the grade, not the machine: grade work you do not trust in a
container or a throwaway account.

The CSV has one row per student: ``student``, ``score`` (sum of the columns), ``out_of``, one
column per exercise (``exercises.EXERCISES``), one per question (``q_`` + its name,
``questions.QUESTIONS``), one per run of Exercise 13 (``diagnose_`` + A, B, C: cause and fix both
right, read from the saved cell's ``cause = "..."`` and ``fix = "..."`` and judged by
``diagnose.verdict`` here) and ``capstone``, each 1 or 0, then ``flags`` and ``problems``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aae_np.files import atomic_write_text
from aae_np.teach.grade_worker import CAPSTONE_NB, EXERCISES_NB

__all__ = ["Limits", "Submission", "GradeError", "find_submissions", "grade_folder"]

GRACE = 30.0                    # seconds the worker gets past its own deadline before it is killed
KINDS = {"exercises": EXERCISES_NB, "capstone": CAPSTONE_NB}
NEEDS = 'aae-np grade needs nbclient, nbformat and ipykernel: pip install "aae_np[grade]" (or the three by name)'


class GradeError(ValueError):
    """A problem with the grader's input the instructor can fix; the message says what to do."""


@dataclass(frozen=True)
class Limits:
    seconds: float = 600.0          # the whole submission (all its notebooks)
    cell_seconds: float = 180.0     # one cell
    call_seconds: float = 10.0      # one call of a graded function
    memory_mb: int = 4096           # address space of the submission's process and kernel (Unix)


@dataclass
class Submission:
    student: str
    notebooks: dict[str, Path] = field(default_factory=dict)     # kind ("exercises", "capstone") -> file
    problems: list[str] = field(default_factory=list)


def _kind(path: Path) -> str | None:
    try:
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError, AttributeError):
        return None
    code = [c for c in cells if isinstance(c, dict) and c.get("cell_type") == "code"]
    if any("exercise-stub" in c.get("metadata", {}).get("tags", []) for c in code):
        return "exercises"
    src = "".join("".join(c.get("source", "")) for c in code)
    return "capstone" if "capstone." in src else None


def _code_cells(path: Path | None) -> list[str]:
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"] if path else []
        return ["".join(c.get("source", "")) for c in cells if c.get("cell_type") == "code"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []


def find_submissions(folder: str | Path) -> list[Submission]:
    """One ``Submission`` per sub-folder (or top-level ``.ipynb``) of ``folder``, sorted by student."""
    root = Path(folder)
    if not root.is_dir():
        raise GradeError(f"{root}: not a folder; give the folder that holds one sub-folder (or one .ipynb) "
                         "per student")
    subs = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        files = ([p for p in sorted(entry.rglob("*.ipynb")) if ".ipynb_checkpoints" not in p.parts]
                 if entry.is_dir() else [entry] if entry.suffix == ".ipynb" else [])
        if not files:
            continue
        sub = Submission(entry.stem if entry.is_file() else entry.name)
        for path in files:
            kind = _kind(path)
            if kind is None:
                sub.problems.append(f"{path.name}: neither notebook 02 nor 04 (ignored)")
            elif kind in sub.notebooks:
                sub.problems.append(f"{path.name}: a second notebook {KINDS[kind][:2]} (ignored; graded "
                                    f"{sub.notebooks[kind].name})")
            else:
                sub.notebooks[kind] = path
        subs.append(sub)
    if not subs:
        raise GradeError(f"{root}: no notebooks found; put each student's notebooks in a sub-folder named after "
                         "the student (or one .ipynb per student)")
    return subs


def _set_limits(memory_mb: int) -> None:
    """In the child, before it starts: the memory limit (inherited by the kernel it launches)."""
    try:
        import resource
    except ImportError:                                 # not Unix: no limit (documented)
        return
    limit = memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _run(sub: Submission, limits: Limits, seed: int) -> tuple[Path, str]:
    """Run one submission's notebooks in their own temporary folder; (the folder, a note if killed)."""
    work = Path(tempfile.mkdtemp(prefix="aae_np_grade_"))
    for kind, path in sub.notebooks.items():
        shutil.copyfile(path, work / KINDS[kind])
    cmd = [sys.executable, "-m", "aae_np.teach.grade_worker", str(work), str(seed), str(limits.seconds),
           str(limits.cell_seconds), str(limits.call_seconds)]
    with open(work / "worker.err", "wb") as err:
        proc = subprocess.Popen(cmd, cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True, preexec_fn=lambda: _set_limits(limits.memory_mb))
        try:
            proc.wait(timeout=limits.seconds + GRACE)
            return work, ""
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    for line in (work / "kernels.txt").read_text().split() if (work / "kernels.txt").is_file() else []:
        if line.isdigit():                              # the kernel runs in a session of its own
            try:
                os.kill(int(line), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    return work, f"killed after {limits.seconds + GRACE:g} s"


def _stopped(events: list[dict[str, Any]], killed: str) -> str:
    problems = [e["problem"] for e in events if "problem" in e]
    return (problems[-1] if problems else "") or (f"the grader {killed}" if killed else "")


def _grade_one(sub: Submission, work: Path, killed: str, seed: int) -> tuple[dict[str, Any], str]:
    from aae_np.teach import grade_verdicts as gv
    from aae_np.teach.capstone import exercise_cells
    from aae_np.teach.exercises import EXERCISES
    from aae_np.teach.questions import QUESTIONS
    from aae_np.teach.registry import DIAGNOSES, diagnosis_answers

    try:
        log = json.loads((work / "log.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        log = {}
    harvest, verdicts, problems = work / "harvest", {}, list(sub.problems)
    lines = [f"Feedback for {sub.student}", ""]
    for kind, name in KINDS.items():
        events = log.get(name, [])
        stopped = _stopped(events, killed)
        if kind not in sub.notebooks:
            stopped = f"notebook {name[:2]} was not handed in"
            problems.append(stopped)
        elif stopped:
            problems.append(f"{name[:2]}: {stopped}")
        lines += [f"== {name} ==", *(f"  cell {e['cell']}: {e['error']}" for e in events if "error" in e)]
        new: dict[str, Any] = {}
        if kind == "exercises":
            cells = exercise_cells(sub.notebooks[kind])[1] if kind in sub.notebooks else {}
            for ex in EXERCISES:                          # the training loop too, from its phase-call record
                new[ex] = gv.exercise_verdict(ex, cells.get(ex), harvest, seed, stopped)
            for q in QUESTIONS:
                new[f"q_{q}"] = gv.question_verdict(q, harvest, stopped)
            answers = diagnosis_answers(sub.notebooks[kind]) if kind in sub.notebooks else dict.fromkeys(DIAGNOSES)
            for run, answer in answers.items():           # data in the saved cells, judged here
                new[f"diagnose_{run}"] = gv.diagnosis_verdict(run, answer)
        else:
            new["capstone"] = gv.capstone_verdict(harvest, _code_cells(sub.notebooks.get(kind)), stopped)
        verdicts.update(new)
        lines += [v.message for v in new.values()] + [""]
    row = {"student": sub.student, "score": sum(v.score for v in verdicts.values()), "out_of": len(verdicts),
           **{k: v.score for k, v in verdicts.items()},
           "flags": " | ".join(f"{k}: {v.flag}" for k, v in verdicts.items() if v.flag),
           "problems": " | ".join(problems)}
    lines.insert(1, f"score {row['score']} of {row['out_of']}")
    return row, "\n".join(lines) + "\n"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "student"


def grade_folder(folder: str | Path, out: str | Path, feedback: str | Path | None = None, jobs: int | None = None,
                 limits: Limits = Limits(), seed: int | None = None, progress: bool = True) -> list[dict[str, Any]]:
    """Grade every submission in ``folder``; write the CSV ``out`` and ``feedback/<student>.txt``.

    ``feedback`` defaults to ``<out without .csv>_feedback/`` beside the CSV; ``jobs`` to the
    number of cores this process may use; ``seed`` (of the unseen inputs) to a fresh random one,
    so a notebook cannot know them in advance. Returns the rows written.
    """
    try:
        import ipykernel  # noqa: F401
        import nbclient  # noqa: F401
        import nbformat  # noqa: F401
    except ImportError as err:
        raise GradeError(f"{NEEDS} ({err.name} is missing)") from None
    from tqdm.auto import tqdm

    # imported before any submission runs: a submission cannot change the code that grades it
    from aae_np.teach import exercises, grade_verdicts, questions, solutions  # noqa: F401

    subs = find_submissions(folder)
    out = Path(out)
    feedback = Path(feedback) if feedback is not None else out.with_name(out.stem + "_feedback")
    seed = secrets.randbelow(2**31) if seed is None else seed
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    jobs = jobs or cores
    results: dict[int, tuple[dict[str, Any], str]] = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool, \
            tqdm(total=len(subs), desc="grading", unit="submission", disable=not progress) as bar:
        futures = {pool.submit(_run, sub, limits, seed): i for i, sub in enumerate(subs)}
        for future in as_completed(futures):
            i = futures[future]
            work, killed = future.result()
            try:
                results[i] = _grade_one(subs[i], work, killed, seed)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            bar.update()
    rows = [results[i][0] for i in range(len(subs))]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, text.getvalue())
    feedback.mkdir(parents=True, exist_ok=True)
    for i, sub in enumerate(subs):
        atomic_write_text(feedback / f"{_safe(sub.student)}.txt", results[i][1])
    return rows
