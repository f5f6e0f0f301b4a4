"""Mutation testing of sseq (``make mutants``): plant small bugs, check that the tests fail.

For each module asked for (default: the ``core`` list of ``tests/mutants/targets.toml``),
one module at a time:

1. copy ``sseq/`` and ``tests/`` into ``_build/mutants/work/<module>/`` with a
   ``pyproject.toml`` that tells mutmut to mutate that one file and to select tests only from
   the test files that ``targets.toml`` maps it to;
2. ``mutmut run`` there: mutmut rewrites every function of the module into its mutants
   (an operator flipped, a constant changed, an argument dropped, ...), records which of the
   selected tests call which function, and runs each mutant against those tests in a forked
   process, so torch is imported once;
3. read each mutant's outcome, and for every mutant that no test killed, its diff and the
   explanation of ``tests/mutants/survivors.toml`` that matches it, if any;
4. write ``_build/mutants/results/<module>.json`` and regenerate ``_build/mutants/REPORT.md``
   from every module's latest result: score, survivors (explained or not), run time.

mutmut leaves decorated functions alone (its per-function trampolines would not survive a
decorator such as ``numba.njit`` or ``triton.jit``) and module-level statements too: those
are listed as not mutated in the report.

Usage: ``python tests/mutants/run.py [--jobs N] [MODULE ...]``, a MODULE being a file of sseq
or a folder (every ``.py`` file in it). Exit status 0 when the runs finished, whatever the score.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "tests" / "mutants"
OUT = ROOT / "_build" / "mutants"
MUTMUT = Path(sys.executable).with_name("mutmut")

# What some tests read besides sseq/ and tests/ (book/instructors.md's checker example).
EXTRA = ["book"]

# The test process crashed (the baseline run passed, so the mutant did it): -11 SIGSEGV, -9
# SIGKILL, -6 SIGABRT (glibc stopping on a heap the mutant overwrote: a compiled kernel sent out
# of bounds), -14 SIGALRM's default action (the mutant broke the program's own alarm handling in
# sseq/exercises_guard.py, which the tests' outer timers then expose).
KILLED = {1: "killed", 3: "killed", 36: "timeout", 24: "timeout", -24: "timeout",
          152: "timeout", 255: "timeout", -11: "crashed", -9: "crashed", -6: "crashed",
          -14: "crashed", 37: "killed"}
NOT_KILLED = {0: "survived", 5: "no tests", 33: "no tests", None: "no tests"}


def targets() -> dict:
    return tomllib.loads((HERE / "targets.toml").read_text())


def expand(module: str) -> list[str]:
    """A module's files, relative to the repository: a file, or every .py file of a folder."""
    path = ROOT / module
    if path.is_dir():
        return sorted(str(p.relative_to(ROOT)) for p in path.rglob("*.py")
                      if "__pycache__" not in p.parts)
    if not path.is_file() or path.suffix != ".py":
        raise SystemExit(f"MODULE must be a .py file or a folder of sseq, got {module!r}")
    return [module]


def tests_for(module: str, table: dict) -> tuple[list[str], str]:
    """The test files mapped to ``module`` (its own entry, else its folder's), and where from."""
    for key in (module, *(str(p) + "/" for p in Path(module).parents)):
        if key in table:
            found = [t for t in table[key] if (ROOT / t).is_file()]
            return found, f"targets.toml [{key}]"
    dotted = module.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    parent, _, name = dotted.rpartition(".")
    pattern = re.compile(rf"\b{re.escape(dotted)}\b"
                         rf"|from {re.escape(parent)} import [^\n]*\b{name}\b")
    found = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_*.py")
                   if pattern.search(p.read_text()))
    return found, "test files that import it (add an entry to tests/mutants/targets.toml)"


def pyproject(module: str, tests: list[str]) -> str:
    """The repository's pyproject.toml (its pytest settings; tests read it too), and mutmut
    told to mutate ``module`` only and to select tests from ``tests`` only."""
    mutmut = {
        "source_paths": ["sseq"],
        "only_mutate": [module],
        "also_copy": ["requirements.txt", *EXTRA],
        "pytest_add_cli_args": ["-p", "no:cacheprovider", "-p", "no:xdist"],
        "pytest_add_cli_args_test_selection": tests,
        "use_git_change_detection": False,
    }
    lines = [f"{k} = {json.dumps(v)}" for k, v in mutmut.items()]
    return (ROOT / "pyproject.toml").read_text() + "\n[tool.mutmut]\n" + "\n".join(lines) + "\n"


