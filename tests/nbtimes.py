"""pytest plugin for the nbval run (``-p tests.nbtimes``): print each notebook's run time.

nbval makes one test item per cell; this adds up the cells of each notebook.
"""

from __future__ import annotations

from collections import defaultdict

_seconds: dict[str, float] = defaultdict(float)
BUDGET_S = 60.0


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb") and report.when == "call":
        _seconds[path] += report.duration


def pytest_terminal_summary(terminalreporter):
    if not _seconds:
        return
    terminalreporter.section("notebook execution times (cells only, kernel start excluded)")
    for path, seconds in sorted(_seconds.items()):
        flag = "" if seconds <= BUDGET_S else f"  (over the {BUDGET_S:.0f} s budget)"
        terminalreporter.write_line(f"{seconds:7.1f} s  {path}{flag}")
    terminalreporter.write_line(
        f"(the {BUDGET_S:.0f} s budget is for a chapter run alone on a 2-core CPU; under make test "
        "the book builds alongside, so `make timings` is the measure)")
