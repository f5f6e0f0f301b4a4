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


# --- what the learner reads, in full -------------------------------------------------------------
ATTEND_LINES = [  # (case name, the case's hint) of the book's cases
    ("a short history (t=5, d=4)", ""),
    ("values of another width (t=7, d=8, d_v=3)", " Hint: the output has V's width, d_v."),
    ("a history of one token",
     " Hint: with one token, all the weight goes to it: the output is that value."),
    ("the 1/sqrt(d) scale (d=64)", " Hint: divide the scores by sqrt(d), the size of q."),
    ("large scores (no overflow)", " Hint: exp overflows for large scores: subtract the largest "
     "score first (torch.softmax does this for you)."),
]


def test_attend_report_names_every_case_and_its_hint_in_full():
    """Protects what a learner reads for Exercise 1.1: each book case's name (with its sizes),
    its hint, the tolerance, and the verdict under the exercise's title."""
    lines = str(ch01.check_attend(lambda q, K, V: torch.zeros(V.shape[1]),
                                  verbose=False)).splitlines()
    assert len(lines) == 6
    for line, (name, hint) in zip(lines, ATTEND_LINES, strict=False):
        assert line.startswith(f"✗ {name}: values differ at ") and line.endswith(
            f"(relative error 1.0e+00; tolerance rtol 0.0001, atol 1e-05).{hint}"), line
    assert lines[-1] == "Exercise 1.1 (attend): 0 of 5 checks pass. Keep going."


def naive_softmax(q, K, V):  # a learner's overflowing softmax, in float64 until the end
    e = torch.exp(K.double() @ q.double() / math.sqrt(q.shape[0]))
    return ((e / e.sum()) @ V.double()).to(V.dtype)


@pytest.mark.parametrize(("learner", "case", "said"), [
    (lambda q, K, V: torch.softmax(K @ q, 0) @ V, 0,
     "attention without the scale: divide the scores K q by sqrt(d)."),
    (lambda q, K, V: torch.softmax(K @ q / q.shape[0], 0) @ V, 0,
     "the scores divided by d: the scale is 1/sqrt(d), not 1/d."),
    (naive_softmax, 4, "a softmax that overflows: exp of a large score is inf; subtract the "
     "largest score before exponentiating (torch.softmax does)."),
    (lambda q, K, V: torch.softmax(K @ q / math.sqrt(q.shape[0]), 0), 0,
     "the attention weights: they are only the first half: the output is the weights times V."),
])
def test_attend_mistakes_are_explained_in_full(learner, case, said):
    """Protects each recognised mistake of Exercise 1.1: a learner's answer with that mistake
    is caught on the case that shows it, and the mistake named and explained in full."""
    lines = str(ch01.check_attend(learner, verbose=False)).splitlines()
    assert lines[case].startswith(f"✗ {ATTEND_LINES[case][0]}: ")
    assert lines[case].endswith(f" Hint: this is {said}")


@pytest.mark.parametrize(("prediction", "said"), [
    ((64 * 32, 20_000 * 64 * 32), "item 0: your value is too high by a factor of 2 or more "
     "(tolerance: rtol 0.01). Hint: this is a count in bits: a float32 is 4 bytes (32 bits)."),
    ((64, 20_000 * 64), "item 0: your value is too low by a factor of 2 or more (tolerance: "
     "rtol 0.01). Hint: this is a count of numbers, not bytes: multiply by the 4 bytes of a "
     "float32."),
    ((64 * 8, 20_000 * 64 * 8), "item 0: your value is too high by a factor of 2 or more "
     "(tolerance: rtol 0.01). Hint: this is float64's size: the exercise says float32: 4 bytes "
     "a number."),
    ((64 * 4, 10_000 * 64 * 4), "item 1: your value is too low by a factor of 2 or more "
     "(tolerance: rtol 0.01). Hint: this is a cache of keys only: the cache holds a key and a "
     "value for every token."),
    ((64 * 4, 3), "item 1: your value is too low by a factor of 10 or more (tolerance: rtol "
     "0.01). Hint: a float32 is 4 bytes; the cache holds a key and a value per token."),
])
def test_cache_bytes_reports_in_full(prediction, said):
    """Protects Exercise 1.2's feedback: each recognised miscount named and explained, the
    exercise's hint otherwise, and the title of the verdict."""
    assert str(ch01.check_cache_bytes(prediction, verbose=False)) == (
        f"✗ bytes held (state, cache): {said}\n"
        "Exercise 1.2 (predict, then measure): 0 of 1 checks pass. Keep going.")


