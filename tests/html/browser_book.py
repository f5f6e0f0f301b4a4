"""The built book as readers see it, in headless Chromium (``make test-html``).

Every page of ``_build/html`` (or ``$BOOK_HTML``) is loaded once from a server on 127.0.0.1
and must: make no request off the machine, raise no JavaScript error, load every file it
asks for, typeset every formula, load every figure with an alt text, link only to pages and
anchors that exist, keep its solutions closed until clicked, and fit a phone's width. Each
chapter must also show a figure for every cell that draws one, launch buttons that open its
notebook, and be found by the search for a word only it uses. A screenshot of each chapter's
first screen (desktop and phone) is saved under ``_build/screens/``.

Named ``browser_*.py`` so that ``make unit`` (pytest's ``test_*.py``) does not collect it.
"""

from __future__ import annotations

import pytest

from tests.html import checks
from tests.html.walk import HTML, book_config, book_pages, chapters

PAGES = book_pages() or ["(no built book: run make book)"]
CHAPTERS = chapters()
CHAPTER_PAGES = [page for _, page in CHAPTERS]


def test_every_chapter_is_a_page_of_the_book():
    assert CHAPTERS, "_toc.yml lists no chapter notebooks"
    missing = [page for page in CHAPTER_PAGES if page not in PAGES]
    assert not missing, f"chapters missing from {HTML}: {missing}"


@pytest.mark.parametrize("page", PAGES)
def test_no_request_leaves_the_machine(walk, page):
    assert walk.report(page).visit.external == []


@pytest.mark.parametrize("page", PAGES)
def test_no_javascript_error(walk, page):
    assert walk.report(page).visit.js_errors == []


@pytest.mark.parametrize("page", PAGES)
def test_every_file_the_page_asks_for_loads(walk, page):
    assert walk.report(page).visit.failed == []


@pytest.mark.parametrize("page", PAGES)
def test_every_formula_is_typeset(walk, page):
    assert walk.report(page).math == []


@pytest.mark.parametrize("page", PAGES)
def test_every_figure_loads_with_an_alt_text(walk, page):
    assert walk.report(page).figures == []


@pytest.mark.parametrize("page", PAGES)
def test_every_internal_link_resolves(walk, page):
    assert walk.link_problems(page) == []


@pytest.mark.parametrize("page", PAGES)
def test_solutions_stay_closed_until_clicked(walk, page):
    assert walk.report(page).solutions == []


@pytest.mark.parametrize("page", PAGES)
def test_readable_at_a_phones_width(walk, page):
    assert walk.report(page).phone == []


@pytest.mark.parametrize("page", CHAPTER_PAGES)
def test_every_cell_that_draws_a_figure_shows_it(walk, page):
    assert walk.report(page).figure_cells == []


@pytest.mark.parametrize("notebook,page", CHAPTERS)
def test_launch_buttons_open_the_chapters_notebook(walk, notebook, page):
    assert checks.launch_problems(walk.report(page).links, notebook, book_config()) == []


@pytest.mark.parametrize("page", CHAPTER_PAGES)
def test_search_finds_the_chapter_by_a_word_only_it_uses(walk, page):
    others = [walk.report(p).prose for p in PAGES if p != page]
    term = checks.distinctive_term(walk.report(page).prose, others)
    assert term, f"{page} has no word of its own to search for"
    results, external = walk.search(term)
    assert page in results, f"searching {term!r} lists {results}, not {page}"
    assert external == []
