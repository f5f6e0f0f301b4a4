"""The editions: every chapter tagged, the student edition without a single solution line, the
instructor edition and its answer key complete, and the tagging reproducible by a command."""

from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import pytest

from sseq.assign import build_instructor, build_student, gates, tag_notebooks
from sseq.assign.answer_key import answer_key
from sseq.assign.editions import UntaggedError, instructor_edition, student_edition
from tests.conftest import ROOT
from tests.toc import chapter_notebooks

CHAPTERS = chapter_notebooks()  # every notebook in _toc.yml, chapters added later too
IDS = [p.stem for p in CHAPTERS]


def _lines(text: str) -> set[str]:
    return {line.strip() for line in text.splitlines() if len(line.strip()) > 3}


def _outputs_text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", ""))
        parts += [v for v in out.get("data", {}).values() if isinstance(v, str)]
    return "\n".join(parts)


def test_the_toc_has_chapters_with_exercises():
    assert len(CHAPTERS) >= 4
    for path in CHAPTERS:
        assert len(gates.exercises(nbformat.read(path, as_version=4))) >= 3, path


def test_every_chapters_cells_are_tagged():
    """Run `python -m sseq.assign tag` after adding or moving an exercise or a solution."""
    stale = tag_notebooks(CHAPTERS, check=True)
    assert not stale, f"untagged or stale: {stale}; run python -m sseq.assign tag"


def test_tag_check_command_fails_on_a_stale_notebook(tmp_path):
    nb = nbformat.read(CHAPTERS[0], as_version=4)
    for cell in nb.cells:
        cell.metadata.pop("tags", None)
    stale = tmp_path / CHAPTERS[0].name
    nbformat.write(nb, stale)
    run = [sys.executable, "-m", "sseq.assign", "tag", "--check", str(stale)]
    assert subprocess.run(run, capture_output=True, text=True).returncode == 1
    run.remove("--check")
    assert subprocess.run(run, capture_output=True, text=True).returncode == 0
    assert not tag_notebooks([stale], check=True)  # tagged now, and idempotent


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_student_edition_contains_no_solution(path):
    book = nbformat.read(path, as_version=4)
    student = student_edition(book, path.stem)
    roles = gates.roles(book)
    solution_cells = [c for c, r in zip(book.cells, roles, strict=True) if "solution" in r.tags]
    assert solution_cells, "a chapter's exercises have solutions"
    elsewhere = set()
    for cell, role in zip(book.cells, roles, strict=True):
        if "solution" not in role.tags:
            kept = cell.source if "solution-gate" not in role.tags else "".join(
                t for t, s in gates.split_gates(cell.source, True)[0] if not s)
            elsewhere |= _lines(kept) | _lines(_outputs_text(cell))
    seen = set()
    for cell in student.cells:
        seen |= _lines(cell.source) | _lines(_outputs_text(cell))
    unique = 0
    for cell in solution_cells:
        for line in _lines(cell.source) - elsewhere:
            unique += 1
            assert line not in seen, f"a solution's line is in the student edition: {line}"
    assert unique >= len(gates.exercises(book)), "each solution has lines of its own"
    text = json.dumps(student)
    assert "{solution-start}" not in text and "{solution-end}" not in text


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_student_edition_keeps_everything_else(path):
    book = nbformat.read(path, as_version=4)
    student = student_edition(book, path.stem)
    assert student.metadata["sseq"] == {"chapter": path.stem, "edition": "student"}
    by_id = {c.id: c for c in student.cells}
    for cell, role in zip(book.cells, gates.roles(book), strict=True):
        if "solution" in role.tags:
            assert cell.id not in by_id
        elif "exercise" in role.tags:
            stub = by_id[cell.id]
            assert stub.source == cell.source and stub.outputs == []
            assert gates.checker_call(stub.source), "the stub keeps its checker call"
        elif "solution-gate" not in role.tags:
            assert by_id[cell.id] == cell, f"cell {cell.id} changed"
    labels = [e.label for e in gates.exercises(book)]
    assert [e.label for e in gates.exercises(student)] == labels
    assert all(e.checker for e in gates.exercises(student))


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_instructor_edition_and_answer_key(path):
    book = nbformat.read(path, as_version=4)
    instructor = instructor_edition(book, path.stem)
    assert instructor.metadata["sseq"]["edition"] == "instructor"
    assert [c.source for c in instructor.cells] == [c.source for c in book.cells]
    key = answer_key(book, path.stem)
    for exercise in gates.exercises(book):
        assert f"`{exercise.label}`" in key and exercise.checker in key
        for index in exercise.solutions:
            assert book.cells[index].source.strip() in key


