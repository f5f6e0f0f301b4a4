"""The student and instructor editions of a chapter, made with nbconvert's preprocessors.

* Student: cells tagged ``solution`` removed (nbconvert's ``TagRemovePreprocessor``), the
  gated part of each ``solution-gate`` cell removed, the stubs' stored outputs cleared;
  everything else exactly as in the book.
* Instructor: the chapter as it is, marked as the instructor's edition.

Both first check that the stored tags agree with the gates (``python -m sseq.assign tag``
writes them), so that a solution that was added without its tags cannot leak.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
from nbconvert.exporters import NotebookExporter
from nbconvert.preprocessors import Preprocessor, TagRemovePreprocessor

from sseq.assign import gates

__all__ = ["UntaggedError", "instructor_edition", "student_edition", "write"]


class UntaggedError(ValueError):
    """The notebook's stored tags do not match its solution gates."""


def check_tags(nb, name: str = "the notebook") -> None:
    """Raise :class:`UntaggedError` unless every cell carries the tags its gates call for."""
    for index, (cell, (want, label)) in enumerate(zip(nb.cells, gates.expected_tags(nb),
                                                      strict=True)):
        have = [t for t in cell.metadata.get("tags", []) if t in gates.TAGS]
        if have != want or cell.metadata.get("sseq", {}).get("exercise") != label:
            raise UntaggedError(
                f"{name}: cell {index} should carry the tags {want} and the exercise label "
                f"{label!r}, but has {have} and "
                f"{cell.metadata.get('sseq', {}).get('exercise')!r}. "
                "Run: python -m sseq.assign tag NOTEBOOK")


class StripGatedMarkdown(Preprocessor):
    """Remove the gated part of Markdown cells tagged ``solution-gate``; drop emptied ones.

    Runs before ``TagRemovePreprocessor``: it follows the gates through every cell, the
    ``solution`` cells included, to know whether a solution is open where a cell begins.
    """

    def preprocess(self, nb, resources):
        kept, inside = [], False
        for cell in nb.cells:
            if cell.cell_type != "markdown":
                kept.append(cell)
                continue
            pieces, inside_after, _ = gates.split_gates(cell.source, inside)
            inside, tags = inside_after, cell.metadata.get("tags", [])
            if "solution-gate" in tags:
                outside = "".join(t for t, s in pieces if not s).strip("\n")
                cell.source = re.sub(r"\n{3,}", "\n\n", outside)
                tags = [t for t in tags if t != "solution-gate"]
                if tags:
                    cell.metadata["tags"] = tags
                else:
                    cell.metadata.pop("tags", None)
                if not cell.source.strip():
                    continue
            kept.append(cell)
        nb.cells = kept
        return nb, resources


class ClearStubOutputs(Preprocessor):
    """Clear the stored outputs of the stubs (cells tagged ``exercise``)."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and "exercise" in cell.metadata.get("tags", []):
            cell.outputs, cell.execution_count = [], None
        return cell, resources


class MarkEdition(Preprocessor):
    """Record the chapter and the edition in the notebook's metadata."""

    def preprocess(self, nb, resources):
        nb.metadata["sseq"] = {"chapter": resources["sseq"]["chapter"],
                               "edition": resources["sseq"]["edition"]}
        return nb, resources


class CheckNoSolution(Preprocessor):
    """Fail if any solution gate or solution cell survived the stripping."""

    def preprocess(self, nb, resources):
        for index, cell in enumerate(nb.cells):
            if "solution" in cell.metadata.get("tags", []) or any(
                    gate in cell.source for gate in ("{solution-start}", "{solution-end}")):
                raise UntaggedError(f"cell {index} of the student edition still holds a "
                                    "solution")
        return nb, resources


def _export(nb, chapter: str, edition: str, preprocessors) -> nbformat.NotebookNode:
    exporter = NotebookExporter()
    for preprocessor in preprocessors:
        exporter.register_preprocessor(preprocessor, enabled=True)
    body, _ = exporter.from_notebook_node(
        nb, resources={"sseq": {"chapter": chapter, "edition": edition}})
    return nbformat.reads(body, as_version=4)


def student_edition(nb, chapter: str, *, answered=()) -> nbformat.NotebookNode:
    """The chapter without its solutions, stubs' outputs cleared.

    ``answered``: labels of exercises whose solution *code* stays in, as the learner's own
    cells after the stub (their worked explanations go like the rest): a partly answered
    submission, to try a grading setup on.
    """
    check_tags(nb, chapter)
    answered = set(answered)
    if answered:
        unknown = answered - {e.label for e in gates.exercises(nb)}
        if unknown:
            raise ValueError(f"answered names no exercise of {chapter}: {sorted(unknown)}")
        nb = nbformat.from_dict(nb)
        for cell, role in zip(nb.cells, gates.roles(nb), strict=True):
            if cell.cell_type == "code" and "solution" in role.tags and role.label in answered:
                cell.metadata["tags"] = [t for t in cell.metadata["tags"] if t != "solution"]
    return _export(nb, chapter, "student", [
        StripGatedMarkdown(), TagRemovePreprocessor(remove_cell_tags=("solution",), enabled=True),
        ClearStubOutputs(), MarkEdition(), CheckNoSolution()])


def instructor_edition(nb, chapter: str) -> nbformat.NotebookNode:
    """The chapter with its solutions, marked as the instructor's edition."""
    check_tags(nb, chapter)
    return _export(nb, chapter, "instructor", [MarkEdition()])


def write(nb, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path
