"""Every chapter in _toc.yml, graded twice: its instructor edition gets full marks on cases
drawn from another seed than the book's, and its student edition runs top to bottom without an
error, every checker saying the answer is not there yet, and gets zero.

Each test executes a whole chapter in a fresh kernel (about as long as the chapter itself
runs); pytest-xdist spreads them over the workers."""

from __future__ import annotations

import time

import nbformat
import pytest

from sseq.assign import gates
from sseq.assign.editions import instructor_edition, student_edition
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
@pytest.mark.parametrize("edition", ["instructor", "student"])
@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_grading_each_edition_of_each_chapter(path, edition, tmp_path):
    book = nbformat.read(path, as_version=4)
    make = instructor_edition if edition == "instructor" else student_edition
    submission = tmp_path / f"{path.stem}.ipynb"
    nbformat.write(make(book, path.stem), submission)
    start = time.perf_counter()
    [result] = grade_all([submission], chapters=ROOT / "chapters", seed=SEED,
                         executed=tmp_path / "ran", log=lambda s: None)
    print(f"\n{path.stem} ({edition}): graded in {time.perf_counter() - start:.0f} s")
    labels = [e.label for e in gates.exercises(book)]
    assert result["chapter"] == path.stem
    assert [e["label"] for e in result["exercises"]] == labels
    assert result["cell_errors"] == 0 and result["notes"] == [], result["notes"]
    for exercise in result["exercises"]:
        lines = exercise["lines"][:-1]
        assert exercise["n_cases"] >= 1 and lines, exercise
        if edition == "instructor":
            assert exercise["score"] == 1.0, exercise["lines"]
        else:
            assert exercise["score"] == 0.0 and all(map(_unanswered, lines)), exercise["lines"]
    if edition == "student":  # what the learner sees when running the untouched notebook
        ran = nbformat.read(tmp_path / "ran" / submission.name, as_version=4)
        stubs = [c for c in ran.cells if "exercise" in c.metadata.get("tags", [])]
        assert len(stubs) >= len(labels)
        for stub in stubs:
            printed = [ln for ln in _text(stub).splitlines() if ln.startswith("✗")]
            assert printed and all(map(_unanswered, printed)), _text(stub)
        assert not [o for c in ran.cells for o in c.get("outputs", [])
                    if o.get("output_type") == "error"]
