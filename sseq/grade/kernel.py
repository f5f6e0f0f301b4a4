"""A learner's kernel, run by nbclient, that a submission cannot stall or kill for good.

Every cell runs under a time limit, and under what is left of the notebook's own limit. A cell
that runs past its limit, or a kernel that dies (``os._exit``, a crash), costs that cell only:
the kernel is replaced by a fresh one and the cells that ran before are replayed, so the
exercises after it are still graded. The grader's probes (:mod:`sseq.grade.probe`) run through
the same door.
"""

from __future__ import annotations

import ast
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from sseq.grade.probe import MIME

__all__ = ["CellResult", "KernelSession", "without_checker_calls"]


def without_checker_calls(source: str) -> str:
    """The cell's code without its top-level ``sseq.checks.chNN.check_*(...)`` statements."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    drop = set()
    for node in tree.body:
        if (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
                and ast.unparse(node.value.func).startswith("sseq.checks.")):
            drop.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    lines = source.splitlines()
    return "\n".join(line for number, line in enumerate(lines, 1) if number not in drop)


@dataclass
class CellResult:
    """``status`` is ok, error, timeout, died or deadline; ``detail`` says more."""

    status: str
    detail: str = ""
    outputs: list | None = None


class KernelSession:
    """Run a notebook's cells one by one in a fresh kernel, with recovery and time limits.

    Args:
        nb: the notebook (its cells receive their outputs as they run).
        cwd: the kernel's working folder.
        cell_timeout: seconds one cell may run.
        notebook_timeout: seconds all of them (and the grader's probes) may run together.
        on_kernel: called with each new kernel's process id (so a supervisor can kill it).
    """

    def __init__(self, nb, *, cwd: Path, cell_timeout: float, notebook_timeout: float,
                 on_kernel: Callable[[int], None] | None = None):
        # nbclient stores each executed cell back at its index: the grader's own cells (probes,
        # replays) go to a scratch slot after the notebook's cells.
        self.scratch = len(nb.cells)
        book = nbformat.v4.new_notebook(metadata=nb.metadata)
        book.cells = [*nb.cells, nbformat.v4.new_code_cell("")]
        self.client = NotebookClient(
            book, timeout=int(cell_timeout), kernel_name="python3", allow_errors=True,
            interrupt_on_timeout=False, record_timing=False, shutdown_kernel="immediate",
            startup_timeout=120, resources={"metadata": {"path": str(cwd)}})
        self.cell_timeout = cell_timeout
        self.deadline = time.monotonic() + notebook_timeout
        self.on_kernel = on_kernel
        self.history: list[str] = []
        self.restarts = 0
        self.notes: list[str] = []

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def __enter__(self) -> KernelSession:
        self._start()
        return self

    def __exit__(self, *exc) -> bool:
        self._stop()
        return False

    def _start(self) -> None:
        self.client.km = self.client.create_kernel_manager()
        self.client.start_new_kernel()
        self.client.start_new_kernel_client()
        pid = getattr(getattr(self.client.km, "provisioner", None), "pid", None)
        if self.on_kernel and pid:
            self.on_kernel(pid)

    def _stop(self) -> None:
        if self.client.km is not None:
            try:
                self.client._cleanup_kernel()
            except Exception:  # a kernel that is already gone
                self.client.km = self.client.kc = None

    def _restart(self) -> None:
        """A fresh kernel, with every cell that ran before replayed in it."""
        self._stop()
        self.restarts += 1
        self._start()
        for source in self.history:
            result = self._execute(nbformat.v4.new_code_cell(source), self.scratch,
                                   self.cell_timeout)
            if result.status in ("timeout", "died", "deadline"):
                self.notes.append(f"replaying the cells after a restart stopped: {result.detail}")
                return

    def _execute(self, cell, index: int, timeout: float, store_history: bool = True
                 ) -> CellResult:
        budget = min(timeout, self.left())
        if budget < 1:
            return CellResult("deadline", "the notebook's time limit was reached")
        self.client.timeout = max(1, int(budget))
        try:
            self.client.execute_cell(cell, index, store_history=store_history)
        except CellTimeoutError:
            return CellResult("timeout", f"still running after {int(budget)} s")
        except DeadKernelError:
            return CellResult("died", "the kernel died (os._exit, a crash, or out of memory)")
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if errors:
            return CellResult("error", f"{errors[0].get('ename')}: {errors[0].get('evalue')}",
                              cell.outputs)
        return CellResult("ok", "", cell.outputs)

    def run(self, cell, index: int) -> CellResult:
        """Execute one of the notebook's cells; after a timeout or a death, start afresh.

        A cell that hangs in its own checker call (the learner's function looping where the
        notebook checks it) still leaves its definitions: after the restart it runs once more
        without its checker calls, which the grader does not need.
        """
        result = self._execute(cell, index, self.cell_timeout)
        if result.status in ("ok", "error"):
            self.history.append(cell.source)
        elif result.status in ("timeout", "died"):
            self._restart()
            salvage = without_checker_calls(cell.source)
            if salvage.strip() and salvage != cell.source:
                again = self._execute(nbformat.v4.new_code_cell(salvage), self.scratch,
                                      self.cell_timeout)
                if again.status in ("ok", "error"):
                    self.history.append(salvage)
                    result.detail += "; it ran again without its checker call"
                elif again.status in ("timeout", "died"):
                    self._restart()
        return result

    def probe(self, function: str, request: dict, timeout: float) -> dict | CellResult:
        """Call :mod:`sseq.grade.probe`'s ``function`` in the kernel; its JSON reply."""
        request = {**request, "nonce": secrets.token_hex(8)}
        source = (f"__import__('sseq.grade.probe').grade.probe.{function}"
                  f"(globals(), {json.dumps(json.dumps(request))})")
        cell = nbformat.v4.new_code_cell(source)
        result = self._execute(cell, self.scratch, timeout, store_history=False)
        if result.status in ("timeout", "died"):
            self._restart()
            return result
        for output in reversed(cell.get("outputs", [])):
            text = output.get("data", {}).get(MIME)
            if text:
                try:
                    reply = json.loads(text)
                except json.JSONDecodeError:
                    continue
                if reply.get("nonce") == request["nonce"]:
                    return reply
        return CellResult("error", result.detail or "the grader's probe sent no answer")
