"""Planted bugs (``make planted``): is each realistic mistake of tests/mutants/planted.toml caught?

Mutation testing (run.py) flips one operator or constant at a time. This is the other check the
issue asks for: a hand-written set of bugs of the kind a person makes (an off-by-one, a
transposed matrix, a forgotten term), each planted alone in a copy of the repository and run
against the test files that cover its module (tests/mutants/targets.toml, or the test files
that import it). A bug is caught when a test fails or times out; the report names the first
failing test and its message, so that a reader can check that it fails for the right reason.

Usage: ``python tests/mutants/planted.py [--jobs N] [--only SUBSTRING] [--ids 3,17]``. Each
bug's result is kept in ``_build/planted/results/<id>.json``, so runs of a few bugs add up;
``_build/planted/REPORT.md`` is written from the latest result of every bug of planted.toml
(copy it to tests/mutants/PLANTED.md to record a run). Exit status 0 when every bug ran,
whatever was caught.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402  (tests/mutants/run.py: the targets table and the copying rules)

ROOT = run.ROOT
OUT = ROOT / "_build" / "planted"
TIMEOUT_S = 300  # per test: a bug that makes a test hang is caught by the timeout


def load(path: Path | None = None) -> list[dict]:
    """The bugs of planted.toml, each checked: its ``old`` text occurs once in its file."""
    bugs = tomllib.loads((path or run.HERE / "planted.toml").read_text())["bug"]
    for i, bug in enumerate(bugs, 1):
        bug["id"] = i
        source = (ROOT / bug["file"]).read_text()
        if source.count(bug["old"]) != 1:
            raise SystemExit(f"bug {i} ({bug['file']}): its `old` text occurs "
                             f"{source.count(bug['old'])} times, not once")
    return bugs


def copy_tree(work: Path) -> None:
    shutil.rmtree(work, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for part in ("sseq", "tests", *run.EXTRA):
        shutil.copytree(ROOT / part, work / part, ignore=ignore)
    for name in ("pyproject.toml", "requirements.txt"):
        shutil.copy2(ROOT / name, work / name)


def first_failure(output: str) -> str:
    """The first failing test and its first error line, from pytest's -x output."""
    test = re.search(r"^(?:FAILED|ERROR) (.+?)(?: - .*)?$", output, re.M)  # ids may hold spaces
    error = re.search(r"^E\s+(.+)$", output, re.M)
    if "Timeout" in output and not test:
        return "a test timed out"
    parts = [test.group(1) if test else "?", error.group(1).strip()[:160] if error else ""]
    return " — ".join(p for p in parts if p)


def run_bug(bug: dict, work: Path, table: dict) -> dict:
    """Plant one bug in ``work``, run its tests, restore the file."""
    tests = bug.get("tests") or run.tests_for(bug["file"], table)[0]
    if not tests:  # pytest given no file would run the whole tests/ folder
        raise SystemExit(f"bug {bug['id']} ({bug['file']}): no test file covers this module; "
                         "add its entry to tests/mutants/targets.toml or give `tests`")
    target = work / bug["file"]
    original = target.read_text()
    target.write_text(original.replace(bug["old"], bug["new"], 1))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(work))
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
             f"--timeout={TIMEOUT_S}", *tests], cwd=work, env=env, capture_output=True,
            text=True)
    finally:
        target.write_text(original)
    output = proc.stdout + proc.stderr
    caught = proc.returncode != 0
    if proc.returncode not in (0, 1):  # 2: interrupted, 3: internal error, 4: usage, 5: none
        caught = proc.returncode == 2 and "Timeout" in output
    return {**bug, "tests": tests, "caught": caught, "rc": proc.returncode,
            "by": first_failure(output) if caught else "",
            "seconds": time.perf_counter() - start,
            "tail": "" if caught or proc.returncode == 0 else output[-2000:]}


def report(results: list[dict]) -> str:
    caught = sum(r["caught"] for r in results)
    lines = [
        "# Planted bugs",
        "",
        "Written by `make planted` (tests/mutants/planted.py) from tests/mutants/planted.toml: "
        "each bug planted alone in a copy of the repository and run against the test files "
        "that cover its module.",
        "",
        f"**Caught: {caught} of {len(results)}** ({100 * caught / len(results):.0f} %).",
        "",
        "| # | file | the mistake | caught | first failing test — message | s |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        by = r["by"].replace("|", "\\|")
        lines.append(f"| {r['id']} | `{r['file']}` | {r['what']} | "
                     f"{'yes' if r['caught'] else '**NO**'} | {by} | {r['seconds']:.0f} |")
    missed = [r for r in results if not r["caught"]]
    if missed:
        lines += ["", "## Not caught", ""]
        for r in missed:
            lines += [f"### {r['id']}. {r['what']}", "", f"`{r['file']}`, tests: "
                      f"{', '.join(r['tests'])} (exit status {r['rc']})", "", "```diff",
                      f"-{r['old']}", f"+{r['new']}", "```", ""]
            if r["tail"]:
                lines += ["```", r["tail"], "```", ""]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1, help="bugs run at once (one copy each)")
    parser.add_argument("--only", default="", help="only the bugs whose file contains this")
    parser.add_argument("--ids", default="",
                        help="only these bugs, e.g. 3,17 (planted.toml's order)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        raise SystemExit(f"--jobs must be >= 1, got {args.jobs}")
    ids = {int(i) for i in args.ids.split(",") if i.strip()}
    bugs = [b for b in load() if args.only in b["file"] and (not ids or b["id"] in ids)]
    table = run.targets()["tests"]
    todo: queue.Queue = queue.Queue()
    for bug in bugs:
        todo.put(bug)
    results, lock = [], threading.Lock()

    def worker(k: int) -> None:
        work = OUT / f"work{k}"
        copy_tree(work)
        while True:
            try:
                bug = todo.get_nowait()
            except queue.Empty:
                return
            result = run_bug(bug, work, table)
            with lock:
                results.append(result)
                print(f"[{len(results)}/{len(bugs)}] bug {bug['id']} {bug['file']}: "
                      f"{'caught' if result['caught'] else 'NOT CAUGHT'} "
                      f"({result['seconds']:.0f} s) {result['by'][:100]}", flush=True)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(args.jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (OUT / "results").mkdir(parents=True, exist_ok=True)
    for r in results:
        (OUT / "results" / f"{r['id']}.json").write_text(json.dumps(r, indent=1))
    print(f"Caught {sum(r['caught'] for r in results)} of {len(results)} this run.")
    stored = latest(load())
    (OUT / "REPORT.md").write_text(report(stored))
    print(f"Report ({len(stored)} bugs with a result): {OUT / 'REPORT.md'}")
    return 0


def latest(bugs: list[dict]) -> list[dict]:
    """The stored result of each bug, where it was run with the bug as planted.toml has it now."""
    found = []
    for bug in bugs:
        path = OUT / "results" / f"{bug['id']}.json"
        if path.is_file():
            result = json.loads(path.read_text())
            if (result["file"], result["old"], result["new"]) == (bug["file"], bug["old"],
                                                                  bug["new"]):
                found.append(result)
    return found


if __name__ == "__main__":
    raise SystemExit(main())
