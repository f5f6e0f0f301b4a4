"""What a reader must get from a page, each as a function returning a list of problems.

An empty list means the page passes. The browser-side checks take a Playwright page that has
finished loading (see ``harness.open_page``); the others work on what the walk collected, so
they can be tested on small synthetic pages (``browser_checkers.py``) as well as on the book.
"""

from __future__ import annotations

import html.parser
import re
from collections import Counter
from pathlib import Path
from urllib.parse import unquote, urlsplit

import snowballstemmer
from playwright.sync_api import TimeoutError as PlaywrightTimeout

MATH_TIMEOUT_MS = 20_000


def _load_js(path: Path) -> dict[str, str]:
    """The functions of ``checks.js``, by the name after their ``// @`` line."""
    blocks = re.split(r"^// @(\w+)\n", path.read_text(encoding="utf-8"), flags=re.M)
    return {name: body.strip() for name, body in zip(blocks[1::2], blocks[2::2], strict=True)}


JS = _load_js(Path(__file__).with_name("checks.js"))

_FILE_NAME = re.compile(r"\.(png|jpe?g|gif|svg|webp)$|_images/|^data:", re.I)


def math_problems(page) -> list[str]:
    """Formulas left raw, MathJax errors, raw TeX delimiters in the visible text."""
    ready = page.evaluate(JS["math_ready"], MATH_TIMEOUT_MS)
    has_math = page.evaluate("() => document.querySelectorAll('.math').length > 0")
    problems = page.evaluate(JS["math_problems"], ready)
    if has_math and ready != "ok":
        problems.insert(0, f"MathJax did not typeset the page ({ready})")
    return list(dict.fromkeys(problems))  # an error node can match two selectors


def _short_src(src: str) -> str:
    return src[:60] + "…" if len(src) > 60 else src


def figure_problems(page) -> list[str]:
    """Images that did not load, show at zero size, or have no alt text worth the name."""
    problems = []
    for img in page.evaluate(JS["images"]):
        src = _short_src(img["src"])
        if not img["complete"] or min(img["natural"]) == 0:
            problems.append(f"image not loaded: {src}")
        elif img["shown"] and min(img["size"]) == 0:
            problems.append(f"image shown at zero size: {src}")
        alt = (img["alt"] or "").strip()
        if not img["decorative"] and (not alt or _FILE_NAME.search(alt)):
            problems.append(f"image without alt text: {src} (alt={img['alt']!r})")
    return problems


def solution_problems(page) -> list[str]:
    """Solutions shown before a click, or not shown after one (the click opens them)."""
    problems = []
    for i, sol in enumerate(page.evaluate(JS["solutions"])):
        if sol["parts"] == 0:
            problems.append(f"solution {sol['id']} is empty")
            continue
        if sol["shown"]:
            problems.append(f"solution {sol['id']} ({sol['title']}) is open before a click")
            continue
        button = page.locator(f'.solution[data-hnr-index="{i}"] .toggle-button').first
        if not button.count():
            problems.append(f"solution {sol['id']} ({sol['title']}) has no button to open it")
            continue
        button.click()
        try:  # the toggle's CSS transition takes a moment (longer on a busy machine)
            page.wait_for_function(JS["solution_shown"], arg=i, timeout=10_000)
        except PlaywrightTimeout:
            problems.append(f"solution {sol['id']} ({sol['title']}) does not open on click")
    return problems


def phone_problems(page, viewport: dict) -> list[str]:
    """Anything in the text column wider than a phone's screen (the page scrolls sideways)."""
    page.set_viewport_size(viewport)
    page.wait_for_timeout(100)  # layout after the resize
    return page.evaluate(JS["overflow"])


def page_links(page) -> list[str]:
    """Every link of the page, resolved to an absolute address."""
    return page.evaluate(JS["links"])


