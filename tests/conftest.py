"""Shared test configuration: deterministic seeds, and per-notebook run times for nbval."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_notebook_seconds: dict[str, float] = defaultdict(float)


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same seeds, so failures reproduce."""
    import sseq

    sseq.seed_everything(0)
    yield


def pytest_runtest_logreport(report):
    # nbval makes one test item per cell; add up the cells of each notebook.
    if report.nodeid.split("::")[0].endswith(".ipynb") and report.when == "call":
        _notebook_seconds[report.nodeid.split("::")[0]] += report.duration


def pytest_terminal_summary(terminalreporter):
    if not _notebook_seconds:
        return
    terminalreporter.section("notebook execution times (cells only, kernel start excluded)")
    for path, seconds in sorted(_notebook_seconds.items()):
        terminalreporter.write_line(f"{seconds:7.1f} s  {path}")


def pytest_collection_modifyitems(config, items):
    """GPU tests are skipped on machines without CUDA."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


os.environ.setdefault("MPLBACKEND", "Agg")
