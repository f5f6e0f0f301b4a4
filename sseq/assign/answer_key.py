"""An answer key per chapter: each exercise, its label, its checker, its solution.

Written as Markdown next to the instructor's edition. It is read from the chapter notebook
itself (statements, stubs' stored outputs for the names of the hidden cases, solutions and
their stored verdicts), so it cannot drift from the book.
"""

from __future__ import annotations

import importlib
import inspect
import re

from sseq.assign import gates

__all__ = ["answer_key"]

_CASE = re.compile(r"^✗ (?P<name>.+?): (?:not implemented yet\.|no answer yet|not measured yet)")


def _text(outputs) -> str:
    parts = []
    for out in outputs:
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif "text/plain" in out.get("data", {}):
            parts.append(out["data"]["text/plain"])
    return "".join(parts)


def _kind(stub_output: str, checker: str) -> str:
    if "not implemented yet" in stub_output:
        return "implement (a function, compared with the book's on hidden cases)"
    if "your expression" in stub_output:
        return "derive (a sympy expression, compared symbolically and numerically)"
    if stub_output:
        return "predict, then measure (a number, compared with the measured value)"
    return f"see {checker}"


def _checker_notes(dotted: str) -> tuple[str, str]:
    """(first line of the checker's docstring, what it accepts for grading)."""
    module, _, name = dotted.rpartition(".")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        return f"(could not import {dotted}: {err})", ""
    doc = (inspect.getdoc(fn) or "").splitlines()
    params = inspect.signature(fn).parameters
    options = [f"`{p}=`" for p in ("seed", "cases") if p in params]
    accepts = (f"accepts {' and '.join(options)}: graded cases can differ from the book's"
               if options else "takes neither `seed=` nor `cases=`: it grades the book's cases "
               "(or the value the statement fixes)")
    return (doc[0] if doc else ""), accepts


def _solution_prose(source: str) -> str:
    pieces, _, _ = gates.split_gates(source, True)
    prose = "".join(t for t, solution in pieces if solution)
    prose = re.sub(r"^(`{3,}|:{3,})\{solution-(start|end)\}.*?^\1[ \t]*$\n?", "", prose,
                   flags=re.M | re.S)
    return prose.strip()


def answer_key(nb, chapter: str) -> str:
    """The answer key of one chapter, as Markdown."""
    title = next((c.source.splitlines()[0].lstrip("# ") for c in nb.cells
                  if c.cell_type == "markdown" and c.source.startswith("# ")), chapter)
    lines = [f"# Answer key: {title}", "",
             f"From `chapters/{chapter}.ipynb`. Grade the learners' notebooks with "
             f"`python -m sseq.grade SUBMISSIONS --out grades.csv --seed N`.", ""]
    for exercise in gates.exercises(nb):
        stub_out = "".join(_text(nb.cells[i].get("outputs", [])) for i in exercise.stubs)
        solved = "".join(_text(nb.cells[i].get("outputs", [])) for i in exercise.solutions)
        verdict = next((ln for ln in reversed(solved.splitlines()) if "Well done" in ln), "")
        number = re.match(r"(Exercise [\w.]+)", verdict)
        number = number.group(1) if number else "Exercise"
        doc, accepts = _checker_notes(exercise.checker)
        call = f"{exercise.checker}({', '.join(exercise.args)})"
        cases = [m.group("name") for m in map(_CASE.match, stub_out.splitlines()) if m]
        lines += [f"## {number}: {exercise.title}", "",
                  f"- Label: `{exercise.label}`",
                  f"- Kind: {_kind(stub_out, exercise.checker)}",
                  f"- Checker: `{call}`; {accepts}",
                  f"- What it checks: {doc}"]
        if cases:
            lines.append("- The book's cases: " + "; ".join(cases))
        lines += ["", "### Solution", ""]
        for index in exercise.solutions:
            cell = nb.cells[index]
            lines += ["```python", cell.source.rstrip(), "```", ""]
            output = _text(cell.get("outputs", [])).rstrip()
            if output:
                lines += ["Its output:", "", "```text", output, "```", ""]
        prose = [_solution_prose(c.source) for c in nb.cells[exercise.statement + 1:]
                 if c.cell_type == "markdown" and "solution" in c.metadata.get("tags", [])
                 and c.metadata.get("sseq", {}).get("exercise") == exercise.label]
        if prose:
            lines += ["Explanation (from the book):", "", *prose, ""]
    return "\n".join(lines).rstrip() + "\n"