class _Ids(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name == "id" or (tag == "a" and name == "name"):
                self.ids.add(value or "")


def anchors(path: Path) -> set[str]:
    """The ids (and ``<a name>``) of an HTML file: the targets of its ``#fragment`` links."""
    parser = _Ids()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return parser.ids


def link_problems(links: list[str], site: str, root: Path, cache: dict | None = None) -> list[str]:
    """Internal links (under ``site``, served from ``root``) to missing files or anchors."""
    cache = {} if cache is None else cache
    problems = []
    for link in dict.fromkeys(links):
        if not link.startswith(site):
            continue
        parts = urlsplit(link)
        rel = unquote(parts.path[len(urlsplit(site).path):]) or "index.html"
        target = root / rel
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            problems.append(f"broken link: {rel}")
            continue
        fragment = unquote(parts.fragment)
        if fragment and target.suffix == ".html":
            if target not in cache:
                cache[target] = anchors(target)
            if fragment not in cache[target]:
                problems.append(f"broken anchor: {rel}#{fragment}")
    return problems


def launch_problems(links: list[str], notebook: str, config: dict) -> list[str]:
    """The Colab and Binder buttons must open ``notebook`` (a path in the repository)."""
    repo = config["repository"]
    owner_repo = urlsplit(repo["url"]).path.strip("/").removesuffix(".git")
    branch = repo.get("branch", "main")
    path = "/".join(p for p in (repo.get("path_to_book", "").strip("/"), notebook) if p)
    launch = config.get("launch_buttons", {})
    ui = "lab/tree" if launch.get("notebook_interface") == "jupyterlab" else "tree"
    expected = {}
    if launch.get("colab_url"):
        expected["Colab"] = (f"{launch['colab_url'].rstrip('/')}/github/{owner_repo}/blob/"
                             f"{branch}/{path}")
    if launch.get("binderhub_url"):
        expected["Binder"] = (f"{launch['binderhub_url'].rstrip('/')}/v2/gh/{owner_repo}/"
                              f"{branch}?urlpath={ui}/{path}")
    return [f"no {name} button opening {url}" for name, url in expected.items()
            if url not in links]


def prose(page) -> str:
    return page.evaluate(JS["prose"])


def words(text: str) -> Counter:
    return Counter(w.lower() for w in re.findall(r"[A-Za-z]{7,}", text))


def distinctive_term(own: str, others: list[str]) -> str | None:
    """The word of ``own`` (7+ letters) used most there whose stem no text of ``others`` has.

    Stems as Sphinx's English search makes them (Porter), so that searching the word finds
    this page alone: "signals" is not distinctive where another page says "signal".
    """
    stem = snowballstemmer.stemmer("porter").stemWord
    elsewhere = {stem(w) for w in re.findall(r"[a-z]+", " ".join(others).lower())}
    candidates = [(-n, w) for w, n in words(own).items() if stem(w) not in elsewhere]
    return min(candidates)[1] if candidates else None


def search_results(page, site: str, term: str) -> list[str]:
    """The pages the book's search lists for ``term`` (paths relative to the site)."""
    page.goto(f"{site}search.html?q={term}", wait_until="load")
    page.wait_for_function(JS["search_done"], timeout=20_000)
    hrefs = page.evaluate(JS["search_hits"])
    return [urlsplit(h).path[len(urlsplit(site).path):] for h in hrefs]


FIGURE_CODE = re.compile(r"\bplt\.(subplots|figure|subplot_mosaic)\(|(\b|_)explorer\(")


def figure_cells(notebook: dict) -> list[tuple[int, str]]:
    """``(index among the page's code cells, first line)`` of each cell that draws a figure.

    A cell draws a figure when its code makes one (``plt.subplots``, ``plt.figure``,
    ``plt.subplot_mosaic``) or opens an explorer (``explorer(...)``, ``*_explorer(...)``),
    unless its output is removed (tag ``remove-output``). Cells tagged ``remove-cell`` are
    not on the page, so they do not count in the index.
    """
    found, index = [], 0
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        tags = set(cell.get("metadata", {}).get("tags", []))
        if "remove-cell" in tags:
            continue
        source = "".join(cell.get("source", ""))
        if FIGURE_CODE.search(source) and "remove-output" not in tags:
            found.append((index, source.strip().splitlines()[0]))
        index += 1
    return found


def figure_cell_problems(page, notebook: dict) -> list[str]:
    """Each cell of the notebook that draws a figure shows one on the page."""
    images = page.evaluate(JS["cell_images"])  # loaded images of each code cell on the page
    expected_cells = sum(
        1 for c in notebook.get("cells", []) if c.get("cell_type") == "code"
        and "remove-cell" not in c.get("metadata", {}).get("tags", []))
    if len(images) != expected_cells:
        return [f"the page shows {len(images)} code cells, the notebook has {expected_cells}"]
    return [f"code cell {i + 1} ({first!r}) draws a figure but the page shows none"
            for i, first in figure_cells(notebook) if not images[i]]
