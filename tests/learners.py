"""Stand-in learners shared by the checker tests (tests/test_checks_chNN.py)."""

from __future__ import annotations


def recorded(right):
    """A right answer that keeps the inputs it is called with (``learner.calls``), so that a
    test can check which cases a checker ran."""
    def learner(*args):
        learner.calls.append(args)
        return right(*args)

    learner.calls = []
    return learner
