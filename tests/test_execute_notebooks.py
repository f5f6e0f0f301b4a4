"""tests/execute_notebooks.py (``make execute``) survives a kernel that loses a reply."""

from __future__ import annotations

import asyncio

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tests import execute_notebooks


def _lose_every_reply(monkeypatch):
    """The failure seen with ipykernel 7: outputs and "idle" arrive, the shell reply never."""
    async def never(self, *args, **kwargs):
        await asyncio.sleep(3600)
    monkeypatch.setattr(NotebookClient, "_async_poll_for_reply", never)
    monkeypatch.setattr(execute_notebooks._Client, "GRACE_S", 0.2)


def _notebook(*sources):
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])


@pytest.mark.timeout(120)
def test_a_lost_reply_does_not_stall_execution(monkeypatch, tmp_path):
    _lose_every_reply(monkeypatch)
    nb = _notebook("x = 6 * 7\nprint(x)", "x + 1")
    execute_notebooks._Client(nb, timeout=60, kernel_name="python3").execute()
    assert nb.cells[0].outputs[0].text == "42\n"
    assert nb.cells[1].outputs[0].data["text/plain"] == "43"
    assert [c.execution_count for c in nb.cells] == [1, 2]


@pytest.mark.timeout(120)
def test_a_lost_reply_to_a_failing_cell_still_raises(monkeypatch):
    _lose_every_reply(monkeypatch)
    nb = _notebook("1 / 0", "print('not reached')")
    with pytest.raises(CellExecutionError, match="ZeroDivisionError"):
        execute_notebooks._Client(nb, timeout=60, kernel_name="python3").execute()
    assert nb.cells[1].outputs == []
