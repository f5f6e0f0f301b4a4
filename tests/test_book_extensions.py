"""The book's Sphinx extensions (book/_ext): local MathJax, figure alt texts, explorer
snapshots, each script once. The built pages are tested in a browser by tests/html."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from docutils import nodes
from sphinx.builders.html._assets import _JavaScript

EXT = Path(__file__).resolve().parents[1] / "book" / "_ext"


def _extension(name: str):
    spec = importlib.util.spec_from_file_location(name, EXT / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


offline_math = _extension("offline_math")
figure_alt = _extension("figure_alt")
static_explorers = _extension("static_explorers")
page_scripts = _extension("page_scripts")

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n not really an image").decode()


def test_mathjax_comes_from_the_pinned_package_with_its_fonts():
    offline_math._check_source()  # the version the extension expects
    assert (offline_math.SOURCE / "tex-mml-chtml.js").is_file()
    assert (offline_math.SOURCE / "output" / "chtml" / "fonts" / "woff-v2").is_dir()
    assert (offline_math.SOURCE / "input" / "tex" / "extensions" / "mathtools.js").is_file()


def test_mathjax_path_is_local_and_keeps_the_other_settings():
    config = SimpleNamespace(mathjax_path="https://cdn.example/mathjax.js",
                             mathjax3_config={"options": {"processHtmlClass": "math"}})
    offline_math.use_local_mathjax(None, config)
    assert config.mathjax_path == "mathjax/tex-mml-chtml.js"
    assert "://" not in config.mathjax_path
    assert config.mathjax3_config == {
        "options": {"processHtmlClass": "math"},
        "loader": {"load": ["[tex]/mathtools"]},
        "tex": {"packages": {"[+]": ["mathtools"]}},
    }


@pytest.mark.parametrize("source,titles", [
    ('fig.suptitle("All")\nax.set(title="Left", xlabel="t")\nax2.set_title("Right")',
     ["All", "Left", "Right"]),
    ('ax.set(title=f"LegS at t = {t} s")', ["LegS at t = … s"]),
    ('ax.set(title=f"HiPPO-{m[:3]}" f"{m[3]} (N = {N}" + ("" if a else f", θ = {b}") + ")")',
     ["HiPPO-… (N = …)"]),
    ("%matplotlib inline\nplt.title('Magic lines are skipped')", ["Magic lines are skipped"]),
    ("ax.set(title=name)", []),
    ("this is not python(", []),
])
def test_titles_are_read_from_the_cell_that_drew_the_figure(source, titles):
    assert figure_alt.titles_in_source(source) == titles


def _notebook(metadata: dict, source: str = 'ax.set_title("From the code")') -> dict:
    output = {"output_type": "display_data", "data": {"image/png": PNG}, "metadata": metadata}
    return {"cells": [{"cell_type": "markdown", "source": "text"},
                      {"cell_type": "code", "source": source, "outputs": [output]}]}


def test_the_alt_text_stored_with_the_figure_wins():
    digest = hashlib.sha256(base64.b64decode(PNG)).hexdigest()
    stored = _notebook({"image/png": {"alt": "Stored by sseq.viz."}})
    assert figure_alt.png_alt_texts(stored) == {digest: "Stored by sseq.viz."}
    assert figure_alt.png_alt_texts(_notebook({})) == {digest: "From the code."}
    assert figure_alt.png_alt_texts(_notebook({}, source="plt.plot(x)")) == {}


def _state() -> dict:
    png_output = {"output_type": "display_data", "data": {"image/png": PNG},
                  "metadata": {"image/png": {"alt": "Recall against distance."}}}
    return {
        "box": {"model_name": "VBoxModel", "state": {
            "children": ["IPY_MODEL_n", "IPY_MODEL_kind", "IPY_MODEL_rho", "IPY_MODEL_out"]}},
        "n": {"model_name": "IntSliderModel", "state": {"description": "state size n",
                                                        "value": 16}},
        "kind": {"model_name": "DropdownModel", "state": {
            "description": "kind", "index": 1, "_options_labels": ["diagonal", "orthogonal"]}},
        "rho": {"model_name": "FloatSliderModel", "state": {"description": "ρ",
                                                            "value": 0.949999999}},
        "out": {"model_name": "OutputModel", "state": {"outputs": [
            {"output_type": "stream", "name": "stdout", "text": "recall 0.8\n"}, png_output]}},
    }


def test_an_explorer_snapshot_lists_its_controls_and_captured_outputs():
    controls, outputs = static_explorers.snapshot(_state(), "box")
    assert controls == ["state size n = 16", "kind = orthogonal", "ρ = 0.95"]
    assert [o["output_type"] for o in outputs] == ["stream", "display_data"]
    assert static_explorers.snapshot(_state(), "missing") == ([], [])


def test_an_explorer_becomes_a_note_and_its_figure_with_alt_text():
    box = static_explorers.explorer_node(_state(), "box")
    note, text, image = box.children
    assert "Shown here for state size n = 16, kind = orthogonal, ρ = 0.95." in note.astext()
    assert "Colab or Binder" in note.astext()
    assert isinstance(text, nodes.literal_block) and text.astext() == "recall 0.8\n"
    assert image["uri"] == f"data:image/png;base64,{PNG}"
    assert image["alt"] == "Recall against distance."


def test_an_explorer_figure_without_stored_alt_text_is_described_by_its_controls():
    state = _state()
    state["out"]["state"]["outputs"][1]["metadata"] = {}
    image = static_explorers.explorer_node(state, "box").children[-1]
    assert image["alt"] == "Explorer figure for state size n = 16, kind = orthogonal, ρ = 0.95"


def test_widget_views_are_parsed_however_often_myst_nb_encoded_them():
    view = {"model_id": "box", "version_major": 2}
    assert static_explorers._loads(json.dumps(json.dumps(view))) == view
    assert static_explorers._loads(json.dumps(view).replace("/", "<\\/")) == view


def test_each_script_is_included_once():
    scripts = [_JavaScript("a.js"), _JavaScript(None, body="const X = 1"),
               _JavaScript("", body="const X = 1"), _JavaScript("a.js"),
               _JavaScript("b.js", **{"async": "async"}), _JavaScript("b.js")]
    page_scripts.drop_duplicate_scripts(None, "page", "page.html", {"script_files": scripts},
                                        None)
    assert [(s.filename, s.attributes) for s in scripts] == [
        ("a.js", {}), (None, {"body": "const X = 1"}), ("b.js", {"async": "async"}),
        ("b.js", {})]
