"""The Chapter 3 checkers: a correct answer passes, each kind of wrong one is caught."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import sympy as sp
import torch

from sseq.checks import ch03

# --- Exercise 3.1 ------------------------------------------------------------------------------


def legs_right(N):
    n = torch.arange(N, dtype=torch.float64)
    r = torch.sqrt(2 * n + 1)
    A = -torch.tril(torch.outer(r, r), -1) - torch.diag(n + 1)
    return A, r


def legs_positive(N):  # the paper's sign: A positive
    A, B = legs_right(N)
    return -A, B


def legs_column_B(N):
    A, B = legs_right(N)
    return A, B[:, None]


def legs_float32(N):
    A, B = legs_right(N)
    return A.float(), B.float()


def legs_diagonal_n(N):  # -n instead of -(n+1) on the diagonal
    A, B = legs_right(N)
    return A + torch.eye(N, dtype=torch.float64), B


def test_legs_right_answer_passes(capsys):
    assert ch03.check_legs(legs_right)
    assert "Exercise 3.1 (LegS's matrices): all 5 checks pass" in capsys.readouterr().out


def test_legs_right_answer_passes_graded_cases_too():
    for seed in (1, 2):
        assert ch03.check_legs(legs_right, verbose=False, seed=seed)
    assert [c.args for c in ch03._legs_cases(seed=1)] != [c.args for c in ch03._legs_cases()]


def test_legs_tolerance_just_inside_and_just_outside():
    def scaled(factor):
        return lambda N: tuple(m * factor for m in legs_right(N))

    assert ch03.check_legs(scaled(1 + 3e-11), verbose=False)
    assert not ch03.check_legs(scaled(1 + 3e-10), verbose=False)


def test_legs_mistakes_are_caught_with_their_reason():
    report = ch03.check_legs(legs_positive, verbose=False)
    assert not report and report.n_passed == 0
    assert report.lines[0].startswith("✗ N = 1: item 0: values differ")
    assert "Hint: this is the paper's sign convention" in report.lines[0]
    assert "-n on the diagonal" in str(ch03.check_legs(legs_diagonal_n, verbose=False))
    transposed = ch03.check_legs(lambda N: (legs_right(N)[0].T, legs_right(N)[1]),
                                 verbose=False)
    assert "A transposed" in str(transposed)
    from sseq import hippo

    assert "calls sseq.hippo.transition" in str(
        ch03.check_legs(lambda N: hippo.transition("legs", N), verbose=False))
    report = ch03.check_legs(legs_column_B, verbose=False)
    assert "item 1: shape differs: expected (1,), got (1, 1)" in report.lines[0]
    report = ch03.check_legs(legs_float32, verbose=False)
    assert "dtype differs: expected torch.float64, got torch.float32" in report.lines[0]
    report = ch03.check_legs(lambda N: tuple(m.double() for m in legs_float32(N)),
                             verbose=False)
    assert not report and "computed in float32" in str(report)
    report = ch03.check_legs(legs_diagonal_n, verbose=False)
    assert not report and "values differ" in report.lines[2]


def test_legs_unfinished_answer_is_reported(capsys):
    def todo(N):
        raise NotImplementedError

    assert not ch03.check_legs(todo)
    assert "✗ N = 1: not implemented yet." in capsys.readouterr().out


# --- Exercise 3.2 ------------------------------------------------------------------------------


def derived_row():
    z = ch03.symbols()
    f = (z + 1) * sp.diff(sp.legendre(3, z), z)
    a = [sp.Rational(2 * k + 1, 2) * sp.integrate(f * sp.legendre(k, z), (z, -1, 1))
         for k in range(4)]
    return [-sp.KroneckerDelta(3, k) - sp.sqrt(7) * a[k] / sp.sqrt(2 * k + 1) for k in range(4)]


def test_derived_row_passes_as_list_or_matrix():
    assert ch03.check_legs_row(derived_row(), verbose=False)
    assert ch03.check_legs_row(sp.Matrix([derived_row()]), verbose=False)


def test_wrong_rows_are_caught():
    wrong = derived_row()
    wrong[3] = -3  # forgot the -δ_nk from the 1/t in front of the integral
    report = ch03.check_legs_row(wrong, verbose=False)
    assert not report and "differs from the expected result (yours is" in report.lines[0]
    assert "Hint: this is the row without -δ_nk" in report.lines[0]
    assert "yours is -2.64575, -4.58258, -5.91608, -3)" in report.lines[0]  # the learner's own
    column = ch03.check_legs_row(sp.Matrix(derived_row()), verbose=False)  # (4, 1), not (1, 4)
    assert not column and "shape differs: expected 1×4, got 4×1" in column.lines[0]
    floats = [float(v) for v in derived_row()]  # a numeric answer, exact to the last digit
    assert ch03.check_legs_row(floats, verbose=False)
    assert "no answer yet" in ch03.check_legs_row(..., verbose=False).lines[0]


# --- Exercise 3.3 ------------------------------------------------------------------------------


def reconstruct_right(c, t, x):
    n = np.arange(len(c))
    coefficients = c.numpy() * np.sqrt(2 * n + 1)
    return torch.from_numpy(np.polynomial.legendre.legval(2 * x.numpy() / t - 1, coefficients))


def reconstruct_no_scale(c, t, x):  # uses z = 2x - 1, right only at t = 1
    return reconstruct_right(c, 1.0, x)


def reconstruct_unnormalized(c, t, x):  # forgets sqrt(2n+1)
    return torch.from_numpy(np.polynomial.legendre.legval(2 * x.numpy() / t - 1, c.numpy()))


def test_reconstruct_right_answer_passes():
    assert ch03.check_reconstruct(reconstruct_right, verbose=False)
    for seed in (1, 2):
        assert ch03.check_reconstruct(reconstruct_right, verbose=False, seed=seed)


def test_reconstruct_tolerance_and_reference():
    assert ch03.check_reconstruct(lambda c, t, x: reconstruct_right(c, t, x) * (1 + 3e-9),
                                  verbose=False)
    assert not ch03.check_reconstruct(lambda c, t, x: reconstruct_right(c, t, x) * (1 + 3e-8),
                                      verbose=False)
    from sseq import hippo

    report = ch03.check_reconstruct(lambda c, t, x: c @ hippo.basis("legs", len(c), t=t, s=x).T,
                                    verbose=False)
    assert not report and "calls sseq.hippo.basis" in str(report)


def test_reconstruct_mistakes_are_caught_with_hints():
    report = ch03.check_reconstruct(reconstruct_no_scale, verbose=False)
    assert not report and report.lines[:2] == ["✓ a constant, N = 1", "✓ N = 3 at t = 1"]
    assert report.lines[2].startswith("✗ N = 6 at t = 2.5: values differ")
    assert "Hint: this is z = 2s - 1: the Legendre variable rescales s by t" in report.lines[2]
    report = ch03.check_reconstruct(reconstruct_unnormalized, verbose=False)
    assert report.lines[0] == "✓ a constant, N = 1" and "sqrt(2n+1)" in report.lines[1]
    assert "the Legendre polynomials unnormalized" in report.lines[1]
    report = ch03.check_reconstruct(lambda c, t, x: reconstruct_right(c, t, x).float(),
                                    verbose=False)
    assert "dtype differs" in report.lines[0]


# --- Exercise 3.4 ------------------------------------------------------------------------------


def test_error_ratio_is_close_to_sqrt_two():
    # The theory (coefficients of a jump decay like 1/n) predicts sqrt(2); measured 1.42.
    assert abs(ch03.error_ratio() - math.sqrt(2)) < 0.05


def test_prediction_and_measurement_are_both_required(capsys):
    assert ch03.check_error_ratio(math.sqrt(2), ch03.error_ratio())
    assert "all 2 checks pass" in capsys.readouterr().out
    report = ch03.check_error_ratio(2.0, ch03.error_ratio(), verbose=False)
    assert not report and report.n_cases == 2 and report.n_passed == 1
    assert report.lines[0].startswith("✗ your prediction: your value is too high")
    assert "1.42" not in report.lines[0]
    assert "the ratio for an error falling like 1/N" in report.lines[0]
    report = ch03.check_error_ratio(1.41, 1.2, verbose=False)
    assert report.n_passed == 1 and report.lines[1].startswith("✗ your measurement")
    assert "upside down" in str(ch03.check_error_ratio(1.41, 1 / ch03.error_ratio(),
                                                        verbose=False))
    prediction_only = ch03.check_error_ratio(math.sqrt(2), verbose=False)
    assert not prediction_only and prediction_only.lines[1].startswith(
        "✗ your measurement: not measured yet")
    stub = ch03.check_error_ratio(..., None, verbose=False)
    assert stub.unanswered and stub.n_cases == 2


# --- what the learner reads, in full -------------------------------------------------------------
LEGS_SIZES = (1, 2, 3, 5, 8)
SIGN = "the sign is folded into A: the diagonal is -(n+1), negative."
LEGS_HINTS = [SIGN, "below the diagonal A_nk = -sqrt(2n+1) sqrt(2k+1).",
              "above the diagonal A is zero: torch.tril keeps the rest.",
              "B_n = sqrt(2n+1), a vector of shape (N,).", SIGN]
LEGS_TOLERANCE = "tolerance rtol 1e-10, atol 1e-12"


def legs_zero(N):
    return torch.zeros(N, N, dtype=torch.float64), torch.zeros(N, dtype=torch.float64)


def legs_loops(N):  # an independent oracle: the closed form, entry by entry, in float64
    A = torch.zeros(N, N, dtype=torch.float64)
    for n in range(N):
        for k in range(n):
            A[n, k] = -math.sqrt((2 * n + 1) * (2 * k + 1))
        A[n, n] = -(n + 1)
    return A, torch.tensor([math.sqrt(2 * n + 1) for n in range(N)], dtype=torch.float64)


def legs_upper_loops(N):  # the nonzero part above the diagonal, written out
    A, B = legs_loops(N)
    for n in range(N):
        for k in range(n):
            A[k, n], A[n, k] = A[n, k].item(), 0.0
    return A, B


def test_legs_report_names_every_case_and_its_hint_in_full():
    """Protects what a learner reads for Exercise 3.1: each book case's name (its N), the
    entries of A that differ (the N(N+1)/2 on and below the diagonal for an all-zero answer),
    the tolerance (rtol 1e-10, atol 1e-12), each case's hint in full, and the title."""
    lines = str(ch03.check_legs(legs_zero, verbose=False)).splitlines()
    assert len(lines) == 6
    for line, N, hint in zip(lines, LEGS_SIZES, LEGS_HINTS, strict=False):
        assert line == (f"✗ N = {N}: item 0: values differ at {N * (N + 1) // 2} of {N * N} "
                        f"entries; first at index (0, 0): expected -1, got 0 (relative error "
                        f"1.0e+00; {LEGS_TOLERANCE}). Hint: {hint}"), line
    assert lines[-1] == "Exercise 3.1 (LegS's matrices): 0 of 5 checks pass. Keep going."


