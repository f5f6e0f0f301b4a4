"""Grade a class's notebooks: ``python -m sseq.grade SUBMISSIONS... --out grades.csv``.

Each submission runs in a fresh kernel (nbclient), in a worker process of its own, with a
time limit per cell and per notebook; a worker that overruns even that is killed with its
kernel. Every exercise of the submission's chapter is graded by the chapter's checker in the
grader's process, on the hidden cases (another draw of them with ``--seed``, or an
instructor's own with ``--cases``). The result is one CSV row per submission (the score of
each exercise, from 0 to 1, and the total) and a feedback file per submission with the lines
the learner would have seen. See the book's page for instructors for what this protects
against and what it does not.
"""

from __future__ import annotations

import csv
import multiprocessing
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["grade_all", "write_csv", "write_feedback"]

HARD_MARGIN_S = 90.0  # beyond the notebook's limit, before a worker is killed


def _load_cases(path: Path | None) -> dict | None:
    if path is None:
        return None
    import runpy

    cases = runpy.run_path(str(path)).get("CASES")
    if not isinstance(cases, dict):
        raise ValueError(f"{path} must define CASES = {{'ex-label': [Case(...), ...], ...}}")
    return cases


def _watch_parent(kernels: list[int]) -> None:
    """End this worker, and its kernels, if the supervisor is gone (killed, interrupted)."""
    import threading

    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        _kill(kernels)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _worker(conn, path: str, options: dict) -> None:
    """Grade one submission in this process; report kernels and the grade through ``conn``."""
    from sseq.grade.submission import grade_submission

    if hasattr(os, "setsid"):
        os.setsid()  # the supervisor can end this worker's whole group
    if hasattr(signal, "SIGUSR1"):  # kill -USR1 PID prints where a worker is
        import faulthandler

        faulthandler.register(signal.SIGUSR1, all_threads=True)
    kernels: list[int] = []
    _watch_parent(kernels)

    def started(pid: int) -> None:
        kernels.append(pid)
        conn.send(("kernel", pid))

    try:
        cases = _load_cases(options.pop("cases_file"))
        grade = grade_submission(Path(path), cases=cases, on_kernel=started, **options)
        conn.send(("done", _plain(grade)))
    except BaseException as err:  # reported as this submission's grade, not a crash
        conn.send(("failed", f"{type(err).__name__}: {err}"))
    finally:
        conn.close()


def _plain(grade) -> dict:
    out = asdict(grade)
    for ex, plain in zip(grade.exercises, out["exercises"], strict=True):
        plain["score"] = ex.score
    out["total"] = grade.total
    return out


def _failed(path: str, why: str) -> dict:
    return {"path": path, "chapter": "", "exercises": [], "notes": [why], "seconds": 0.0,
            "cell_errors": 0, "total": 0.0}


def _kill(pids: list[int]) -> None:
    for pid in pids:
        for kill in (getattr(os, "killpg", None), os.kill):
            try:
                if kill is not None:
                    kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError, OSError):
                pass


def grade_all(paths: list[Path], *, chapters: Path = Path("chapters"), seed: int | None = None,
              cases_file: Path | None = None, jobs: int = 1, cell_timeout: float = 120.0,
              notebook_timeout: float = 600.0, case_timeout: float | None = None,
              executed: Path | None = None, log=print) -> list[dict]:
    """Grade every submission, ``jobs`` at a time; one plain dict per submission, in order.

    The options are those of :func:`sseq.grade.submission.grade_submission`; ``cases_file``
    is a Python file defining ``CASES = {label: [Case, ...]}``.
    """
    context = multiprocessing.get_context("spawn")
    options = {"chapters": Path(chapters), "seed": seed, "cell_timeout": cell_timeout,
               "notebook_timeout": notebook_timeout, "cases_file": cases_file,
               "case_timeout": case_timeout, "executed": executed}
    results: dict[int, dict] = {}
    running: dict[int, _Running] = {}
    waiting = list(enumerate(map(str, paths)))
    try:
        while waiting or running:
            while waiting and len(running) < max(1, jobs):
                index, path = waiting.pop(0)
                reader, writer = context.Pipe(duplex=False)  # one pipe each: a killed worker
                process = context.Process(target=_worker, daemon=True,  # breaks only its own
                                          args=(writer, path, dict(options)))
                process.start()
                writer.close()
                running[index] = _Running(process, reader, time.monotonic())
            _receive(running, results, paths)
            for index in _finished(running, results, paths, notebook_timeout):
                done = results[index]
                log(f"graded {paths[index]}: {done['total']:.2f} of {len(done['exercises'])} "
                    f"in {done['seconds']:.0f} s")
    finally:  # interrupted: no worker or kernel outlives the grader
        for job in running.values():
            _kill([job.process.pid, *job.kernels])
    return [results[i] for i in range(len(paths))]


@dataclass
class _Running:
    process: Any
    reader: Any
    start: float
    kernels: list[int] = field(default_factory=list)