def test_editions_are_written_by_the_commands(tmp_path):
    written = build_student(CHAPTERS[:1], tmp_path / "student")
    assert written == [tmp_path / "student" / CHAPTERS[0].name]
    written = build_instructor(CHAPTERS[:1], tmp_path / "instructor")
    assert [p.name for p in written] == [CHAPTERS[0].name, f"{CHAPTERS[0].stem}_answers.md"]


MIXED = [
    ("markdown", "## Exercises\n\n```{exercise} Add\n:label: ex-t-add\n\nAdd them.\n```"),
    ("code", "def my_add(a, b):\n    raise NotImplementedError\n\n\n"
             "sseq.checks.ch01.check_x(my_add)"),
    ("markdown", "````{solution-start} ex-t-add\n:class: dropdown\n````\nUse +."),
    ("code", "def my_add(a, b):\n    return a + b  # SECRET"),
    ("markdown", "Still the solution: SECRET PROSE."),
    ("markdown", "````{solution-end}\n````\n\n```{exercise} Twice\n:label: ex-t-twice\n\n2x.\n```"),
    ("code", "my_value = ...\n\nsseq.checks.ch01.check_y(my_value, seed=1)"),
    ("markdown", "Intro.\n\n````{solution-start} ex-t-twice\n````\nSECRET HALF\n"
                 "````{solution-end}\n````\n\nAfter."),
    ("markdown", "## Summary"),
]


def _synthetic():
    nb = nbformat.v4.new_notebook()
    new = {"markdown": nbformat.v4.new_markdown_cell, "code": nbformat.v4.new_code_cell}
    nb.cells = [new[kind](source) for kind, source in MIXED]
    return nb


def test_tags_of_a_synthetic_chapter():
    nb = _synthetic()
    assert gates.tag(nb) and not gates.tag(nb)  # idempotent
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    assert tags == [[], ["exercise"], ["solution"], ["solution"], ["solution"], ["solution-gate"],
                    ["exercise"], ["solution-gate"], []]
    exercises = gates.exercises(nb)
    assert [(e.label, e.stubs, e.solutions, e.checker, e.args, e.kwargs) for e in exercises] == [
        ("ex-t-add", [1], [3], "sseq.checks.ch01.check_x", ["my_add"], {}),
        ("ex-t-twice", [6], [], "sseq.checks.ch01.check_y", ["my_value"], {"seed": "1"})]


def test_mixed_cells_lose_only_their_gated_part():
    nb = _synthetic()
    gates.tag(nb)
    student = student_edition(nb, "synthetic")
    text = json.dumps(student)
    assert "SECRET" not in text
    assert "Twice" in text and "Intro." in text and "After." in text and "my_add" in text
    assert [c.source for c in student.cells[-2:]] == ["Intro.\n\nAfter.", "## Summary"]


def test_untagged_gates_are_refused():
    nb = _synthetic()
    with pytest.raises(UntaggedError, match="python -m sseq.assign tag"):
        student_edition(nb, "synthetic")
    gates.tag(nb)
    nb.cells[3].metadata["tags"] = []  # a solution cell that lost its tag
    with pytest.raises(UntaggedError, match="cell 3"):
        student_edition(nb, "synthetic")


def test_sseq_assign_finds_the_same_chapters_as_the_tests():
    from sseq.assign import toc_notebooks

    assert [p.resolve() for p in toc_notebooks(ROOT)] == [p.resolve() for p in CHAPTERS]
