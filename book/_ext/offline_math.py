"""Serve MathJax from the book itself, so that math renders with no network.

Sphinx loads MathJax 3 from a CDN by default: a reader offline sees raw ``\\(h_t\\)``.
This extension copies MathJax 3.2.2 (the version the CDN serves for ``mathjax@3``) from the
pinned ``django-static-mathjax`` package into ``_build/html/_static/mathjax`` and points
``mathjax_path`` at it. The whole ``es5`` tree is copied, as on the CDN: MathJax loads its
fonts, the accessibility components and any TeX package it autoloads relative to the script,
so every one of them is served locally too.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import mathjax  # django-static-mathjax: MathJax's release as package data, no Django needed

MATHJAX_VERSION = "3.2.2"
SOURCE = Path(mathjax.__file__).resolve().parent / "static" / "mathjax" / "es5"
TARGET = "mathjax"  # under _static/
ENTRY = "tex-mml-chtml.js"  # the component Sphinx's default CDN address names
TEX_PACKAGES = ("mathtools",)  # loaded on top of tex-mml-chtml's own


def _check_source() -> None:
    if not (SOURCE / ENTRY).is_file():
        raise RuntimeError(f"MathJax's {ENTRY} is not in {SOURCE}: install the pinned "
                           "django-static-mathjax (make .venv/.installed)")
    if f'VERSION="{MATHJAX_VERSION}"' not in (SOURCE / "startup.js").read_text():
        raise RuntimeError(f"expected MathJax {MATHJAX_VERSION} in {SOURCE}; update "
                           "offline_math.MATHJAX_VERSION with the pin in requirements.txt")


def use_local_mathjax(app, config) -> None:
    """Point ``mathjax_path`` at the local copy and load the TeX packages the book uses.

    ``mathtools`` (``psmallmatrix``, ``\\coloneqq``, ...) is not among the packages that
    ``tex-mml-chtml.js`` loads by itself; its environments are not autoloaded either.
    """
    config.mathjax_path = f"{TARGET}/{ENTRY}"
    mj = config.mathjax3_config = dict(config.mathjax3_config or {})
    loader = mj.setdefault("loader", {})
    loader["load"] = [*loader.get("load", []), *(f"[tex]/{p}" for p in TEX_PACKAGES)]
    packages = mj.setdefault("tex", {}).setdefault("packages", {})
    packages["[+]"] = [*packages.get("[+]", []), *TEX_PACKAGES]


def copy_mathjax(app, exception) -> None:
    """Copy MathJax into the HTML output once the pages are written."""
    if exception is not None or app.builder.format != "html":
        return
    shutil.copytree(SOURCE, Path(app.outdir) / "_static" / TARGET, dirs_exist_ok=True)


def setup(app):
    _check_source()
    app.connect("config-inited", use_local_mathjax)
    app.connect("build-finished", copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
