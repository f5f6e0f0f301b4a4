"""Where a chapter's exercises and solutions are: the gates, the tags, the checker calls.

A chapter notebook marks each solution with two MyST directives, ``{solution-start} LABEL``
and ``{solution-end}``; everything between them, Markdown and code cells alike, is the
solution. :func:`tag` records that structure in the cells' metadata, so that the editions do
not depend on parsing Markdown alone:

* tag ``solution``: the cell lies wholly inside a solution (removed from the student edition);
* tag ``solution-gate``: a Markdown cell that holds a gate and other text (the cell that closes
  one solution often opens the next exercise): only its gated part is removed;
* tag ``exercise``: a code cell between an exercise's statement and its solution (the stub);
* ``metadata["sseq"]["exercise"]``: the label of the exercise a cell belongs to.

:func:`exercises` reads each exercise back: its label and title, its cells, and the checker
call in its stub (``sseq.checks.ch01.check_attend(my_attend)``), which says what the grader
must collect.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

__all__ = ["TAGS", "CellRole", "Exercise", "checker_call", "exercises", "expected_tags", "roles",
           "split_gates", "tag"]

TAGS = ("solution", "solution-gate", "exercise")
_FENCE = r"(?P<fence>`{3,}|:{3,})"
_START = re.compile(rf"^{_FENCE}\{{solution-start\}}[ \t]*(?P<label>\S*)[^\n]*\n(?P<body>.*?)"
                    r"^(?P=fence)[ \t]*$\n?", re.M | re.S)
_END = re.compile(rf"^{_FENCE}\{{solution-end\}}[^\n]*\n(?:.*?)^(?P=fence)[ \t]*$\n?", re.M | re.S)
_EXERCISE = re.compile(rf"^{_FENCE}\{{exercise\}}[ \t]*(?P<title>[^\n]*)\n(?P<body>.*?)"
                       r"^(?P=fence)[ \t]*$", re.M | re.S)
_LABEL = re.compile(r"^:label:[ \t]*(\S+)", re.M)


def split_gates(text: str, inside: bool) -> tuple[list[tuple[str, bool]], bool, list[str]]:
    """Split Markdown into pieces outside and inside solutions.

    Args:
        text: a Markdown cell's source.
        inside: whether a solution is open when the cell begins.

    Returns:
        ``(pieces, inside_at_end, labels)``: ``pieces`` are ``(text, is_solution)`` with the
        gate directives themselves counted as solution; ``labels`` those of the gates opened.
    """
    pieces, labels, position = [], [], 0
    while position <= len(text):
        if inside:
            end = _END.search(text, position)
            stop = end.end() if end else len(text)
            pieces.append((text[position:stop], True))
            position, inside = stop, end is None
            if end is None:
                break
        else:
            start = _START.search(text, position)
            stop = start.start() if start else len(text)
            pieces.append((text[position:stop], False))
            if start is None:
                break
            labels.append(start.group("label"))
            pieces.append((start.group(0), True))
            position, inside = start.end(), True
    return [(t, s) for t, s in pieces if t], inside, labels


def _statement(text: str) -> tuple[str, str] | None:
    """(label, title) of the first ``{exercise}`` directive outside solutions, if any."""
    for match in _EXERCISE.finditer(text):
        label = _LABEL.search(match.group("body"))
        if label:
            return label.group(1), match.group("title").strip()
    return None


@dataclass
class CellRole:
    """What one cell is to the exercises: its tags, its exercise, a statement it opens."""

    tags: list[str]
    label: str | None = None
    statement: tuple[str, str] | None = None  # (label, title)


def roles(nb) -> list[CellRole]:
    """Walk the notebook once: each cell's tags of :data:`TAGS`, label and statement."""
    out, inside, current, solved = [], False, None, set()
    for cell in nb.cells:
        role = CellRole([])
        if cell.cell_type == "markdown":
            pieces, inside_after, opened = split_gates(cell.source, inside)
            outside = "".join(t for t, s in pieces if not s)
            has_gate = any(s for _, s in pieces)
            role.statement = _statement(outside)
            if has_gate:
                role.tags = ["solution" if not outside.strip() else "solution-gate"]
                role.label = opened[-1] if opened else current
            solved.update(opened)
            if role.statement:
                current = role.label = role.statement[0]
            inside = inside_after
        elif inside:
            role.tags, role.label = ["solution"], current
        elif cell.cell_type == "code" and current is not None and current not in solved:
            role.tags, role.label = ["exercise"], current
        out.append(role)
    return out


