"""Grade one submitted notebook: run it, collect each exercise's answer, check it here.

The exercises, their labels and the names of their answers come from the chapter's own
notebook (the instructor's source), never from the submission. The submission runs in a fresh
kernel (:class:`~sseq.grade.kernel.KernelSession`); after the cells of each exercise have run,
the grader reads the answer out of the kernel as data and runs the chapter's checker in its
own process: a function answer becomes a :class:`RemoteFunction` whose every call runs in the
learner's kernel, on copies of the hidden cases, and whose results come back as data.
"""

from __future__ import annotations

import importlib
import inspect
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from sseq import exercises
from sseq.assign import gates
from sseq.grade.kernel import KernelSession
from sseq.grade.remote import read_answers

__all__ = ["ExerciseGrade", "SubmissionGrade", "grade_submission"]



@dataclass
class ExerciseGrade:
    label: str
    title: str
    n_passed: int = 0
    n_cases: int = 0
    lines: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def score(self) -> float:
        return self.n_passed / self.n_cases if self.n_cases else 0.0


@dataclass
class SubmissionGrade:
    path: str
    chapter: str
    exercises: list[ExerciseGrade] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    cell_errors: int = 0

    @property
    def total(self) -> float:
        return sum(e.score for e in self.exercises)


def identify_chapter(nb, path: Path, chapters: Path) -> str | None:
    """The chapter a submission answers: its metadata, its file name, or its exercise labels."""
    known = {p.stem: p for p in sorted(chapters.glob("*.ipynb"))}
    claimed = nb.metadata.get("sseq", {}).get("chapter")
    if claimed in known:
        return claimed
    for stem in known:
        if stem in path.name:
            return stem
    labels = {role.statement[0] for role in gates.roles(nb) if role.statement}
    scores = {stem: len(labels & {e.label for e in gates.exercises(nbformat.read(p, 4))})
              for stem, p in known.items()}
    best = max(scores, key=scores.get, default=None)
    return best if best and scores[best] else None


def _grade_points(sub, exercises_: list[gates.Exercise]) -> dict[str, tuple[int, int | None]]:
    """label → (first cell, last cell) of its region in the submission (None: not found)."""
    starts = {}
    for index, role in enumerate(gates.roles(sub)):
        label = role.statement[0] if role.statement else None
        label = label or sub.cells[index].metadata.get("sseq", {}).get("exercise")
        if label and label not in starts and sub.cells[index].cell_type == "markdown":
            starts[label] = index
    order = sorted(starts.values())
    regions = {}
    for ex in exercises_:
        if ex.label not in starts:
            regions[ex.label] = (len(sub.cells), None)
            continue
        first = starts[ex.label]
        following = [s for s in order if s > first]
        regions[ex.label] = (first, (following[0] if following else len(sub.cells)) - 1)
    return regions


def _checker(dotted: str):
    if not re.fullmatch(r"sseq\.checks\.ch\d+\.check_\w+", dotted):
        raise ValueError(f"{dotted!r} is not a checker of sseq.checks")
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _placeholder_report(checker, n_args: int, why: str, options: dict):
    """The checker's cases, each marked as not graded (the answer could not be read)."""
    def stub(*args, **kwargs):
        raise NotImplementedError

    report = None
    for answer in (..., stub):
        try:
            report = checker(*[answer] * n_args, **options)
            break
        except TypeError:
            continue
    if report is None:
        report = exercises.Report("the exercise")
        report._record(False, "your answer", why)
        return report
    names = [line[2:].split(": ")[0] for line in report.lines]
    report.lines, report.n_passed, report.n_cases = [], 0, 0
    for name in names:
        report._record(False, name, why)
    return report


def _printed_pass(sub, region: tuple[int, int | None], title: str) -> bool:
    first, last = region
    if last is None:
        return False
    for cell in sub.cells[first:last + 1]:
        for out in cell.get("outputs", []):
            text = out.get("text", "") or out.get("data", {}).get("text/plain", "")
            if f"{title}: " in text and "Well done" in text.split(f"{title}: ", 1)[1][:80]:
                return True
    return False


def _learner_call(sub, region, checker: str) -> tuple[list[str], dict[str, str]] | None:
    first, last = region
    if last is None:
        return None
    for cell in reversed(sub.cells[first:last + 1]):
        if cell.cell_type == "code":
            call = gates.checker_call(cell.source)
            if call and call[0] == checker:
                return call[1], call[2]
    return None


