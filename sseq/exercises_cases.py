"""What a checker is made of: hidden cases, named mistakes, and where the cases come from.

A checker's cases are the book's (drawn from a fixed seed, so the notebook prints the same
lines on every run) unless a seed is given: :func:`case_generator` then draws another set, so
that graded cases differ from the ones anyone can read and run. The grader sets that seed for
every checker at once with :func:`grading_seed`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["Case", "Mistake", "active_seed", "case_generator", "grading_seed"]


@dataclass(frozen=True)
class Case:
    """One hidden test case: the arguments to call both functions with.

    ``max_lines`` (optional) caps the lines of the learner's own Python that may run on this
    case: an exercise that asks for no Python loop sets it well below the loop's length.
    """

    name: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    hint: str = ""
    max_lines: int | None = None


@dataclass(frozen=True)
class Mistake:
    """A common wrong answer, recognised and named when the learner's matches it.

    ``answer`` is a function (for :func:`check_function`), a value (:func:`check_value`) or
    an expression (:func:`check_expression`) computing the wrong variant.
    """

    name: str
    explain: str
    answer: Any

    def text(self) -> str:
        return f"this is {self.name}: {self.explain}"


# --- hidden cases: the book's, or another draw for grading --------------------------------------

_GRADING = {"seed": None}


@contextmanager
def grading_seed(seed: int | None) -> Iterator[None]:
    """Within the block, checkers draw their cases from ``seed`` (the grader's ``--seed``)."""
    before, _GRADING["seed"] = _GRADING["seed"], seed
    try:
        yield
    finally:
        _GRADING["seed"] = before


def active_seed(seed: int | None = None) -> int | None:
    """The seed a checker's cases come from: ``seed``, else the grading seed, else None."""
    return seed if seed is not None else _GRADING["seed"]


def case_generator(default: int, seed: int | None = None) -> torch.Generator:
    """The generator a checker draws its cases from.

    Args:
        default: the book's seed for this exercise (the cases printed in the book).
        seed: another seed (an instructor's); without it, the grading seed if one is set.

    Returns:
        A ``torch.Generator`` seeded with ``default``, or with a mix of both seeds.
    """
    seed = active_seed(seed)
    mixed = default if seed is None else (default * 1_000_003 + seed * 7_919 + 97) % 2**62
    return torch.Generator().manual_seed(mixed)