@pytest.mark.parametrize(("learner", "first_failing", "said"), [
    (lambda N: tuple(-m if i == 0 else m for i, m in enumerate(legs_loops(N))), 0,
     "the paper's sign convention: the book folds the minus sign into A, so A is negative "
     "(stable: eigenvalues -1, ..., -N)."),
    (lambda N: (legs_loops(N)[0] + torch.eye(N, dtype=torch.float64), legs_loops(N)[1]), 0,
     "-n on the diagonal: the diagonal is -(n+1): the -1/t of Leibniz's rule adds to the -n."),
    (legs_upper_loops, 1, "A transposed: the nonzero part lies below the diagonal (n > k)."),
])
def test_legs_mistakes_are_explained_in_full_on_every_case(learner, first_failing, said):
    """Protects each recognised mistake of Exercise 3.1: a learner's answer with that mistake
    (written independently of the checker's) is caught on every book case where it differs
    (A transposed is right for N = 1), and named and explained in full there."""
    lines = str(ch03.check_legs(learner, verbose=False)).splitlines()
    assert lines[:first_failing] == [f"✓ N = {N}" for N in LEGS_SIZES[:first_failing]]
    for line, N in zip(lines[first_failing:5], LEGS_SIZES[first_failing:], strict=True):
        assert line.startswith(f"✗ N = {N}: item 0: values differ at ") and line.endswith(
            f"; {LEGS_TOLERANCE}). Hint: this is {said}"), line


