"""The grader against hostile submissions: each is scored as it deserves, with the reason, and
none stops the others. Built from Chapter 1's student edition, cut to its exercises."""

from __future__ import annotations

import csv
import time

import nbformat
import pytest

from sseq.assign import gates
from sseq.assign.editions import student_edition
from sseq.grade import grade_all, write_csv, write_feedback
from tests.conftest import ROOT

CH01 = ROOT / "chapters" / "01_memory_problem.ipynb"
ATTEND, BYTES, SCALAR = "ex-ch01-attend", "ex-ch01-bytes", "ex-ch01-scalar"

ATTEND_OK = """def my_attend(q, K, V):
    scores = K @ q / math.sqrt(q.shape[0])
    return torch.softmax(scores, dim=0) @ V


sseq.checks.ch01.check_attend(my_attend)"""
BYTES_OK = ("my_prediction = (64 * 4, 2 * 10_000 * 64 * 4)\n\n"
            "sseq.checks.ch01.check_cache_bytes(my_prediction)")
SCALAR_OK = """lam, k = sseq.checks.ch01.symbols()
my_R2 = lam ** (2 * k) * (1 - lam**2)

sseq.checks.ch01.check_scalar_recall(my_R2)"""
OK = {ATTEND: ATTEND_OK, BYTES: BYTES_OK, SCALAR: SCALAR_OK}


def attend_that(body: str) -> str:
    """A my_attend that does ``body`` on the one-token case and is right otherwise."""
    return f"""def my_attend(q, K, V):
    if K.shape[0] == 1:
{body}
    return torch.softmax(K @ q / math.sqrt(q.shape[0]), dim=0) @ V


sseq.checks.ch01.check_attend(my_attend)"""


# name: ({label: source of the exercise's cell}, expected scores, {label or "notes": reason})
HOSTILE = {
    "correct": ({}, (1, 1, 1), {}),
    "raises": ({ATTEND: attend_that("        raise RuntimeError('one token!')") + "\n1 / 0",
                BYTES: "raise KeyError('oops')\n" + BYTES_OK},
               (0.8, 0, 1), {ATTEND: "raised RuntimeError: one token!",
                             BYTES: "not found in your notebook: my_prediction (NameError",
                             "notes": "error: ZeroDivisionError"}),
    "loops": ({ATTEND: attend_that("        while True:\n            pass"),
               BYTES: "while True:\n    pass\n" + BYTES_OK.split("\n\n")[0]},
              (0.4, 0, 1), {ATTEND: "not run: the case above ran past the time limit",
                            BYTES: "not found in your notebook", "notes": "timeout"}),
    "swallows": ({ATTEND: attend_that("        import signal\n"
                                      "        signal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
                                      "        while True:\n            pass")},
                 (0.4, 1, 1), {ATTEND: "still running after 2 s",
                               "notes": "it ran again without its checker call"}),
    "exits": ({ATTEND: ATTEND_OK + "\nimport sys\nsys.exit(3)",
               BYTES: BYTES_OK + "\nimport os\nos._exit(0)"},
              (1, 0, 1), {BYTES: "not found in your notebook", "notes": "the kernel died"}),
    "no-calls": ({label: source.split("\n\nsseq.checks")[0] for label, source in OK.items()},
                 (1, 1, 1), {}),
    "renamed": ({ATTEND: ATTEND_OK.replace("my_attend", "attend_v2"),
                 BYTES: "my_guess = (64 * 4, 2 * 10_000 * 64 * 4)"},
                (1, 0, 1), {ATTEND: "graded attend_v2, the answer your checker call names",
                            BYTES: "not found in your notebook: my_prediction"}),
    "monkeypatches": ({ATTEND: "sseq.exercises.compare = lambda *a, **k: ''\n"
                               + ATTEND_OK.replace("return torch.softmax(scores, dim=0) @ V",
                                                   "return 2 * V.sum(0)"),
                       BYTES: "sseq.checks.ch01.check_cache_bytes = lambda p: print("
                              "'Exercise 1.2 (predict, then measure): correct. Well done!')\n"
                              "my_prediction = (1, 2)\n"
                              "sseq.checks.ch01.check_cache_bytes(my_prediction)",
                       SCALAR: "import sseq.exercises_sympy\nsseq.exercises_sympy.equivalent = "
                               "lambda *a, **k: (True, '')\n"
                               + SCALAR_OK.replace("lam ** (2 * k) * (1 - lam**2)", "lam")},
                      (0, 0, 0), {ATTEND: "values differ",
                                  BYTES: "printed a passing verdict that the grader does not "
                                         "confirm"}),
    "reference": ({ATTEND: "my_attend = sseq.memory.attend\n"
                           "sseq.checks.ch01.check_attend(my_attend)"},
                  (0, 1, 1), {ATTEND: "calls sseq.memory.attend, the book's own implementation"}),
}


def _submission(answers: dict) -> nbformat.NotebookNode:
    nb = student_edition(nbformat.read(CH01, as_version=4), CH01.stem)
    first = next(i for i, c in enumerate(nb.cells) if c.metadata.get("sseq", {}).get("exercise"))
    setup = [c for c in nb.cells[:first] if c.cell_type == "code"][:2]  # setup and imports
    nb.cells = setup + nb.cells[first:]
    for cell, role in zip(nb.cells, gates.roles(nb), strict=True):
        if "exercise" in role.tags:
            cell.source = answers.get(role.label, OK[role.label])
    return nb