def _receive(running: dict, results: dict, paths) -> None:
    from multiprocessing.connection import wait

    readers = {job.reader: index for index, job in running.items() if not job.reader.closed}
    for reader in wait(list(readers), timeout=0.5):
        index = readers[reader]
        try:
            kind, payload = reader.recv()
        except (EOFError, OSError):
            reader.close()
            continue
        if kind == "kernel":
            running[index].kernels.append(payload)
        else:
            results[index] = payload if kind == "done" else _failed(
                str(paths[index]), f"the grader failed on this notebook: {payload}")


def _finished(running: dict, results: dict, paths, notebook_timeout: float) -> list[int]:
    """Indices whose worker is done (or overdue, or gone); their processes are cleaned up."""
    finished = []
    for index, job in list(running.items()):
        elapsed = time.monotonic() - job.start
        overdue = elapsed > notebook_timeout + HARD_MARGIN_S
        if index not in results and not overdue and (job.process.is_alive()
                                                     or not job.reader.closed):
            continue
        job.process.join(10 if index in results else 1)
        _kill([job.process.pid, *job.kernels] if job.process.is_alive() else job.kernels)
        job.process.join(5)
        job.reader.close()
        if index not in results:
            why = (f"grading stopped after {elapsed:.0f} s" if overdue
                   else f"the grader's worker ended (exit code {job.process.exitcode})")
            results[index] = _failed(str(paths[index]), why)
        del running[index]
        finished.append(index)
    return finished


def _name(path: str) -> str:
    return Path(path).stem


def write_csv(results: list[dict], out: Path) -> Path:
    """One row per submission: its chapter, each exercise's score (0–1), total, maximum, notes."""
    labels: list[str] = []
    for r in results:
        labels += [e["label"] for e in r["exercises"] if e["label"] not in labels]
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["submission", "chapter", *labels, "total", "max", "notes"])
        for r in results:
            scores = {e["label"]: f"{e['score']:.3f}" for e in r["exercises"]}
            writer.writerow([_name(r["path"]), r["chapter"], *[scores.get(lb, "") for lb in labels],
                             f"{r['total']:.3f}", len(r["exercises"]), " | ".join(r["notes"])])
    return out


def write_feedback(results: list[dict], folder: Path, seed: int | None) -> list[Path]:
    """A text file per submission with the lines the learner would have seen, and notes."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for r in results:
        lines = [f"Feedback on {Path(r['path']).name}" + (f" (chapter {r['chapter']})"
                                                          if r["chapter"] else ""),
                 f"Score: {r['total']:.2f} of {len(r['exercises'])}"
                 + (f"; hidden cases drawn with seed {seed}" if seed is not None else ""), ""]
        for e in r["exercises"]:
            lines += [f"{e['title']} [{e['label']}]: {e['score']:.2f}", *e["lines"]]
            lines += [f"  Note: {note}" for note in e["notes"]] + [""]
        if r["notes"]:
            lines += ["About the notebook:", *[f"- {note}" for note in r["notes"]]]
        path = folder / f"{_name(r['path'])}.txt"
        path.write_text("\n".join(lines).rstrip() + "\n")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m sseq.grade", description=__doc__.split(
        "\n")[0].split(": ")[0])
    parser.add_argument("submissions", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("grades.csv"), help="the CSV to write")
    parser.add_argument("--feedback", type=Path,
                        help="folder of feedback files (default: next to the CSV)")
    parser.add_argument("--seed", type=int, help="draw the hidden cases from this seed")
    parser.add_argument("--cases", type=Path, help="a Python file defining CASES by label")
    parser.add_argument("--chapters", type=Path, default=Path("chapters"),
                        help="the chapters' own notebooks (default: chapters/)")
    parser.add_argument("--jobs", type=int, default=1, help="submissions graded at once")
    parser.add_argument("--cell-timeout", type=float, default=120.0)
    parser.add_argument("--notebook-timeout", type=float, default=600.0)
    parser.add_argument("--case-timeout", type=float,
                        help="seconds for one call of a learner's function (default: the "
                             "checker's own, 10 s)")
    parser.add_argument("--executed", type=Path,
                        help="a folder to save each submission into as it ran")
    args = parser.parse_args(argv)
    start = time.monotonic()
    results = grade_all(args.submissions, chapters=args.chapters, seed=args.seed,
                        cases_file=args.cases, jobs=args.jobs, cell_timeout=args.cell_timeout,
                        notebook_timeout=args.notebook_timeout,
                        case_timeout=args.case_timeout, executed=args.executed,
                        log=lambda s: print(s, file=sys.stderr, flush=True))
    write_csv(results, args.out)
    feedback = args.feedback or args.out.with_name(args.out.stem + "_feedback")
    write_feedback(results, feedback, args.seed)
    print(f"{len(results)} submissions graded in {time.monotonic() - start:.0f} s: "
          f"{args.out}, feedback in {feedback}/")
    return 0