def test_legs_absolute_tolerance_just_inside_and_just_outside():
    """Protects Exercise 3.1's atol of 1e-12: the zeros above the diagonal may be off by
    5e-13, not by 3e-12 (the relative tolerance adds nothing to a zero)."""
    def above(offset):
        def answer(N):
            A, B = legs_loops(N)
            return A + offset * torch.ones(N, N, dtype=torch.float64).triu(1), B
        return answer

    assert ch03.check_legs(above(5e-13), verbose=False)
    report = ch03.check_legs(above(3e-12), verbose=False)
    assert report.lines[0] == "✓ N = 1" and report.n_passed == 1


def test_legs_forbids_both_of_the_books_implementations():
    """Protects Exercise 3.1's guard: an answer calling sseq.hippo.legs_symbolic (the sympy
    derivation), not only hippo.transition, fails every case, saying which function it calls."""
    from sseq import hippo

    def from_sympy(N):  # a call for N = 1 is as forbidden as one for N (and much faster)
        hippo.legs_symbolic(1)
        return legs_loops(N)

    lines = str(ch03.check_legs(from_sympy, verbose=False)).splitlines()
    assert lines[:5] == [f"✗ N = {N}: calls sseq.hippo.legs_symbolic, the book's own "
                         "implementation; write your own." for N in LEGS_SIZES]