def grade_exercise(session, sub, ex: gates.Exercise, region, *, seed, cases,
                   case_timeout=None) -> ExerciseGrade:
    checker = _checker(ex.checker)
    params = inspect.signature(checker).parameters
    options = {"verbose": False} if "verbose" in params else {}
    if seed is not None and "seed" in params:
        options["seed"] = seed
    if cases and ex.label in cases and "cases" in params:
        options["cases"] = cases[ex.label]
    grade = ExerciseGrade(ex.label, ex.title)
    exprs = [*ex.args, *ex.kwargs.values()]
    values, why = read_answers(session, exprs, case_timeout)
    own = _learner_call(sub, region, ex.checker)
    if values is None and own and [*own[0], *own[1].values()] != exprs:
        values, _ = read_answers(session, [*own[0], *own[1].values()], case_timeout)
        if values is not None:
            grade.notes.append(f"graded {', '.join(own[0])}, the answer your checker call names "
                               f"(the exercise asks for {', '.join(exprs)})")
            ex = gates.Exercise(ex.label, ex.title, ex.statement, checker=ex.checker,
                                args=own[0], kwargs=own[1])
    with exercises.grading_seed(seed):
        if values is None:
            report = _placeholder_report(checker, len(exprs), why, options)
        else:
            args, kwargs = values[:len(ex.args)], dict(zip(ex.kwargs, values[len(ex.args):],
                                                           strict=True))
            try:
                report = checker(*args, **kwargs, **options)
            except Exception as err:  # the checker could not handle this answer at all
                report = _placeholder_report(checker, len(exprs), f"could not be graded "
                                             f"({type(err).__name__}: {err})", options)
    grade.title = report.title
    grade.n_passed, grade.n_cases, grade.lines = report.n_passed, report.n_cases, \
        [*report.lines, report.verdict()]
    if not report and _printed_pass(sub, region, report.title):
        grade.notes.append("the notebook printed a passing verdict that the grader does not "
                           "confirm (was the checker modified?)")
    return grade


def grade_submission(path: Path, *, chapters: Path, seed: int | None = None,
                     cases: dict | None = None, cell_timeout: float = 120.0,
                     notebook_timeout: float = 600.0, case_timeout: float | None = None,
                     executed: Path | None = None, on_kernel=None) -> SubmissionGrade:
    """Run one submission in a fresh kernel and grade every exercise of its chapter.

    Args:
        path: the submitted notebook.
        chapters: the folder of the chapters' own notebooks (the exercises' source).
        seed, cases: another draw of the hidden cases, or an instructor's own (by label).
        cell_timeout, notebook_timeout: seconds for one cell, and for the whole notebook.
        case_timeout: seconds for one call of a learner's function (default: the checker's).
        executed: a folder to save the submission into, as it ran (outputs included).
        on_kernel: called with the process id of each kernel started.
    """
    start = time.monotonic()
    try:
        sub = nbformat.read(path, as_version=4)
    except Exception as err:
        return SubmissionGrade(str(path), "", notes=[f"not a readable notebook: {err}"])
    chapter = identify_chapter(sub, path, chapters)
    if chapter is None:
        return SubmissionGrade(str(path), "", notes=["no chapter of the book matches this "
                                                     "notebook"])
    source = nbformat.read(chapters / f"{chapter}.ipynb", as_version=4)
    todo = gates.exercises(source)
    regions = _grade_points(sub, todo)
    result = SubmissionGrade(str(path), chapter)
    grades: dict[str, ExerciseGrade] = {}
    with tempfile.TemporaryDirectory(prefix="sseq-grade-") as cwd, KernelSession(
            sub, cwd=Path(cwd), cell_timeout=cell_timeout, notebook_timeout=notebook_timeout,
            on_kernel=on_kernel) as session:
        for index, cell in enumerate(sub.cells):
            if cell.cell_type == "code" and cell.source.strip():
                ran = session.run(cell, index)
                if ran.status != "ok":
                    result.cell_errors += 1
                    first = cell.source.strip().splitlines()[0][:60]
                    result.notes.append(f"cell {index} ({first!r}): {ran.status}: {ran.detail}")
                if ran.status == "deadline":
                    break
            for ex in todo:
                if regions[ex.label][1] == index and ex.label not in grades:
                    grades[ex.label] = _grade_or_zero(session, sub, ex, regions[ex.label],
                                                      seed, cases, case_timeout)
        for ex in todo:
            if ex.label not in grades:
                grades[ex.label] = _grade_or_zero(session, sub, ex, regions[ex.label], seed,
                                                  cases, case_timeout)
        result.notes += session.notes
        if session.restarts:
            result.notes.append(f"the kernel was restarted {session.restarts} time(s)")
    result.exercises = [grades[ex.label] for ex in todo]
    result.seconds = time.monotonic() - start
    if executed is not None:
        executed.mkdir(parents=True, exist_ok=True)
        nbformat.write(sub, executed / path.name)
    return result


def _grade_or_zero(session, sub, ex, region, seed, cases, case_timeout) -> ExerciseGrade:
    if session.left() < 1:
        checker = _checker(ex.checker)
        params = inspect.signature(checker).parameters
        options = {"verbose": False} if "verbose" in params else {}
        report = _placeholder_report(checker, len(ex.args) + len(ex.kwargs),
                                     "not graded: the notebook ran past its time limit.",
                                     options)
        return ExerciseGrade(ex.label, report.title, 0, report.n_cases,
                             [*report.lines, report.verdict()])
    grade = grade_exercise(session, sub, ex, region, seed=seed, cases=cases,
                           case_timeout=case_timeout)
    if region[1] is None:
        grade.notes.append("its statement was not found in the notebook: graded at the end")
    return grade