def expected_tags(nb) -> list[tuple[list[str], str | None]]:
    """For every cell, the tags of :data:`TAGS` it should carry and its exercise label."""
    return [(role.tags, role.label) for role in roles(nb)]


def tag(nb) -> bool:
    """Set the tags and exercise labels of ``nb``'s cells (in place); True if any changed.

    Idempotent: tags other than :data:`TAGS` and other metadata are left as they are.
    """
    changed = False
    for cell, (tags, label) in zip(nb.cells, expected_tags(nb), strict=True):
        old_tags = list(cell.metadata.get("tags", []))
        new_tags = [t for t in old_tags if t not in TAGS] + tags
        if new_tags != old_tags:
            changed = True
            if new_tags:
                cell.metadata["tags"] = new_tags
            else:
                del cell.metadata["tags"]
        meta = dict(cell.metadata.get("sseq", {}))
        if label is None:
            meta.pop("exercise", None)
        else:
            meta["exercise"] = label
        if meta != cell.metadata.get("sseq", {}):
            changed = True
            if meta:
                cell.metadata["sseq"] = meta
            else:
                del cell.metadata["sseq"]
    return changed


@dataclass
class Exercise:
    """One exercise of a chapter, as its notebook states it."""

    label: str
    title: str
    statement: int  # index of the Markdown cell with the {exercise} directive
    stubs: list[int] = field(default_factory=list)
    solutions: list[int] = field(default_factory=list)
    checker: str = ""  # e.g. "sseq.checks.ch01.check_attend"
    args: list[str] = field(default_factory=list)  # the call's argument expressions
    kwargs: dict[str, str] = field(default_factory=dict)


def checker_call(source: str) -> tuple[str, list[str], dict[str, str]] | None:
    """The last ``sseq.checks.chNN.check_*(...)`` call of a code cell: (name, args, kwargs)."""
    try:
        tree = ast.parse(_without_magics(source))
    except SyntaxError:
        return None
    found = None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            if re.fullmatch(r"sseq\.checks\.ch\d+\.check_\w+", name):
                if found is None or (node.lineno, node.col_offset) > found[0]:
                    found = ((node.lineno, node.col_offset), name,
                             [ast.unparse(a) for a in node.args],
                             {k.arg: ast.unparse(k.value) for k in node.keywords if k.arg})
    return None if found is None else found[1:]


def _without_magics(source: str) -> str:
    return "\n".join("pass" if line.lstrip().startswith(("%", "!")) else line
                     for line in source.splitlines())


def exercises(nb) -> list[Exercise]:
    """The exercises of a chapter notebook, in order, with their cells and checker calls."""
    found: dict[str, Exercise] = {}
    for index, (cell, role) in enumerate(zip(nb.cells, roles(nb), strict=True)):
        if role.statement and role.statement[0] not in found:
            found[role.statement[0]] = Exercise(*role.statement, index)
        exercise = found.get(role.label) if role.label else None
        if exercise is None or cell.cell_type != "code":
            continue
        (exercise.stubs if "exercise" in role.tags else exercise.solutions).append(index)
        call = checker_call(cell.source)
        if call and not exercise.checker:
            exercise.checker, exercise.args, exercise.kwargs = call
    return list(found.values())