def test_graded_legs_cases_draw_every_size_in_their_range():
    """Protects the graded variants of Exercise 3.1: N = 1 stays first, then four different
    sizes drawn from 2..16 (every one of them drawn over many seeds), in increasing order,
    named by their size, each case keeping its hint; a seed always draws the same sizes."""
    import random

    seen = set()
    for seed in range(1, 200):
        cases = ch03._legs_cases(seed)
        sizes = [c.args[0] for c in cases]
        assert [c.args for c in cases] == [(N,) for N in sizes]
        assert sizes == [1, *sorted(random.Random(seed).sample(range(2, 17), 4))]
        assert sizes[0] == 1 and sizes[1:] == sorted(set(sizes[1:])) and len(sizes) == 5
        assert [c.name for c in cases] == [f"N = {N}" for N in sizes]
        assert [c.hint for c in cases] == LEGS_HINTS
        seen.update(sizes[1:])
    assert seen == set(range(2, 17))
    assert [c.args for c in ch03._legs_cases()] == [(N,) for N in LEGS_SIZES]
    assert [c.hint for c in ch03._legs_cases()] == LEGS_HINTS


def test_legs_checker_prints_by_default_passes_the_seed_on_and_uses_instructor_cases(capsys):
    """Protects check_legs's calling conventions: it prints its report unless verbose=False,
    its seed (or the grader's grading_seed) selects the graded cases, and an instructor's cases
    replace the book's."""
    from sseq.exercises import Case, grading_seed

    ch03.check_legs(legs_loops)
    assert capsys.readouterr().out == "".join(f"✓ N = {N}\n" for N in LEGS_SIZES) + (
        "Exercise 3.1 (LegS's matrices): all 5 checks pass. Well done!\n")
    ch03.check_legs(legs_zero, verbose=False)
    assert capsys.readouterr().out == ""
    graded = ch03.check_legs(legs_zero, verbose=False, seed=3)
    names = [f"✗ {case.name}" for case in ch03._legs_cases(3)]
    assert [line.split(":")[0] for line in graded.lines] == names != [
        f"✗ N = {N}" for N in LEGS_SIZES]
    with grading_seed(3):
        assert [line.split(":")[0] for line in
                ch03.check_legs(legs_zero, verbose=False).lines] == names
    report = ch03.check_legs(legs_loops, verbose=False, cases=[Case("mine", (12,))])
    assert report and report.lines == ["✓ mine"]
    assert not ch03.check_legs(legs_diagonal_n, verbose=False, cases=[Case("mine", (12,))])


# Exercise 3.2
ROW_SAID = ("Hint: A_3k = -δ_3k - sqrt(7) a_3k / sqrt(2k+1), where a_3k is the coefficient of P_k "
            "in (z+1) P_3'(z).")