def prepare(module: str, tests: list[str]) -> Path:
    work = OUT / "work" / module.removesuffix(".py").replace("/", ".")
    shutil.rmtree(work, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "sseq", work / "sseq", ignore=ignore)
    shutil.copytree(ROOT / "tests", work / "tests", ignore=ignore)
    for extra in EXTRA:
        shutil.copytree(ROOT / extra, work / extra, ignore=ignore)
    (work / "pyproject.toml").write_text(pyproject(module, tests))
    shutil.copy2(ROOT / "requirements.txt", work / "requirements.txt")
    return work


_DIFFS = """
import json, sys
from mutmut.mutation.diff_apply import get_diff_for_mutant
path, names = sys.argv[1], json.loads(sys.stdin.read())
print(json.dumps({name: get_diff_for_mutant(name, path=path) for name in names}))
"""


def diffs(work: Path, module: str, names: list[str]) -> dict[str, str]:
    """Each mutant's diff against the original function, as ``mutmut show NAME`` prints it
    (asked of mutmut in one process: ``mutmut show`` starts one per mutant)."""
    try:
        out = subprocess.run([sys.executable, "-c", _DIFFS, module], cwd=work, check=True,
                             input=json.dumps(names), capture_output=True, text=True).stdout
        return json.loads(out)
    except (subprocess.CalledProcessError, json.JSONDecodeError):  # mutmut's internals moved
        return {name: subprocess.run([str(MUTMUT), "show", name], cwd=work, check=True,
                                     capture_output=True, text=True).stdout for name in names}


def diff_lines(shown: str) -> tuple[str, list[str], list[str]]:
    """A mutant's diff body, its removed lines and its added lines."""
    body = [line for line in shown.splitlines() if not line.startswith(("---", "+++", "@@", "#"))]
    removed = [line[1:].strip() for line in body if line.startswith("-")]
    added = [line[1:].strip() for line in body if line.startswith("+")]
    return "\n".join(body).strip("\n"), removed, added


def explain(module: str, function: str, removed: list[str], added: list[str],
            rules: list[dict]) -> str | None:
    """The ``why`` of the first rule in survivors.toml that matches this mutant, or None.
    A ``why`` that starts with "equivalent" marks an equivalent mutant."""
    orig, mut = "\n".join(removed), "\n".join(added)
    for rule in rules:
        if not fnmatch.fnmatch(module, rule.get("module", "*")):
            continue
        if not fnmatch.fnmatch(function, rule.get("function", "*")):
            continue
        if "orig" in rule and not re.search(rule["orig"], orig):
            continue
        if "mut" in rule and not re.search(rule["mut"], mut):
            continue
        return rule["why"]
    return None


def function_of(name: str) -> str:
    """The function a mutant lives in: ``sseq.nn.xǁHeadǁforward__mutmut_3`` -> ``Head.forward``,
    ``sseq.x.x_f__mutmut_1`` -> ``f``."""
    tail = name.rsplit(".", 1)[-1].rsplit("__mutmut_", 1)[0]
    if tail.startswith("xǁ"):
        return ".".join(tail[2:].split("ǁ"))
    return tail.removeprefix("x_")


