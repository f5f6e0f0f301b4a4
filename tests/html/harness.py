"""A local web server and a headless Chromium that records what each page does.

The browser is Debian's ``chromium`` driven by Playwright (Playwright's own browser
download is not used). Every request is routed through :class:`Visit`: requests to the
local server go through, any other is recorded and aborted, so a page that needs the
network fails its test instead of quietly fetching.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
LOCAL_SCHEMES = {"data", "blob", "about"}
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}  # a phone held upright (CSS pixels)


def chromium_path() -> str:
    """The Chromium to drive: $CHROMIUM, else ``chromium`` on the PATH."""
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which(
        "chromium-browser")
    if not path:
        raise RuntimeError("no Chromium found: install Debian's (apt-get install chromium) "
                           "or set CHROMIUM=/path/to/chromium")
    return path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a tab closed mid-transfer
            super().handle_error(request, client_address)


class Server:
    """Serve a folder on 127.0.0.1 (a free port) from a background thread."""

    def __init__(self, root: Path):
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.httpd = _Server(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def launch(playwright):
    """Headless Chromium with the flags that keep it off the network."""
    return playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in LOCAL_SCHEMES or parts.hostname in LOCAL_HOSTS


@dataclass
class Visit:
    """What one page did while it loaded: requests leaving the machine, errors, failures."""

    external: list[str] = field(default_factory=list)
    js_errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def attach(self, page) -> None:
        page.route("**/*", self._route)
        page.on("pageerror", lambda err: self.js_errors.append(f"uncaught: {err}"))
        page.on("console", self._console)
        page.on("requestfailed", self._request_failed)
        page.on("response", self._response)

    def _route(self, route) -> None:
        url = route.request.url
        if is_local(url):
            route.continue_()
        else:
            self.external.append(url)
            route.abort("blockedbyclient")

    def _console(self, message) -> None:
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.js_errors.append(f"console.error: {message.text}")

    def _request_failed(self, request) -> None:
        if is_local(request.url):
            self.failed.append(f"{request.url} ({request.failure})")

    def _response(self, response) -> None:
        if response.status >= 400:
            self.failed.append(f"{response.url} (HTTP {response.status})")


def open_page(context, url: str, viewport: dict | None = None):
    """Open ``url`` in a new tab of ``context``; return the tab and its :class:`Visit`."""
    page = context.new_page()
    if viewport:
        page.set_viewport_size(viewport)
    visit = Visit()
    visit.attach(page)
    page.goto(url, wait_until="load")
    return page, visit
