"""Show each ipywidgets explorer in the HTML book as what it is there: a snapshot.

A notebook stores an explorer as widget state: its controls and, in an ``Output`` widget,
the figure the explorer drew for their initial values. myst-nb would render that state with
require.js and the ipywidgets HTML manager, both fetched from CDNs; the page would then show
sliders that move but change nothing, since no kernel runs behind a static page.

This extension replaces each widget view by the explorer's snapshot: the captured figures
(with their alt text), the values of the controls they were drawn for, and a note that the
explorer runs in the notebook (the launch buttons open it in Colab or Binder). The page
loads no widget JavaScript and embeds no widget state.
"""

from __future__ import annotations

import json
import re

from docutils import nodes

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
_VIEW_SCRIPT = re.compile(r'<script type="' + re.escape(WIDGET_VIEW) + r'">(.*)</script>', re.S)
CONTROL_MODELS = ("Slider", "Dropdown", "Checkbox", "ToggleButtons", "RadioButtons", "Select",
                  "Text", "IntText", "FloatText", "BoundedIntText", "BoundedFloatText")


def _loads(text: str):
    """Parse JSON that may have been encoded more than once (myst-nb double-encodes views)."""
    value = json.loads(text.replace("<\\/", "</"))
    while isinstance(value, str):
        value = json.loads(value)
    return value


def _children(model: dict) -> list[str]:
    refs = model["state"].get("children", [])
    return [ref.removeprefix("IPY_MODEL_") for ref in refs]


def walk(state: dict, model_id: str) -> list[dict]:
    """Every widget model under ``model_id`` (itself included), depth first, in display order."""
    model = state.get(model_id)
    if model is None:
        return []
    found = [model]
    for child in _children(model):
        found += walk(state, child)
    return found


def control_value(model: dict) -> str | None:
    """``'description = value'`` for a control (slider, dropdown, ...), or None for others."""
    name, s = model["model_name"], model["state"]
    if not name.removesuffix("Model").endswith(CONTROL_MODELS) or "description" not in s:
        return None
    value = s.get("value")
    if "index" in s and "_options_labels" in s:  # selection widgets store the index
        index = s["index"]
        value = s["_options_labels"][index] if isinstance(index, int) else None
    if isinstance(value, float):
        value = f"{value:.4g}"
    return f"{s['description'].rstrip(':')} = {value}"


def snapshot(state: dict, model_id: str) -> tuple[list[str], list[dict]]:
    """The controls' values and the outputs captured by the explorer's Output widgets."""
    controls, outputs = [], []
    for model in walk(state, model_id):
        if (text := control_value(model)) is not None:
            controls.append(text)
        if model["model_name"] == "OutputModel":
            outputs += model["state"].get("outputs", [])
    return controls, outputs


def _output_nodes(output: dict, controls: list[str]) -> list[nodes.Node]:
    data = output.get("data", {})
    if output.get("output_type") == "stream":
        return [nodes.literal_block(text="".join(output.get("text", "")))]
    if "image/png" in data:
        alt = output.get("metadata", {}).get("image/png", {}).get("alt")
        if not alt:  # executed before sseq.viz described its figures
            alt = "Explorer figure" + (f" for {', '.join(controls)}" if controls else "")
        png = "".join(data["image/png"]).replace("\n", "")
        return [nodes.image(uri=f"data:image/png;base64,{png}", alt=alt,
                            classes=["hnr-explorer-figure"])]
    if "text/plain" in data:
        return [nodes.literal_block(text="".join(data["text/plain"]))]
    return []


def explorer_node(state: dict, model_id: str) -> nodes.Element:
    """The snapshot of one explorer, as docutils nodes."""
    controls, outputs = snapshot(state, model_id)
    box = nodes.container(classes=["hnr-explorer"])
    note = nodes.paragraph(classes=["hnr-explorer-note"])
    note += nodes.strong(text="Interactive explorer. ")
    shown = f"Shown here for {', '.join(controls)}. " if controls else ""
    note += nodes.Text(shown + "Run this chapter as a notebook (the rocket icon at the top "
                       "of the page opens it in Colab or Binder) to move the controls.")
    box += note
    for output in outputs:
        box.extend(_output_nodes(output, controls))
    return box


def replace_widget_views(app, doctree) -> None:
    """Swap myst-nb's widget-view scripts for snapshots; drop the page's widget state."""
    from myst_nb.sphinx_ import NbMetadataCollector

    js_files = NbMetadataCollector.get_doc_data(app.env).get(app.env.docname, {}).get(
        "js_files", {})
    state_entry = js_files.pop("ipywidgets_state", None)
    for key in [k for k in js_files if k.startswith("ipywidgets_")]:
        del js_files[key]
    state = _loads(state_entry[1]["body"])["state"] if state_entry else {}
    for raw in list(doctree.findall(nodes.raw)):
        match = _VIEW_SCRIPT.fullmatch(raw.astext().strip())
        if match:
            model_id = _loads(match.group(1))["model_id"]
            raw.replace_self(explorer_node(state, model_id))


def setup(app):
    # Before Sphinx collects the images (priority 500): the snapshots are images too.
    app.connect("doctree-read", replace_widget_views, priority=400)
    app.add_css_file("hnr-explorer.css")
    return {"parallel_read_safe": False, "parallel_write_safe": True}
