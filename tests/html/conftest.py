"""Fixtures of the browser tests: one Playwright driver and one walk of the book per run."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def playwright():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def walk(playwright):
    from tests.html.walk import BookWalk

    book = BookWalk(playwright)
    yield book
    book.close()


@pytest.fixture(autouse=True)
def _seeded():
    """The browser tests draw no random numbers: no need to import sseq (and torch)."""
    yield
