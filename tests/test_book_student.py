"""`make book-student`: the HTML book built from the student edition, with -W -n (no warning),
and no solution in it: no solution block, no line of a solution's code."""

from __future__ import annotations

import html
import re

import nbformat
import pytest

from sseq.assign import build_student_book, gates
from tests.conftest import ROOT
from tests.toc import chapter_notebooks


@pytest.mark.timeout(900, method="thread")
def test_student_book_builds_without_warnings_or_solutions(tmp_path):
    out = tmp_path / "html-student"
    assert build_student_book(ROOT, out, work=tmp_path / "source") == 0  # -W: no warning
    chapters = chapter_notebooks()
    for path in chapters:
        page = out / "chapters" / f"{path.stem}.html"
        text = page.read_text()
        assert 'class="exercise' in text, f"{page}: the exercises are there"
        assert not re.search(r'class="[^"]*\bsolution\b', text), f"{page} has a solution block"
        plain = html.unescape(re.sub(r"<[^>]+>", "", text))
        book = nbformat.read(path, as_version=4)
        for exercise in gates.exercises(book):
            assert book.cells[exercise.stubs[0]].source.splitlines()[0] in plain
            for index in exercise.solutions:
                stub_lines = {ln.strip() for i in exercise.stubs
                              for ln in book.cells[i].source.splitlines()}
                own = [ln.strip() for ln in book.cells[index].source.splitlines()
                       if len(ln.strip()) > 12 and ln.strip() not in stub_lines]
                assert own and not [ln for ln in own if ln in plain.splitlines()], own
    assert "(student edition)" in (out / "book" / "intro.html").read_text()
