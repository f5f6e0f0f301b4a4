"""Walk the built book in the browser once, page by page, and keep what each page showed."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

import yaml

from tests.html import checks
from tests.html.harness import DESKTOP, PHONE, Server, Visit, launch, open_page
from tests.toc import ROOT, chapter_notebooks

HTML = Path(os.environ.get("BOOK_HTML", ROOT / "_build" / "html")).resolve()
SCREENS = HTML.parent / "screens"
NOT_PAGES = ("_static", "_sources", "_images")  # theme assets, sources, figures
REFRESH = re.compile(r'<meta http-equiv="refresh" content="0; url=([^"]+)"', re.I)


def book_pages(html: Path = HTML) -> list[str]:
    """Every HTML page of the built book, relative to its root."""
    return sorted(p.relative_to(html).as_posix() for p in html.rglob("*.html")
                  if p.relative_to(html).parts[0] not in NOT_PAGES)


def chapters() -> list[tuple[str, str]]:
    """``(notebook, page)`` for every chapter of _toc.yml, both relative to the repository."""
    found = []
    for nb in chapter_notebooks():
        rel = nb.relative_to(ROOT).as_posix()
        found.append((rel, rel.removesuffix(".ipynb") + ".html"))
    return found


def book_config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text())


@dataclass
class Report:
    """Everything one page showed the browser."""

    visit: Visit
    math: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    figure_cells: list[str] = field(default_factory=list)
    solutions: list[str] = field(default_factory=list)
    phone: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    prose: str = ""


class BookWalk:
    """A browser on the built book served from 127.0.0.1; each page is visited once."""

    def __init__(self, playwright, html: Path = HTML):
        if not (html / "index.html").is_file():
            raise FileNotFoundError(f"no built book in {html}: run 'make book' first")
        self.html = html
        self.server = Server(html).__enter__()
        self.site = self.server.url
        self.browser = launch(playwright)
        self.context = self.browser.new_context(viewport=DESKTOP, service_workers="block")
        self.reports: dict[str, Report] = {}
        self.anchor_cache: dict = {}
        self.notebooks = {page: nb for nb, page in chapters()}

    def close(self) -> None:
        self.context.close()
        self.browser.close()
        self.server.__exit__(None)

    def report(self, page_path: str) -> Report:
        if page_path not in self.reports:
            self.reports[page_path] = self._visit(page_path)
        return self.reports[page_path]

    def _visit(self, page_path: str) -> Report:
        redirect = REFRESH.search((self.html / page_path).read_text(encoding="utf-8"))
        if redirect:  # the root index.html sends the reader to the landing page
            target = urljoin(self.site + page_path, redirect.group(1))
            page, visit = open_page(self.context, self.site + page_path, DESKTOP)
            page.wait_for_url(target)
            page.close()
            return Report(visit=visit, links=[target])
        page, visit = open_page(self.context, self.site + page_path, DESKTOP)
        try:
            report = Report(visit=visit)
            report.math = checks.math_problems(page)
            report.figures = checks.figure_problems(page)
            notebook = self.notebooks.get(page_path)
            if notebook:
                nb = json.loads((ROOT / notebook).read_text(encoding="utf-8"))
                report.figure_cells = checks.figure_cell_problems(page, nb)
                self._screenshot(page, page_path, "")
            report.links = checks.page_links(page)
            report.prose = checks.prose(page)
            report.solutions = checks.solution_problems(page)
            report.phone = checks.phone_problems(page, PHONE)
            if notebook:
                self._screenshot(page, page_path, "-phone")
            page.wait_for_load_state("networkidle")
        finally:
            page.close()
        return report

    def _screenshot(self, page, page_path: str, suffix: str) -> None:
        SCREENS.mkdir(parents=True, exist_ok=True)
        page.evaluate("() => window.scrollTo(0, 0)")
        page.screenshot(path=SCREENS / f"{Path(page_path).stem}{suffix}.png")

    def link_problems(self, page_path: str) -> list[str]:
        return checks.link_problems(self.report(page_path).links, self.site, self.html,
                                    self.anchor_cache)

    def search(self, term: str) -> tuple[list[str], list[str]]:
        """The pages the search lists for ``term``, and any request that left the machine."""
        page, visit = open_page(self.context, self.site + "search.html")
        try:
            results = checks.search_results(page, self.site, term)
        finally:
            page.close()
        return results, visit.external
