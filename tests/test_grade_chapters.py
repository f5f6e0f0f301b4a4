"""Every chapter in _toc.yml, graded as a learner hands it in half done: the student edition
with every other exercise answered by the instructor's solution. The answered exercises get
full marks on cases drawn from another seed than the book's; the others get zero, every checker
saying the answer is not there yet; the notebook runs top to bottom without an error.

One grading run per chapter covers both editions' paths (the solutions, and the stubs of the
student edition) at the cost of one execution: each test executes a whole chapter in a fresh
kernel (about as long as the chapter itself runs); pytest-xdist spreads them over the workers.
Which half is answered alternates from chapter to chapter, so that the first exercise of a
chapter is not always the answered one."""

from __future__ import annotations

import time

import nbformat
import pytest

from sseq.assign import editions, gates
from sseq.exercises import UNANSWERED
from sseq.grade import grade_all
from tests.conftest import ROOT
from tests.toc import chapter_notebooks

CHAPTERS = chapter_notebooks()  # every notebook in _toc.yml, chapters added later too
SEED = 11  # the graded cases differ from the book's


def _unanswered(line: str) -> bool:
    return any(f": {marker}" in line for marker in UNANSWERED)


def _text(cell) -> str:
    return "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "")
                   for o in cell.get("outputs", []))


@pytest.mark.timeout(900, method="thread")
@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_grading_a_half_answered_student_edition(path, tmp_path):
    book = nbformat.read(path, as_version=4)
    labels = [e.label for e in gates.exercises(book)]
    assert len(labels) >= 2, "a chapter needs two exercises to be graded both ways"
    answered = set(labels[CHAPTERS.index(path) % 2::2])
    submission = tmp_path / f"{path.stem}.ipynb"
    nbformat.write(editions.student_edition(book, path.stem, answered=answered), submission)
    start = time.perf_counter()
    [result] = grade_all([submission], chapters=ROOT / "chapters", seed=SEED,
                         executed=tmp_path / "ran", log=lambda s: None)
    print(f"\n{path.stem}: graded in {time.perf_counter() - start:.0f} s")
    assert result["chapter"] == path.stem
    assert [e["label"] for e in result["exercises"]] == labels
    assert result["cell_errors"] == 0 and result["notes"] == [], result["notes"]
    for exercise in result["exercises"]:
        lines = exercise["lines"][:-1]
        assert exercise["n_cases"] >= 1 and lines, exercise
        if exercise["label"] in answered:
            assert exercise["score"] == 1.0, exercise["lines"]
        else:
            assert exercise["score"] == 0.0 and all(map(_unanswered, lines)), exercise["lines"]
    ran = nbformat.read(tmp_path / "ran" / submission.name, as_version=4)
    assert not [o for c in ran.cells for o in c.get("outputs", [])
                if o.get("output_type") == "error"]
    stubs = {}  # what the learner sees under each untouched stub when running the notebook
    for cell, role in zip(ran.cells, gates.roles(ran), strict=True):
        if "exercise" in role.tags and role.label not in answered:
            stubs.setdefault(role.label, []).append(cell)
    assert set(stubs) == set(labels) - answered
    for cells in stubs.values():
        printed = [ln for cell in cells for ln in _text(cell).splitlines() if ln.startswith("✗")]
        assert printed and all(map(_unanswered, printed)), [_text(c) for c in cells]


def test_a_partly_answered_student_edition_keeps_exactly_the_chosen_solutions():
    """The edition this test grades holds the answered exercises' solution code and nothing
    else of the instructor's: no other solution, no worked explanation, no gate."""
    path = CHAPTERS[0]
    book = nbformat.read(path, as_version=4)
    labels = [e.label for e in gates.exercises(book)]
    nb = editions.student_edition(book, path.stem, answered={labels[0]})
    student = editions.student_edition(book, path.stem)
    solutions = {label: [c.source for c, r in zip(book.cells, gates.roles(book), strict=True)
                         if c.cell_type == "code" and "solution" in r.tags and r.label == label]
                 for label in labels}
    sources = [c.source for c in nb.cells]
    assert all(s in sources for s in solutions[labels[0]]) and solutions[labels[0]]
    assert not any(s in sources for label in labels[1:] for s in solutions[label])
    assert len(nb.cells) == len(student.cells) + len(solutions[labels[0]])
    assert not any("{solution-" in c.source for c in nb.cells)


def test_answered_must_name_exercises_of_the_chapter():
    path = CHAPTERS[0]
    book = nbformat.read(path, as_version=4)
    with pytest.raises(ValueError, match=r"answered names no exercise of .*\['ex-nowhere'\]"):
        editions.student_edition(book, path.stem, answered={"ex-nowhere"})
