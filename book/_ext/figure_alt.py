"""Give every notebook figure in the HTML book an alt text.

myst-nb writes a notebook's PNG outputs as ``<img>`` without ``alt``: a screen reader announces
a file name. ``sseq.viz.use_style()`` stores each figure's description (its titles and axis
labels, ``sseq.viz.figure_alt_text``) in the output's metadata as ``image/png.alt``; this
extension puts it on the image. An output stored before that (a notebook not re-executed
since) gets the titles written in the code cell that drew it (``set_title``, ``suptitle``,
``title=``), with the parts computed at run time shown as "…".
"""

from __future__ import annotations

import ast
import base64
import hashlib
import json
import re
from pathlib import Path

from docutils import nodes

TITLE_CALLS = {"set_title", "suptitle", "title"}


def _text(node: ast.AST, nested: bool = False) -> str | None:
    """The text of a string literal, f-string or sum of them (computed parts as "…")."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(part.value if isinstance(part, ast.Constant) else "…"
                       for part in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text(node.left, True), _text(node.right, True)
        if left is not None and right is not None and (left + right).strip("…"):
            return left + right
    return "…" if nested else None


def titles_in_source(source: str) -> list[str]:
    """Titles given in a code cell: ``suptitle(...)``, ``set_title(...)``, ``title=...``.

    IPython magics (``%``/``!`` lines) are skipped; a cell that is not Python gives none.
    """
    code = "\n".join(line for line in source.splitlines()
                     if not line.lstrip().startswith(("%", "!")))
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    found: list[tuple[bool, int, int, str]] = []  # the figure's suptitle first, then in order
    for call in ast.walk(tree):
        if not isinstance(call, ast.Call):
            continue
        name = getattr(call.func, "attr", getattr(call.func, "id", ""))
        candidates = list(call.args[:1]) if name in TITLE_CALLS else []
        candidates += [kw.value for kw in call.keywords if kw.arg == "title"]
        for node in candidates:
            if (text := _text(node)) and text.strip():
                text = re.sub("…+", "…", text.strip())
                found.append((name != "suptitle", node.lineno, node.col_offset, text))
    return list(dict.fromkeys(text for *_, text in sorted(found)))


def alt_from_source(source: str) -> str | None:
    """Alt text from the titles in the cell that drew the figure, or None if it has none."""
    titles = [t.rstrip(".") for t in titles_in_source(source)]
    return ". ".join(titles) + "." if titles else None


def png_alt_texts(notebook: dict) -> dict[str, str]:
    """``{sha256 of the PNG bytes: alt text}`` for every PNG output of a notebook.

    myst-nb names each image file by that hash, so it identifies the output of an ``<img>``.
    """
    alts = {}
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        source = "".join(cell.get("source", ""))
        for output in cell.get("outputs", []):
            png = output.get("data", {}).get("image/png")
            if png is None:
                continue
            digest = hashlib.sha256(base64.b64decode("".join(png))).hexdigest()
            alt = output.get("metadata", {}).get("image/png", {}).get("alt")
            alt = alt or alt_from_source(source)
            if alt:
                alts[digest] = alt
    return alts


def add_alt_texts(app, doctree) -> None:
    """Set ``alt`` on the images of a notebook page that have none."""
    path = Path(app.env.doc2path(app.env.docname))
    if path.suffix != ".ipynb":
        return
    alts = png_alt_texts(json.loads(path.read_text(encoding="utf-8")))
    for image in doctree.findall(nodes.image):
        digest = Path(image["uri"]).stem
        if not image.get("alt") and digest in alts:
            image["alt"] = alts[digest]


def setup(app):
    app.connect("doctree-read", add_alt_texts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