@pytest.mark.timeout(900, method="thread")
def test_hostile_submissions_are_scored_with_their_reasons_and_stop_nothing(tmp_path):
    """One grading run (two at a time) of every submission in HOSTILE, and a broken file."""
    paths = []
    for name, (answers, _, _) in HOSTILE.items():
        paths.append(tmp_path / f"{name}.ipynb")
        nbformat.write(_submission(answers), paths[-1])
    (tmp_path / "garbage.ipynb").write_text("this is not a notebook")
    paths.append(tmp_path / "garbage.ipynb")
    start = time.perf_counter()
    graded = grade_all(paths, chapters=ROOT / "chapters", seed=3, jobs=2, cell_timeout=20,
                       notebook_timeout=240, case_timeout=2, log=lambda s: None)
    print(f"\n{len(paths)} hostile submissions graded in {time.perf_counter() - start:.0f} s")
    results = {r["path"].rsplit("/", 1)[-1].removesuffix(".ipynb"): r for r in graded}
    wrong = []
    for name, (_, scores, reasons) in HOSTILE.items():
        got = {e["label"]: e for e in results[name]["exercises"]}
        have = tuple(round(got[label]["score"], 3) for label in (ATTEND, BYTES, SCALAR))
        print(f"{name:14s} {have}  {results[name]['seconds']:.0f} s  "
              f"{' | '.join(results[name]['notes'])[:150]}")
        if have != scores:
            wrong.append(f"{name}: scores {have}, expected {scores}: "
                         f"{ {label: got[label]['lines'] for label in got} }")
        for where, reason in reasons.items():
            text = "\n".join(results[name]["notes"]) if where == "notes" else \
                "\n".join(got[where]["lines"] + got[where]["notes"])
            if reason not in text:
                wrong.append(f"{name}: {reason!r} not in the {where} of its grade: {text}")
    assert not wrong, "\n".join(wrong)
    assert results["garbage"]["total"] == 0
    assert "not a readable notebook" in results["garbage"]["notes"][0]
    _outputs_are_written(list(results.values()), tmp_path / "out")


def _outputs_are_written(results, folder):
    table = write_csv(results, folder / "grades.csv")
    with table.open() as f:
        rows = list(csv.DictReader(f))
    assert [r["submission"] for r in rows] == [*HOSTILE, "garbage"]
    correct = next(r for r in rows if r["submission"] == "correct")
    assert (correct[ATTEND], correct["total"], correct["max"]) == ("1.000", "3.000", "3")
    files = write_feedback(results, folder / "feedback", seed=3)
    text = (folder / "feedback" / "loops.txt").read_text()
    assert "Exercise 1.1 (attend) [ex-ch01-attend]: 0.40" in text
    assert "hidden cases drawn with seed 3" in text
    assert len(files) == len(results)


@pytest.mark.timeout(600, method="thread")
def test_the_notebook_time_limit_stops_a_slow_submission(tmp_path):
    """Past the notebook's limit no cell runs; the exercises left score zero, saying so."""
    slow = "import time\ntime.sleep(60)\n"
    path = tmp_path / "slow.ipynb"
    nbformat.write(_submission({BYTES: slow + BYTES_OK}), path)
    start = time.perf_counter()
    [result] = grade_all([path], chapters=ROOT / "chapters", cell_timeout=120,
                         notebook_timeout=30, log=lambda s: None)
    assert time.perf_counter() - start < 90
    got = {e["label"]: e for e in result["exercises"]}
    assert got[ATTEND]["score"] == 1.0  # graded before the limit
    assert got[BYTES]["score"] == 0.0 and got[SCALAR]["score"] == 0.0
    assert "not graded: the notebook ran past its time limit." in got[SCALAR]["lines"][0]
    assert any("timeout" in note or "deadline" in note for note in result["notes"])


CASES_FILE = '''
import torch

from sseq.exercises import Case

g = torch.Generator().manual_seed(99)
CASES = {"ex-ch01-attend": [Case("mine: t=3, d=2", (torch.randn(2, generator=g),
                                                     torch.randn(3, 2, generator=g),
                                                     torch.randn(3, 5, generator=g)))]}
'''


@pytest.mark.timeout(600, method="thread")
def test_the_command_line_with_an_instructors_cases(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "alice.ipynb"
    nbformat.write(_submission({}), path)
    (tmp_path / "cases.py").write_text(CASES_FILE)
    out = tmp_path / "grades.csv"
    run = subprocess.run([sys.executable, "-m", "sseq.grade", str(path), "--out", str(out),
                          "--cases", str(tmp_path / "cases.py"), "--seed", "5",
                          "--chapters", str(ROOT / "chapters")],
                         capture_output=True, text=True, cwd=tmp_path, timeout=500)
    assert run.returncode == 0, run.stderr[-2000:]
    with out.open() as f:
        [row] = list(csv.DictReader(f))
    assert (row["submission"], row["total"], row["max"]) == ("alice", "3.000", "3")
    feedback = (tmp_path / "grades_feedback" / "alice.txt").read_text()
    assert "✓ mine: t=3, d=2\nExercise 1.1 (attend): correct. Well done!" in feedback
