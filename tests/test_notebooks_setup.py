"""Every chapter follows the notebook rules, and the Colab install path works.

nbval (``make notebooks``) re-runs the chapters; these tests check what nbval cannot:
the setup cell agrees with ``_config.yml``, the stored outputs were made top to bottom
without errors or warnings, and ``pip install`` from the repository URL installs a
working ``sseq`` — run here against a clone of this repository, the way Colab would.
"""

from __future__ import annotations

import os
import re
import subprocess
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
    assert "remove-output" in first.metadata.get("tags", [])


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


@pytest.mark.slow
def test_colab_install_path_against_a_local_clone(tmp_path):
    """Install sseq exactly as the setup cell does on Colab, from a clone of this repo."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    setup = expected_setup_cell(url=f"file://{clone}")
    spec = re.search(r'%pip install -q "(.+)"', setup).group(1)
    site = tmp_path / "site"
    # Colab already has torch & co.: install sseq alone, from source, as pip would.
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target", str(site), spec], check=True)
    probe = ("import sseq, sseq.exercises, sseq.checks, sseq.viz; "
             "print(sseq.__version__, sseq.__file__)")
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env,
                         capture_output=True, text=True, check=True).stdout.split()
    assert out[1].startswith(str(site))
    import sseq

    assert out[0] == sseq.__version__