def test_legs_row_report_in_full(capsys):
    """Protects what a learner reads for Exercise 3.2: the row named, the learner's own values
    shown (never the expected row), each recognised mistake named and explained in full (the
    -δ_nk forgotten; the paper's sign, written out independently), the exercise's hint
    otherwise, the title; printed unless verbose=False."""
    def lines(row):
        return str(ch03.check_legs_row(row, verbose=False)).splitlines()

    r7, r21, r35 = sp.sqrt(7), sp.sqrt(21), sp.sqrt(35)
    assert lines([0, 0, 0, 0]) == [
        f"✗ row n = 3 of A: differs from the expected result (yours is 0, 0, 0, 0). {ROW_SAID}",
        "Exercise 3.2 (derive): 0 of 1 checks pass. Keep going."]
    assert lines([-r7, -r21, -r35, -3])[0] == (
        "✗ row n = 3 of A: differs from the expected result (yours is -2.64575, -4.58258, "
        "-5.91608, -3). Hint: this is the row without -δ_nk: the 1/t in front of the integral "
        "adds -c_n: -1 on the diagonal.")
    assert lines([r7, r21, r35, 4])[0] == (
        "✗ row n = 3 of A: differs from the expected result (yours is 2.64575, 4.58258, "
        "5.91608, 4). Hint: this is the row with the paper's sign: the book folds the minus "
        "sign into A.")
    assert lines([-r7, -r21, -r35, 4])[0].endswith(f"4). {ROW_SAID}")  # half the sign flipped
    assert lines([-r7, -r21, -r35, -4]) == [
        "✓ row n = 3 of A", "Exercise 3.2 (derive): correct. Well done!"]
    assert capsys.readouterr().out == ""
    ch03.check_legs_row([-r7, -r21, -r35, -4])
    assert capsys.readouterr().out == ("✓ row n = 3 of A\n"
                                       "Exercise 3.2 (derive): correct. Well done!\n")


def test_symbols_is_the_legendre_variable_z():
    """Protects Exercise 3.2's symbol: z, a plain sympy Symbol (no assumptions), so that the
    learner's sp.legendre(3, z) and sp.integrate over (z, -1, 1) mean what the book says."""
    assert ch03.symbols() == sp.Symbol("z") and ch03.symbols().name == "z"


# Exercise 3.3
RECONSTRUCT_NAMES = ["a constant, N = 1", "N = 3 at t = 1", "N = 6 at t = 2.5",
                     "N = 40 at t = 3 (many coefficients)"]
RECONSTRUCT_HINTS = [
    "p_0 = 1: the reconstruction is c_0 everywhere.",
    "p_n(s) = sqrt(2n+1) P_n(2s/t - 1): do not forget the sqrt(2n+1).",
    "the Legendre variable is z = 2s/t - 1: rescale s by t, not by 1.",
    "compute P_n(z) by the three-term recurrence (n+1) P_{n+1} = (2n+1) z P_n - n P_{n-1}, or "
    "with numpy's legval."]
RECONSTRUCT_TOLERANCE = "tolerance rtol 1e-08, atol 1e-10"


def test_reconstruct_report_names_every_case_and_its_hint_in_full():
    """Protects what a learner reads for Exercise 3.3: each book case's name (its N and t),
    the number of times compared (7, 7, 11, 25), the tolerance (rtol 1e-8, atol 1e-10), each
    case's hint in full, and the title."""
    lines = str(ch03.check_reconstruct(lambda c, t, s: torch.zeros_like(s),
                                       verbose=False)).splitlines()
    assert len(lines) == 5
    for line, name, m, hint in zip(lines, RECONSTRUCT_NAMES, (7, 7, 11, 25), RECONSTRUCT_HINTS,
                                   strict=False):
        assert line.startswith(f"✗ {name}: values differ at {m} of {m} entries; first at index "
                               "(0,): expected ") and line.endswith(
            f", got 0 (relative error 1.0e+00; {RECONSTRUCT_TOLERANCE}). Hint: {hint}"), line
    assert lines[0].startswith("✗ a constant, N = 1: values differ at 7 of 7 entries; first at "
                               "index (0,): expected 0.7, got 0 ")
    assert lines[-1] == "Exercise 3.3 (reconstruct the past): 0 of 4 checks pass. Keep going."


