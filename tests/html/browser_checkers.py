"""The page checks catch what they are for: each runs in Chromium on small synthetic pages.

A good page passes every check; a page with raw math, a broken formula, an undefined macro,
a missing or unlabelled figure, a solution open by default, a request off the machine, a
JavaScript error, text wider than a phone or a broken link fails the check for it. The pages
use the same MathJax and toggle-button scripts as the book, served from 127.0.0.1.

Named ``browser_*.py`` so that ``make unit`` (pytest's ``test_*.py``) does not collect it;
``make test-html`` runs it before the walk of the book.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import mathjax
import pytest
import sphinx_togglebutton
from PIL import Image

from tests.html import checks
from tests.html.harness import DESKTOP, PHONE, Server, launch, open_page

MATHJAX = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"  # the book's copy
TOGGLE = Path(sphinx_togglebutton.__file__).parent / "_static"

HEAD = """<!doctype html><html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="togglebutton.css">
<script>let toggleHintShow = 'show'; let toggleHintHide = 'hide'; let toggleOpenOnPrint = 'true';
var togglebuttonSelector = '.toggle, .admonition.dropdown';</script>
<script src="togglebutton.js"></script>
{math}</head><body><main><article class="bd-article">{body}</article></main></body></html>"""
MATH = '<script defer src="mathjax/tex-mml-chtml.js"></script>'

FORMULA = r'<p>A state <span class="math">\(h_t = f(h_{t-1}, x_t)\)</span>.</p>'
FIGURE = '<img src="fig.png" alt="Recall against distance (x: k; y: accuracy).">'
SOLUTION = """<div class="solution dropdown admonition" id="sol-1">
<p class="admonition-title">Solution to Exercise 1</p>
<section><p>The answer is 42.</p></section></div>"""
LINKS = '<p id="here"><a href="good.html#here">here</a> and <a href="#here">again</a>.</p>'
GOOD = (FORMULA + FIGURE + SOLUTION + LINKS  # and code that scrolls in its own box, as in the book
        + '<pre style="overflow-x: auto"><code>' + "x = 1  " * 200 + "</code></pre>")


@pytest.fixture(scope="module")
def site(tmp_path_factory, playwright):
    """A folder of test pages on a local server, and a browser to open them."""
    root = tmp_path_factory.mktemp("site")
    (root / "mathjax").symlink_to(MATHJAX, target_is_directory=True)
    for name in ("togglebutton.js", "togglebutton.css"):
        shutil.copy(TOGGLE / name, root / name)
    Image.new("RGB", (40, 20), "steelblue").save(root / "fig.png")
    (root / "good.html").write_text(HEAD.format(math=MATH, body=GOOD))
    browser = launch(playwright)
    context = browser.new_context(viewport=DESKTOP)
    with Server(root) as server:
        yield root, server.url, context
    context.close()
    browser.close()


def visit(site, body: str, math: bool = True):
    """Write a page with ``body``, open it; return the tab and what it did."""
    root, url, context = site
    name = f"page{len(list(root.glob('page*.html')))}.html"
    (root / name).write_text(HEAD.format(math=MATH if math else "", body=body))
    return open_page(context, url + name)


def test_mathjax_is_the_books():
    assert (MATHJAX / "tex-mml-chtml.js").is_file()


def test_a_good_page_passes_every_check(site):
    root, url, _ = site
    page, seen = visit(site, GOOD)
    assert checks.math_problems(page) == []
    assert checks.figure_problems(page) == []
    assert checks.solution_problems(page) == []
    assert checks.link_problems(checks.page_links(page), url, root) == []
    assert checks.phone_problems(page, PHONE) == []
    assert (seen.external, seen.js_errors, seen.failed) == ([], [], [])


def test_raw_math_is_caught(site):
    page, _ = visit(site, FORMULA + r"<p>and $$x^2$$ left as typed</p>", math=False)
    problems = checks.math_problems(page)
    assert any(p.startswith("formula not typeset: \\(h_t") for p in problems), problems
    assert any(p.startswith("raw TeX in the text: and $$x^2$$") for p in problems), problems


@pytest.mark.parametrize("tex,problem", [
    (r"\frac{a}", "MathJax error: Missing argument for \\frac"),
    (r"x^2^3", "MathJax error: Double exponent"),
    (r"\frac{a}{", "formula not typeset: "),  # unbalanced braces: MathJax leaves it as typed
])
def test_a_broken_formula_is_caught(site, tex, problem):
    page, _ = visit(site, f'<p><span class="math">\\({tex}\\)</span></p>')
    assert any(p.startswith(problem) for p in checks.math_problems(page))


def test_an_undefined_macro_is_caught(site):
    page, _ = visit(site, r'<p><span class="math">\(\notamacro x\)</span></p>')
    assert any(p.startswith("TeX error in: \\notamacro") for p in checks.math_problems(page))


def test_an_unknown_environment_is_caught(site):
    page, _ = visit(site, r'<div class="math">\[\begin{nomatrix} 1 \end{nomatrix}\]</div>')
    assert any("nomatrix" in p for p in checks.math_problems(page))


@pytest.mark.parametrize("img,problem", [
    ('<img src="missing.png" alt="A plot.">', "image not loaded: "),
    ('<img src="fig.png">', "image without alt text: "),
    ('<img src="fig.png" alt="  ">', "image without alt text: "),
    ('<img src="fig.png" alt="../_images/4b7b.png">', "image without alt text: "),
    ('<img src="fig.png" alt="A plot." style="width: 0">', "image shown at zero size: "),
])
def test_a_missing_or_unlabelled_figure_is_caught(site, img, problem):
    page, _ = visit(site, img)
    assert any(p.startswith(problem) for p in checks.figure_problems(page))


def test_a_solution_open_by_default_is_caught(site):
    page, _ = visit(site, SOLUTION.replace("solution dropdown admonition", "solution admonition"))
    assert checks.solution_problems(page) == [
        "solution sol-1 (Solution to Exercise 1) is open before a click"]


def test_a_solution_that_stays_closed_is_caught(site):
    stuck = SOLUTION.replace("<section>", '<section style="display: none !important">')
    page, _ = visit(site, stuck)
    assert checks.solution_problems(page) == [
        "solution sol-1 (Solution to Exercise 1) does not open on click"]


def test_a_request_off_the_machine_is_caught_and_blocked(site):
    page, seen = visit(site, '<img src="http://example.invalid/x.png" alt="x">'
                             '<script src="https://cdn.example.invalid/lib.js"></script>')
    page.wait_for_load_state("networkidle")
    assert sorted(seen.external) == ["http://example.invalid/x.png",
                                     "https://cdn.example.invalid/lib.js"]


def test_a_javascript_error_is_caught(site):
    _, seen = visit(site, "<script>notDefinedAnywhere()</script>")
    assert seen.js_errors == ["uncaught: notDefinedAnywhere is not defined"]


def test_a_missing_file_is_caught(site):
    _, seen = visit(site, '<script src="nowhere.js"></script>')
    assert any("nowhere.js (HTTP 404)" in f for f in seen.failed)


def test_text_wider_than_a_phone_is_caught(site):
    page, _ = visit(site, '<p style="width: 900px">a paragraph set wider than the screen</p>')
    problems = checks.phone_problems(page, PHONE)
    assert problems[0].startswith("the page scrolls sideways")
    assert any(p.startswith("p reaches 9") for p in problems)


def test_broken_links_and_anchors_are_caught(site):
    root, url, _ = site
    page, _ = visit(site, '<a href="nowhere.html">a</a> <a href="good.html#nope">b</a>'
                          '<a href="https://example.org/">outside</a>')
    assert checks.link_problems(checks.page_links(page), url, root) == [
        "broken link: nowhere.html", "broken anchor: good.html#nope"]


NOTEBOOK = {"cells": [
    {"cell_type": "markdown", "source": "# A chapter"},
    {"cell_type": "code", "source": "import sseq", "metadata": {"tags": ["remove-cell"]}},
    {"cell_type": "code", "source": "x = 1", "metadata": {}},
    {"cell_type": "code", "source": "fig, ax = plt.subplots()\nax.plot(x)", "metadata": {}},
    {"cell_type": "code", "source": "memory.recall_explorer()", "metadata": {}},
]}
CELL = '<div class="cell"><div class="cell_input"><pre>{}</pre></div>{}</div>'
OUTPUT = f'<div class="cell_output">{FIGURE}</div>'


def test_the_cells_that_draw_figures_are_known():
    assert checks.figure_cells(NOTEBOOK) == [(1, "fig, ax = plt.subplots()"),
                                             (2, "memory.recall_explorer()")]


def test_a_figure_removed_from_the_outputs_is_caught(site):
    shown = CELL.format("x = 1", "") + CELL.format("plt", OUTPUT) + CELL.format("exp", OUTPUT)
    page, _ = visit(site, shown)
    assert checks.figure_cell_problems(page, NOTEBOOK) == []
    removed = CELL.format("x = 1", "") + CELL.format("plt", "") + CELL.format("exp", OUTPUT)
    page, _ = visit(site, removed)
    assert checks.figure_cell_problems(page, NOTEBOOK) == [
        "code cell 2 ('fig, ax = plt.subplots()') draws a figure but the page shows none"]
    page, _ = visit(site, CELL.format("x = 1", "") + CELL.format("plt", OUTPUT))
    assert checks.figure_cell_problems(page, NOTEBOOK) == [
        "the page shows 2 code cells, the notebook has 3"]


CONFIG = {"repository": {"url": "https://github.com/o/r", "branch": "main", "path_to_book": ""},
          "launch_buttons": {"colab_url": "https://colab.research.google.com",
                             "binderhub_url": "https://mybinder.org",
                             "notebook_interface": "jupyterlab"}}
COLAB = "https://colab.research.google.com/github/o/r/blob/main/chapters/01_x.ipynb"
BINDER = "https://mybinder.org/v2/gh/o/r/main?urlpath=lab/tree/chapters/01_x.ipynb"


def test_launch_buttons_must_open_the_notebook():
    assert checks.launch_problems([COLAB, BINDER], "chapters/01_x.ipynb", CONFIG) == []
    assert checks.launch_problems([BINDER], "chapters/01_x.ipynb", CONFIG) == [
        f"no Colab button opening {COLAB}"]
    wrong = [COLAB.replace("01_x", "02_y"), BINDER]
    assert checks.launch_problems(wrong, "chapters/01_x.ipynb", CONFIG) == [
        f"no Colab button opening {COLAB}"]


def test_the_search_term_is_a_word_only_that_page_uses():
    own = "The orthogonal polynomials, orthogonal again, and recurrences."
    others = ["A recurrence elsewhere.", "Nothing polynomial here."]
    assert checks.distinctive_term(own, others) == "orthogonal"
    assert checks.distinctive_term("recurrences and polynomials", others) is None  # stems