def run_module(module: str, tests: list[str], source: str, jobs: int, rules: list[dict]) -> dict:
    work = prepare(module, tests)
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg", PYTHONHASHSEED="0")
    print(f"{module}: mutmut run against {len(tests)} test files ({source}) ...", flush=True)
    started = time.perf_counter()
    with open(work / "mutmut.log", "w") as log:
        proc = subprocess.run([str(MUTMUT), "run", "--max-children", str(jobs)], cwd=work,
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - started
    meta = work / "mutants" / (module + ".meta")
    uncovered = "could not find any test case" in (work / "mutmut.log").read_text()
    if (proc.returncode != 0 and not uncovered) or not meta.is_file():
        tail = (work / "mutmut.log").read_text()[-3000:]
        raise SystemExit(f"mutmut failed on {module} (exit {proc.returncode}):\n{tail}")
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    counts: dict[str, int] = {}
    survivors = []
    shown = diffs(work, module, [name for name, code in codes.items() if code not in KILLED])
    for name, code in sorted(codes.items()):
        status = KILLED.get(code) or NOT_KILLED.get(code) or "suspicious"
        counts[status] = counts.get(status, 0) + 1
        if code in KILLED:
            continue
        function = function_of(name)
        diff, removed, added = diff_lines(shown[name])
        why = explain(module, function, removed, added, rules)
        survivors.append({"mutant": name, "status": status, "function": function,
                          "diff": diff, "why": why})
    total = len(codes)
    return {"module": module, "tests": tests, "tests_from": source, "seconds": round(seconds),
            "jobs": jobs, "total": total, "killed": total - len(survivors), "counts": counts,
            "survivors": survivors, "not_mutated": not_mutated(module)}


def rescore(result: dict, rules: list[dict]) -> dict:
    """Match the survivors against the rules again, and count: the score is killed / mutants;
    the score without equivalent mutants is killed / (mutants − equivalent ones)."""
    for s in result["survivors"]:
        _, removed, added = diff_lines(s["diff"])
        s["why"] = explain(result["module"], s["function"], removed, added, rules)
    whys = [s["why"] for s in result["survivors"] if s["why"]]
    equivalent = sum(why.startswith("equivalent") for why in whys)
    total, killed = result["total"], result["killed"]
    result.update(explained=len(whys), equivalent=equivalent,
                  score=killed / total if total else None,
                  score_without_equivalent=killed / (total - equivalent) if total else None)
    return result


def not_mutated(module: str) -> list[str]:
    """Functions mutmut left alone: decorated ones (numba, Triton kernels)."""
    source = (ROOT / module).read_text()
    names = re.findall(r"^@(?!staticmethod|classmethod)[^\n]+\n(?:@[^\n]+\n)*def (\w+)", source,
                       re.MULTILINE)
    return names


def report(rules: list[dict]) -> None:
    """Write _build/mutants/REPORT.md from every module's latest result."""
    rows, details = [], []
    for path in sorted((OUT / "results").glob("*.json")):
        r = json.loads(path.read_text())
        r = rescore(r, rules)
        path.write_text(json.dumps(r, indent=1))
        score, adjusted = ("—" if x is None else f"{100 * x:.1f} %"
                           for x in (r["score"], r["score_without_equivalent"]))
        unexplained = len(r["survivors"]) - r["explained"]
        rows.append(f"| `{r['module']}` | {r['total']} | {r['killed']} | {len(r['survivors'])} | "
                    f"{r['equivalent']} | {r['explained'] - r['equivalent']} | {unexplained} | "
                    f"{score} | {adjusted} | {r['seconds']} s |")
        details.append(f"\n## `{r['module']}`\n\nTests: {', '.join(r['tests'])} "
                       f"({r['tests_from']}). Outcomes: {r['counts']}.")
        if r["not_mutated"]:
            details.append("Not mutated (decorated: compiled by numba or Triton): "
                           + ", ".join(f"`{n}`" for n in r["not_mutated"]) + ".")
        for s in r["survivors"]:
            why = f"explained: {s['why']}" if s["why"] else "**UNEXPLAINED**"
            details.append(f"\n### {s['mutant']} ({s['status']}; {why})\n\n```diff\n"
                           f"{s['diff']}\n```")
    head = ["# Mutation testing report", "",
            "Written by `make mutants` (tests/mutants/run.py); explanations of survivors come "
            "from tests/mutants/survivors.toml. Score = killed / mutants; the score without "
            "equivalent mutants = killed / (mutants − equivalent survivors).", "",
            "| module | mutants | killed | survived | equivalent | not worth a test | "
            "unexplained | score | score without equivalent | run time |",
            "|---|---|---|---|---|---|---|---|---|---|", *rows]
    (OUT / "REPORT.md").write_text("\n".join(head + details) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="files or folders of sseq (default: core)")
    parser.add_argument("--jobs", type=int, default=1, help="mutants run at once (default 1)")
    parser.add_argument("--list", action="store_true",
                        help="only print each module's test files (no mutation run)")
    parser.add_argument("--report", action="store_true",
                        help="only match the stored survivors against survivors.toml again "
                             "and rewrite the report (no mutation run)")
    args = parser.parse_args(argv)
    config = targets()
    rules = tomllib.loads((HERE / "survivors.toml").read_text()).get("survivor", [])
    (OUT / "results").mkdir(parents=True, exist_ok=True)
    if args.report:
        report(rules)
        print(f"Report: {OUT / 'REPORT.md'}")
        return 0
    files = [f for m in (args.modules or config["core"]) for f in expand(m)]
    if args.list:
        for module in files:
            tests, source = tests_for(module, config["tests"])
            print(f"{module}: {' '.join(tests) or '(no test file)'}  [{source}]")
        return 0
    for module in files:
        tests, source = tests_for(module, config["tests"])
        if not tests:
            print(f"{module}: no test file covers it; skipped", flush=True)
            continue
        result = rescore(run_module(module, tests, source, args.jobs, rules), rules)
        name = module.removesuffix(".py").replace("/", ".")
        (OUT / "results" / f"{name}.json").write_text(json.dumps(result, indent=1))
        report(rules)
        score = "no mutants" if result["score"] is None else f"{100 * result['score']:.1f} %"
        print(f"{module}: {result['killed']}/{result['total']} killed ({score}), "
              f"{len(result['survivors'])} survivors ({result['explained']} explained), "
              f"{result['seconds']} s", flush=True)
    print(f"Report: {OUT / 'REPORT.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