@pytest.mark.parametrize(("learner", "first_failing", "said"), [
    (reconstruct_no_scale, 2, "z = 2s - 1: the Legendre variable rescales s by t: z = 2s/t - 1."),
    (reconstruct_unnormalized, 1, "the Legendre polynomials unnormalized: p_n carries a factor "
     "sqrt(2n+1)."),
])
def test_reconstruct_mistakes_are_explained_in_full_on_every_case(learner, first_failing, said):
    """Protects each recognised mistake of Exercise 3.3: a learner's answer with that mistake
    (written independently of the checker's) is caught on every book case where it differs
    (z = 2s - 1 is right at t = 1; the missing sqrt(2n+1) is right for N = 1), and named and
    explained in full there."""
    lines = str(ch03.check_reconstruct(learner, verbose=False)).splitlines()
    assert lines[:first_failing] == [f"✓ {n}" for n in RECONSTRUCT_NAMES[:first_failing]]
    for line, name in zip(lines[first_failing:4], RECONSTRUCT_NAMES[first_failing:],
                          strict=True):
        assert line.startswith(f"✗ {name}: values differ at ") and line.endswith(
            f"; {RECONSTRUCT_TOLERANCE}). Hint: this is {said}"), line


def test_reconstruct_absolute_tolerance_and_both_forbidden_functions():
    """Protects Exercise 3.3's atol of 1e-10 (an answer off by 5e-11 where the reconstruction
    is zero passes, by 3e-10 does not) and its guard: hippo.reconstruct, not only hippo.basis,
    is refused on every case."""
    from sseq import hippo
    from sseq.exercises import Case

    c, s = torch.tensor([0.0, 0.0], dtype=torch.float64), torch.linspace(0, 1, 5).double()
    for offset, ok in ((5e-11, True), (3e-10, False)):
        report = ch03.check_reconstruct(lambda c, t, s, o=offset: reconstruct_right(c, t, s) + o,
                                        verbose=False, cases=[Case("zeros", (c, 1.0, s))])
        assert bool(report) is ok
    lines = str(ch03.check_reconstruct(lambda c, t, s: hippo.reconstruct(c, "legs", t=t, s=s),
                                       verbose=False)).splitlines()
    assert lines[:4] == [f"✗ {name}: calls sseq.hippo.reconstruct, the book's own "
                         "implementation; write your own." for name in RECONSTRUCT_NAMES]


def draw_reconstruct_cases(seed):  # what Exercise 3.3's text says its graded cases are
    import random

    t3, N3, t4, c0 = 2.5, 6, 3.0, 0.7
    if seed is not None:
        draw = random.Random(seed)
        t3, N3 = round(draw.uniform(1.5, 4), 2), draw.randint(4, 9)
        t4, c0 = round(draw.uniform(2, 5), 2), round(draw.uniform(-2, 2), 3)
    return t3, N3, t4, c0


@pytest.mark.parametrize("seed", [None, 5])
def test_reconstruct_cases_are_drawn_as_the_book_says(seed):
    """Protects Exercise 3.3's cases themselves: a constant c_0 at t = 1, then N = 3 at t = 1,
    N = N3 at t3 and N = 40 at t4, their float64 coefficients drawn in turn from the exercise's
    generator (seed 3, or mixed with a grading seed), each at 7, 7, 11 and 25 equally spaced
    times from 0 to t; the names give the sizes and times, each case keeps its hint."""
    from sseq.exercises_cases import case_generator

    t3, N3, t4, c0 = draw_reconstruct_cases(seed)
    g = case_generator(3, seed)
    want = [(torch.tensor([c0], dtype=torch.float64), 1.0, 7),
            (torch.randn(3, generator=g, dtype=torch.float64), 1.0, 7),
            (torch.randn(N3, generator=g, dtype=torch.float64), t3, 11),
            (torch.randn(40, generator=g, dtype=torch.float64), t4, 25)]
    cases = ch03._reconstruct_cases(seed)
    assert [c.name for c in cases] == ["a constant, N = 1", "N = 3 at t = 1",
                                       f"N = {N3} at t = {t3}",
                                       f"N = 40 at t = {t4:g} (many coefficients)"]
    assert [c.hint for c in cases] == RECONSTRUCT_HINTS
    for case, (c, t, m) in zip(cases, want, strict=True):
        got_c, got_t, got_s = case.args
        assert torch.equal(got_c, c) and got_c.dtype == torch.float64 and got_t == t
        assert got_s.dtype == torch.float64 and got_s.shape == (m,)
        assert got_s[0] == 0 and got_s[-1] == t and torch.allclose(
            got_s, torch.tensor([t * i / (m - 1) for i in range(m)], dtype=torch.float64),
            rtol=0, atol=1e-14)


