"""Every chapter follows the notebook rules, and the Colab install path works.

nbval (``make notebooks``) re-runs the chapters; these tests check what nbval cannot:
the setup cell agrees with ``_config.yml``, the stored outputs were made top to bottom
without errors or warnings, carry only the precision their claims need, and import only
what sseq depends on. That the setup cell's ``pip install`` from the repository URL works,
the way Colab runs it, is checked by ``make compat`` (tests/colab_sim.py).
"""

from __future__ import annotations

import ast
import re
import sys

import nbformat
import pytest
import yaml

from tests.conftest import ROOT
from tests.toc import chapter_notebooks

CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
NOTEBOOKS = chapter_notebooks()

SETUP_CELL = """\
# Setup: on Colab, install sseq from the book's repository; locally there is nothing to do.
import sys

if "google.colab" in sys.modules:
    %pip install -q "sseq @ git+{url}@{branch}"

import sseq

sseq.seed_everything(0)
sseq.viz.use_style()"""


def expected_setup_cell(url: str | None = None) -> str:
    repo = CONFIG["repository"]
    return SETUP_CELL.format(url=url or repo["url"], branch=repo["branch"])


def code_cells(path):
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


def test_the_toc_lists_every_chapter_notebook():
    on_disk = sorted(p.name for p in (ROOT / "chapters").glob("*.ipynb"))
    assert NOTEBOOKS, "no chapter is listed in _toc.yml"
    assert sorted(p.name for p in NOTEBOOKS) == on_disk


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_setup_cell_agrees_with_config(path):
    first = code_cells(path)[0]
    assert first.source == expected_setup_cell()
    # hidden in the book; not compared by nbval, since on Colab %pip prints a note
    assert {"remove-output", "nbval-ignore-output"} <= set(first.metadata.get("tags", []))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_outputs_were_made_top_to_bottom_without_errors_or_warnings(path):
    cells = code_cells(path)
    assert [c.execution_count for c in cells] == list(range(1, len(cells) + 1))
    for i, cell in enumerate(cells):
        for out in cell.outputs:
            assert out.output_type != "error", f"cell {i} stores a traceback"
            if out.output_type == "stream" and out.name == "stderr":
                # tqdm bars write to stderr; they live only in ignored cells
                assert "nbval-ignore-output" in cell.metadata.get("tags", []), (
                    f"cell {i} stores stderr output: {out.text[:200]!r}")
            text = out.get("text", "") + str(out.get("data", {}).get("text/plain", ""))
            assert "Warning" not in text, f"cell {i} stores a warning: {text[:200]!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_widget_cells_are_not_compared_by_nbval(path):
    for cell in code_cells(path):
        if any("application/vnd.jupyter.widget-view+json" in out.get("data", {})
               for out in cell.outputs):
            assert "nbval-ignore-output" in cell.metadata.get("tags", []), cell.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_figures_are_png(path):
    for cell in code_cells(path):
        for out in cell.outputs:
            assert "image/svg+xml" not in out.get("data", {})


# What a chapter may import: the standard library, sseq, and what sseq depends on (Colab's
# setup cell installs nothing else). IPython comes with ipywidgets.
IMPORTABLE = {"sseq", "numpy", "torch", "matplotlib", "sympy", "ipywidgets", "tqdm", "numba",
              "psutil", "sklearn", "triton", "IPython"}


def test_importable_names_match_the_package_dependencies():
    """IMPORTABLE lists pyproject's dependencies (by import name), nothing more."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["gpu"]
    names = {re.split(r"[<>=!~ \[]", d)[0].lower() for d in declared}
    import_name = {"scikit-learn": "sklearn"}
    assert IMPORTABLE == {import_name.get(n, n) for n in names} | {"sseq", "IPython"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_chapters_import_only_what_sseq_depends_on(path):
    import ast

    from IPython.core.inputtransformer2 import TransformerManager

    for cell in code_cells(path):
        source = TransformerManager().transform_cell(cell.source)  # %pip → get_ipython()...
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                assert top in IMPORTABLE or top in sys.stdlib_module_names, (
                    f"{path.name} imports {module}, which Colab's setup cell does not install")


MAX_DIGITS = 6  # sseq.book.MAX_DIGITS: the most significant digits a stored number may carry
FULL_REPR = re.compile(r"(?<![\w.])-?\d*\.\d{9,}(?:e[-+]?\d+)?")  # a float's repr, unrounded


def significant_digits(text: str) -> int:
    """Significant digits of a float's text; 0 for an int's (ints are exact everywhere)."""
    if not re.search(r"[.eE]", text):
        return 0
    mantissa = text.lstrip("-").lower().split("e")[0].replace(".", "")
    return len(mantissa.lstrip("0").rstrip("0"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_numbers_carry_only_the_precision_their_claim_needs(path):
    """Another CPU changes a float's last digits: glued floats carry at most MAX_DIGITS
    significant digits (sseq.book.glue rounds them), and no compared output prints a float's
    full repr."""
    from sseq import book

    assert book.MAX_DIGITS == MAX_DIGITS
    for i, cell in enumerate(code_cells(path)):
        ignored = "nbval-ignore-output" in cell.metadata.get("tags", [])
        for out in cell.outputs:
            data = out.get("data", {})
            glued = data.get(book.GLUE_PREFIX + "text/plain")
            if glued is not None:
                assert significant_digits(glued) <= MAX_DIGITS, (
                    f"cell {i} glues {glued}: round it with glue(..., digits=...)")
            text = out.get("text", "") + str(data.get("text/plain", ""))
            if not ignored and glued is None:
                assert not FULL_REPR.search(text), (
                    f"cell {i} prints {FULL_REPR.search(text).group()}: format it to the "
                    f"precision its claim needs")


def cells_ending_in_glue(path) -> list[tuple[int, dict]]:
    """The code cells whose last statement is a ``glue(...)`` call."""
    found = []
    for i, cell in enumerate(code_cells(path)):
        try:
            body = ast.parse(cell.source).body
        except SyntaxError:  # IPython syntax (%pip): not a glue cell
            continue
        last = body[-1] if body else None
        if (isinstance(last, ast.Expr) and isinstance(last.value, ast.Call)
                and ast.unparse(last.value.func) in ("glue", "book.glue")):
            found.append((i, cell))
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_cell_shows_a_stray_glued_number(path):
    """A cell that ends by gluing a number shows the plots and prints above it, not a bare
    ``Out[]`` value under it (sseq.book.glue returns None; a stored output made by an older
    glue would still show one)."""
    for i, cell in cells_ending_in_glue(path):
        results = [o for o in cell.outputs if o.output_type == "execute_result"]
        assert not results, f"cell {i} ends with glue(...) and shows Out[]: re-execute it"


def test_cells_ending_in_glue_are_found():
    assert sum(len(cells_ending_in_glue(p)) for p in NOTEBOOKS) >= 10


@pytest.mark.parametrize(("text", "digits"), [
    ("0.15151301551189253", 17), ("0.152", 3), ("83198590546.30171", 16), ("8.3e+10", 2),
    ("1.0", 1), ("2048", 0), ("-0.0385", 3), ("3e-13", 1),
])
def test_significant_digits(text, digits):
    assert significant_digits(text) == digits