@pytest.mark.parametrize(("wrong", "said"), [
    (lambda lam, k: lam**k, "this is the covariance, not R²: square it and divide by Var(h_t)."),
    (lambda lam, k: lam**k * (1 - lam**2), "this is Cov(h_t, u_{t-k}) / Var(h_t), not squared: "
     "R² squares the covariance."),
    (lambda lam, k: lam ** (2 * k), "this is Cov² without the variance: divide by Var(h_t) = "
     "Σ_j λ^{2j}."),
    (lambda lam, k: lam ** (2 * k) / (1 - lam**2), "this is Cov² times the variance: R² divides "
     "by Var(h_t)."),
    (lambda lam, k: lam ** (2 * k) * (1 - lam), "this is a variance of 1/(1 - λ): Var(h_t) = "
     "Σ_j λ^{2j} is a geometric series in λ²."),
    (lambda lam, k: lam + k, "Cov(h_t, u_{t-k}) = λ^k and Var(h_t) = 1 / (1 - λ²)."),
])
def test_scalar_recall_reports_in_full(wrong, said):
    """Protects Exercise 1.3's feedback: every recognised mistake (the covariance alone, too)
    named and explained in full, the exercise's hint for any other answer, and the title."""
    lam, k = ch01.symbols()
    lines = str(ch01.check_scalar_recall(wrong(lam, k), verbose=False)).splitlines()
    # the first point of the domain λ in (0.05, 0.95), k in 1..11 that the checker draws
    assert lines[0].startswith("✗ R²_k: differs from the expected result (at k = 7, "
                               "lambda = 0.732 yours is ")
    assert lines[0].endswith(f". Hint: {said}")
    assert lines[1] == "Exercise 1.3 (derive): 0 of 1 checks pass. Keep going."


def test_scalar_recall_symbols_are_positive_lambda_and_k():
    """Protects the symbols the learner builds the answer from: λ (named lambda) and k, both
    positive, as the exercise states."""
    lam, k = ch01.symbols()
    assert (str(lam), str(k)) == ("lambda", "k") and lam.is_positive and k.is_positive


def test_graded_attend_cases_draw_every_size_in_their_ranges():
    """Protects the graded variants of Exercise 1.1: across seeds the sizes cover their whole
    ranges (t, t2 in 3..9, d in 2..8, d2 in 5..12, d_v in 1..4, the large d in 48..96, its
    t in 6..12), the one-token case has one token, and the large-score case has large
    scores."""
    seen = [set() for _ in range(7)]
    for seed in range(1, 400):
        cases = ch01._attend_cases(seed)
        (q0, K0, _), (_, K1, V1), (_, K2, _), (_, K3, V3), (q4, K4, _) = (c.args for c in cases)
        for i, size in enumerate((K0.shape[0], K0.shape[1], K1.shape[0], K1.shape[1],
                                  V1.shape[1], K3.shape[1], K3.shape[0])):
            seen[i].add(size)
        assert K2.shape == (1, q0.shape[0]) and V3.shape[1] == 2
        assert (K4 @ q4).abs().max() > 100 and K4.shape[0] == 6
    ranges = [(3, 9), (2, 8), (3, 9), (5, 12), (1, 4), (48, 96), (6, 12)]
    assert [(min(s), max(s)) for s in seen] == ranges


def test_checkers_print_by_default_and_pass_the_seed_on(capsys):
    """Protects the checkers' calling conventions: they print their report unless verbose=False,
    and check_attend's seed selects the graded cases."""
    ch01.check_attend(attend_right)
    assert capsys.readouterr().out.endswith("Exercise 1.1 (attend): all 5 checks pass. "
                                            "Well done!\n")
    ch01.check_cache_bytes((64 * 4, 2 * 10_000 * 64 * 4))
    assert "Exercise 1.2 (predict, then measure): correct." in capsys.readouterr().out
    lam, k = ch01.symbols()
    ch01.check_scalar_recall(lam ** (2 * k) * (1 - lam**2))
    assert capsys.readouterr().out.endswith("Exercise 1.3 (derive): correct. Well done!\n")
    ch01.check_attend(attend_right, verbose=False)
    ch01.check_cache_bytes((1, 2), verbose=False)
    ch01.check_scalar_recall(lam, verbose=False)
    assert capsys.readouterr().out == ""
    graded = ch01.check_attend(lambda q, K, V: torch.zeros(V.shape[1]), verbose=False, seed=3)
    assert [line.split(":")[0] for line in graded.lines] == [
        f"✗ {case.name}" for case in ch01._attend_cases(3)]
    assert graded.lines[0].split(":")[0] != f"✗ {ATTEND_LINES[0][0]}"


@pytest.mark.parametrize("seed", [None, 5])
def test_attend_cases_are_drawn_as_the_book_says(seed):
    """Protects the cases themselves (the book prints the first ones): q, K and V drawn in turn
    from the exercise's generator (the book's seed 2024, or mixed with a grading seed), the
    large-score case's q and K scaled by 30."""
    from sseq.exercises_cases import case_generator

    g = case_generator(2024, seed)
    for i, case in enumerate(ch01._attend_cases(seed)):
        q, K, V = case.args
        scale = 30.0 if i == 4 else 1.0
        want = (scale * torch.randn(q.shape, generator=g),
                scale * torch.randn(K.shape, generator=g), torch.randn(V.shape, generator=g))
        assert all(torch.equal(a, b) for a, b in zip(case.args, want, strict=True)), case.name
