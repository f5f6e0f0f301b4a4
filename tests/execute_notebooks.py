"""Execute chapter notebooks top to bottom, store their outputs, print their run times.

    python tests/execute_notebooks.py                     # every chapter in _toc.yml
    python tests/execute_notebooks.py chapters/01_*.ipynb # some
    python tests/execute_notebooks.py --dry-run           # time them, save nothing

Used by ``make execute`` and ``make timings``. Each notebook runs in a fresh kernel of
this environment, in its own folder, with widget state stored so that the HTML book
can show the widgets.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from toc import chapter_notebooks  # noqa: E402

BUDGET_S = 60.0  # every chapter must run within this on a 2-core CPU
WIDGET = "application/vnd.jupyter.widget-view+json"
IGNORE = "nbval-ignore-output"


def tag_widget_cells(nb) -> None:
    """Widgets draw through the front end, which nbval does not emulate: it sees the
    plots an interactive widget draws as plain outputs. Their cells are not compared."""
    for cell in nb.cells:
        if any(WIDGET in out.get("data", {}) for out in cell.get("outputs", [])):
            tags = cell.metadata.setdefault("tags", [])
            if IGNORE not in tags:
                tags.append(IGNORE)


class _Client(NotebookClient):
    """nbclient, except that a lost ``execute_reply`` does not stall it forever.

    With ipykernel 7 the kernel sometimes never sends a cell's reply on the shell channel
    (seen after a widget cell: the outputs and the "idle" status arrive, then nothing): nbclient
    then waits out its timeout and fails. Once the cell's outputs are complete and no reply has
    come for ``GRACE_S``, the reply is made from the outputs (an error output means "error").
    """

    GRACE_S = 10.0

    async def _async_poll_for_reply(self, msg_id, cell, timeout, task_poll_output_msg,
                                    task_poll_kernel_alive):
        reply = asyncio.ensure_future(super()._async_poll_for_reply(
            msg_id, cell, timeout, task_poll_output_msg, task_poll_kernel_alive))
        await asyncio.wait([reply, task_poll_output_msg], return_when=asyncio.FIRST_COMPLETED)
        if not reply.done() and task_poll_output_msg.done():
            await asyncio.wait([reply], timeout=self.GRACE_S)
        if reply.done():
            return reply.result()
        reply.cancel()
        task_poll_kernel_alive.cancel()
        self.log.warning("cell %s: no execute_reply; taking its outputs as the reply", msg_id)
        errors = [o for o in cell.outputs if o.output_type == "error"]
        content = ({"status": "error", "ename": errors[0].ename, "evalue": errors[0].evalue,
                    "traceback": errors[0].traceback} if errors else {"status": "ok"})
        return {"parent_header": {"msg_id": msg_id}, "content": content}


def execute(path: Path, *, save: bool) -> float:
    nb = nbformat.read(path, as_version=4)
    client = _Client(nb, timeout=600, kernel_name="python3", record_timing=False,
                            store_widget_state=True,
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    if save:
        tag_widget_cells(nb)
        nbformat.write(nb, path)
    return seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--dry-run", action="store_true", help="time only; do not save")
    args = parser.parse_args(argv)
    paths = args.notebooks or chapter_notebooks()
    slow = []
    for path in paths:
        seconds = execute(path, save=not args.dry_run)
        flag = "" if seconds <= BUDGET_S else f"  (over the {BUDGET_S:.0f} s budget)"
        print(f"{seconds:7.1f} s  {path}{flag}", flush=True)
        slow += [path] if flag else []
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
