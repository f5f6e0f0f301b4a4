"""Every chapter's implement checkers can grade cases the learner has not seen.

An implement checker (one that hands a learner's function to ``check_function``) must take
``seed=`` (the grader's ``--seed``: another draw of the hidden cases) and ``cases=`` (an
instructor's own); otherwise the graded cases are the book's, which anyone can read.
Chapters added later are found by their module in ``sseq/checks``.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

import sseq.checks

CHECKS = sorted(p.stem for p in Path(sseq.checks.__file__).parent.glob("ch[0-9][0-9].py"))


def _implement_checkers(module):
    """The public ``check_*`` functions whose body calls ``check_function``."""
    found = []
    for name in getattr(module, "__all__", dir(module)):
        fn = getattr(module, name)
        if not (name.startswith("check_") and inspect.isfunction(fn)):
            continue
        calls = {node.func.id for node in ast.walk(ast.parse(inspect.getsource(fn)))
                 if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
        if "check_function" in calls:
            found.append(fn)
    return found


def test_every_chapter_with_checkers_is_found():
    assert {"ch01", "ch05", "ch07"} <= set(CHECKS)
    names = {fn.__name__ for fn in _implement_checkers(importlib.import_module("sseq.checks.ch05"))}
    assert names == {"check_combine", "check_selective_step"}  # not the predictions


@pytest.mark.parametrize("chapter", CHECKS)
def test_implement_checkers_take_seed_and_cases(chapter):
    module = importlib.import_module(f"sseq.checks.{chapter}")
    checkers = _implement_checkers(module)
    for fn in checkers:
        params = inspect.signature(fn).parameters
        missing = [p for p in ("seed", "cases") if p not in params]
        assert not missing, f"{chapter}.{fn.__name__} lacks {missing}: the grader's --seed " \
                            "would grade the book's cases"
        assert all(params[p].kind is inspect.Parameter.KEYWORD_ONLY for p in ("seed", "cases"))
