"""The Chapter 1 checkers: a correct answer passes, each common mistake is caught and named,
the tolerance sits where it should, and graded cases differ from the book's."""

from __future__ import annotations

import math

import pytest
import sympy as sp
import torch

from sseq.checks import ch01
from sseq.exercises import Case


def attend_right(q, K, V):  # an independent oracle: explicit max-shifted softmax in float64
    scores = (K.double() @ q.double()) / math.sqrt(q.shape[0])
    w = torch.exp(scores - scores.max())
    return ((w / w.sum()) @ V.double()).to(V.dtype)


def scaled(factor):
    def answer(q, K, V):
        return attend_right(q, K, V) * factor
    return answer


def test_attend_right_answer_passes_book_and_graded_cases():
    assert ch01.check_attend(attend_right, verbose=False)
    for seed in (1, 2, 3):
        assert ch01.check_attend(attend_right, verbose=False, seed=seed)


def test_graded_cases_differ_from_the_books():
    book, again, graded = ch01._attend_cases(), ch01._attend_cases(), ch01._attend_cases(seed=5)
    assert all(torch.equal(a, b) for x, y in zip(book, again, strict=True)
               for a, b in zip(x.args, y.args, strict=True))
    assert not any(torch.equal(x.args[1], y.args[1]) for x, y in zip(book, graded, strict=True))


def test_instructor_cases_are_used():
    g = torch.Generator().manual_seed(0)
    cases = [Case("mine", (torch.randn(3, generator=g), torch.randn(4, 3, generator=g),
                           torch.randn(4, 2, generator=g)))]
    report = ch01.check_attend(attend_right, verbose=False, cases=cases)
    assert report and report.lines == ["✓ mine"]


def test_attend_tolerance_just_inside_and_just_outside():
    """rtol = 1e-4: V scaled by 1.00003 passes, by 1.0003 (and 1.005) does not."""
    assert ch01.check_attend(scaled(1 + 3e-5), verbose=False)
    assert not ch01.check_attend(scaled(1 + 3e-4), verbose=False)
    assert not ch01.check_attend(scaled(1.005), verbose=False)


@pytest.mark.parametrize(("wrong", "named"), [
    (lambda q, K, V: torch.softmax(K @ q, 0) @ V, "attention without the scale"),
    (lambda q, K, V: torch.softmax(K @ q / q.shape[0], 0) @ V, "the scores divided by d"),
    (lambda q, K, V: (lambda e: e / e.sum())(torch.exp(K @ q / math.sqrt(q.shape[0]))) @ V,
     "a softmax that overflows"),
    (lambda q, K, V: torch.softmax(K @ q / math.sqrt(q.shape[0]), 0), "the attention weights"),
])
def test_attend_mistakes_are_named(wrong, named):
    report = ch01.check_attend(wrong, verbose=False)
    assert not report and f"Hint: this is {named}" in str(report)


def test_cache_bytes_prediction():
    assert ch01.check_cache_bytes((64 * 4, 2 * 10_000 * 64 * 4), verbose=False)
    report = ch01.check_cache_bytes((64 * 32, 20_000 * 64 * 32), verbose=False)
    assert not report and "Hint: this is a count in bits" in str(report)
    assert str(256) not in str(report) and "5120000" not in str(report)
    report = ch01.check_cache_bytes((256, 10_000 * 64 * 4), verbose=False)
    assert "a cache of keys only" in str(report)
    assert ch01.check_cache_bytes(..., verbose=False).unanswered
    assert "expected a tuple of 2 items" in str(ch01.check_cache_bytes(256, verbose=False))


def test_cache_bytes_tolerance():
    good = (64 * 4, 2 * 10_000 * 64 * 4)
    assert ch01.check_cache_bytes((good[0], good[1] * 1.009), verbose=False)
    assert not ch01.check_cache_bytes((good[0], good[1] * 1.011), verbose=False)


def test_scalar_recall_accepts_every_equivalent_form():
    lam, k = ch01.symbols()
    assert ch01.check_scalar_recall(lam ** (2 * k) * (1 - lam**2), verbose=False)
    mine_lam, mine_k = sp.symbols("lambda k")
    assert ch01.check_scalar_recall(mine_lam ** (2 * mine_k) * (1.0 - mine_lam**2.0),
                                    verbose=False)
    j = sp.Symbol("j", integer=True, nonnegative=True)
    variance = sp.summation(mine_lam ** (2 * j), (j, 0, sp.oo))  # the hint's route: Piecewise
    assert ch01.check_scalar_recall((mine_lam**mine_k) ** 2 / variance, verbose=False)


@pytest.mark.parametrize(("wrong", "named"), [
    (lambda lam, k: lam**k * (1 - lam**2), "Cov(h_t, u_{t-k}) / Var(h_t), not squared"),
    (lambda lam, k: lam ** (2 * k), "Cov² without the variance"),
    (lambda lam, k: lam ** (2 * k) / (1 - lam**2), "Cov² times the variance"),
    (lambda lam, k: lam ** (2 * k) * (1 - lam), "a variance of 1/(1 - λ)"),
])
def test_scalar_recall_mistakes_are_named_without_the_answer(wrong, named):
    lam, k = ch01.symbols()
    report = ch01.check_scalar_recall(wrong(lam, k), verbose=False)
    assert not report and f"Hint: this is {named}" in str(report)
    assert "differs from the expected result (at" in str(report)
    assert "lambda**(2*k)" not in str(report).split("Hint")[0]