def test_graded_reconstruct_cases_draw_over_their_ranges():
    """Protects the graded variants of Exercise 3.3: t3 in [1.5, 4] and t4 in [2, 5] to two
    decimals, N3 every integer in 4..9, the constant c_0 in [-2, 2] to three decimals (each
    range reached near both ends over many seeds); the grader's grading_seed draws them too."""
    from sseq.exercises import grading_seed

    draws = []
    for seed in range(1, 300):
        cases = ch03._reconstruct_cases(seed)
        t3, N3, t4 = cases[2].args[1], len(cases[2].args[0]), cases[3].args[1]
        draws.append((t3, N3, t4, cases[0].args[0].item()))
        assert draws[-1] == draw_reconstruct_cases(seed)
    t3s, N3s, t4s, c0s = zip(*draws, strict=True)
    assert 1.5 <= min(t3s) < 1.55 and 3.95 < max(t3s) <= 4
    assert 2 <= min(t4s) < 2.05 and 4.95 < max(t4s) <= 5
    assert -2 <= min(c0s) < -1.95 and 1.95 < max(c0s) <= 2
    assert set(N3s) == set(range(4, 10))
    for values, digits in ((t3s, 2), (t4s, 2), (c0s, 3)):
        assert all(round(v, digits) == v for v in values)
        assert sum(round(v, digits - 1) != v for v in values) > len(values) / 2
    with grading_seed(5):
        assert [c.name for c in ch03._reconstruct_cases()] == [
            c.name for c in ch03._reconstruct_cases(5)]
        report = ch03.check_reconstruct(lambda c, t, s: torch.zeros_like(s), verbose=False)
    assert [line.split(":")[0] for line in report.lines] == [
        f"✗ {c.name}" for c in ch03._reconstruct_cases(5)]


def test_reconstruct_checker_prints_by_default_passes_the_seed_on_and_uses_instructor_cases(
        capsys):
    """Protects check_reconstruct's calling conventions: it prints its report unless
    verbose=False, its seed selects the graded cases, and an instructor's cases replace the
    book's."""
    from sseq.exercises import Case

    ch03.check_reconstruct(reconstruct_right)
    assert capsys.readouterr().out == "".join(f"✓ {name}\n" for name in RECONSTRUCT_NAMES) + (
        "Exercise 3.3 (reconstruct the past): all 4 checks pass. Well done!\n")
    graded = ch03.check_reconstruct(lambda c, t, s: torch.zeros_like(s), verbose=False, seed=7)
    assert capsys.readouterr().out == ""
    assert [line.split(":")[0] for line in graded.lines] == [
        f"✗ {case.name}" for case in ch03._reconstruct_cases(7)]
    mine = Case("mine", (torch.ones(5, dtype=torch.float64), 2.0,
                         torch.linspace(0, 2, 9, dtype=torch.float64)))
    report = ch03.check_reconstruct(reconstruct_right, verbose=False, cases=[mine])
    assert report and report.lines == ["✓ mine"]
    assert not ch03.check_reconstruct(reconstruct_no_scale, verbose=False, cases=[mine])


# Exercise 3.4
@functools.cache
def rms_ratio_oracle(N, L):  # independent of error_ratio: two runs, numpy's legval, own RMS
    from sseq import hippo

    s = np.arange(1, L + 1) / L
    u = np.where(s < 0.3, 0.0, 1.0) - np.where(s < 0.7, 0.0, 1.5)  # the "steps" signal
    rms = []
    for n in (N, 2 * N):
        c = hippo.project(torch.from_numpy(u), "legs", n, dt=1 / L)[-1].numpy()
        u_hat = np.polynomial.legendre.legval(2 * s - 1, c * np.sqrt(2 * np.arange(n) + 1))
        rms.append(np.sqrt(np.mean((u_hat - u) ** 2)))
    return rms[0] / rms[1]


def test_error_ratio_measures_what_it_says():
    """Protects error_ratio: the RMS error of LegS's reconstruction of the "steps" signal at
    t = 1 from L samples with N coefficients, over that with 2N (N = 32, L = 1000 by default),
    against separate runs reconstructed with numpy's Legendre series."""
    assert ch03.error_ratio() == pytest.approx(rms_ratio_oracle(32, 1000), rel=1e-9)
    assert ch03.error_ratio("steps", 8, 200) == pytest.approx(rms_ratio_oracle(8, 200), rel=1e-9)
    assert ch03.error_ratio("sines", 8, 200) != pytest.approx(rms_ratio_oracle(8, 200), rel=1e-3)


PREDICTION_HINT = ("Hint: a jump makes the n-th coefficient shrink like 1/n; the squared error is "
                   "the sum of the squares of the coefficients left out.")
MEASUREMENT_HINT = ("Hint: RMS error with N = 32 divided by RMS error with N = 64, on the 'steps' "
                    "signal sampled at L = 1000 points.")


def test_error_ratio_report_in_full(capsys):
    """Protects what a learner reads for Exercise 3.4: both parts named, too high or too low
    with their tolerances (rtol 0.1 for the prediction, 0.02 for the measurement) but never the
    measured ratio, each recognised mistake (the ratio 2 of a 1/N error, the ratio upside
    down) explained in full, each part's own hint otherwise, the missing measurement asked
    for, the title; printed unless verbose=False."""
    ratio = rms_ratio_oracle(32, 1000)

    def lines(*answer):
        return str(ch03.check_error_ratio(*answer, verbose=False)).splitlines()

    assert lines(1.0, 1.0) == [
        f"✗ your prediction: your value is too low (tolerance: rtol 0.1). {PREDICTION_HINT}",
        f"✗ your measurement: your value is too low (tolerance: rtol 0.02). {MEASUREMENT_HINT}",
        "Exercise 3.4 (predict, then measure): 0 of 2 checks pass. Keep going."]
    assert lines(2.0, 1 / ratio)[:2] == [
        "✗ your prediction: your value is too high (tolerance: rtol 0.1). Hint: this is the "
        "ratio for an error falling like 1/N: for a jump it is the squared error that falls like "
        "1/N.",
        "✗ your measurement: your value is too low by a factor of 2 or more (tolerance: rtol "
        "0.02). Hint: this is the ratio upside down: divide the error with N = 32 by the error "
        "with N = 64."]
    assert lines(1.7, 1.6)[:2] == [
        f"✗ your prediction: your value is too high (tolerance: rtol 0.1). {PREDICTION_HINT}",
        f"✗ your measurement: your value is too high (tolerance: rtol 0.02). {MEASUREMENT_HINT}"]
    assert lines(math.sqrt(2)) == [
        "✓ your prediction", "✗ your measurement: not measured yet: replace the None with the "
        "ratio you measure with hippo.project and hippo.reconstruct.",
        "Exercise 3.4 (predict, then measure): 1 of 2 checks pass. Keep going."]
    assert capsys.readouterr().out == ""
    ch03.check_error_ratio(math.sqrt(2), ratio)
    assert capsys.readouterr().out == ("✓ your prediction\n✓ your measurement\n"
                                       "Exercise 3.4 (predict, then measure): all 2 checks pass. "
                                       "Well done!\n")


def test_error_ratio_tolerances_just_inside_and_just_outside():
    """Protects Exercise 3.4's tolerances, around the measured ratio (an independent run): the
    prediction within 10 % (9.5 % off passes, 10.5 % does not, either way), the measurement
    within 2 % (1.9 % off passes, 2.1 % does not, either way)."""
    ratio = rms_ratio_oracle(32, 1000)
    for sign in (1, -1):
        assert ch03.check_error_ratio(ratio * (1 + sign * 0.095), ratio * (1 + sign * 0.019),
                                      verbose=False)
        assert ch03.check_error_ratio(ratio * (1 + sign * 0.105), ratio,
                                      verbose=False).lines[0].startswith("✗ your prediction")
        assert ch03.check_error_ratio(ratio, ratio * (1 + sign * 0.021),
                                      verbose=False).lines[1].startswith("✗ your measurement")
